"""The event store's item folding with the writer's own copy of open items."""

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations import store
from conversations.models import Conversation, ConversationStatus, Event, Item, Task, TaskStatus, Thread
from conversations.store import OpenItems, StoredEvent, append_events
from streaming.stored import NewConversation, NewTask, NewThread, TaskStatusChange
from streaming.encoders import encode_envelope
from streaming.factory import ResponseFactory, TaskContext
from streaming.responses import notify, streaming
from streaming.router import ResponseRouter

pytestmark = pytest.mark.django_db(transaction=True)


class Run:
    """Numbered events of one run, as the event log makes them."""

    def __init__(self, conversation_id: str, holder: str, seq: int = 0) -> None:
        Conversation.objects.get_or_create(id=conversation_id, defaults={"worker": holder})
        self.conversation_id, self.holder, self.seq = conversation_id, holder, seq
        self.router = ResponseRouter(ResponseFactory(conversation_id), TaskContext(conversation_id, "th", "tk", "demo"))

    def events(self, *responses, then_status=None) -> list[StoredEvent]:
        out = []
        for response in responses:
            for draft in self.router.route(response):
                self.seq += 1
                envelope, text = encode_envelope(draft.event, draft.data, self.seq)
                out.append(
                    StoredEvent(self.conversation_id, self.seq, envelope["event"], envelope, text, timezone.now(),
                                holder=self.holder, new_item=draft.new_item)
                )  # fmt: skip
        if then_status:
            out[-1].then_status = then_status
        return out


def items_of(conversation_id):
    return list(
        Item.objects.filter(conversation_id=conversation_id)
        .order_by("first_seq")
        .values("item_id", "event", "payload", "metadata", "first_seq", "last_seq")
    )


def item_reads(queries) -> int:
    table = Item._meta.db_table
    return sum(1 for q in queries if q["sql"].lstrip().upper().startswith("SELECT") and table in q["sql"])


RESPONSES = [
    [streaming.message_chunk("Hel")],
    [streaming.message_chunk("lo "), streaming.reasoning_started()],
    [streaming.reasoning("thinking"), streaming.reasoning_completed()],
    [streaming.component_generator({"v": 1}, "report", component_id="cmp"), streaming.message_chunk("again")],
    [streaming.component_generator({"v": 2}, "report", component_id="cmp"), streaming.message_chunk(" é")],
]


def test_items_are_the_same_with_and_without_the_open_items_copy():
    cached, uncached = Run("conv-cached", "w1:run1"), Run("conv-plain", "w1:run2")
    open_items = OpenItems()
    for responses in RESPONSES:
        append_events(cached.events(*responses), open_items)
        append_events(uncached.events(*responses))
    strip = lambda rows: [{k: v for k, v in row.items() if k != "item_id"} for row in rows]  # noqa: E731
    assert strip(items_of("conv-cached")) == strip(items_of("conv-plain"))
    assert items_of("conv-cached")[0]["payload"] == {"content": "Hello "}


def test_a_run_continuing_its_items_does_not_read_them_back():
    run = Run("conv-read", "w1:run1")
    open_items = OpenItems()
    append_events(run.events(streaming.message_chunk("a")), open_items)
    with CaptureQueriesContext(connection) as queries:
        append_events(run.events(streaming.message_chunk("b")), open_items)
    assert item_reads(queries.captured_queries) == 0
    assert items_of("conv-read")[0]["payload"] == {"content": "ab"}


