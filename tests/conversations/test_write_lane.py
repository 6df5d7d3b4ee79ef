"""Under SQLite every write of a run's lifecycle takes its turn on the event writer's thread."""

import threading

import pytest
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.db import connections

from conversations import services
from conversations.models import Conversation
from conversations.write_lane import WRITER_EXECUTOR, on_write_lane, serial_writes
from streaming.eventlog.backend import event_store
from streaming.eventlog.numbering import ConversationLog
from streaming.eventlog.writer import EventWriter
from streaming.factory import ResponseFactory
from streaming.stored import NewConversation

pytestmark = pytest.mark.django_db(transaction=True)


async def writer_thread() -> int:
    return await sync_to_async(threading.get_ident, thread_sensitive=False, executor=WRITER_EXECUTOR)()


def test_the_test_database_is_sqlite():
    assert serial_writes()


async def test_a_requests_writes_run_on_the_writer_thread_not_the_requests():
    """A new conversation's row is written by the event store with its first event
    (issue #12: not on the request's path), on the writer's thread like every write."""
    inserts: list[int] = []

    def record(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("INSERT"):
            inserts.append(threading.get_ident())
        return execute(sql, params, many, context)

    def watch(on: bool) -> None:
        # On whichever thread runs this: Django's connections are per thread.
        wrappers = connections["default"].execute_wrappers
        wrappers.append(record) if on else wrappers.remove(record)

    await on_write_lane(watch)(True)
    try:
        async with ThreadSensitiveContext():  # what Django's ASGI handler opens around each request
            request_thread = await sync_to_async(threading.get_ident)()
            await sync_to_async(watch)(True)
            log = ConversationLog("conv-svc", 0, EventWriter(event_store()), holder="h1")
            created = NewConversation(owner_id=None, session_key="s", title="q", agent_name="demo", lease_seconds=30)
            await log.emit(ResponseFactory("conv-svc").conversation_started(), records=(created,))
            await log.flush()
            assert await services.claim_for_run("conv-svc", "demo", "h2") is False  # running: refused
            await sync_to_async(watch)(False)
    finally:
        await on_write_lane(watch)(False)
    lane = await writer_thread()
    assert lane != request_thread
    assert inserts and set(inserts) == {lane}  # the conversation, then its event
    assert await Conversation.objects.filter(id="conv-svc", worker="h1", status="running").aexists()
