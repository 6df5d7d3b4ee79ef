"""The dialects' translators, in process: every native event maps in every
dialect; AG-UI's ordering rules hold for whole runs, failures, questions and a
resume from every possible cursor (a seq, or a frame inside a stored event);
ValueCell's shapes; the SSE framing and ids; AG-UI's resume point."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from ag_ui.core import EventType, TextMessageContentEvent
from ag_ui.encoder import EventEncoder

from streaming.dialects.agui import AguiTranslator
from streaming.dialects.native import NativeTranslator
from streaming.dialects.stream import frames
from streaming.dialects.valuecell import ValueCellTranslator, history_frames
from streaming.errors import ErrorCode, ServiceError
from streaming.events import ALL_EVENT_NAMES, StreamResponseEvent, ToolCallPayload
from streaming.factory import ResponseFactory
from streaming.http.sse import parse_frame_resume_point, parse_resume_point
from tests.streaming.dialect_runs import CID, Messages, RunBuilder, full_run, verify

FIXED = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def translators():
    return {
        "native": NativeTranslator(),
        "valuecell": ValueCellTranslator(CID, clock=lambda: FIXED),
        "ag-ui": AguiTranslator(CID, "thread-1", "run-1"),
    }


def one_of_each() -> list[tuple[int, str, str]]:
    """A row for every native event name (as the factory builds them)."""
    builder = full_run()
    builder.question().failed().cancelled()
    factory = ResponseFactory(CID)
    builder.add(factory.plan_failed("th-1", "no plan"), factory.system_failed("th-1", "disk on fire"))
    rows = builder.rows
    assert {event for _, event, _ in rows} == set(ALL_EVENT_NAMES), "the sample misses an event"
    return rows


# --- the table test ------------------------------------------------------------------
@pytest.mark.parametrize("dialect", ["native", "valuecell", "ag-ui"])
def test_every_native_event_maps_in_every_dialect(dialect):
    translator = translators()[dialect]
    assert set(translator.table) == set(ALL_EVENT_NAMES)
    translator.opening()
    for seq, event, body in one_of_each():
        for part in translator.translate(seq, event, body):
            assert json.loads(translator.json(part))


def test_a_new_event_name_would_fail_the_table_test():
    # The tables are spelled out per event, not derived from ALL_EVENT_NAMES.
    assert "not_an_event" not in AguiTranslator(CID, "t").table
    assert "not_an_event" not in ValueCellTranslator(CID).table


# --- AG-UI ----------------------------------------------------------------------------
def agui_stream(rows, **kwargs) -> list:
    translator = AguiTranslator(CID, "thread-1", "run-1", **kwargs)
    events = list(translator.opening())
    for row in rows:
        events += translator.translate(*row)
        if translator.finished:
            break
    return events + translator.ending()


def test_a_whole_run_keeps_every_ordering_rule_and_maps_each_kind():
    events = verify(agui_stream(full_run().rows))
    kinds = [e.type for e in events]
    assert kinds[0] == EventType.RUN_STARTED and (events[0].thread_id, events[0].run_id) == ("thread-1", "run-1")
    assert kinds[-1] == EventType.RUN_FINISHED and events[-1].outcome.type == "success"
    messages = Messages().apply(events)
    assert messages.text == {"item-p1": "Loading prices.", "item-n1": "Heads up.", "item-p2": "AAPL rose 12%."}
    assert messages.reasoning == {"item-r": "Let me look."}
    assert messages.tool_calls == {"call-1": "load", "call-2": "load"}
    assert messages.results == {"item-t1": '[{"content": "42"}]', "item-t2": '[{"content": "42"}]'}
    assert messages.activities["item-c1"] == {"component_type": "report", "content": '{"title": "T", "data": "# T"}'}
    starts = [e for e in events if e.type == EventType.TOOL_CALL_START]
    assert {e.parent_message_id for e in starts} == {"item-p1"}  # the paragraph before them
    assert kinds.count(EventType.TEXT_MESSAGE_START) == 3  # one message per item_id


def test_a_question_ends_the_run_with_an_interrupt_and_the_answer_is_a_new_run():
    builder = RunBuilder().start("How is it doing?").question("Which ticker?")
    first = verify(agui_stream(builder.rows))
    outcome = first[-1].outcome
    assert outcome.type == "interrupt" and len(outcome.interrupts) == 1
    question = next(json.loads(b)["data"] for _, e, b in builder.rows if e == "plan_require_user_input")
    interrupt = outcome.interrupts[0]
    assert (interrupt.id, interrupt.message) == (question["item_id"], "Which ticker?")
    assert interrupt.response_schema["properties"]["answer"]["type"] == "string"
    mark = len(builder.rows)
    builder.start("AAPL", new=False, thread="th-2").paragraph("item-a", ["AAPL ", "rose."]).completed()
    answer_rows = [row for row in builder.rows if row[0] > mark]
    second = verify(agui_stream(answer_rows))
    assert second[-1].outcome.type == "success"
    assert Messages().apply(second).text == {"item-a": "AAPL rose."}


@pytest.mark.parametrize(
    ("ending", "code"), [("failed", "task_failed"), ("system_failed", "system_failed"), ("plan_failed", "plan_failed")]
)
def test_failures_end_the_run_with_run_error_and_nothing_after(ending, code):
    builder = RunBuilder().start().paragraph("item-p", ["partial "])
    if ending == "failed":
        builder.failed("the model timed out")
    else:
        factory = ResponseFactory(CID)
        draft = getattr(factory, ending)("th-1", "the model timed out")
        builder.add(draft, factory.done("th-1"))
    events = verify(agui_stream(builder.rows))
    assert events[-1].type == EventType.RUN_ERROR
    assert (events[-1].code, events[-1].message) == (code, "the model timed out")
    assert EventType.RUN_FINISHED not in [e.type for e in events]


def test_a_cancelled_task_finishes_with_the_cancelled_outcome():
    events = verify(agui_stream(RunBuilder().start().tool("c", "item-t").cancelled().rows))
    assert events[-1].outcome.type == "cancelled"


def test_open_content_is_closed_before_the_run_ends():
    # A tool call the agent never completed, then a paragraph in progress when the task ends.
    builder = RunBuilder().start()
    builder.agent(
        StreamResponseEvent.TOOL_CALL_STARTED, ToolCallPayload(tool_call_id="call-1", tool_name="load"), "item-t"
    )
    builder.paragraph("item-p", ["half"]).completed()
    events = verify(agui_stream(builder.rows))
    assert [e.type for e in events][-4:] == [
        EventType.TEXT_MESSAGE_END,
        EventType.TOOL_CALL_END,
        EventType.STEP_FINISHED,
        EventType.RUN_FINISHED,
    ]
    assert events[-3].tool_call_id == "call-1"


def parts_by_seq(rows) -> tuple[list, dict[int, list]]:
    translator = AguiTranslator(CID, "thread-1", "run-1")
    opening = translator.opening()
    return opening, {seq: translator.translate(seq, event, body) for seq, event, body in rows}


def test_a_resume_from_every_cursor_reads_a_valid_run_and_loses_nothing():
    builder = full_run()
    rows = builder.rows
    opening, by_seq = parts_by_seq(rows)
    whole = Messages().apply(opening + [p for seq in sorted(by_seq) for p in by_seq[seq]])
    for cursor in range(len(rows) + 1):
        # What a client had: every frame of the stored events up to the cursor.
        kept = Messages().apply(opening + [p for seq in sorted(by_seq) if seq <= cursor for p in by_seq[seq]])
        resumed = verify(agui_stream(rows, resume_after=cursor))
        assert resumed[0].type == EventType.RUN_STARTED
        assert kept.apply(resumed) == whole, f"resume after {cursor}"


def test_a_resume_inside_a_message_reopens_it_with_the_same_id():
    rows = full_run().rows
    cursor = next(seq for seq, event, body in rows if event == "message_chunk" and "rose" in body)
    events = verify(agui_stream(rows, resume_after=cursor))
    assert [e.type for e in events[:3]] == [EventType.RUN_STARTED, EventType.STEP_STARTED, EventType.TEXT_MESSAGE_START]
    assert events[2].message_id == "item-p2"
    assert events[3] == TextMessageContentEvent(message_id="item-p2", delta="12%.")


def test_a_resume_after_the_end_repeats_the_end_and_a_later_run_is_the_next_one():
    builder = RunBuilder().start().question("Which ticker?")
    question_done = len(builder.rows)
    events = verify(agui_stream(builder.rows, resume_after=question_done))
    assert [e.type for e in events] == [EventType.RUN_STARTED, EventType.RUN_FINISHED]
    assert events[-1].outcome.type == "interrupt"
    builder.start("AAPL", new=False, thread="th-2").paragraph("item-a", ["yes"]).completed()
    after_question = verify(agui_stream(builder.rows, resume_after=question_done))
    assert Messages().apply(after_question).text == {"item-a": "yes"}
    assert after_question[-1].outcome.type == "success"


def test_a_stream_that_breaks_ends_its_run_with_run_error():
    translator = AguiTranslator(CID, "thread-1", "run-1")
    events = translator.opening() + translator.translate(*RunBuilder().start().rows[0])
    events += translator.broken("gone")
    verify(events)
    assert (events[-1].type, events[-1].code) == (EventType.RUN_ERROR, "stream_interrupted")
    assert translator.broken("again") == [] and translator.translate(*RunBuilder().start().rows[1]) == []


def test_a_resume_from_inside_a_stored_event_reads_a_valid_run_with_exactly_the_frames_after_it():
    rows = full_run().rows
    opening, by_seq = parts_by_seq(rows)
    whole = Messages().apply(opening + [p for seq in sorted(by_seq) for p in by_seq[seq]])
    cursors = [(seq, k) for seq in sorted(by_seq) for k in range(len(by_seq[seq]) - 1)]
    assert len(cursors) > 10
    for seq, k in cursors:
        had = opening + [p for s in sorted(by_seq) if s < seq for p in by_seq[s]] + by_seq[seq][: k + 1]
        missing = by_seq[seq][k + 1 :] + [p for s in sorted(by_seq) if s > seq for p in by_seq[s]]
        resumed = verify(agui_stream(rows, resume_after=(seq, k)))
        lead = resumed[: len(resumed) - len(missing)]
        assert resumed[len(lead) :] == missing, f"resume after {seq}.{k}"
        assert lead[0].type == EventType.RUN_STARTED and all("START" in e.type for e in lead[1:])
        assert Messages().apply(had).apply(resumed) == whole, f"resume after {seq}.{k}"


def test_a_resume_between_the_frames_that_end_a_reasoning_block_reopens_only_its_span():
    rows = full_run().rows
    seq = next(seq for seq, event, _ in rows if event == "reasoning_completed")
    _, by_seq = parts_by_seq(rows)
    assert [p.type for p in by_seq[seq]] == [EventType.REASONING_MESSAGE_END, EventType.REASONING_END]
    events = verify(agui_stream(rows, resume_after=(seq, 0)))
    assert [e.type for e in events[:4]] == [
        EventType.RUN_STARTED,
        EventType.STEP_STARTED,
        EventType.REASONING_START,  # the span is open; its message was ended by frame 0
        EventType.REASONING_END,
    ]
    # An index past the event's frames reads as the whole event.
    assert agui_stream(rows, resume_after=(seq, 9)) == agui_stream(rows, resume_after=seq)


def test_sse_frames_give_agui_frames_seq_dot_index_ids_and_keep_the_sdk_encoding():
    translator = AguiTranslator(CID, "thread-1", "run-1")
    rows = full_run().rows
    translator.opening()
    seq, event, body = next(r for r in rows if r[1] == "message_chunk" and "Loading" in r[2])
    for row in rows[: seq - 1]:
        translator.translate(*row)
    parts = translator.translate(seq, event, body)
    blocks = frames(translator, parts, seq).split("\n\n")[:-1]
    assert len(blocks) == len(parts) > 1
    ids = [next(line for line in block.split("\n") if line.startswith("id: ")) for block in blocks]
    assert ids == [*(f"id: {seq}.{k}" for k in range(len(parts) - 1)), f"id: {seq}"]
    for block, part in zip(blocks, parts):
        data_line = next(line for line in block.split("\n") if line.startswith("data: "))
        assert data_line + "\n\n" == EventEncoder().encode(part)
    # A resume's lead (RUN_STARTED, the re-opens) has no id; the frames after the cursor keep theirs.
    resuming = AguiTranslator(CID, "thread-1", "run-1", resume_after=(seq, 0))
    assert [p for row in rows[: seq - 1] for p in resuming.translate(*row)] == []
    resumed = resuming.translate(seq, event, body)
    lead = len(resumed) - len(parts) + 1
    assert resumed[0].type == EventType.RUN_STARTED and resumed[lead:] == parts[1:]
    blocks = frames(resuming, resumed, seq).split("\n\n")[:-1]
    assert [b.split("\n")[-1] if "id: " in b else None for b in blocks] == [None] * lead + ids[1:]


def test_other_dialects_put_the_seq_on_the_last_frame_only():
    translator = ValueCellTranslator(CID)
    text = frames(translator, [{"event": "a", "data": {}}, {"event": "b", "data": {}}], 7)
    assert text == 'data: {"event":"a","data":{}}\n\ndata: {"event":"b","data":{}}\nid: 7\n\n'


@pytest.mark.parametrize(
    ("sent", "point"), [(None, (0, None)), ("42", (42, None)), ("42.0", (42, 0)), (" 42.13 ", (42, 13))]
)
def test_an_agui_resume_point_is_a_seq_or_a_seq_dot_index(rf, sent, point):
    by_header = rf.get("/", headers={} if sent is None else {"Last-Event-ID": sent})
    assert parse_frame_resume_point(by_header) == point
    by_query = rf.get("/", {} if sent is None else {"after": sent})
    assert parse_frame_resume_point(by_query) == point


@pytest.mark.parametrize("sent", ["x", "42.", ".1", "42.1.2", "-1", "42.-1", "42.12345", "9" * 19, "٤٢", "42,1", "1e3"])
def test_a_malformed_agui_resume_point_is_refused(rf, sent):
    with pytest.raises(ServiceError) as refused:
        parse_frame_resume_point(rf.get("/", headers={"Last-Event-ID": sent}))
    assert refused.value.code == ErrorCode.INVALID_RESUME_POINT
    with pytest.raises(ServiceError):  # the native resume point stays a plain seq
        parse_resume_point(rf.get("/", headers={"Last-Event-ID": "42.1"}))


# --- ValueCell ----------------------------------------------------------------------------
def test_valuecell_frames_are_event_and_data_and_a_report_gets_its_create_time():
    translator = ValueCellTranslator(CID, clock=lambda: FIXED)
    out = {}
    for seq, event, body in full_run().rows:
        (frame,) = translator.translate(seq, event, body)
        assert set(frame) == {"event", "data"} and frame["event"] == event
        assert frame["data"]["conversation_id"] == CID
        out[event] = frame
    report = json.loads(out["component_generator"]["data"]["payload"]["content"])
    assert report == {"title": "T", "data": "# T", "create_time": "2025-06-01 12:00:00"}
    tool = out["tool_call_completed"]["data"]["payload"]
    assert json.loads(tool["tool_result"]) == [{"content": "42"}]


def test_valuecell_keeps_a_reports_own_create_time_and_leaves_other_components_alone():
    content = '{"title": "T", "data": "x", "create_time": "2020-01-01 00:00:00"}'
    rows = (
        RunBuilder().component("item-1", "report", content).component("item-2", "filtered_line_chart", '{"a": 1}').rows
    )
    translator = ValueCellTranslator(CID, clock=lambda: FIXED)
    payloads = [translator.translate(*row)[0]["data"]["payload"] for row in rows]
    assert json.loads(payloads[0]["content"])["create_time"] == "2020-01-01 00:00:00"
    assert payloads[1]["content"] == '{"a": 1}'


def test_valuecell_history_names_reasoning_and_finished_tool_calls_as_its_reducer_expects():
    items = [
        {
            "item_id": "i1",
            "event": "thread_started",
            "role": "user",
            "thread_id": "th",
            "task_id": "",
            "agent_name": "",
            "payload": {"content": "hi"},
            "metadata": None,
            "updated_at": FIXED.isoformat(),
        },
        {
            "item_id": "i2",
            "event": "reasoning_completed",
            "role": "agent",
            "thread_id": "th",
            "task_id": "t",
            "agent_name": "demo",
            "payload": {"content": "thinking"},
            "metadata": None,
            "updated_at": FIXED.isoformat(),
        },
        {
            "item_id": "i3",
            "event": "tool_call_completed",
            "role": "agent",
            "thread_id": "th",
            "task_id": "t",
            "agent_name": "demo",
            "payload": {"tool_call_id": "c", "tool_name": "n", "tool_result": "[]"},
            "metadata": None,
            "updated_at": FIXED.isoformat(),
        },
        {
            "item_id": "i4",
            "event": "component_generator",
            "role": "agent",
            "thread_id": "th",
            "task_id": "t",
            "agent_name": "demo",
            "payload": {"component_type": "report", "content": '{"title": "R", "data": "d"}'},
            "metadata": None,
            "updated_at": FIXED.isoformat(),
        },
    ]
    frames_ = history_frames(CID, items)
    assert [f["event"] for f in frames_] == [
        "thread_started",
        "reasoning",
        "tool_call_completed",
        "component_generator",
    ]
    assert frames_[0]["data"] == {
        "conversation_id": CID,
        "thread_id": "th",
        "role": "user",
        "item_id": "i1",
        "payload": {"content": "hi"},
    }  # an empty task id is left out, as live
    assert json.loads(frames_[3]["data"]["payload"]["content"])["create_time"] == "2025-06-01 12:00:00"


def test_native_is_the_stored_json_byte_for_byte():
    translator = NativeTranslator()
    for seq, event, body in full_run().rows:
        assert [translator.json(p) for p in translator.translate(seq, event, body)] == [body]


def test_tool_calls_of_a_task_without_a_paragraph_have_no_parent_message():
    events = verify(agui_stream(RunBuilder().start().tool("call-1", "item-t1").completed().rows))
    start = next(e for e in events if e.type == EventType.TOOL_CALL_START)
    assert start.parent_message_id is None and "parentMessageId" not in EventEncoder().encode(start)


def test_valuecell_gets_a_line_chart_as_a_report_of_its_figures():
    chart = '{"title": "Daily close", "data": [["Date", "AAPL", "MSFT"], ["2025-01-02", 185.0, 375.0], ["2025-01-03", 184.07, 383.92]]}'
    (frame,) = ValueCellTranslator(CID, clock=lambda: FIXED).translate(
        *RunBuilder().component("item-c", "filtered_line_chart", chart).rows[0]
    )
    payload = frame["data"]["payload"]
    assert payload["component_type"] == "report"
    report = json.loads(payload["content"])
    assert report["title"] == "Daily close" and report["create_time"] == "2025-06-01 12:00:00"
    assert report["data"].splitlines()[:6] == [
        "| | AAPL | MSFT |",
        "|---|---:|---:|",
        "| First (2025-01-02) | 185.00 | 375.00 |",
        "| Last (2025-01-03) | 184.07 | 383.92 |",
        "| Low | 184.07 | 375.00 |",
        "| High | 185.00 | 383.92 |",
    ]
