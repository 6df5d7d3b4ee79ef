"""What the dialect doors read and write in the record: history without the run in
progress, run boundaries, the waiting question, tasks by owner, clients' thread names."""

import asyncio

import pytest

from conversations import client_threads
from conversations.models import ClientThread, Conversation, ConversationStatus, Event
from conversations.ownership import Principal
from conversations.selectors import (
    afinished_history,
    last_done_before,
    owned_task_or_error,
    pending_question,
)
from streaming.errors import ServiceError
from streaming.runtime.orchestrator import orchestrator

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = Principal(session_key="alice-session")
BOB = Principal(session_key="bob-session")


async def events_of(conversation_id: str) -> list[tuple[int, str, str]]:
    rows = Event.objects.filter(conversation_id=conversation_id).order_by("seq")
    return [(seq, event, item_id) async for seq, event, item_id in rows.values_list("seq", "event", "item_id")]


async def wait_status(conversation_id: str, status: str) -> None:
    async with asyncio.timeout(10):
        while (await Conversation.objects.aget(pk=conversation_id)).status != status:
            await asyncio.sleep(0.01)


async def test_finished_history_leaves_out_the_run_in_progress_only():
    first = await orchestrator.submit(ALICE, "k=2 delay_ms=0", "bench")
    await orchestrator.wait_idle()
    cid = first.conversation_id
    done_history = await afinished_history(cid)
    assert [i["event"] for i in done_history] == ["thread_started", "message_chunk"]
    await orchestrator.submit(ALICE, "k=200 delay_ms=5", "bench", cid)
    async with asyncio.timeout(10):
        while not any(e == "message_chunk" and s > 8 for s, e, _ in await events_of(cid)):
            await asyncio.sleep(0.01)
    assert await afinished_history(cid) == done_history  # the second run is still going
    await orchestrator.cancel(ALICE, cid)
    await orchestrator.wait_idle()
    assert len(await afinished_history(cid)) == 4  # now both runs: two inputs, two paragraphs


async def test_run_boundaries_and_the_waiting_question():
    submission = await orchestrator.submit(ALICE, "How is the market?", "demo")
    cid = submission.conversation_id
    await wait_status(cid, ConversationStatus.REQUIRE_USER_INPUT)
    events = await events_of(cid)
    question = next(item for _, event, item in events if event == "plan_require_user_input")
    assert await pending_question(cid) == question
    done = events[-1][0]
    assert events[-1][1] == "done"
    assert await last_done_before(cid, done) == 0  # the first run starts after 0
    assert await last_done_before(cid, done + 1) == done
    await orchestrator.cancel(ALICE, cid)
    await orchestrator.wait_idle()


async def test_a_task_is_found_through_its_owners_conversation_only():
    submission = await orchestrator.submit(ALICE, "k=1 delay_ms=0", "bench")
    await orchestrator.wait_idle()
    started = Event.objects.filter(conversation_id=submission.conversation_id, event="task_started")
    task_id = await started.values_list("task_id", flat=True).aget()
    assert (await owned_task_or_error(ALICE, task_id)).conversation_id == submission.conversation_id
    for who, task in ((BOB, task_id), (ALICE, "task-nope")):
        with pytest.raises(ServiceError) as refused:
            await owned_task_or_error(who, task)
        assert refused.value.status == 404


async def test_client_thread_names_are_per_owner_and_remember_the_last_message():
    mine = await orchestrator.submit(ALICE, "k=1 delay_ms=0", "bench")
    theirs = await orchestrator.submit(BOB, "k=1 delay_ms=0", "bench")
    await orchestrator.wait_idle()
    await client_threads.bind_thread(ALICE, "thread-1", mine.conversation_id, "m1")
    await client_threads.bind_thread(BOB, "thread-1", theirs.conversation_id, "m9")
    alice_thread = await client_threads.find_thread(ALICE, "thread-1")
    bob_thread = await client_threads.find_thread(BOB, "thread-1")
    assert (alice_thread.conversation.id, alice_thread.last_message_id) == (mine.conversation_id, "m1")
    assert bob_thread.conversation_id == theirs.conversation_id
    assert await client_threads.find_thread(Principal(session_key="mallory"), "thread-1") is None
    assert await client_threads.find_thread(Principal(), "thread-1") is None  # no session: owns nothing
    await client_threads.took_message(alice_thread, "m2")
    assert (await client_threads.find_thread(ALICE, "thread-1")).last_message_id == "m2"
    # A second conversation under a taken name keeps the first binding.
    await client_threads.bind_thread(ALICE, "thread-1", theirs.conversation_id, "m3")
    assert (await client_threads.find_thread(ALICE, "thread-1")).conversation_id == mine.conversation_id
    await Conversation.objects.filter(pk=mine.conversation_id).adelete()
    assert not await ClientThread.objects.filter(thread_id="thread-1", session_key=ALICE.session_key).aexists()
