"""`GET /agents` and `POST /agents/stream`: list the agents, start a run and stream it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase, JsonResponse
from pydantic import BaseModel, ConfigDict, Field

from conversations.ownership import Principal
from streaming.agents.registry import list_agents
from streaming.eventlog.subscription import Subscription, subscribe_ahead
from streaming.http.api import api_view, parse_body
from streaming.http.auth import ensure_session, stream_token_hash
from streaming.http.sse import sse_response
from streaming.runtime.inputs import validate_query
from streaming.runtime.orchestrator import orchestrator


class StreamRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str
    agent_name: str | None = Field(default=None, max_length=100)
    conversation_id: str | None = Field(default=None, max_length=64)


@api_view("GET")
async def agents(request: HttpRequest, principal: Principal) -> HttpResponseBase:
    return JsonResponse({"agents": list_agents()})


@api_view("POST")
async def agents_stream(request: HttpRequest, principal: Principal) -> HttpResponseBase:
    body = parse_body(request, StreamRequest)
    validate_query(body.query)  # before an anonymous visitor gets a session for it
    principal = await ensure_session(request, principal)
    joined: list[Subscription] = []

    async def join(conversation_id: str) -> None:
        # Before the run can publish anything: no store read needed to start.
        joined.append(await subscribe_ahead(conversation_id))

    submission = await orchestrator.submit(
        principal, body.query, body.agent_name, body.conversation_id, before_start=join
    )
    subscription = joined[0] if joined else None
    return await sse_response(
        submission.conversation_id,
        submission.after_seq,
        subscription=subscription,
        token_hash=stream_token_hash(request, principal),
    )
