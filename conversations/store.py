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
from django.db import connection, transaction

from .items import fold_into
from .models import Conversation, ConversationStatus, Event, Item


@dataclass(slots=True)
class StoredEvent:
    """A numbered event ready to store and deliver."""

    conversation_id: str
    seq: int
    event: str
    envelope: dict[str, Any]
    json: str
    created_at: datetime
    # Set the conversation's status in the same transaction (the `done` that ends
    # or pauses a run): whoever sees the event may act on the new status at once.
    then_status: str | None = None
    holder: str | None = None


ITEM_FIELDS = ("event", "role", "thread_id", "task_id", "agent_name", "payload", "metadata", "first_seq", "last_seq")
EVENT_COLUMNS = ("conversation_id", "seq", "event", "thread_id", "task_id", "item_id", "agent_name", "body", "created_at")


def append_events(batch: list[StoredEvent]) -> None:
    """Store a batch of events and fold them into items, atomically.

    The hot path of the whole system: events go in with one `executemany`
    (Django's per-object `bulk_create` machinery cost most of the writer's time),
    items with one read and one upsert for the whole batch.
    """
    if not batch:
        return
    with transaction.atomic():
        _insert_events(batch)
        _fold_items(batch, batch[-1].created_at)
        for stored in batch:
            if stored.then_status is not None:
                _set_status(stored)


def _set_status(stored: StoredEvent) -> None:
    fields: dict[str, Any] = {"status": stored.then_status, "updated_at": stored.created_at}
    if stored.then_status == ConversationStatus.IDLE:
        fields["lease_expires_at"] = None
    Conversation.objects.filter(pk=stored.conversation_id, worker=stored.holder).update(**fields)


def _insert_events(batch: list[StoredEvent]) -> None:
    quote = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        quote(Event._meta.db_table),
        ", ".join(quote(c) for c in EVENT_COLUMNS),
        ", ".join(["%s"] * len(EVENT_COLUMNS)),
    )
    adapt = connection.ops.adapt_datetimefield_value
    rows = []
    for s in batch:
        data = s.envelope["data"]
        rows.append(
            (
                s.conversation_id,
                s.seq,
                s.event,
                data.get("thread_id", ""),
                data.get("task_id", ""),
                data.get("item_id", ""),
                data.get("agent_name", ""),
                s.json,
                adapt(s.created_at),
            )
        )
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _fold_items(batch: list[StoredEvent], now: datetime) -> None:
    by_conversation: dict[str, list[dict[str, Any]]] = defaultdict(list)
    item_ids: set[str] = set()
    for stored in batch:
        item_id = stored.envelope["data"].get("item_id")
        if item_id:
            by_conversation[stored.conversation_id].append(stored.envelope)
            item_ids.add(item_id)
    if not item_ids:
        return
    states: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for conversation_id, item_id, *values in Item.objects.filter(
        item_id__in=item_ids, conversation_id__in=list(by_conversation)
    ).values_list("conversation_id", "item_id", *ITEM_FIELDS):
        states[conversation_id][item_id] = {"item_id": item_id, **dict(zip(ITEM_FIELDS, values))}
    rows = []
    for conversation_id, envelopes in by_conversation.items():
        state = states[conversation_id]
        for item_id in fold_into(state, envelopes):
            rows.append(_item_row(conversation_id, state[item_id], now))
    _upsert_items(rows)


_TEXT_ITEM_FIELDS = {"role", "thread_id", "task_id", "agent_name"}
_ITEM_COLUMNS = ("conversation_id", "item_id", *ITEM_FIELDS, "created_at", "updated_at")


def _item_row(conversation_id: str, item: dict[str, Any], now: datetime) -> tuple:
    payload_field = Item._meta.get_field("payload")
    metadata_field = Item._meta.get_field("metadata")
    values = []
    for field in ITEM_FIELDS:
        value = item[field]
        if field == "payload":
            value = payload_field.get_db_prep_save(value, connection)
        elif field == "metadata":
            value = metadata_field.get_db_prep_save(value, connection)
        elif field in _TEXT_ITEM_FIELDS:
            value = value or ""
        values.append(value)
    stamp = connection.ops.adapt_datetimefield_value(now)
    return (conversation_id, item["item_id"], *values, stamp, stamp)


def _upsert_items(rows: list[tuple]) -> None:
    """One `executemany` upsert: Django's `bulk_create(update_conflicts=True)` spent
    most of the writer's time building SQL. `created_at` is kept on conflict."""
    quote = connection.ops.quote_name
    updated = [*ITEM_FIELDS, "updated_at"]
    sql = "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}, {}) DO UPDATE SET {}".format(
        quote(Item._meta.db_table),
        ", ".join(quote(c) for c in _ITEM_COLUMNS),
        ", ".join(["%s"] * len(_ITEM_COLUMNS)),
        quote("conversation_id"),
        quote("item_id"),
        ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in updated),
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


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
