"""The measurements of `make bench`, each against one running server (or two workers).

The issue's four scenarios: (1) one fast stream (events/s, first event); (2)
streams one after another (first event); (3) many paced streams at once
(events/s over all of them, emit -> receive latency from each chunk's
`metadata.ts`); (4) many slow streams held open at once (first event). Also
(a') a stream followed live from another worker and (d) the replay of a stored
conversation via resume. Every stream is checked for completeness.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from .servers import Target
from .sse_client import HttpError, Response, stream

CHUNK_PREFIX = b'{"event":"message_chunk"'
DONE_PREFIX = b'{"event":"done"'
LIFECYCLE_EVENTS = 5  # conversation_started, thread_started, task_started, task_completed, done


class Incomplete(AssertionError):
    """A stream lost, duplicated or reordered events: its figures are void."""


@dataclass
class Collector:
    """Counts the events of one stream; optionally keeps their data or latencies."""

    after: int = 0
    keep_data: bool = False
    keep_latency: bool = False
    events: int = 0
    chunks: int = 0
    last_seq: int = 0
    in_order: bool = True
    done: bool = False
    first_at: float | None = None
    last_at: float | None = None
    data: list[bytes] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.last_seq = self.after

    def __call__(self, frames: list[bytes], perf: float, wall: float) -> None:
        seen = False
        for frame in frames:
            parsed = _event(frame)
            if parsed is None:
                continue  # retry: / ping comment frames
            seq, start, end = parsed
            if seq != self.last_seq + 1:
                self.in_order = False
            self.last_seq = seq
            self.events += 1
            seen = True
            if frame.startswith(CHUNK_PREFIX, start):
                self.chunks += 1
                if self.keep_latency:
                    self.latencies.append(wall - _emit_time(frame, start))
            elif frame.startswith(DONE_PREFIX, start):
                self.done = True
            if self.keep_data:
                self.data.append(frame[start:end])
        if seen:
            if self.first_at is None:
                self.first_at = perf
            self.last_at = perf

    def check(self, what: str, events: int, chunks: int | None = None) -> None:
        problems = []
        if self.events != events:
            problems.append(f"{self.events} events instead of {events}")
        if chunks is not None and self.chunks != chunks:
            problems.append(f"{self.chunks} chunks instead of {chunks}")
        if not self.in_order:
            problems.append("seq gaps or duplicates")
        if not self.done:
            problems.append("no final `done`")
        if problems:
            raise Incomplete(f"{what}: {', '.join(problems)}")


def _event(frame: bytes) -> tuple[int, int, int] | None:
    """(seq, start, end) of an event frame's data, or None for a comment or `retry:` frame.

    Ours write `data:` before `id:` (a client that records the id early loses
    nothing on a cut); sse-starlette writes `id:` first. Both are read here.
    """
    if frame.startswith(b"id: "):
        newline = frame.index(b"\n")
        return int(frame[4:newline]), newline + 7, len(frame)  # data: past "\ndata: "
    if frame.startswith(b"data: "):
        at = frame.rfind(b"\nid: ")
        if at < 0:
            return None
        return int(frame[at + 5 :]), 6, at
    return None


def _emit_time(frame: bytes, start: int) -> float:
    """`metadata.ts` of a chunk frame, without parsing all of its JSON."""
    at = frame.find(b'"ts":', start)
    if at < 0:
        return json.loads(frame[start:])["data"]["metadata"]["ts"]
    end = at + 5
    while frame[end] not in b",}":
        end += 1
    return float(frame[at + 5 : end])


def _conversation_id(collector: Collector) -> str:
    return json.loads(collector.data[0])["data"]["conversation_id"]


async def run_bench(target: Target, chunks: int, delay_ms: float, sink: Collector) -> Response:
    """POST one `bench` run and read it to the end."""
    body = {"query": f"k={chunks} delay_ms={delay_ms:g}", "agent_name": "bench"}
    path = "/agents/stream"
    return await stream(target.host, target.port, "POST", path, sink, headers=target.headers, json_body=body)


async def resume(target: Target, conversation_id: str, after: int, sink: Collector) -> float:
    headers = {**target.headers, "Last-Event-ID": str(after)}
    path = f"/conversations/{conversation_id}/stream"
    response = await stream(target.host, target.port, "GET", path, sink, headers=headers)
    return response.sent_at


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest rank: the smallest sample with at least p% of the (sorted) samples at or below it."""
    rank = math.ceil(p / 100 * len(samples))
    return samples[min(len(samples), max(rank, 1)) - 1]


