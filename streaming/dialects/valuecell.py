"""The ValueCell dialect: what ValueCell's own web frontend reads, live and from history.

Its event names are ours (this project's vocabulary descends from ValueCell),
so the translation is about shapes: a frame is `{"event", "data"}` without
`seq`; a report's content gains the `create_time` its card shows, and a line
chart (which it cannot draw) becomes a report of its figures; history is
one `{"event", "data"}` per item, under the names its reducer rebuilds a page
from (`reasoning` for a reasoning block, `tool_call_completed` for a finished call).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_json

from streaming.events import (
    CommonResponseEvent,
    ComponentType,
    NotifyResponseEvent,
    Role,
    StreamResponseEvent,
    SystemResponseEvent,
    TaskStatusEvent,
)

Frame = dict[str, Any]

# Every native event, by name, and the ValueCell event it goes out as: the
# same name, listed one by one so that a new native event fails the table test
# until someone decides what ValueCell's frontend should get.
_SAME_NAME = (
    SystemResponseEvent.CONVERSATION_STARTED,
    SystemResponseEvent.THREAD_STARTED,
    SystemResponseEvent.PLAN_REQUIRE_USER_INPUT,
    SystemResponseEvent.PLAN_FAILED,
    SystemResponseEvent.SYSTEM_FAILED,
    SystemResponseEvent.DONE,
    TaskStatusEvent.TASK_STARTED,
    TaskStatusEvent.TASK_COMPLETED,
    TaskStatusEvent.TASK_FAILED,
    TaskStatusEvent.TASK_CANCELLED,
    StreamResponseEvent.MESSAGE_CHUNK,
    StreamResponseEvent.TOOL_CALL_STARTED,
    StreamResponseEvent.TOOL_CALL_COMPLETED,
    StreamResponseEvent.REASONING_STARTED,
    StreamResponseEvent.REASONING,
    StreamResponseEvent.REASONING_COMPLETED,
    NotifyResponseEvent.MESSAGE,
    CommonResponseEvent.COMPONENT_GENERATOR,
)
EVENT_NAMES: dict[str, str] = {member.value: member.value for member in _SAME_NAME}

# A history item is named by the event that last changed it; the frontend's
# reducer builds a reasoning block only from `reasoning` (a completed one is
# marked complete on replay anyway).
_HISTORY_NAMES = {
    StreamResponseEvent.REASONING_STARTED.value: StreamResponseEvent.REASONING.value,
    StreamResponseEvent.REASONING_COMPLETED.value: StreamResponseEvent.REASONING.value,
}
_DATA_FIELDS = ("thread_id", "task_id", "agent_name", "role", "item_id", "payload", "metadata")
CREATE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # ValueCell's report `create_time`, UTC


def with_create_time(payload: dict[str, Any], when: datetime) -> dict[str, Any]:
    """A report component's payload whose content has a `create_time` (kept if it has one)."""
    if payload.get("component_type") != ComponentType.REPORT.value:
        return payload
    try:
        content = json.loads(payload.get("content") or "")
    except ValueError:
        return payload
    if not isinstance(content, dict) or "create_time" in content:
        return payload
    content["create_time"] = when.astimezone(UTC).strftime(CREATE_TIME_FORMAT)
    return {**payload, "content": json.dumps(content, ensure_ascii=False)}


def _number(value: Any) -> str:
    return f"{value:,.2f}" if isinstance(value, int | float) else str(value)


def chart_as_report(payload: dict[str, Any]) -> dict[str, Any]:
    """A line chart as a report: ValueCell's frontend draws no charts (it would
    show the raw JSON), so it gets the chart's title and each series' first and
    last value, low and high, as a Markdown table."""
    if payload.get("component_type") != ComponentType.FILTERED_LINE_CHART.value:
        return payload
    try:
        chart = json.loads(payload.get("content") or "")
        header, *rows = chart["data"]
        series = list(header[1:])
        columns = [[row[i + 1] for row in rows if isinstance(row[i + 1], int | float)] for i in range(len(series))]
        if not rows or not all(columns):
            return payload
    except (ValueError, TypeError, KeyError, IndexError):
        return payload
    lines = [
        f"| | {' | '.join(map(str, series))} |",
        f"|---|{'---:|' * len(series)}",
        f"| First ({rows[0][0]}) | {' | '.join(_number(c[0]) for c in columns)} |",
        f"| Last ({rows[-1][0]}) | {' | '.join(_number(c[-1]) for c in columns)} |",
        f"| Low | {' | '.join(_number(min(c)) for c in columns)} |",
        f"| High | {' | '.join(_number(max(c)) for c in columns)} |",
        "",
        f"_A line chart of {len(rows)} points, summarised here._",
    ]
    report = {"title": str(chart.get("title") or "Chart"), "data": "\n".join(lines)}
    return {"component_type": ComponentType.REPORT.value, "content": json.dumps(report, ensure_ascii=False)}


def _frame(event: str, data: dict[str, Any], when: datetime) -> Frame:
    if event == CommonResponseEvent.COMPONENT_GENERATOR.value and isinstance(data.get("payload"), dict):
        data = {**data, "payload": with_create_time(chart_as_report(data["payload"]), when)}
    return {"event": event, "data": data}


class ValueCellTranslator:
    """Live events for `POST /api/v1/agents/stream` (ValueCell's client cannot resume)."""

    table = EVENT_NAMES
    finished = False
    ids_per_frame = False

    def __init__(self, conversation_id: str, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.conversation_id = conversation_id
        self.clock = clock

    def opening(self) -> list[Frame]:
        return []

    def translate(self, seq: int, event: str, body: str) -> list[Frame]:
        data = json.loads(body)["data"]
        return [_frame(EVENT_NAMES.get(event, event), data, self.clock())]

    def ending(self) -> list[Frame]:
        return []

    def broken(self, message: str, code: str | None = None) -> list[Frame]:
        # Not a stored event (a broken stream, a revoked token): the frontend shows
        # it in a toast, then the body ends.
        payload = {"content": message}
        data = {"conversation_id": self.conversation_id, "role": Role.SYSTEM.value, "payload": payload}
        return [{"event": SystemResponseEvent.SYSTEM_FAILED.value, "data": data}]

    def json(self, part: Frame) -> str:
        return to_json(part).decode()


def history_frames(conversation_id: str, items: list[dict[str, Any]]) -> list[Frame]:
    """History items (`conversations.selectors.history`) as the `[{event, data}]` ValueCell replays."""
    frames = []
    for item in items:
        event = _HISTORY_NAMES.get(item["event"], item["event"])
        # Empty ids are left out, as in the live events (the reducer keys by them).
        data = {"conversation_id": conversation_id}
        data.update((name, item[name]) for name in _DATA_FIELDS if item.get(name) not in (None, ""))
        frames.append(_frame(EVENT_NAMES.get(event, event), data, datetime.fromisoformat(item["updated_at"])))
    return frames
