"""HTTP entry points of the streaming app: list agents, start a run and stream it."""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from pydantic import BaseModel, ConfigDict, Field

from streaming.http.auth import ensure_session

from streaming.agents.registry import list_agents
from streaming.http.api import ApiError, api_view, parse_body
from streaming.eventlog.follow import subscribe_ahead
from streaming.runtime.orchestrator import orchestrator
from streaming.http.sse import sse_response


class StreamRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str
    agent_name: str | None = Field(default=None, max_length=100)
    conversation_id: str | None = Field(default=None, max_length=64)


def validate_query(query: str) -> str:
    if not query.strip():
        raise ApiError(400, "empty_query", "The query must not be empty.")
    limit = settings.VALUECELL_MAX_QUERY_BYTES
    if len(query.encode("utf-8")) > limit:
        raise ApiError(413, "query_too_large", f"The query is larger than {limit} bytes.")
    return query


@api_view("GET")
async def agents(request, principal):
    return JsonResponse({"agents": list_agents()})


@api_view("POST")
async def agents_stream(request, principal):
    body = parse_body(request, StreamRequest)
    query = validate_query(body.query)
    principal = await ensure_session(request, principal)
    joined: list = []

    async def join(conversation_id: str) -> None:
        # Before the run can publish anything: no store read needed to start.
        joined.append(await subscribe_ahead(conversation_id))

    submission = await orchestrator.submit(principal, query, body.agent_name, body.conversation_id, before_start=join)
    subscription = joined[0] if joined else None
    return await sse_response(submission.conversation_id, submission.after_seq, running=True, subscription=subscription)
