"""The reference for `make bench`: FastAPI + sse-starlette streaming the same envelopes, unstored.

The stack this project descends from. It runs the project's own `bench` agent,
router, factory and envelope encoder (`encode_envelope`), numbers events in
memory and sends them as they come: no database, no channel layer. Dev-only (bench/requirements.txt).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse

from streaming.agents.base import AgentContext
from streaming.agents.bench import BenchAgent
from streaming.encoders import encode_envelope
from streaming.events import new_conversation_id, new_task_id, new_thread_id
from streaming.factory import EventDraft, ResponseFactory, TaskContext
from streaming.router import ResponseRouter

AGENT = BenchAgent()
app = FastAPI(title="valuecell-streaming bench reference")


class StreamRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str
    agent_name: str | None = Field(default=None, max_length=100)
    conversation_id: str | None = Field(default=None, max_length=64)


async def _drafts(query: str) -> AsyncIterator[EventDraft]:
    """The same lifecycle our runs emit around the agent's chunks."""
    conversation_id, thread_id, task_id = new_conversation_id(), new_thread_id(), new_task_id()
    factory = ResponseFactory(conversation_id)
    ctx = TaskContext(conversation_id, thread_id, task_id, AGENT.name)
    router = ResponseRouter(factory, ctx)
    yield factory.conversation_started()
    yield factory.thread_started(thread_id, query)
    yield factory.task_started(ctx)
    agent_ctx = AgentContext(
        conversation_id=conversation_id, thread_id=thread_id, task_id=task_id, agent_name=AGENT.name
    )
    try:
        async for response in AGENT.stream(query, agent_ctx):
            for draft in router.route(response):
                yield draft
    except ValueError as exc:
        yield factory.task_failed(ctx, str(exc))
    else:
        for draft in router.close():
            yield draft
        yield factory.task_completed(ctx)
    yield factory.done(thread_id)


async def _events(query: str) -> AsyncIterator[dict[str, str]]:
    seq = 0
    async for draft in _drafts(query):
        seq += 1
        yield {"id": str(seq), "data": encode_envelope(draft.event, draft.data, seq)[1]}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/agents/stream")
async def agents_stream(body: StreamRequest):
    if (body.agent_name or AGENT.name) != AGENT.name:
        return JSONResponse({"error": {"code": "unknown_agent", "message": "Only 'bench' runs here."}}, status_code=404)
    # sep="\n": byte-for-byte the frames our SSE view sends, so the client does equal work.
    return EventSourceResponse(_events(body.query), sep="\n")
