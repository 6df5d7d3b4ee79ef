"""Seq numbers, batched persistence and publish-after-store."""

import asyncio
import json
from unittest import mock

import pytest
from channels.layers import get_channel_layer

from conversations.models import Conversation, Event, Item
from streaming.eventlog.numbering import ConversationLog
from streaming.eventlog import writer as writer_module
from streaming.eventlog.fanout import local_fanout
from streaming.eventlog.writer import EventWriter
from streaming.factory import ResponseFactory, TaskContext
from streaming.eventlog.backend import event_store
from streaming.eventlog.follow import follow_conversation, follow_run
from streaming.eventlog.subscription import subscribe_ahead
from streaming.eventlog.groups import conversation_group
from streaming.responses import streaming
from streaming.router import ResponseRouter

pytestmark = pytest.mark.django_db(transaction=True)


async def make_conversation(cid: str) -> None:
    await Conversation.objects.acreate(id=cid, title="t", session_key="s")


async def emit_chunks(log: ConversationLog, cid: str, count: int) -> None:
    router = ResponseRouter(ResponseFactory(cid), TaskContext(cid, "th-1", "task-1", "bench"))
    for index in range(count):
        for draft in router.route(streaming.message_chunk(f"{index},")):
            await log.emit(draft)


async def test_seq_starts_at_one_and_continues_from_the_store():
    await make_conversation("conv-a")
    writer = EventWriter(event_store())
    log = ConversationLog("conv-a", 0, writer)
    await emit_chunks(log, "conv-a", 5)
    await log.flush()
    second = ConversationLog("conv-a", 5, writer)
    await emit_chunks(second, "conv-a", 3)
    await second.flush()
    seqs = [
        s async for s in Event.objects.filter(conversation_id="conv-a").order_by("seq").values_list("seq", flat=True)
    ]
    assert seqs == list(range(1, 9))


async def test_stored_body_is_the_delivered_json_and_items_are_folded():
    await make_conversation("conv-b")
    writer = EventWriter(event_store())
    writer.max_pending = 7  # force many small batches
    log = ConversationLog("conv-b", 0, writer)
    await emit_chunks(log, "conv-b", 100)
    await log.flush()
    rows = [r async for r in Event.objects.filter(conversation_id="conv-b").order_by("seq")]
    assert len(rows) == 100
    assert all(json.loads(r.body)["seq"] == r.seq for r in rows)
    item = await Item.objects.aget(conversation_id="conv-b")
    assert item.payload["content"] == "".join(f"{i}," for i in range(100))
    assert (item.first_seq, item.last_seq) == (1, 100)


async def test_events_are_published_only_after_they_are_stored():
    """To followers in this process (the fan-out) and, when the channel layer crosses
    processes, to its group: in both cases only once stored."""
    await make_conversation("conv-c")
    here: asyncio.Queue[dict] = asyncio.Queue()
    local_fanout().join("conv-c", here.put_nowait)
    published: asyncio.Queue[dict] = asyncio.Queue()

    class CrossProcessLayer:  # what channels_redis is to the writer: group_send only
        async def group_send(self, group, message):
            assert group == conversation_group("conv-c")
            await published.put(message)

    writer = EventWriter(event_store())
    log = ConversationLog("conv-c", 0, writer)
    with mock.patch.object(writer_module, "get_channel_layer", CrossProcessLayer):
        producer = asyncio.create_task(emit_chunks(log, "conv-c", 300))
        for queue in (here, published):
            received = 0
            while received < 300:
                message = await asyncio.wait_for(queue.get(), 10)
                top = message["events"][-1][0]
                stored = await Event.objects.filter(conversation_id="conv-c", seq__lte=top).acount()
                assert stored == top, "a published event was not stored yet"
                received = top
        await producer
    local_fanout().leave("conv-c", here.put_nowait)


