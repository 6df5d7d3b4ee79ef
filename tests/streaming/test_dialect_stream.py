"""The dialects' one SSE loop, in process, over a scripted follower: `retry:`
first, heartbeats while idle, the ids (AG-UI: on every frame, `N.k` then `N`;
other dialects: the seq on the last frame), a resume from any frame's id, it stops
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
from tests.streaming.dialect_runs import CID, RunBuilder, full_run, verify

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


async def test_every_agui_frame_of_a_stored_event_has_an_id_and_the_last_one_its_seq():
    rows = RunBuilder().start().reasoning().completed().rows
    _, events = parsed(await stream(AguiTranslator(CID, "t", "r"), Follower(rows)))
    assert events[0].id is None and json.loads(events[0].data)["type"] == "RUN_STARTED"  # from no stored event
    by_seq: dict[int, list[str]] = {}
    for event in events[1:]:
        seq, _, index = event.id.partition(".")
        by_seq.setdefault(int(seq), []).append(index)
    assert list(by_seq) == [seq for seq, _, _ in rows]  # every stored event, in order
    for indexes in by_seq.values():  # N.0, N.1, …, then N
        assert indexes == [*map(str, range(len(indexes) - 1)), ""]
    reasoning_started = next(seq for seq, event, _ in rows if event == "reasoning_started")
    at = next(i for i, e in enumerate(events) if e.id == str(reasoning_started))
    assert [(e.id, json.loads(e.data)["type"]) for e in events[at - 1 : at + 1]] == [
        (f"{reasoning_started}.0", "REASONING_START"),
        (str(reasoning_started), "REASONING_MESSAGE_START"),
    ]


async def test_other_dialects_keep_the_seq_on_the_last_frame_only():
    rows = RunBuilder().start().reasoning().completed().rows
    for translator in (ValueCellTranslator(CID), NativeTranslator()):
        _, events = parsed(await stream(translator, Follower(rows)))
        assert [e.id for e in events] == [str(seq) for seq, _, _ in rows]


def wire(text: str) -> list[tuple[str | None, str]]:
    return [(e.id, e.data) for e in parsed(text)[1]]


async def test_a_resume_from_any_frames_id_sends_exactly_the_frames_after_it():
    rows = full_run().rows
    whole = wire(await stream(AguiTranslator(CID, "t", "r"), Follower(rows)))
    ids = [frame_id for frame_id, _ in whole if frame_id is not None]
    assert any("." in frame_id for frame_id in ids)
    for at, frame_id in enumerate(ids[:-1]):  # (after the last one, the run's end: tested below)
        seq, _, index = frame_id.partition(".")
        cursor = (int(seq), int(index) if index else None)
        resumed = wire(await stream(AguiTranslator(CID, "t", "r", resume_after=cursor), Follower(rows)))
        lead = [data for frame_id, data in resumed if frame_id is None]
        # RUN_STARTED and the re-opens first, without ids (the client's id stays its cursor) …
        assert resumed[: len(lead)] == [(None, data) for data in lead], frame_id
        assert json.loads(lead[0])["type"] == "RUN_STARTED"
        assert all(json.loads(data)["type"].endswith(("_START", "STEP_STARTED")) for data in lead[1:])
        # … then every frame after the cursor, byte for byte, and nothing else.
        assert resumed[len(lead) :] == [frame for frame in whole if frame[0] is not None][at + 1 :], frame_id
        verify(EVENT.validate_python(json.loads(data)) for _, data in resumed)  # a valid AG-UI run


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
    assert [int(e.id) for e in events if e.id and "." not in e.id] == [seq for seq, _, _ in rows]
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
