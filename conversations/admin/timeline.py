"""The admin timeline of one conversation: its events in seq order, one page at a
time, with a paragraph's message chunks and a reasoning block folded into one row.

Pages are fixed seq windows (`(page - 1) * size < seq <= page * size`), read
through the `(conversation, seq)` unique index, so a page costs the same in a
conversation of 100 events or of 1,000,000.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Max
from django.utils import timezone

from conversations.admin.links import change_url, short_id
from conversations.models import Event, Task
from streaming.events import CommonResponseEvent, StreamResponseEvent

PAGE_SIZE = 500  # raw events per timeline page
PREVIEW_CHARS = 160  # characters of payload shown in a row
RAW_PREVIEW_CHARS = 400  # characters of one raw event's JSON inside an expanded row (one line)

# Events folded with their neighbours of the same item id, by fold kind.
_FOLDS: dict[str, str] = {
    StreamResponseEvent.MESSAGE_CHUNK.value: StreamResponseEvent.MESSAGE_CHUNK.value,
    StreamResponseEvent.REASONING_STARTED.value: StreamResponseEvent.REASONING.value,
    StreamResponseEvent.REASONING.value: StreamResponseEvent.REASONING.value,
    StreamResponseEvent.REASONING_COMPLETED.value: StreamResponseEvent.REASONING.value,
}

# Events whose payload content is a delta of the folded row's text.
_DELTAS = {StreamResponseEvent.MESSAGE_CHUNK.value, StreamResponseEvent.REASONING.value}


def time_label(moment: datetime) -> str:
    """`HH:MM:SS.mmm` in the current time zone: chunks are milliseconds apart."""
    return timezone.localtime(moment).strftime("%H:%M:%S.%f")[:-3]


def shorten(text: str, limit: int = PREVIEW_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tool_result_text(result: str) -> str:
    """A tool result is the JSON string `[{"content": ...}]`; show its contents."""
    try:
        parts = json.loads(result)
    except ValueError:
        return result
    if isinstance(parts, list) and all(isinstance(p, dict) for p in parts):
        return " ".join(str(p.get("content", "")) for p in parts)
    return result


def payload_preview(event: str, data: dict[str, Any]) -> str:
    """A one-line summary of an envelope's payload (not shortened)."""
    payload = data.get("payload") or {}
    if "tool_name" in payload:
        text = f"{payload['tool_name']} [{payload.get('tool_call_id', '')}]"
        if payload.get("tool_result") is not None:
            text += " → " + _tool_result_text(str(payload["tool_result"]))
        return text
    if event == CommonResponseEvent.COMPONENT_GENERATOR.value:
        return f"{payload.get('component_type', '?')}: {payload.get('content', '')}"
    if "content" in payload:
        return str(payload["content"])
    return str(data.get("role") or "")


@dataclass(slots=True)
class RawEvent:
    pk: int
    seq: int
    event: str
    created_at: datetime
    body: str
    delta: str | None = None  # the text a chunk or reasoning delta added

    @property
    def body_preview(self) -> str:
        return shorten(self.body, RAW_PREVIEW_CHARS)

    @property
    def delta_label(self) -> str:
        """The delta quoted, so its spaces and newlines show."""
        return "" if self.delta is None else json.dumps(self.delta, ensure_ascii=False)

    @property
    def url(self) -> str:
        return change_url(Event, self.pk)

    @property
    def time_label(self) -> str:
        return time_label(self.created_at)


@dataclass(slots=True)
class TimelineRow:
    """One line of the timeline: a single event, or a folded run of them."""

    event: str
    seq: int
    last_seq: int
    created_at: datetime
    task_id: str
    agent_name: str
    item_id: str
    pk: int
    parts: list[str] = field(default_factory=list)
    raw: list[RawEvent] = field(default_factory=list)

    @property
    def folded(self) -> bool:
        return len(self.raw) > 1

    @property
    def count(self) -> int:
        return len(self.raw)

    @property
    def preview(self) -> str:
        return shorten("".join(self.parts))

    @property
    def url(self) -> str:
        return change_url(Event, self.pk)

    @property
    def task_url(self) -> str:
        return change_url(Task, self.task_id) if self.task_id else ""

    @property
    def task_label(self) -> str:
        return short_id(self.task_id)

    @property
    def time_label(self) -> str:
        return time_label(self.created_at)

    @property
    def end_time_label(self) -> str:
        return time_label(self.raw[-1].created_at)


def build_rows(events: list[tuple[int, int, str, str, str, str, datetime, str]]) -> list[TimelineRow]:
    """Rows from `(pk, seq, event, task_id, item_id, agent_name, created_at, body)` in seq order."""
    rows: list[TimelineRow] = []
    open_fold: tuple[str, str] | None = None  # (fold kind, item id) of the last row, if foldable
    for pk, seq, name, task_id, item_id, agent_name, created_at, body in events:
        try:
            data = json.loads(body).get("data") or {}
        except (ValueError, AttributeError):
            data = {}
        delta = str((data.get("payload") or {}).get("content", "")) if name in _DELTAS else None
        raw = RawEvent(pk=pk, seq=seq, event=name, created_at=created_at, body=body, delta=delta)
        kind = _FOLDS.get(name)
        key = (kind, item_id) if kind and item_id else None
        if key is not None and key == open_fold:
            row = rows[-1]
            row.last_seq = seq
            row.raw.append(raw)
            if delta is not None:
                row.parts.append(delta)
            continue
        row = TimelineRow(
            event=kind or name,
            seq=seq,
            last_seq=seq,
            created_at=created_at,
            task_id=task_id,
            agent_name=agent_name,
            item_id=item_id,
            pk=pk,
            raw=[raw],
        )
        if kind is None:
            row.parts.append(payload_preview(name, data))
        elif delta is not None:
            row.parts.append(delta)
        rows.append(row)
        open_fold = key
    return rows


@dataclass(slots=True)
class TimelinePage:
    number: int
    pages: int
    first_seq: int
    last_seq: int  # of the whole conversation
    size: int
    rows: list[TimelineRow]
    event_count: int  # raw events on this page

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    @property
    def previous_number(self) -> int:
        return self.number - 1

    @property
    def next_number(self) -> int:
        return self.number + 1

    @property
    def up_to_seq(self) -> int:
        return min(self.number * self.size, self.last_seq)


def parse_page(raw: str | None) -> int:
    """A page number from the query string; anything unusable is page 1."""
    try:
        return max(1, int(raw or 1))
    except ValueError:
        return 1


def timeline_page(conversation_id: str, page: int = 1, size: int | None = None) -> TimelinePage:
    """One page of the timeline (two indexed queries); a page past the end is the last."""
    size = size or PAGE_SIZE
    last_seq = Event.objects.filter(conversation_id=conversation_id).aggregate(m=Max("seq"))["m"] or 0
    pages = max(1, math.ceil(last_seq / size))
    number = min(max(1, page), pages)
    after, up_to = (number - 1) * size, number * size
    events = list(
        Event.objects.filter(conversation_id=conversation_id, seq__gt=after, seq__lte=up_to)
        .order_by("seq")
        .values_list("pk", "seq", "event", "task_id", "item_id", "agent_name", "created_at", "body")
    )
    return TimelinePage(
        number=number,
        pages=pages,
        first_seq=after + 1,
        last_seq=last_seq,
        size=size,
        rows=build_rows(events),
        event_count=len(events),
    )