def test_items_new_with_their_events_are_not_looked_for_even_without_the_copy():
    run = Run("conv-fresh", "w1:run1")
    append_events(run.events(streaming.message_chunk("a")))
    with CaptureQueriesContext(connection) as queries:
        batch = run.events(streaming.message_chunk("b"), streaming.reasoning("r"), notify.message("n"))
        append_events(batch)  # the paragraph continues (read), the reasoning and the message are new
    assert item_reads(queries.captured_queries) == 1
    with CaptureQueriesContext(connection) as queries:
        append_events(run.events(streaming.tool_call_started("c1", "quote"), notify.message("m"),
                                 streaming.message_chunk("new "), streaming.message_chunk("paragraph")))  # fmt: skip
    assert item_reads(queries.captured_queries) == 0  # each item is new, even the paragraph's second chunk
    events = [i["event"] for i in items_of("conv-fresh")]
    assert events == [
        "message_chunk",
        "reasoning_completed",
        "message",
        "tool_call_started",
        "message",
        "message_chunk",
    ]
    assert items_of("conv-fresh")[-1]["payload"] == {"content": "new paragraph"}
    assert items_of("conv-fresh")[0]["payload"] == {"content": "ab"}


def test_another_run_of_the_conversation_reads_the_stored_items():
    first = Run("conv-two", "w1:run1")
    open_items = OpenItems()
    append_events(first.events(streaming.component_generator({"v": 1}, "report", component_id="cmp")), open_items)
    # Another holder (a later run, or another worker) must not trust this worker's copy.
    second = Run("conv-two", "w2:run9", seq=first.seq)
    Item.objects.filter(conversation_id="conv-two").update(metadata={"changed": "elsewhere"})
    with CaptureQueriesContext(connection) as queries:
        append_events(second.events(streaming.component_generator({"v": 2}, "report", component_id="cmp")), open_items)
    assert item_reads(queries.captured_queries) == 1
    component = items_of("conv-two")[0]
    assert component["first_seq"] == 1 and component["last_seq"] == 2


def test_a_failed_batch_leaves_the_copy_as_stored(monkeypatch):
    run = Run("conv-fail", "w1:run1")
    open_items = OpenItems()
    append_events(run.events(streaming.message_chunk("kept")), open_items)

    def fail(stored):
        raise RuntimeError("the database went away after the items were folded")

    monkeypatch.setattr(store, "_set_status", fail)
    with pytest.raises(RuntimeError):
        append_events(run.events(streaming.message_chunk(" lost"), then_status=ConversationStatus.IDLE), open_items)
    monkeypatch.undo()
    run.seq = 1
    append_events(run.events(streaming.message_chunk("!")), open_items)
    assert items_of("conv-fail")[0]["payload"] == {"content": "kept!"}


def test_the_copy_is_dropped_when_the_run_ends_and_stays_bounded():
    run = Run("conv-end", "w1:run1")
    open_items = OpenItems(capacity=3)
    append_events(run.events(streaming.message_chunk("x")), open_items)
    assert len(open_items) == 1
    append_events(run.events(streaming.message_chunk("y"), then_status=ConversationStatus.IDLE), open_items)
    assert len(open_items) == 0
    for index in range(5):
        append_events(Run(f"conv-many-{index}", f"w1:r{index}").events(streaming.message_chunk("z")), open_items)
    assert len(open_items) == 3


def test_under_sqlite_a_batch_is_a_few_statements_whatever_its_size():
    """sqlite3 gives the GIL up around every row `executemany` steps; with the
    event loop busy each retake waits, so batches go in as one statement per table."""
    open_items = OpenItems()
    runs = [Run(f"conv-size-{index}", f"w1:size{index}") for index in range(60)]
    calls = []

    def record(execute, sql, params, many, context):
        calls.append((sql.split()[0].upper(), many))
        return execute(sql, params, many, context)

    for size in (1, 60):
        calls.clear()
        batch = [
            e for run in runs[:size] for e in run.events(streaming.message_chunk("x"), streaming.message_chunk("y"))
        ]
        with connection.execute_wrapper(record):
            append_events(batch, open_items)
        inserts = [call for call in calls if call[0] == "INSERT"]
        assert inserts == [("INSERT", False), ("INSERT", False)], calls  # events, then items
    assert Item.objects.filter(conversation__id__startswith="conv-size-").count() == 60
    assert Item.objects.get(conversation_id="conv-size-0").payload == {"content": "xyxy"}


