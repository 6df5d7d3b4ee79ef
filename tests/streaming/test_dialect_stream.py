"""The dialects' one SSE loop, in process, over a scripted follower: `retry:`
first, heartbeats while idle, the stored id on the last frame, it stops
following when the dialect is done, and a broken follower or a revoked token
ends the stream in the dialect's words."""

from __future__ import annotations

import json

from ag_ui.core import Event
from pydantic import TypeAdapter

from streaming.dialects.agui import AguiTranslator
from streaming.dialects.native import NativeTranslator
from streaming.dialects.stream import idle_seconds, sse_frames
from streaming.dialects.valuecell import ValueCellTranslator
from tests.sse import SseParser
from tests.streaming.dialect_runs import CID, RunBuilder, verify

EVENT = TypeAdapter(Event)


class Follower:
    """A scripted follower: batches of rows, `None` for an idle spell, an exception to break."""

    def __init__(self, *script) -> None:
        self.script = script
        self.taken = 0
        self.closed = False

    async def batches(self):
        try:
            for step in self.script:
                self.taken += 1
                if isinstance(step, Exception):
                    raise step
                yield step
        finally:
            self.closed = True


async def stream(translator, follower: Follower) -> str:
    return "".join([chunk async for chunk in sse_frames(translator, follower.batches())])


def parsed(text: str):
    parser = SseParser()
    return parser, list(parser.feed(text))


async def test_retry_first_then_frames_and_heartbeats_only_when_idle_long_enough(settings):
    settings.VALUECELL_SSE_RETRY_MS = 1234
    settings.VALUECELL_SSE_HEARTBEAT_SECONDS = 0
    rows = RunBuilder().start().rows
    text = await stream(NativeTranslator(), Follower(rows[:1], None, rows[1:]))
    assert text.startswith("retry: 1234\n\n")
    parser, events = parsed(text)
    assert parser.comments == ["ping"]
    assert [(int(e.id), e.data) for e in events] == [(seq, body) for seq, _, body in rows]

    settings.VALUECELL_SSE_HEARTBEAT_SECONDS = 60
    parser, _ = parsed(await stream(NativeTranslator(), Follower(rows[:1], None, None, rows[1:])))
    assert parser.comments == []  # a frame was written less than a heartbeat ago


async def test_the_stored_id_goes_on_the_last_frame_of_each_stored_event():
    rows = RunBuilder().start().reasoning().completed().rows
    _, events = parsed(await stream(AguiTranslator(CID, "t", "r"), Follower(rows)))
    assert events[0].id is None and json.loads(events[0].data)["type"] == "RUN_STARTED"
    ids = [int(e.id) for e in events if e.id is not None]
    assert ids == [seq for seq, _, _ in rows]  # every stored event, once, in order
    reasoning_started = next(seq for seq, event, _ in rows if event == "reasoning_started")
    at = next(i for i, e in enumerate(events) if e.id == str(reasoning_started))
    assert [json.loads(e.data)["type"] for e in events[at - 1 : at + 1]] == [
        "REASONING_START",
        "REASONING_MESSAGE_START",
    ]
    assert events[at - 1].id is None


async def test_a_finished_dialect_stops_following():
    first = RunBuilder().start().completed().rows
    later = [(seq + 100, event, body) for seq, event, body in first]
    follower = Follower(first, later, later)
    _, events = parsed(await stream(AguiTranslator(CID, "t", "r"), follower))
    assert json.loads(events[-1].data)["type"] == "RUN_FINISHED"
    assert follower.taken == 1 and follower.closed  # nothing read after the run's end


async def test_a_broken_follower_ends_the_stream_in_the_dialects_words():
    rows = RunBuilder().start().paragraph("item-p", ["half"]).rows
    follower = Follower(rows, RuntimeError("the store is gone"))
    _, events = parsed(await stream(AguiTranslator(CID, "t", "r"), follower))
    last = json.loads(events[-1].data)
    assert (last["type"], last["code"]) == ("RUN_ERROR", "stream_interrupted") and events[-1].id is None
    assert follower.closed
    parser, _ = parsed(await stream(NativeTranslator(), Follower(rows, RuntimeError("gone"))))
    assert parser.comments and "resume it with Last-Event-ID" in parser.comments[-1]


async def test_a_resume_whose_run_already_ended_gets_its_end_again():
    rows = RunBuilder().start().question("Which ticker?").rows
    translator = AguiTranslator(CID, "t", None, resume_after=rows[-1][0])
    _, events = parsed(await stream(translator, Follower(rows)))
    frames = [json.loads(e.data) for e in events]
    assert [f["type"] for f in frames] == ["RUN_STARTED", "RUN_FINISHED"]
    assert frames[0]["runId"] == frames[1]["runId"] == "th-1"  # the native input's thread names the run
    assert frames[1]["outcome"]["type"] == "interrupt"


class RevokedAt:
    """A token watch whose token is found revoked at its `at`th check (the store's
    answer is tests/e2e/test_sse_reauth.py's business; here, what the stream does)."""

    interval = 1.0

    def __init__(self, at: int) -> None:
        self.at = at
        self.checks = 0

    async def revoked(self) -> bool:
        self.checks += 1
        return self.checks >= self.at


async def test_a_revoked_token_ends_the_stream_in_the_dialects_words_even_when_idle():
    rows = RunBuilder().start().paragraph("item-p", ["half"]).rows
    follower = Follower(rows, None, rows[-1:])  # revoked at the idle tick: the last row never goes out
    text = "".join([c async for c in sse_frames(AguiTranslator(CID, "t", "r"), follower.batches(), RevokedAt(2))])
    _, events = parsed(text)
    frames = [json.loads(e.data) for e in events]
    verify(EVENT.validate_python(f) for f in frames)  # a valid AG-UI run to its RUN_ERROR
    assert (frames[-1]["type"], frames[-1]["code"]) == ("RUN_ERROR", "invalid_token") and events[-1].id is None
    assert [int(e.id) for e in events if e.id] == [seq for seq, _, _ in rows]
    assert follower.taken == 2 and follower.closed

    follower = Follower(rows, rows)
    text = "".join([c async for c in sse_frames(ValueCellTranslator(CID), follower.batches(), RevokedAt(2))])
    _, events = parsed(text)
    assert len(events) == len(rows) + 1 and events[-1].id is None
    assert events[-1].json["event"] == "system_failed" and "revoked" in events[-1].json["data"]["payload"]["content"]

    text = "".join([c async for c in sse_frames(NativeTranslator(), Follower(rows).batches(), RevokedAt(1))])
    parser, events = parsed(text)
    assert events == [] and any("revoked" in comment for comment in parser.comments)


def test_the_followers_idle_wait_lets_the_token_be_rechecked_in_time(settings):
    settings.VALUECELL_FOLLOW_RECHECK_SECONDS = settings.VALUECELL_SSE_HEARTBEAT_SECONDS = 30
    settings.VALUECELL_SSE_REAUTH_SECONDS = 0.25
    assert idle_seconds() == 0.25
