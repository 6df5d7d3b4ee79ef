"""Folding events into history items, as a person rereads a conversation.

Pure functions over envelope dicts, shared by the event writer (which stores
items) and the tests. One item per `item_id`:
- message chunks of one paragraph are concatenated (`event` stays `message_chunk`);
- a reasoning block is one item whose `event` is `reasoning` while it streams and
  `reasoning_completed` once done;
- a tool call is one item, `tool_call_started` then `tool_call_completed` with its result;
- a component with a known `item_id` replaces the earlier one in place;
- every other event with an `item_id` (the user's query, a question, a failure, a
  notify message) is an item of its own.
"""

from __future__ import annotations

from typing import Any

from streaming.events import CommonResponseEvent, StreamResponseEvent

_APPENDING = {StreamResponseEvent.MESSAGE_CHUNK.value, StreamResponseEvent.REASONING.value}


def _new_item(envelope: dict[str, Any], event: str) -> dict[str, Any]:
    data = envelope["data"]
    return {
        "item_id": data["item_id"],
        "event": event,
        "role": data.get("role", ""),
        "thread_id": data.get("thread_id", ""),
        "task_id": data.get("task_id", ""),
        "agent_name": data.get("agent_name", ""),
        "payload": dict(data.get("payload") or {}),
        "metadata": data.get("metadata"),
        "first_seq": envelope["seq"],
        "last_seq": envelope["seq"],
    }


def fold(item: dict[str, Any] | None, envelope: dict[str, Any]) -> dict[str, Any] | None:
    """Apply one envelope to the item it belongs to (or None); return the new item."""
    data = envelope["data"]
    if not data.get("item_id"):
        return None
    event = envelope["event"]
    seq = envelope["seq"]
    payload = data.get("payload") or {}

    if item is None:
        if event == StreamResponseEvent.REASONING_STARTED.value or event == StreamResponseEvent.REASONING.value:
            item = _new_item(envelope, StreamResponseEvent.REASONING.value)
            item["payload"] = {"content": payload.get("content", "")}
            return item
        if event == StreamResponseEvent.REASONING_COMPLETED.value:
            item = _new_item(envelope, event)
            item["payload"] = {"content": ""}
            return item
        return _new_item(envelope, event)

    item = {**item, "payload": dict(item["payload"]), "last_seq": seq}
    if event in _APPENDING:
        item["payload"]["content"] = item["payload"].get("content", "") + payload.get("content", "")
    elif event == StreamResponseEvent.REASONING_COMPLETED.value:
        item["event"] = event
    elif event == StreamResponseEvent.TOOL_CALL_COMPLETED.value:
        item["event"] = event
        item["payload"].update(payload)
    elif event == CommonResponseEvent.COMPONENT_GENERATOR.value:
        item["payload"] = dict(payload)
        item["metadata"] = data.get("metadata")
        item["task_id"] = data.get("task_id", item["task_id"])
        item["thread_id"] = data.get("thread_id", item["thread_id"])
    else:
        item["event"] = event
        item["payload"] = dict(payload)
    return item


def fold_into(items: dict[str, dict[str, Any]], envelopes: list[dict[str, Any]]) -> set[str]:
    """Fold envelopes into `items` (by item_id) in place; return the item ids touched.

    Consecutive chunks of one item are joined once, not concatenated one by one,
    so a long paragraph costs linear time.
    """
    touched: set[str] = set()
    parts: dict[str, list[str]] = {}

    def materialize(item_id: str) -> None:
        pending = parts.pop(item_id, None)
        if pending:
            payload = items[item_id]["payload"]
            payload["content"] = payload.get("content", "") + "".join(pending)

    for envelope in envelopes:
        item_id = envelope["data"].get("item_id")
        if not item_id:
            continue
        current = items.get(item_id)
        if current is not None and envelope["event"] in _APPENDING:
            parts.setdefault(item_id, []).append((envelope["data"].get("payload") or {}).get("content", ""))
            current["last_seq"] = envelope["seq"]
        else:
            materialize(item_id)
            folded = fold(current, envelope)
            if folded is None:
                continue
            items[item_id] = folded
        touched.add(item_id)
    for item_id in list(parts):
        materialize(item_id)
    return touched


def fold_all(envelopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold a whole event sequence into items in display order (first seq)."""
    items: dict[str, dict[str, Any]] = {}
    fold_into(items, envelopes)
    return sorted(items.values(), key=lambda i: i["first_seq"])