def _announcing(conversation_id: str, seq: int, draft, holder: str, *records) -> StoredEvent:
    envelope, text = encode_envelope(draft.event, draft.data, seq)
    return StoredEvent(conversation_id, seq, envelope["event"], envelope, text, timezone.now(), holder=holder,
                       records=records)  # fmt: skip


def test_the_records_a_batch_carries_are_written_with_it_parents_first_and_new_items_are_not_read_back():
    """A run's conversation, thread and task rows go in with the events that announce
    them (issue #12: no round trips on the request's path), one INSERT per table."""
    factory = ResponseFactory("conv-rec")
    ctx = TaskContext("conv-rec", "th-rec", "task-rec", "demo")
    created = NewConversation(owner_id=None, session_key="sess", title="Hello", agent_name="demo", lease_seconds=30)
    router = ResponseRouter(factory, ctx)
    batch = [
        _announcing("conv-rec", 1, factory.conversation_started(), "w1:rec", created),
        _announcing("conv-rec", 2, factory.thread_started("th-rec", "Hello"), "w1:rec", NewThread("th-rec", "Hello")),
        _announcing("conv-rec", 3, factory.task_started(ctx), "w1:rec", NewTask("task-rec", "th-rec", "demo")),
        *[_announcing("conv-rec", 4, d, "w1:rec") for d in router.route(streaming.message_chunk("hi"))],
    ]
    calls = []

    def record(execute, sql, params, many, context):
        calls.append(sql.split()[0].upper())
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record), CaptureQueriesContext(connection) as queries:
        append_events(batch, OpenItems())
    assert calls.count("INSERT") == 5  # conversation, thread, task, events, items
    assert item_reads(queries.captured_queries) == 0  # a conversation new with the batch has no items
    conversation = Conversation.objects.get(id="conv-rec")
    assert (conversation.status, conversation.worker, conversation.session_key, conversation.title) == (
        "running",
        "w1:rec",
        "sess",
        "Hello",
    )
    assert 25 < (conversation.lease_expires_at - conversation.created_at).total_seconds() <= 30
    assert Thread.objects.get(id="th-rec").query == "Hello"
    task = Task.objects.get(id="task-rec")
    assert (task.status, task.thread_id, task.started_at is not None, task.finished_at) == (
        "running",
        "th-rec",
        True,
        None,
    )
    assert len(items_of("conv-rec")) == 2  # the query and the chunk

    done = _announcing("conv-rec", 5, factory.task_completed(ctx), "w1:rec",
                       TaskStatusChange("task-rec", TaskStatus.FAILED, "boom"))  # fmt: skip
    append_events([done], OpenItems())
    task.refresh_from_db()
    assert (task.status, task.error, task.finished_at is not None) == ("failed", "boom", True)


def test_a_batch_whose_conversation_cannot_be_created_stores_nothing():
    Conversation.objects.create(id="conv-dup", worker="w0")
    created = NewConversation(owner_id=None, session_key="", title="t", agent_name="demo", lease_seconds=30)
    factory = ResponseFactory("conv-dup")
    batch = [_announcing("conv-dup", 1, factory.conversation_started(), "w1:dup", created)]
    with pytest.raises(IntegrityError):
        append_events(batch, OpenItems())
    assert not Event.objects.filter(conversation_id="conv-dup").exists()


def test_the_datetime_shortcut_stores_what_django_would():
    from datetime import UTC, datetime, timedelta, timezone

    fast = store._datetime_adapter()
    for value in (
        datetime(2026, 11, 30, 7, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 30, 7, 0, 0, 123456, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 60, tzinfo=timezone(timedelta(hours=2))),  # not UTC: Django's own
    ):
        assert fast(value) == connection.ops.adapt_datetimefield_value(value)