# --- (1) one fast stream --------------------------------------------------------


@dataclass
class Throughput:
    events: int
    seconds: float
    first_event_s: float
    conversation_id: str | None = None

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


async def throughput(target: Target, chunks: int, keep_data: bool = False) -> tuple[Throughput, Collector]:
    """One fast stream; with `keep_data` the returned collector keeps every event's JSON."""
    sink = Collector(keep_data=True)  # the first event names the conversation
    response = await run_bench(target, chunks, 0, sink)
    sink.check(f"{target.name} k={chunks}", chunks + LIFECYCLE_EVENTS, chunks)
    assert sink.first_at is not None and sink.last_at is not None
    sent = response.sent_at
    result = Throughput(sink.events, sink.last_at - sent, sink.first_at - sent, _conversation_id(sink))
    if not keep_data:
        sink.data.clear()
    return result, sink


async def verify_stored(target: Target, live: Collector) -> Throughput:
    """Every event delivered live is stored, byte for byte: replay from 0 and compare."""
    conversation_id = _conversation_id(live)
    replay = Collector(keep_data=True)
    sent = await resume(target, conversation_id, 0, replay)
    replay.check(f"replay of {conversation_id}", live.events)
    if replay.data != live.data:
        differing = sum(1 for a, b in zip(replay.data, live.data) if a != b)
        raise Incomplete(f"replay of {conversation_id}: {differing} stored events differ from the live ones")
    assert replay.first_at is not None and replay.last_at is not None
    return Throughput(replay.events, replay.last_at - sent, replay.first_at - sent, conversation_id)


# --- (2) streams one after another ----------------------------------------------


@dataclass
class Sequential:
    """Short streams, each started when the previous one ended."""

    first_events: list[float]  # seconds from connecting to the first event, sorted

    def first_event(self, p: float) -> float:
        return percentile(self.first_events, p)


async def one_after_another(target: Target, streams: int, chunks: int) -> Sequential:
    first_events = []
    for index in range(streams):
        sink = Collector()
        response = await run_bench(target, chunks, 0, sink)
        sink.check(f"{target.name} stream {index + 1} of {streams}", chunks + LIFECYCLE_EVENTS, chunks)
        assert sink.first_at is not None
        first_events.append(sink.first_at - response.started_at)
    return Sequential(sorted(first_events))


# --- (a') -----------------------------------------------------------------------

FOLLOWER_TIMEOUT_S = 120.0


@dataclass
class Crossing:
    """One stream started on one worker and followed live from another."""

    origin: Throughput  # read on the worker that runs it
    follower: Throughput  # read on the other: seconds from the run's request; first event from its own request
    follower_opened_s: float  # the follower's request, after the run's
    lag_s: float  # the follower's last event after the origin's

    @property
    def events_per_s(self) -> float:
        return self.follower.events_per_s


async def follow_across(origin: Target, follower: Target, chunks: int) -> Crossing:
    """Start `k=chunks delay_ms=0` on `origin`; as soon as its first event names the
    conversation, follow it on `follower` with `?after=0`; both must match byte for byte."""
    here, there = Collector(keep_data=True), Collector(keep_data=True)
    named = asyncio.Event()

    def on_origin(frames: list[bytes], perf: float, wall: float) -> None:
        here(frames, perf, wall)
        if here.data:
            named.set()

    async def read_there() -> float:
        await named.wait()
        path = f"/conversations/{_conversation_id(here)}/stream?after=0"
        response = await stream(follower.host, follower.port, "GET", path, there, headers=follower.headers)
        return response.sent_at

    body = {"query": f"k={chunks} delay_ms=0", "agent_name": "bench"}
    reading = asyncio.create_task(read_there())
    try:
        started = await stream(
            origin.host, origin.port, "POST", "/agents/stream", on_origin, headers=origin.headers, json_body=body
        )
        events = chunks + LIFECYCLE_EVENTS
        here.check(f"{origin.name} k={chunks}", events, chunks)
        try:
            async with asyncio.timeout(FOLLOWER_TIMEOUT_S):
                opened = await reading
        except TimeoutError:
            raise Incomplete(
                f"{follower.name} following k={chunks}: no `done` {FOLLOWER_TIMEOUT_S:g} s after the run ended "
                f"({there.events} of {events} events)"
            ) from None
    finally:
        reading.cancel()
    there.check(f"{follower.name} following k={chunks}", events, chunks)
    if there.data != here.data:
        differing = sum(1 for a, b in zip(there.data, here.data) if a != b)
        raise Incomplete(f"{follower.name} following k={chunks}: {differing} events differ from {origin.name}'s")
    assert here.first_at and here.last_at and there.first_at and there.last_at
    sent, conversation_id = started.sent_at, _conversation_id(here)
    return Crossing(
        origin=Throughput(here.events, here.last_at - sent, here.first_at - sent, conversation_id),
        follower=Throughput(there.events, there.last_at - sent, there.first_at - opened, conversation_id),
        follower_opened_s=opened - sent,
        lag_s=there.last_at - here.last_at,
    )


