"""The event store on Django's ORM: append numbered events (and their history
items) in one transaction, and read a conversation's events after a seq.

`DjangoEventStore` is the `streaming.stored.EventStore` the event log is given.
Its appends run on the write lane's thread (`conversations.write_lane`), whole
batches at a time; the sync functions below are also what the admin, the
history API and the tests use.
"""

from __future__ import annotations

import json
from collections import OrderedDict, defaultdict
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, models, transaction

from conversations.db import database_sync_to_async
from conversations.items import fold_into
from conversations.models import Conversation, ConversationStatus, Event, Item
from conversations.write_lane import WRITER_EXECUTOR
from streaming.stored import Row, SeqConflict, StoredEvent

ITEM_FIELDS = ("event", "role", "thread_id", "task_id", "agent_name", "payload", "metadata", "first_seq", "last_seq")
EVENT_COLUMNS = (
    "conversation_id",
    "seq",
    "event",
    "thread_id",
    "task_id",
    "item_id",
    "agent_name",
    "body",
    "created_at",
)


class OpenItems:
    """The writer's own copy of the items its runs are writing, so that folding
    a batch needs no read of the items it continues.

    An entry is valid only for the run that wrote it (its lease holder: one per
    run), is updated only after its batch committed, and is dropped when the
    run's `done` is stored; whatever is missing is read from the database. LRU
    bounded: what matters is the items runs are still appending to, a few per
    run in progress. Used by one thread at a time (the event writer's).
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, str], tuple[str, dict[str, Any]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, conversation_id: str, item_id: str, holder: str | None) -> dict[str, Any] | None:
        key = (conversation_id, item_id)
        entry = self._items.get(key)
        if entry is None or holder is None or entry[0] != holder:
            return None
        self._items.move_to_end(key)
        item = entry[1]
        # A copy: folding changes it in place, and a failed batch must leave this one as stored.
        return {**item, "payload": dict(item["payload"])}

    def put(self, conversation_id: str, holder: str | None, items: dict[str, dict[str, Any]]) -> None:
        if holder is None:
            return
        for item_id, item in items.items():
            key = (conversation_id, item_id)
            self._items[key] = (holder, item)
            self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def drop(self, conversation_id: str) -> None:
        for key in [key for key in self._items if key[0] == conversation_id]:
            del self._items[key]


def append_events(batch: list[StoredEvent], open_items: OpenItems | None = None) -> None:
    """Store a batch of events and fold them into items, atomically.

    The hot path of the whole system: events go in with one `executemany`
    (Django's per-object `bulk_create` machinery cost most of the writer's time),
    items with one upsert for the whole batch, read only when `open_items`
    does not have them.
    """
    if not batch:
        return
    with transaction.atomic():
        _insert_events(batch)
        folded = _fold_items(batch, batch[-1].created_at, open_items)
        for stored in batch:
            if stored.then_status is not None:
                _set_status(stored)
    if open_items is not None:
        holders = {stored.conversation_id: stored.holder for stored in batch}
        for conversation_id, items in folded.items():
            open_items.put(conversation_id, holders[conversation_id], items)
        for stored in batch:
            if stored.then_status is not None:
                open_items.drop(stored.conversation_id)


def _set_status(stored: StoredEvent) -> None:
    fields: dict[str, Any] = {"status": stored.then_status, "updated_at": stored.created_at}
    if stored.then_status == ConversationStatus.IDLE:
        fields["lease_expires_at"] = None
    Conversation.objects.filter(pk=stored.conversation_id, worker=stored.holder).update(**fields)


def _insert_events(batch: list[StoredEvent]) -> None:
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
    _insert_rows(Event, EVENT_COLUMNS, rows)


def _insert_rows(model: type[models.Model], columns: tuple[str, ...], rows: list[tuple], on_conflict: str = "") -> None:
    """INSERT a batch's rows in one statement.

    The writer's thread shares the GIL with the event loop, and the database
    drivers give the GIL up around every call (sqlite3 around each row that
    `executemany` steps; psycopg around each network wait): while the loop is
    busy, each time back costs up to the interpreter's switch interval (5 ms),
    and a batch of 200 rows took a second. So the rows travel as one value:
    a JSON array under SQLite (`json_each`), one array per column under
    PostgreSQL (`unnest`). JSON columns arrive as JSON text.
    """
    if not rows:
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = ", ".join(quote(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            values = ", ".join(f"json_extract(value, '$[{index}]')" for index in range(len(columns)))
            sql = f"INSERT INTO {table} ({names}) SELECT {values} FROM json_each(%s) WHERE true{on_conflict}"
            cursor.execute(sql, [json.dumps(rows, separators=(",", ":"))])
        elif connection.vendor == "postgresql":
            fields = {field.column: field for field in model._meta.concrete_fields}
            arrays = ", ".join(f"%s::{fields[c].db_type(connection)}[]" for c in columns)
            sql = f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}){on_conflict}"
            cursor.execute(sql, [list(column) for column in zip(*rows)])
        else:
            sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))}){on_conflict}"
            cursor.executemany(sql, rows)


def _fold_items(
    batch: list[StoredEvent], now: datetime, open_items: OpenItems | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """Fold the batch into its items and upsert them; return the new items by conversation."""
    by_conversation: dict[str, list[dict[str, Any]]] = defaultdict(list)
    states: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    unknown: set[tuple[str, str]] = set()
    for stored in batch:
        item_id = stored.envelope["data"].get("item_id")
        if not item_id:
            continue
        conversation_id = stored.conversation_id
        by_conversation[conversation_id].append(stored.envelope)
        state = states[conversation_id]
        if item_id in state or (conversation_id, item_id) in unknown:
            continue
        cached = open_items.get(conversation_id, item_id, stored.holder) if open_items is not None else None
        if cached is None:
            unknown.add((conversation_id, item_id))
        else:
            state[item_id] = cached
    if not by_conversation:
        return {}
    if unknown:
        for conversation_id, item_id, *values in Item.objects.filter(
            item_id__in={item_id for _, item_id in unknown}, conversation_id__in={c for c, _ in unknown}
        ).values_list("conversation_id", "item_id", *ITEM_FIELDS):
            if (conversation_id, item_id) in unknown:
                states[conversation_id][item_id] = {"item_id": item_id, **dict(zip(ITEM_FIELDS, values))}
    rows = []
    folded: dict[str, dict[str, dict[str, Any]]] = {}
    ops = connection.ops
    stamp = ops.adapt_datetimefield_value(now)
    for conversation_id, envelopes in by_conversation.items():
        state = states[conversation_id]
        touched = fold_into(state, envelopes)
        folded[conversation_id] = {item_id: state[item_id] for item_id in touched}
        for item_id in touched:
            rows.append(_item_row(conversation_id, state[item_id], stamp))
    _upsert_items(rows)
    return folded


_TEXT_ITEM_FIELDS = {"role", "thread_id", "task_id", "agent_name"}
_ITEM_COLUMNS = ("conversation_id", "item_id", *ITEM_FIELDS, "created_at", "updated_at")


def _item_row(conversation_id: str, item: dict[str, Any], stamp: Any) -> tuple:
    # JSON columns as JSON text, None as SQL NULL (what _insert_rows takes).
    values = []
    for field in ITEM_FIELDS:
        value = item[field]
        if field == "payload" or (field == "metadata" and value is not None):
            value = json.dumps(value)
        elif field in _TEXT_ITEM_FIELDS:
            value = value or ""
        values.append(value)
    return (conversation_id, item["item_id"], *values, stamp, stamp)


def _upsert_items(rows: list[tuple]) -> None:
    """One upsert for the batch (Django's `bulk_create(update_conflicts=True)` spent
    most of the writer's time building SQL). `created_at` is kept on conflict."""
    quote = connection.ops.quote_name
    updated = [*ITEM_FIELDS, "updated_at"]
    on_conflict = " ON CONFLICT ({}, {}) DO UPDATE SET {}".format(
        quote("conversation_id"),
        quote("item_id"),
        ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in updated),
    )
    _insert_rows(Item, _ITEM_COLUMNS, rows, on_conflict)


