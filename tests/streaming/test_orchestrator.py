"""The orchestrator in process: lifecycle order, failures outside the agent, claims."""

import json

import pytest

from conversations import services
from conversations.models import Conversation, ConversationStatus, Event, Task, TaskStatus
from conversations.ownership import Principal
from streaming.orchestrator import OrchestratorError, orchestrator

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = Principal(session_key="alice-session")


async def stored(conversation_id: str) -> list[dict]:
    return [json.loads(b) async for b in Event.objects.filter(conversation_id=conversation_id).order_by("seq").values_list("body", flat=True)]


async def test_one_run_in_order():
    submission = await orchestrator.submit(ALICE, "k=3 delay_ms=0", "bench")
    await orchestrator.wait_idle()
    events = await stored(submission.conversation_id)
    assert [e["event"] for e in events] == [
        "conversation_started", "thread_started", "task_started",
        "message_chunk", "message_chunk", "message_chunk", "task_completed", "done",
    ]
    conversation = await Conversation.objects.aget(pk=submission.conversation_id)
    assert conversation.status == ConversationStatus.IDLE and conversation.lease_expires_at is None


async def test_a_failure_outside_the_agent_is_system_failed_then_done(monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("the task table is on fire")

    monkeypatch.setattr(services, "create_task", broken)
    submission = await orchestrator.submit(ALICE, "k=3 delay_ms=0", "bench")
    await orchestrator.wait_idle()
    events = await stored(submission.conversation_id)
    assert [e["event"] for e in events] == ["conversation_started", "thread_started", "system_failed", "done"]
    assert "the task table is on fire" in events[2]["data"]["payload"]["content"]
    assert (await Conversation.objects.aget(pk=submission.conversation_id)).status == ConversationStatus.IDLE


async def test_busy_conversation_is_refused_and_foreign_is_not_found():
    submission = await orchestrator.submit(ALICE, "k=200 delay_ms=5", "bench")
    with pytest.raises(OrchestratorError) as busy:
        await orchestrator.submit(ALICE, "again", "bench", submission.conversation_id)
    assert (busy.value.status, busy.value.code) == (409, "conversation_busy")
    with pytest.raises(OrchestratorError) as foreign:
        await orchestrator.cancel(Principal(session_key="mallory"), submission.conversation_id)
    assert (foreign.value.status, foreign.value.code) == (404, "conversation_not_found")
    await orchestrator.cancel(ALICE, submission.conversation_id)
    await orchestrator.wait_idle()
    events = await stored(submission.conversation_id)
    assert [e["event"] for e in events][-2:] == ["task_cancelled", "done"]
    assert (await Task.objects.aget(conversation_id=submission.conversation_id)).status == TaskStatus.CANCELLED


async def test_unknown_agent_is_refused_before_anything_is_stored():
    with pytest.raises(OrchestratorError) as unknown:
        await orchestrator.submit(ALICE, "hello", "nobody")
    assert (unknown.value.status, unknown.value.code) == (404, "unknown_agent")
    assert await Conversation.objects.acount() == 0
