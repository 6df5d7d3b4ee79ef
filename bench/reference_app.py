"""The reference for `make bench`: the seed's stack as a user would write it, storing nothing.

FastAPI + pydantic envelopes + sse-starlette: each request starts a detached
producer task (the agent, wrapped in the run's lifecycle events) feeding an
`asyncio.Queue`, and the response sends what the queue holds. It imports none of
this project's code, so making the project faster never hides in the ratio; its
envelopes and frames are byte for byte the project's for the same workload
(ids and timestamps aside; `bench/test_bench.py` checks it). Dev-only
(bench/requirements.txt).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from enum import Enum
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

app = FastAPI(title="valuecell-streaming bench reference")
QUERY = re.compile(r"^\s*k=(\d+)(?:\s+delay_ms=(\d+(?:\.\d+)?))?\s*$")
AGENT_NAME = "bench"
_producers: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks


class Role(str, Enum):
    USER = "user"
    AGENT = "agent"
    SYSTEM = "system"


class TextPayload(BaseModel):
    content: str


class EventData(BaseModel):
    conversation_id: str
    thread_id: str | None = None
    task_id: str | None = None
    agent_name: str | None = None
    payload: TextPayload | None = None
    metadata: dict[str, Any] | None = None
    role: Role | None = None
    item_id: str | None = None


class Envelope(BaseModel):
    event: str
    data: EventData
    seq: int


class StreamRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str
    agent_name: str | None = Field(default=None, max_length=100)
    conversation_id: str | None = Field(default=None, max_length=64)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


async def bench_agent(query: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """`k=N delay_ms=D`: N chunks D ms apart, each stamped with its emit time."""
    match = QUERY.match(query)
    if not match:
        raise ValueError("bench expects a query of the form 'k=N delay_ms=D'")
    delay = float(match.group(2) or 0) / 1000
    for index in range(int(match.group(1))):
        if delay:
            await asyncio.sleep(delay)
        yield f"chunk {index} ", {"ts": time.time(), "i": index}


async def produce(query: str, queue: asyncio.Queue[Envelope | None]) -> None:
    """The run: lifecycle events around the agent's chunks, numbered in memory."""
    conversation_id, thread_id, task_id = new_id("conv"), new_id("th"), new_id("task")
    seq = 0

    def put(event: str, **data: Any) -> None:
        nonlocal seq
        seq += 1
        queue.put_nowait(Envelope(event=event, data=EventData(conversation_id=conversation_id, **data), seq=seq))

    task = {"thread_id": thread_id, "task_id": task_id, "agent_name": AGENT_NAME}
    put("conversation_started", role=Role.SYSTEM)
    put(
        "thread_started",
        thread_id=thread_id,
        payload=TextPayload(content=query),
        role=Role.USER,
        item_id=new_id("item"),
    )
    put("task_started", **task, role=Role.SYSTEM)
    item_id = new_id("item")
    try:
        async for content, metadata in bench_agent(query):
            put("message_chunk", **task, payload=TextPayload(content=content), metadata=metadata, role=Role.AGENT,
                item_id=item_id)  # fmt: skip
    except ValueError as exc:
        put("task_failed", **task, payload=TextPayload(content=str(exc)), role=Role.SYSTEM, item_id=new_id("item"))
    else:
        put("task_completed", **task, role=Role.SYSTEM)
    put("done", thread_id=thread_id, role=Role.SYSTEM)
    queue.put_nowait(None)


async def events(queue: asyncio.Queue[Envelope | None]) -> AsyncIterator[ServerSentEvent]:
    while (envelope := await queue.get()) is not None:
        # sep="\n": the frames `id: <seq>\ndata: <json>\n\n`, as the project sends them.
        yield ServerSentEvent(data=envelope.model_dump_json(exclude_none=True), id=str(envelope.seq), sep="\n")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/agents/stream")
async def agents_stream(body: StreamRequest):
    if (body.agent_name or AGENT_NAME) != AGENT_NAME:
        return JSONResponse({"error": {"code": "unknown_agent", "message": "Only 'bench' runs here."}}, status_code=404)
    queue: asyncio.Queue[Envelope | None] = asyncio.Queue()
    # Detached: the run goes on whatever happens to the client.
    producer = asyncio.create_task(produce(body.query, queue))
    _producers.add(producer)
    producer.add_done_callback(_producers.discard)
    return EventSourceResponse(events(queue), sep="\n")