def events_after(conversation_id: str, after: int, limit: int = 2000) -> list[Row]:
    """(seq, event, body) of the events after `after`, in seq order."""
    return list(
        Event.objects.filter(conversation_id=conversation_id, seq__gt=after)
        .order_by("seq")
        .values_list("seq", "event", "body")[:limit]
    )


def last_seq(conversation_id: str) -> int:
    row = Event.objects.filter(conversation_id=conversation_id).order_by("-seq").values_list("seq", flat=True).first()
    return row or 0


def status_of(conversation_id: str) -> str | None:
    return Conversation.objects.filter(pk=conversation_id).values_list("status", flat=True).first()


class DjangoEventStore:
    """The event store the event log is given (`settings.VALUECELL_EVENT_STORE`)."""

    def __init__(self) -> None:
        # The items runs are still appending to; touched only on the writer's thread.
        self.open_items = OpenItems()
        # The write lane's thread: with SQLite, every write takes its turn there
        # instead of waiting on the database lock.
        # (`database_sync_to_async` keeps its connection working: a database restart
        # must not poison every later batch.)
        self._append = database_sync_to_async(
            self._append_on_writer_thread, thread_sensitive=False, executor=WRITER_EXECUTOR
        )
        # Reads are not thread-sensitive: a stream reading these would otherwise
        # reopen a connection on its request's thread and hold it until it ends.
        self._events_after = database_sync_to_async(events_after, thread_sensitive=False)
        self._last_seq = database_sync_to_async(last_seq, thread_sensitive=False)
        self._status_of = database_sync_to_async(status_of, thread_sensitive=False)

    def _append_on_writer_thread(self, batch: list[StoredEvent]) -> None:
        try:
            append_events(batch, self.open_items)
        except IntegrityError as conflict:
            raise SeqConflict(str(conflict)) from conflict

    async def append(self, batch: list[StoredEvent]) -> None:
        await self._append(batch)

    async def read_after(self, conversation_id: str, after: int, limit: int) -> list[Row]:
        return await self._events_after(conversation_id, after, limit)

    async def last_seq(self, conversation_id: str) -> int:
        return await self._last_seq(conversation_id)

    async def status(self, conversation_id: str) -> str | None:
        return await self._status_of(conversation_id)
