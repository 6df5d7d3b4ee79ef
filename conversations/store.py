"""The event store: append numbered events (and their history items) in one
transaction, and read a conversation's events after a seq.

Synchronous functions by design: the event writer calls `append_events` on its
own thread with whole batches; async callers use the `a*` wrappers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction

from .items import fold_into
from .models import Event, Item


@dataclass(slots=True)
class StoredEvent:
    """A numbered event ready to store and deliver."""

    conversation_id: str
    seq: int
    event: str
    envelope: dict[str, Any]
    json: str
    created_at: datetime


ITEM_FIELDS = ("event", "role", "thread_id", "task_id", "agent_name", "payload", "metadata", "first_seq", "last_seq")


def append_events(batch: list[StoredEvent]) -> None:
    """Store a batch of events and fold them into items, atomically."""
    if not batch:
        return
    by_conversation: dict[str, list[StoredEvent]] = defaultdict(list)
    for stored in batch:
        by_conversation[stored.conversation_id].append(stored)
    now = batch[-1].created_at
    with transaction.atomic():
        Event.objects.bulk_create(
            [
                Event(
                    conversation_id=s.conversation_id,
                    seq=s.seq,
                    event=s.event,
                    thread_id=s.envelope["data"].get("thread_id", ""),
                    task_id=s.envelope["data"].get("task_id", ""),
                    item_id=s.envelope["data"].get("item_id", ""),
                    agent_name=s.envelope["data"].get("agent_name", ""),
                    body=s.json,
                    created_at=s.created_at,
                )
                for s in batch
            ],
            batch_size=500,
        )
        for conversation_id, events in by_conversation.items():
            _fold_items(conversation_id, events, now)


def _fold_items(conversation_id: str, events: list[StoredEvent], now: datetime) -> None:
    item_ids = {s.envelope["data"]["item_id"] for s in events if s.envelope["data"].get("item_id")}
    if not item_ids:
        return
    existing = {
        row.item_id: row for row in Item.objects.filter(conversation_id=conversation_id, item_id__in=item_ids)
    }
    state = {item_id: {"item_id": item_id, **{f: getattr(row, f) for f in ITEM_FIELDS}} for item_id, row in existing.items()}
    touched = fold_into(state, [s.envelope for s in events])
    created, updated = [], []
    for item_id in touched:
        values = {f: state[item_id][f] for f in ITEM_FIELDS}
        values["role"] = values["role"] or ""
        values["thread_id"] = values["thread_id"] or ""
        values["task_id"] = values["task_id"] or ""
        values["agent_name"] = values["agent_name"] or ""
        row = existing.get(item_id)
        if row is None:
            created.append(Item(conversation_id=conversation_id, item_id=item_id, created_at=now, updated_at=now, **values))
        else:
            for field, value in values.items():
                setattr(row, field, value)
            row.updated_at = now
            updated.append(row)
    if created:
        Item.objects.bulk_create(created)
    if updated:
        Item.objects.bulk_update(updated, [*ITEM_FIELDS, "updated_at"])


def events_after(conversation_id: str, after: int, limit: int = 2000) -> list[tuple[int, str, str]]:
    """(seq, event, body) of the events after `after`, in seq order."""
    return list(
        Event.objects.filter(conversation_id=conversation_id, seq__gt=after)
        .order_by("seq")
        .values_list("seq", "event", "body")[:limit]
    )


def last_seq(conversation_id: str) -> int:
    row = Event.objects.filter(conversation_id=conversation_id).order_by("-seq").values_list("seq", flat=True).first()
    return row or 0


aevents_after = sync_to_async(events_after, thread_sensitive=False)
alast_seq = sync_to_async(last_seq, thread_sensitive=False)
