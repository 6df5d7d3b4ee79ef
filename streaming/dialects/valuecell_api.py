"""ValueCell's `/api/v1/`: what ValueCell's own web frontend calls for its chat,
in the shapes it reads (`{code, msg, data}`), over the same runtime and records.

Refusals keep their HTTP status in its wrapper (`code` non-zero), except that
a 401 would send the frontend to ValueCell's cloud login: it is a 403 here.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ConfigDict, Field

from conversations import services
from conversations.ownership import Principal
from conversations.selectors import (
    afinished_history,
    list_conversations,
    owned_conversation_or_error,
    owned_task_or_error,
)
from streaming.agents.registry import UnknownAgent, get_agent
from streaming.dialects.door import dialect_view
from streaming.dialects.stream import idle_seconds, sse_response
from streaming.dialects.valuecell import ValueCellTranslator, history_frames
from streaming.errors import ErrorCode, ServiceError
from streaming.eventlog.backend import event_store
from streaming.eventlog.follow import follow_conversation, follow_run
from streaming.eventlog.subscription import Subscription, subscribe_ahead
from streaming.events import SystemResponseEvent
from streaming.http.api import parse_body
from streaming.http.auth import ensure_session, stream_token_hash
from streaming.runtime.inputs import validate_query
from streaming.runtime.orchestrator import orchestrator
from streaming.states import TaskStatus

# The frontend's home-page chat goes to this built-in agent: the default agent answers it.
VALUECELL_AGENT = "ValueCellAgent"
CANCEL_LANDS_WITHIN_SECONDS = 10.0
DONE = SystemResponseEvent.DONE.value


def ok(data: Any) -> JsonResponse:
    return JsonResponse({"code": 0, "msg": "success", "data": data}, safe=False)


def refusal(error: ServiceError) -> JsonResponse:
    """A refusal in ValueCell's wrapper; `detail` is what the frontend's toast shows."""
    status = 403 if error.status == 401 else error.status
    body = {
        "code": status,
        "msg": error.message,
        "data": None,
        "detail": error.message,
        "error": {"code": str(error.code), "message": error.message, **error.fields},
    }
    response = JsonResponse(body, status=status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def vc_view(*methods: str):
    return dialect_view(*methods, refusal=refusal)


def utc_iso(value: str) -> str:
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def agent_info(name: str, shown_as: str | None = None) -> dict[str, Any]:
    """ValueCell's AgentInfo for one of our agents (`tags` must be a list: the page reads it)."""
    try:
        agent = get_agent(name)
    except UnknownAgent:
        raise ServiceError(ErrorCode.UNKNOWN_AGENT, f"Agent with name {name[:100]!r} not found") from None
    agent_name = shown_as or name
    now = timezone.now().isoformat()
    return {
        "agent_name": agent_name,
        "display_name": getattr(agent, "display_name", "") or agent_name.replace("_", " ").title() + " Agent",
        "description": agent.description,
        "enabled": True,
        "agent_metadata": {
            "version": "1.0.0",
            "author": "valuecell-streaming",
            "tags": list(getattr(agent, "tags", [])),
        },
        "created_at": now,
        "updated_at": now,
    }


@dialect_view("GET", refusal=refusal, identify=False)
async def healthz(request: HttpRequest, principal: Principal) -> HttpResponseBase:
    # No identity needed: the whole app waits for this before it renders anything.
    return ok({"status": "healthy", "version": "valuecell-streaming", "timestamp": timezone.now().isoformat()})


@vc_view("GET")
async def agents(request: HttpRequest, principal: Principal) -> HttpResponseBase:
    found = [agent_info(name) for name in settings.VALUECELL_AGENTS]
    return ok({"agents": found, "total": len(found)})


@vc_view("GET")
async def agent_by_name(request: HttpRequest, principal: Principal, name: str) -> HttpResponseBase:
    if name == VALUECELL_AGENT:
        return ok(agent_info(settings.VALUECELL_DEFAULT_AGENT, shown_as=VALUECELL_AGENT))
    return ok(agent_info(name))


class StreamBody(BaseModel):
    """ValueCell's body: an empty `conversation_id` starts a new conversation."""

    model_config = ConfigDict(extra="ignore")

    query: str
    agent_name: str | None = Field(default=None, max_length=100)
    conversation_id: str | None = Field(default=None, max_length=64)