async def test_two_conversations_interleaved_keep_their_own_gap_free_seqs():
    await make_conversation("conv-d")
    await make_conversation("conv-e")
    writer = EventWriter(event_store())
    logs = [ConversationLog("conv-d", 0, writer), ConversationLog("conv-e", 0, writer)]
    await asyncio.gather(*(emit_chunks(log, log.conversation_id, 250) for log in logs))
    await writer.flush()
    for cid in ("conv-d", "conv-e"):
        seqs = [
            s async for s in Event.objects.filter(conversation_id=cid).order_by("seq").values_list("seq", flat=True)
        ]
        assert seqs == list(range(1, 251))


async def test_follower_fills_a_lost_live_message_from_the_store():
    """A follower that misses a published batch re-reads the store: no gap."""
    await make_conversation("conv-f")
    writer = EventWriter(event_store())
    log = ConversationLog("conv-f", 0, writer)
    await emit_chunks(log, "conv-f", 3)
    await log.flush()

    got: list[int] = []
    ready = asyncio.Event()

    async def consume():
        async for rows in follow_conversation("conv-f", 0, idle_seconds=30):
            if rows is None:
                continue
            got.extend(r[0] for r in rows)
            ready.set()
            if got and got[-1] >= 10:
                return

    consumer = asyncio.create_task(consume())
    await asyncio.wait_for(ready.wait(), 5)
    # Store 4..9 without publishing (a lost message), then publish only 10.
    original = writer._publish

    async def drop(batch):
        return None

    writer._publish = drop
    await emit_chunks(log, "conv-f", 6)
    await log.flush()
    writer._publish = original
    await emit_chunks(log, "conv-f", 1)
    await asyncio.wait_for(consumer, 10)
    assert got == list(range(1, 11))


async def test_a_second_writer_of_the_same_seqs_loses_and_is_stopped():
    """The database, not memory, keeps seq unique: the later writer's run must stop."""
    from streaming.stored import SeqConflict

    await make_conversation("conv-g")
    writer = EventWriter(event_store())
    first = ConversationLog("conv-g", 0, writer)
    await emit_chunks(first, "conv-g", 3)
    await first.flush()
    intruder = ConversationLog("conv-g", 1, writer)  # believes only seq 1 is taken
    await emit_chunks(intruder, "conv-g", 1)
    await intruder.flush()
    with pytest.raises(SeqConflict):
        await emit_chunks(intruder, "conv-g", 1)
    bodies = [
        json.loads(b)
        async for b in Event.objects.filter(conversation_id="conv-g").order_by("seq").values_list("body", flat=True)
    ]
    assert [b["seq"] for b in bodies] == [1, 2, 3]
    assert [b["data"]["payload"]["content"] for b in bodies] == ["0,", "1,", "2,"], "the first writer's events stand"


async def test_storing_is_retried_while_the_database_fails(monkeypatch):
    from django.db import DatabaseError

    await make_conversation("conv-h")
    store = event_store()
    real = store.append
    failures = {"left": 2}

    async def flaky(batch):
        if failures["left"]:
            failures["left"] -= 1
            raise DatabaseError("database is restarting")
        return await real(batch)

    monkeypatch.setattr(store, "append", flaky)
    writer = EventWriter(store)
    log = ConversationLog("conv-h", 0, writer)
    await emit_chunks(log, "conv-h", 5)
    await asyncio.wait_for(log.flush(), 10)
    assert failures["left"] == 0
    assert await Event.objects.filter(conversation_id="conv-h").acount() == 5


async def test_a_quiet_subscription_backs_off_its_store_reads(monkeypatch, settings):
    """Many idle WebSocket subscriptions must not poll the database at a fixed pace."""
    settings.VALUECELL_FOLLOW_MAX_RECHECK_SECONDS = 0.16
    await make_conversation("conv-i")
    reads: list[float] = []
    store = event_store()
    real = store.read_after

    async def counting(*args):
        reads.append(asyncio.get_running_loop().time())
        return await real(*args)

    monkeypatch.setattr(store, "read_after", counting)
    idle_ticks = 0
    async for rows in follow_conversation("conv-i", 0, idle_seconds=0.02):
        if rows is None:
            idle_ticks += 1
            if idle_ticks == 6:
                break
    gaps = [b - a for a, b in zip(reads[1:], reads[2:])]
    assert gaps[0] < 0.06 and gaps[-1] > 0.12, f"re-read gaps did not grow: {gaps}"


