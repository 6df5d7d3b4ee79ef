"""The response factory builds every event with the right ids, roles and payloads."""

import json
import re

from streaming.encoders import encode_envelope, envelope_json, sse_frame
from streaming.events import ALL_EVENT_NAMES, Envelope
from streaming.factory import ResponseFactory, TaskContext
from streaming.responses import streaming
from streaming.router import ResponseRouter

CTX = TaskContext("conv-1", "th-1", "task-1", "demo")


def encoded(draft, seq=1) -> dict:
    return json.loads(envelope_json(Envelope(event=draft.event, data=draft.data, seq=seq)))


def test_vocabulary_is_byte_compatible():
    assert set(ALL_EVENT_NAMES) == {
        "conversation_started", "thread_started", "plan_require_user_input", "plan_failed", "system_failed", "done",
        "task_started", "task_completed", "task_failed", "task_cancelled",
        "message_chunk", "tool_call_started", "tool_call_completed", "reasoning_started", "reasoning",
        "reasoning_completed", "message", "component_generator",
    }


def test_envelope_leaves_out_none_fields():
    factory = ResponseFactory("conv-1")
    assert encoded(factory.conversation_started()) == {
        "event": "conversation_started",
        "data": {"conversation_id": "conv-1", "role": "system"},
        "seq": 1,
    }


def test_thread_started_carries_the_query_as_user_content():
    body = encoded(ResponseFactory("conv-1").thread_started("th-9", "How did AAPL do?"), seq=2)
    assert body["event"] == "thread_started"
    assert body["data"]["thread_id"] == "th-9"
    assert body["data"]["role"] == "user"
    assert body["data"]["payload"] == {"content": "How did AAPL do?"}
    assert re.fullmatch(r"item-[0-9a-f]{32}", body["data"]["item_id"])


def test_task_events_carry_task_thread_and_agent():
    factory = ResponseFactory("conv-1")
    for draft in (factory.task_started(CTX), factory.task_completed(CTX)):
        data = encoded(draft)["data"]
        assert (data["thread_id"], data["task_id"], data["agent_name"], data["role"]) == ("th-1", "task-1", "demo", "system")
    failed = encoded(factory.task_failed(CTX, "boom"))
    assert failed["event"] == "task_failed" and failed["data"]["payload"] == {"content": "boom"}
    cancelled = encoded(factory.task_cancelled(CTX, "stop"))
    assert cancelled["event"] == "task_cancelled" and cancelled["data"]["payload"] == {"content": "stop"}


def test_question_and_failures_are_system_text():
    factory = ResponseFactory("conv-1")
    question = encoded(factory.plan_require_user_input(CTX, "Which ticker?"))
    assert question["event"] == "plan_require_user_input"
    assert question["data"]["payload"] == {"content": "Which ticker?"}
    system = encoded(factory.system_failed("th-1", "db down"))
    assert (system["event"], system["data"]["role"]) == ("system_failed", "system")
    assert encoded(factory.done("th-1"))["data"] == {"conversation_id": "conv-1", "thread_id": "th-1", "role": "system"}


def test_sse_frame_is_one_data_line_then_id():
    # Was id first; data first since issue 13 (clients that record an id eagerly).
    assert sse_frame(7, '{"a":1}') == 'data: {"a":1}\nid: 7\n\n'


def eager_id_client(wire: str) -> tuple[list[int], int]:
    """What a client that records `id:` as soon as it reads the line ends with when
    the connection is cut after `wire`: (seqs dispatched, the id it resumes from)."""
    dispatched, last_id, pending = [], 0, None
    *lines, _partial = wire.split("\n")  # a line without its newline is not read yet
    for line in lines:
        if line.startswith("id: "):
            last_id = int(line[4:])
        elif line.startswith("data: "):
            pending = json.loads(line[6:])["seq"]
        elif line == "" and pending is not None:
            dispatched.append(pending)
            pending = None
    return dispatched, last_id


def test_a_cut_anywhere_but_the_last_byte_of_a_frame_loses_no_event_for_an_eager_id_client():
    wire = "".join(sse_frame(seq, json.dumps({"seq": seq, "pad": "x" * 20})) for seq in (1, 2, 3))
    losing = []
    for cut in range(len(wire) + 1):
        dispatched, resume_from = eager_id_client(wire[:cut])
        # On resume the client gets every seq after `resume_from`: a dispatched gap is lost.
        if set(range(1, resume_from + 1)) - set(dispatched):
            losing.append(cut)
    # Only a cut between an `id` line's newline and the blank line that ends its
    # frame loses that event (with `id` first it was the whole data line).
    ends = [i + 1 for i in range(len(wire)) if wire.startswith("\n\n", i)]
    assert losing == ends


def test_agent_text_with_newlines_stays_on_one_data_line():
    factory = ResponseFactory("conv-1")
    from streaming.events import StreamResponseEvent, TextPayload

    draft = factory.agent_event(CTX, StreamResponseEvent.MESSAGE_CHUNK, TextPayload(content="a\nb\r\n"), "item-1")
    frame = sse_frame(3, envelope_json(Envelope(event=draft.event, data=draft.data, seq=3)))
    assert frame.count("\n") == 3 and frame.endswith("\n\n")


def test_the_fast_envelope_encoding_is_byte_for_byte_the_models():
    factory = ResponseFactory("conv-1")
    ctx = TaskContext("conv-1", "th-1", "task-1", "demo")
    router = ResponseRouter(factory, ctx)
    metadata = {"ts": 1764099999.123456, "tiny": 1e-7, "big": 12345678901234567890, "nested": {"ok": [True, None]}}
    drafts = [
        factory.conversation_started(),
        factory.thread_started("th-1", "Grüße, 世界 — \"quoted\"\n\ttabbed"),
        *router.route(streaming.message_chunk("emoji 😀 and \\ backslash", metadata=metadata)),
        *router.route(streaming.tool_call_started("call-1", "get_price")),
        *router.route(streaming.tool_call_completed({"p": [1.5, "x"]}, "call-1", "get_price")),
        *router.route(streaming.component_generator({"rows": [1, 2.5, None]}, "report", component_id="c")),
        factory.task_failed(ctx, "boom"),
        factory.done("th-1"),
    ]
    for seq, draft in enumerate(drafts, start=1):
        envelope, text = encode_envelope(draft.event, draft.data, seq)
        assert text == envelope_json(Envelope(event=draft.event, data=draft.data, seq=seq))
        assert json.loads(text) == envelope