@vc_view("POST")
async def stream(request: HttpRequest, principal: Principal) -> HttpResponseBase:
    body = parse_body(request, StreamBody)
    validate_query(body.query)  # before an anonymous visitor gets a session for it
    token_hash = stream_token_hash(request, principal)
    principal = await ensure_session(request, principal)
    agent_name = None if body.agent_name in (None, "", VALUECELL_AGENT) else body.agent_name
    joined: list[Subscription] = []

    async def join(conversation_id: str) -> None:
        joined.append(await subscribe_ahead(conversation_id))

    submission = await orchestrator.submit(
        principal, body.query, agent_name, body.conversation_id or None, before_start=join
    )
    cid = submission.conversation_id
    batches = follow_run(
        cid, submission.after_seq, subscription=joined[0] if joined else None, idle_seconds=idle_seconds()
    )
    return sse_response(ValueCellTranslator(cid), batches, cid, token_hash=token_hash)


@vc_view("GET")
async def conversations(request: HttpRequest, principal: Principal) -> HttpResponseBase:
    found = [
        {
            "conversation_id": c["id"],
            "title": c["title"] or f"Conversation {c['id']}",
            "agent_name": c["agent_name"],
            "update_time": utc_iso(c["updated_at"]),
        }
        for c in await list_conversations(principal)
    ]
    return ok({"conversations": found, "total": len(found)})


@vc_view("DELETE")
async def conversation(request: HttpRequest, principal: Principal, conversation_id: str) -> HttpResponseBase:
    found = await owned_conversation_or_error(principal, conversation_id)
    deleted = found.id  # the instance forgets its id once deleted
    await services.delete_conversation(found)
    return ok({"conversation_id": deleted, "deleted": True})


@vc_view("GET")
async def history(request: HttpRequest, principal: Principal, conversation_id: str) -> HttpResponseBase:
    found = await owned_conversation_or_error(principal, conversation_id)
    # Only runs that have ended: the frontend resets its page to this list while
    # the first run still streams into it (it cannot resume a stream).
    items = history_frames(found.id, await afinished_history(found.id))
    return ok({"conversation_id": found.id, "items": items})


@vc_view("GET")
async def scheduled_task_results(request: HttpRequest, principal: Principal, conversation_id: str) -> HttpResponseBase:
    found = await owned_conversation_or_error(principal, conversation_id)
    return ok({"conversation_id": found.id, "items": []})  # no scheduled tasks (yet)


@vc_view("GET")
async def all_scheduled_task_results(request: HttpRequest, principal: Principal) -> HttpResponseBase:
    return ok({"agents": []})


@vc_view("POST")
async def cancel_task(request: HttpRequest, principal: Principal, task_id: str) -> HttpResponseBase:
    """Cancel the task's run and answer once it has ended (or after a bounded wait):
    `success` says it has, and a delete right after it then succeeds."""
    task = await owned_task_or_error(principal, task_id)
    if task.status not in (TaskStatus.RUNNING, TaskStatus.WAITING_INPUT):
        raise ServiceError(ErrorCode.NOT_RUNNING, "Task is not cancellable: it has ended.")
    after = await event_store().last_seq(task.conversation_id)
    await orchestrator.cancel(principal, task.conversation_id)
    return ok({"task_id": task.id, "success": await _ended_after(task.conversation_id, after)})


async def _ended_after(conversation_id: str, after: int) -> bool:
    """Whether a `done` is stored after `after` within the bounded wait."""
    batches = follow_conversation(conversation_id, after, idle_seconds=idle_seconds())
    try:
        async with asyncio.timeout(CANCEL_LANDS_WITHIN_SECONDS):
            async for rows in batches:
                if rows and any(event == DONE for _seq, event, _body in rows):
                    return True
    except TimeoutError:
        pass
    finally:
        await batches.aclose()
    return False


@vc_view("GET")
async def watchlist(request: HttpRequest, principal: Principal) -> HttpResponseBase:
    return ok([])  # the home page's sidebar: no watchlists here


@csrf_exempt
async def unknown(request: HttpRequest, rest: str = "") -> HttpResponseBase:
    # Never the frontend's index.html with a 200: its callers would read `.data` of a string.
    return refusal(ServiceError(ErrorCode.NOT_FOUND, f"No such resource: {request.path[:200]}"))