async def test_a_subscription_joined_ahead_delivers_everything_live_without_reading_the_store(monkeypatch):
    await make_conversation("conv-j")
    subscription = await subscribe_ahead("conv-j")
    store = event_store()
    writer = EventWriter(store)
    log = ConversationLog("conv-j", 0, writer)
    producer = asyncio.create_task(emit_chunks(log, "conv-j", 50))

    async def no_reads(*args):
        raise AssertionError("a subscription joined ahead must not need the store")

    monkeypatch.setattr(store, "read_after", no_reads)
    monkeypatch.setattr(store, "status", no_reads)
    got: list[int] = []
    async for rows in follow_run("conv-j", 0, subscription=subscription):
        if rows:
            got.extend(r[0] for r in rows)
        if len(got) >= 50:
            break
    await producer
    assert got == list(range(1, 51))


async def test_a_subscription_nobody_claims_closes_itself():
    subscription = await subscribe_ahead("conv-k", unclaimed_seconds=0.05)
    fanout = local_fanout()
    fanout.deliver("conv-k", {"events": []})
    assert subscription.inbox.qsize() == 1  # a member of this process's fan-out
    deadline = asyncio.get_running_loop().time() + 5
    while not subscription._closed:
        assert asyncio.get_running_loop().time() < deadline, "the unclaimed subscription stayed"
        await asyncio.sleep(0.01)
    fanout.deliver("conv-k", {"events": []})
    assert subscription.inbox.qsize() == 1, "it still received after closing"
    assert subscription._task is None  # in process, no receiving task or layer channel at all


async def test_items_upsert_keeps_creation_and_position_and_replaces_components():
    await make_conversation("conv-l")
    writer = EventWriter(event_store())
    log = ConversationLog("conv-l", 0, writer)
    router = ResponseRouter(ResponseFactory("conv-l"), TaskContext("conv-l", "th-1", "task-1", "demo"))

    async def emit(response):
        for draft in router.route(response):
            await log.emit(draft)
        await log.flush()

    await emit(streaming.message_chunk("Hel"))
    first = await Item.objects.aget(conversation_id="conv-l", event="message_chunk")
    await emit(streaming.message_chunk("lo"))
    await emit(streaming.component_generator({"v": 1}, "report", component_id="cmp"))
    await emit(streaming.component_generator({"v": 2}, "report", component_id="cmp"))
    paragraph = await Item.objects.aget(pk=first.pk)
    assert paragraph.payload == {"content": "Hello"} and paragraph.metadata is None
    assert (paragraph.created_at, paragraph.first_seq, paragraph.last_seq) == (first.created_at, 1, 2)
    assert paragraph.updated_at >= first.updated_at
    component = await Item.objects.aget(conversation_id="conv-l", item_id="cmp")
    assert json.loads(component.payload["content"]) == {"v": 2}
    assert component.metadata == {"component_id": "cmp"} and component.first_seq == 3
    assert await Item.objects.filter(conversation_id="conv-l").acount() == 2


async def test_a_producer_waits_while_the_store_is_a_full_batch_behind(monkeypatch):
    await make_conversation("conv-bp")
    store = event_store()
    real = store.append
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow(batch):
        started.set()
        await release.wait()  # the database is slow
        return await real(batch)

    monkeypatch.setattr(store, "append", slow)
    writer = EventWriter(store)
    writer.max_pending = 4
    log = ConversationLog("conv-bp", 0, writer)
    producer = asyncio.ensure_future(emit_chunks(log, "conv-bp", 50))
    await asyncio.wait_for(started.wait(), 5)
    async with asyncio.timeout(5):
        while writer._room.is_set():  # the producer fills the next batch, then waits
            await asyncio.sleep(0)
    assert not producer.done()
    # One batch is being stored, at most one more is pending, the rest not yet made.
    assert len(writer._pending) == writer.max_pending and log.seq <= 2 * writer.max_pending
    release.set()
    await asyncio.wait_for(producer, 10)
    await asyncio.wait_for(log.flush(), 10)
    assert await Event.objects.filter(conversation_id="conv-bp").acount() == 50