# --- (3) and (4): many streams at once --------------------------------------------


STREAMS_DEADLINE_S = 120.0


@dataclass
class Latency:
    """Streams started together: emit -> receive latency of their chunks, their first
    events, and how many events all of them delivered in how long."""

    streams: int
    samples: list[float]  # message_chunk emit -> receive, seconds, sorted
    seconds: float  # from the first connection attempt to the last event of any stream
    events: int = 0
    first_events: list[float] = field(default_factory=list)  # seconds from connecting, sorted

    def percentile(self, p: float) -> float:
        return percentile(self.samples, p)

    def first_event(self, p: float) -> float:
        return percentile(self.first_events, p)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


async def latency(target: Target, streams: int, chunks: int, delay_ms: float) -> Latency:
    return await latency_spread([target], streams, chunks, delay_ms)


async def latency_spread(targets: Sequence[Target], streams: int, chunks: int, delay_ms: float) -> Latency:
    """Stream i is started and read on `targets[i % len(targets)]`, all at once."""
    sinks = [Collector(keep_latency=True) for _ in range(streams)]
    on = [targets[index % len(targets)] for index in range(streams)]
    loop = asyncio.get_running_loop()
    started = loop.time()
    # Every stream runs to its end (or the deadline) even when one fails, so none
    # outlives the measurement; a stream that never ends fails it instead of hanging it.
    deadline = max(STREAMS_DEADLINE_S, 10 * chunks * delay_ms / 1000)
    tasks = [asyncio.ensure_future(run_bench(target, chunks, delay_ms, sink)) for target, sink in zip(on, sinks)]
    _, hung = await asyncio.wait(tasks, timeout=deadline)
    for task in hung:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    failed = [task.exception() for task in tasks if not task.cancelled() and task.exception() is not None]
    more = f"; {len(failed)} failed, the first: {failed[0]}" if failed else ""
    if hung:
        raise Incomplete(f"{len(hung)} of {streams} streams had not ended {deadline:g} s after they started{more}")
    if failed:
        raise HttpError(f"{len(failed)} of {streams} streams failed, the first: {failed[0]}") from failed[0]
    for index, (target, sink) in enumerate(zip(on, sinks)):
        sink.check(f"{target.name} stream {index} of {streams}", chunks + LIFECYCLE_EVENTS, chunks)
    responses = [task.result() for task in tasks]
    first = min(response.started_at for response in responses)
    last = max(sink.last_at or 0.0 for sink in sinks)
    return Latency(
        streams,
        sorted(value for sink in sinks for value in sink.latencies),
        last - first if last > first else loop.time() - started,
        events=sum(sink.events for sink in sinks),
        first_events=sorted((sink.first_at or 0.0) - response.started_at for sink, response in zip(sinks, responses)),
    )


# --- (d) ------------------------------------------------------------------------


async def stored_conversation(target: Target, events: int) -> str:
    """A finished conversation of exactly `events` stored events."""
    sink = Collector(keep_data=True)
    await run_bench(target, events - LIFECYCLE_EVENTS, 0, sink)
    sink.check(f"{target.name} conversation of {events} events", events)
    return _conversation_id(sink)


async def replay(target: Target, conversation_id: str, events: int) -> Throughput:
    sink = Collector()
    sent = await resume(target, conversation_id, 0, sink)
    sink.check(f"replay of {conversation_id}", events)
    assert sink.first_at is not None and sink.last_at is not None
    return Throughput(sink.events, sink.last_at - sent, sink.first_at - sent, conversation_id)
