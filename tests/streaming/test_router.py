"""The router assigns item ids per paragraph, reasoning block, tool call and component."""

import json

import pytest

from streaming.factory import ResponseFactory, TaskContext
from streaming.responses import notify, streaming, wrap_tool_result
from streaming.router import ResponseRouter


@pytest.fixture
def router():
    return ResponseRouter(ResponseFactory("conv-1"), TaskContext("conv-1", "th-1", "task-1", "demo"))


def route_all(router, responses):
    drafts = [d for r in responses for d in router.route(r)] + router.close()
    return [(d.event.value, d.data.get("item_id")) for d in drafts], drafts


def test_chunks_of_one_paragraph_share_an_item_until_a_boundary(router):
    pairs, _ = route_all(
        router,
        [
            streaming.message_chunk("a"),
            streaming.message_chunk("b"),
            streaming.tool_call_started("c1", "load"),
            streaming.tool_call_completed("ok", "c1", "load"),
            streaming.message_chunk("c"),
            streaming.message_chunk("d"),
        ],
    )
    names = [p[0] for p in pairs]
    assert names == [
        "message_chunk",
        "message_chunk",
        "tool_call_started",
        "tool_call_completed",
        "message_chunk",
        "message_chunk",
    ]
    assert pairs[0][1] == pairs[1][1]
    assert pairs[4][1] == pairs[5][1]
    assert pairs[1][1] != pairs[4][1]
    assert pairs[2][1] == pairs[3][1] != pairs[1][1]


def test_reasoning_block_shares_one_item_and_is_closed(router):
    pairs, _ = route_all(router, [streaming.reasoning("x"), streaming.reasoning("y"), streaming.message_chunk("z")])
    assert [p[0] for p in pairs] == [
        "reasoning_started",
        "reasoning",
        "reasoning",
        "reasoning_completed",
        "message_chunk",
    ]
    assert len({p[1] for p in pairs[:4]}) == 1
    assert pairs[4][1] != pairs[0][1]


def test_open_reasoning_is_completed_at_close(router):
    pairs, _ = route_all(router, [streaming.reasoning_started(), streaming.reasoning("x")])
    assert [p[0] for p in pairs] == ["reasoning_started", "reasoning", "reasoning_completed"]


def test_component_id_becomes_item_id_so_later_versions_replace(router):
    pairs, drafts = route_all(
        router,
        [
            streaming.component_generator({"v": 1}, "report", component_id="cmp-1"),
            streaming.component_generator({"v": 2}, "report", component_id="cmp-1"),
            streaming.component_generator("x", "profile"),
        ],
    )
    assert pairs[0][1] == pairs[1][1] == "cmp-1"
    assert pairs[2][1].startswith("item-")
    assert json.loads(drafts[1].data["payload"]["content"]) == {"v": 2}
    assert drafts[0].data["role"] == "agent"


def test_notify_message_is_its_own_item(router):
    pairs, _ = route_all(router, [streaming.message_chunk("a"), notify.message("n"), streaming.message_chunk("b")])
    assert len({p[1] for p in pairs}) == 3


def test_agent_events_carry_the_task_context(router):
    _, drafts = route_all(router, [streaming.message_chunk("a")])
    data = drafts[0].data
    assert (data["conversation_id"], data["thread_id"], data["task_id"], data["agent_name"]) == (
        "conv-1", "th-1", "task-1", "demo"
    )  # fmt: skip


def test_tool_results_are_wrapped_as_content_lists():
    assert json.loads(wrap_tool_result("plain")) == [{"content": "plain"}]
    assert json.loads(wrap_tool_result({"a": 1})) == [{"content": '{"a": 1}'}]
    already = json.dumps([{"content": "x"}])
    assert wrap_tool_result(already) == already
    assert json.loads(wrap_tool_result('["not", "content"]')) == [{"content": '["not", "content"]'}]


def test_agents_cannot_yield_system_events(router):
    from streaming.events import SystemResponseEvent
    from streaming.responses import AgentResponse

    with pytest.raises(ValueError):
        router.route(AgentResponse(event=SystemResponseEvent.DONE))


def test_drafts_say_when_their_item_is_new_so_the_store_need_not_look_for_it():
    ctx = TaskContext("conv-1", "th-1", "task-1", "demo")
    router = ResponseRouter(ResponseFactory("conv-1"), ctx)
    flags = [
        (d.event.value, d.new_item)
        for response in (
            streaming.message_chunk("a"),
            streaming.message_chunk("b"),
            streaming.reasoning("r"),
            streaming.tool_call_started("call-1", "quote"),
            streaming.tool_call_completed("1", "call-1", "quote"),
            streaming.tool_call_completed("2", "call-unknown", "quote"),
            streaming.component_generator({"v": 1}, "report", component_id="cmp-1"),
            streaming.component_generator({"v": 1}, "report"),
            notify.message("n"),
        )
        for d in router.route(response)
    ]
    assert flags == [
        ("message_chunk", True), ("message_chunk", False),
        ("reasoning_started", True), ("reasoning", False), ("reasoning_completed", False),
        ("tool_call_started", True), ("tool_call_completed", False), ("tool_call_completed", True),
        ("component_generator", False),  # an earlier run's component may be replaced in place
        ("component_generator", True), ("message", True),
    ]  # fmt: skip
    factory = ResponseFactory("conv-1")
    assert factory.thread_started("th", "q").new_item and factory.task_failed(ctx, "x").new_item
    assert not factory.task_started(ctx).new_item and not factory.done(None).new_item
