"""History items fold events as a person rereads the conversation."""

from conversations.items import fold_all, fold_into


def env(seq, event, item_id=None, **data):
    d = {"conversation_id": "conv-1", **data}
    if item_id:
        d["item_id"] = item_id
    return {"event": event, "data": d, "seq": seq}


def test_chunks_fold_into_one_paragraph():
    items = fold_all(
        [
            env(1, "thread_started", "i-q", payload={"content": "hi"}, role="user"),
            env(2, "task_started"),
            env(3, "message_chunk", "i-1", payload={"content": "Hel"}, role="agent"),
            env(4, "message_chunk", "i-1", payload={"content": "lo"}, role="agent"),
            env(5, "done"),
        ]
    )
    assert [(i["item_id"], i["event"], i["payload"]) for i in items] == [
        ("i-q", "thread_started", {"content": "hi"}),
        ("i-1", "message_chunk", {"content": "Hello"}),
    ]
    assert (items[1]["first_seq"], items[1]["last_seq"]) == (3, 4)


def test_reasoning_tool_call_and_component_states():
    items = fold_all(
        [
            env(1, "reasoning_started", "r"),
            env(2, "reasoning", "r", payload={"content": "think"}),
            env(3, "reasoning_completed", "r"),
            env(4, "tool_call_started", "t", payload={"tool_call_id": "c", "tool_name": "load"}),
            env(5, "tool_call_completed", "t", payload={"tool_call_id": "c", "tool_name": "load", "tool_result": "[]"}),
            env(6, "component_generator", "cmp", payload={"content": "v1", "component_type": "report"}),
            env(7, "component_generator", "cmp", payload={"content": "v2", "component_type": "report"}),
        ]
    )
    by_id = {i["item_id"]: i for i in items}
    assert by_id["r"]["event"] == "reasoning_completed" and by_id["r"]["payload"] == {"content": "think"}
    assert by_id["t"]["event"] == "tool_call_completed" and by_id["t"]["payload"]["tool_result"] == "[]"
    assert by_id["cmp"]["payload"]["content"] == "v2" and by_id["cmp"]["first_seq"] == 6


def test_folding_in_batches_equals_folding_at_once():
    events = [env(1, "reasoning", "r", payload={"content": "a"})] + [
        env(seq, "message_chunk", "m", payload={"content": str(seq)}) for seq in range(2, 40)
    ]
    at_once = fold_all(events)
    state: dict = {}
    for start in range(0, len(events), 7):
        fold_into(state, events[start : start + 7])
    assert sorted(state.values(), key=lambda i: i["first_seq"]) == at_once
    assert at_once[1]["payload"]["content"] == "".join(str(s) for s in range(2, 40))