async def test_a_stream_reads_without_pinning_its_request_threads_connection():
    """Django closes a request thread's connections when the response ends: a stream's
    reads must not reopen one there (a pooled connection per open stream)."""
    from asgiref.sync import ThreadSensitiveContext, sync_to_async
    from django.db import connections

    await make_conversation("conv-pin")
    writer = EventWriter(event_store())
    log = ConversationLog("conv-pin", 0, writer)
    await emit_chunks(log, "conv-pin", 3)
    await log.flush()
    async with ThreadSensitiveContext():  # what Django's ASGI handler opens around each request
        await sync_to_async(connections.close_all)()  # as the middleware does before a stream
        rows = [row async for batch in follow_run("conv-pin", 0, idle_seconds=5) if batch for row in batch]
        pinned = await sync_to_async(lambda: connections["default"].connection is not None)()
    assert [row[0] for row in rows] == [1, 2, 3]
    assert not pinned


async def _until(condition, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_a_new_runs_stream_sends_nothing_before_its_first_event_and_waits_for_its_row(monkeypatch, settings):
    """A new conversation's row is written with its first event (issue #12), so the
    stream that started the run keeps following while the row is not there yet, and
    its first bytes (the headers naming the conversation) go out with that event."""
    from streaming.http.sse import TokenWatch, _frames
    from streaming.stored import NewConversation

    settings.VALUECELL_FOLLOW_RECHECK_SECONDS = 0.02
    store = event_store()
    looked = []
    real_status = store.status

    async def status(conversation_id):
        looked.append(conversation_id)
        return await real_status(conversation_id)

    monkeypatch.setattr(store, "status", status)
    subscription = await subscribe_ahead("conv-new")
    frames = _frames("conv-new", 0, subscription, TokenWatch(None), None)
    first = asyncio.ensure_future(anext(frames))
    await _until(lambda: len(looked) >= 3)  # idle re-reads found no conversation...
    assert not first.done()  # ...and nothing was sent, nor did the stream end
    created = NewConversation(owner_id=None, session_key="s", title="t", agent_name="bench", lease_seconds=30)
    log = ConversationLog("conv-new", 0, EventWriter(store), holder="h-new")
    factory = ResponseFactory("conv-new")
    await log.emit(factory.conversation_started(), records=(created,))
    await log.emit(factory.done(None), then_status="idle")
    chunk = await asyncio.wait_for(first, 5)
    assert chunk.startswith(b"retry: ") and b'"event":"conversation_started"' in chunk
    assert await Conversation.objects.filter(id="conv-new").aexists()
    rest = [part async for part in frames]
    assert b'"event":"done"' in b"".join([chunk, *rest])


async def test_followers_in_one_process_share_each_stored_batch_and_its_encoding():
    from streaming.encoders import sse_frame, sse_frames

    await make_conversation("conv-share")
    first, second = await subscribe_ahead("conv-share"), await subscribe_ahead("conv-share")
    writer = EventWriter(event_store())
    log = ConversationLog("conv-share", 0, writer)
    await emit_chunks(log, "conv-share", 3)
    await log.flush()
    a = await anext(follow_run("conv-share", 0, subscription=first))
    b = await anext(follow_run("conv-share", 0, subscription=second))
    assert a is b and [row[0] for row in a] == [1, 2, 3]
    encoded = sse_frames(a)
    assert sse_frames(b) is encoded  # made once
    assert encoded == "".join(sse_frame(seq, body) for seq, _, body in a).encode()
    await first.close()
    await second.close()
