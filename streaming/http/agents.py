"""`GET /agents` and `POST /agents/stream`: list the agents, start a run and stream it."""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponseBase, JsonResponse
from pydantic import BaseModel, ConfigDict, Field

from conversations.ownership import Principal
from conversations.selectors import owned_conversation_or_error
from streaming.agents.registry import list_agents
from streaming.errors import ErrorCode, ServiceError
from streaming.eventlog.subscription import Subscription, subscribe_ahead
from streaming.http.api import api_view, parse_body
from streaming.http.auth import ensure_session, request_client, stream_token_hash
from streaming.http.sse import parse_resume_point, resume_response, sse_response
from streaming.runtime.idempotent import fingerprint, submit_once
from streaming.runtime.inputs import validate_query
from streaming.runtime.orchestrator import Submission, orchestrator

IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")


class StreamRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str
    agent_name: str | None = Field(default=None, max_length=100)
    conversation_id: str | None = Field(default=None, max_length=64)


def idempotency_key(request: HttpRequest) -> str | None:
    """The `Idempotency-Key` header (a plain or quoted string of printable ASCII), or None."""
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]  # the structured-field form: "8e03978e-…"
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise ServiceError(
            ErrorCode.INVALID_IDEMPOTENCY_KEY, "Idempotency-Key must be 1 to 255 printable ASCII characters."
        )
    return key


@api_view("GET")
async def agents(request: HttpRequest, principal: Principal) -> HttpResponseBase:
    return JsonResponse({"agents": list_agents()})


@api_view("POST")
async def agents_stream(request: HttpRequest, principal: Principal) -> HttpResponseBase:
    body = parse_body(request, StreamRequest)
    validate_query(body.query)  # before an anonymous visitor gets a session for it
    key = idempotency_key(request)
    principal = await ensure_session(request, principal)
    token_hash = stream_token_hash(request, principal)
    joined: list[Subscription] = []

    async def join(conversation_id: str) -> None:
        # Before the run can publish anything: no store read needed to start.
        joined.append(await subscribe_ahead(conversation_id))

    async def submit() -> Submission:
        return await orchestrator.submit(
            principal,
            body.query,
            body.agent_name,
            body.conversation_id,
            before_start=join,
            client=request_client(request),
            # Without a key, no wait for the new conversation's row: the response
            # sends nothing before its first event, which is stored with it. A key
            # names the conversation in its own row, which needs that row stored.
            wait_recorded=key is not None,
        )

    if key is None:
        submission = await submit()
    else:
        once = await submit_once(principal, key, fingerprint(body.query, body.agent_name, body.conversation_id), submit)
        submission = once.submission
        if once.replayed:
            return await _replay(request, principal, submission, token_hash)
    subscription = joined[0] if joined else None
    return await sse_response(
        submission.conversation_id, submission.after_seq, subscription=subscription, token_hash=token_hash
    )


async def _replay(
    request: HttpRequest, principal: Principal, submission: Submission, token_hash: str | None
) -> HttpResponseBase:
    """A repeat of a keyed request: the first request's run, from `Last-Event-ID` when sent."""
    conversation = await owned_conversation_or_error(principal, submission.conversation_id)
    after = max(parse_resume_point(request), submission.after_seq)
    response = await resume_response(
        conversation.id,
        conversation.status,
        after,
        token_hash=token_hash,
        end_after_done_beyond=submission.after_seq,
    )
    response["Idempotent-Replayed"] = "true"
    return response
