"""The event store on Django's ORM: append numbered events (and their history
items) in one transaction, and read a conversation's events after a seq.

`DjangoEventStore` is the `streaming.stored.EventStore` the event log is given.
Its appends run on the write lane's thread (`conversations.write_lane`), whole
batches at a time; the sync functions below are also what the admin, the
history API and the tests use.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, models, transaction
from pydantic_core import to_json

from conversations.db import database_sync_to_async
from conversations.items import fold_into
from conversations.models import FINISHED_TASK_STATUSES, Conversation, ConversationStatus, Event, Item, Task, Thread
from conversations.write_lane import WRITER_EXECUTOR
from streaming.states import TaskStatus
from streaming.stored import NewConversation, NewTask, NewThread, Row, SeqConflict, StoredEvent, TaskStatusChange

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

    The hot path of the whole system: events go in with one statement
    (Django's per-object `bulk_create` machinery cost most of the writer's time),
    items with one upsert for the whole batch, read only when `open_items`
    does not have them (and never for a conversation the batch creates), the
    records the events carry with one statement per table.
    """
    if not batch:
        return
    with transaction.atomic():
        created = _create_records(batch)
        _insert_events(batch)
        folded = _fold_items(batch, batch[-1].created_at, open_items, created)
        for stored in batch:
            for record in stored.records:
                if isinstance(record, TaskStatusChange):
                    _set_task_status(record, stored.created_at)
            if stored.then_status is not None:
                _set_status(stored)
    if open_items is not None:
        holders = {stored.conversation_id: stored.holder for stored in batch}
        for conversation_id, items in folded.items():
            open_items.put(conversation_id, holders[conversation_id], items)
        for stored in batch:
            if stored.then_status is not None:
                open_items.drop(stored.conversation_id)


def _create_records(batch: list[StoredEvent]) -> set[str]:
    """Insert the conversations, threads and tasks the batch's events announce
    (one statement per table, parents first); return the conversations created."""
    adapt = connection.ops.adapt_datetimefield_value
    conversations: list[tuple] = []
    threads: list[tuple] = []
    tasks: list[tuple] = []
    for stored in batch:
        if not stored.records:
            continue
        at = adapt(stored.created_at)
        for record in stored.records:
            if isinstance(record, NewConversation):
                lease = adapt(stored.created_at + timedelta(seconds=record.lease_seconds))
                conversations.append(
                    (stored.conversation_id, record.owner_id, record.session_key, record.title,
                     ConversationStatus.RUNNING.value, record.agent_name, lease, stored.holder or "", "", at, at)
                )  # fmt: skip
            elif isinstance(record, NewThread):
                threads.append((record.thread_id, stored.conversation_id, record.query, at))
            elif isinstance(record, NewTask):
                tasks.append(
                    (record.task_id, stored.conversation_id, record.thread_id, record.agent_name,
                     TaskStatus.RUNNING.value, "", at, at, None)
                )  # fmt: skip
    _insert_rows(Conversation, CONVERSATION_COLUMNS, conversations)
    _insert_rows(Thread, THREAD_COLUMNS, threads)
    _insert_rows(Task, TASK_COLUMNS, tasks)
    return {row[0] for row in conversations}


CONVERSATION_COLUMNS = (
    "id", "owner_id", "session_key", "title", "status", "agent_name", "lease_expires_at", "worker", "answer",
    "created_at", "updated_at",
)  # fmt: skip
THREAD_COLUMNS = ("id", "conversation_id", "query", "created_at")
TASK_COLUMNS = (
    "id", "conversation_id", "thread_id", "agent_name", "status", "error", "created_at", "started_at", "finished_at",
)  # fmt: skip


def _update(model: type[models.Model], fields: dict[str, Any], where: dict[str, Any]) -> None:
    """One UPDATE in plain SQL: the ORM's query building cost more than the statement."""
    quote, adapt = connection.ops.quote_name, connection.ops.adapt_datetimefield_value
    values = [adapt(v) if isinstance(v, datetime) else v for v in (*fields.values(), *where.values())]
    sets = ", ".join(f"{quote(column)} = %s" for column in fields)
    conditions = " AND ".join(f"{quote(column)} = %s" for column in where)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {quote(model._meta.db_table)} SET {sets} WHERE {conditions}", values)


def _set_task_status(change: TaskStatusChange, at: datetime) -> None:
    fields: dict[str, Any] = {"status": change.status}
    if change.error:
        fields["error"] = change.error
    if change.status in FINISHED_TASK_STATUSES:
        fields["finished_at"] = at
    _update(Task, fields, {"id": change.task_id})


def _set_status(stored: StoredEvent) -> None:
    fields: dict[str, Any] = {"status": stored.then_status, "updated_at": stored.created_at}
    if stored.then_status == ConversationStatus.IDLE:
        fields["lease_expires_at"] = None
    _update(Conversation, fields, {"id": stored.conversation_id, "worker": stored.holder})


def _datetime_adapter() -> Any:
    """The connection's datetime adapter; under SQLite in UTC, a shortcut for the
    aware UTC datetimes the event log stamps (Django's checks cost a few µs an event)."""
    adapt = connection.ops.adapt_datetimefield_value
    if connection.vendor != "sqlite" or connection.timezone is not UTC:
        return adapt

    def fast(value: datetime) -> Any:
        if value.tzinfo is UTC:
            return str(value.replace(tzinfo=None))  # what make_naive to UTC, then str(), gives
        return adapt(value)

    return fast


def _insert_events(batch: list[StoredEvent]) -> None:
    adapt = _datetime_adapter()
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
            cursor.execute(sql, [to_json(rows).decode()])
        elif connection.vendor == "postgresql":
            fields = {field.column: field for field in model._meta.concrete_fields}
            arrays = ", ".join(f"%s::{fields[c].db_type(connection)}[]" for c in columns)
            sql = f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}){on_conflict}"
            cursor.execute(sql, [list(column) for column in zip(*rows)])
        else:
            sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))}){on_conflict}"
            cursor.executemany(sql, rows)


def _fold_items(
    batch: list[StoredEvent],
    now: datetime,
    open_items: OpenItems | None = None,
    created: frozenset[str] | set[str] = frozenset(),
) -> dict[str, dict[str, dict[str, Any]]]:
    """Fold the batch into its items and upsert them; return the new items by conversation.

    The conversations in `created` are new with this batch: they have no item to read back."""
    by_conversation: dict[str, list[dict[str, Any]]] = defaultdict(list)
    states: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    unknown: set[tuple[str, str]] = set()
    absent: set[tuple[str, str]] = set()
    for stored in batch:
        item_id = stored.envelope["data"].get("item_id")
        if not item_id:
            continue
        conversation_id = stored.conversation_id
        by_conversation[conversation_id].append(stored.envelope)
        state = states[conversation_id]
        key = (conversation_id, item_id)
        if item_id in state or key in unknown or key in absent:
            continue
        if stored.new_item or conversation_id in created:
            absent.add(key)  # nothing stored to continue (later events of the batch continue it)
            continue
        cached = open_items.get(conversation_id, item_id, stored.holder) if open_items is not None else None
        if cached is None:
            unknown.add(key)
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
            value = to_json(value).decode()
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
