"""A run whose worker died (its lease expired) is ended by another worker."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Conversation, ConversationStatus, Event, Task, TaskStatus, Thread
from streaming.runtime.maintenance import reap_once

pytestmark = pytest.mark.django_db(transaction=True)


async def abandoned(cid: str, expires_in: float, status=ConversationStatus.RUNNING) -> None:
    await Conversation.objects.acreate(
        id=cid, status=status, worker="dead-worker", lease_expires_at=timezone.now() + timedelta(seconds=expires_in)
    )
    await Thread.objects.acreate(id=f"th-{cid}", conversation_id=cid, query="q")
    await Task.objects.acreate(id=f"task-{cid}", conversation_id=cid, thread_id=f"th-{cid}", agent_name="bench",
                               status=TaskStatus.RUNNING if status == ConversationStatus.RUNNING else TaskStatus.WAITING_INPUT)
    await Event.objects.acreate(conversation_id=cid, seq=1, event="thread_started", body="{}", created_at=timezone.now())


async def test_expired_lease_fails_the_task_and_frees_the_conversation():
    await abandoned("conv-dead", -1)
    await abandoned("conv-alive", 60)
    assert await reap_once() == ["conv-dead"]
    conversation = await Conversation.objects.aget(pk="conv-dead")
    assert conversation.status == ConversationStatus.IDLE and conversation.lease_expires_at is None
    task = await Task.objects.aget(pk="task-conv-dead")
    assert task.status == TaskStatus.FAILED and "stopped responding" in task.error
    events = [(e.seq, e.event) async for e in Event.objects.filter(conversation_id="conv-dead").order_by("seq")]
    assert events == [(1, "thread_started"), (2, "task_failed"), (3, "done")]
    assert (await Conversation.objects.aget(pk="conv-alive")).status == ConversationStatus.RUNNING
    assert await reap_once() == [], "reaped once only"


async def test_a_waiting_question_of_a_dead_worker_is_ended_too():
    await abandoned("conv-waiting", -1, ConversationStatus.REQUIRE_USER_INPUT)
    assert await reap_once() == ["conv-waiting"]
    assert (await Task.objects.aget(pk="task-conv-waiting")).status == TaskStatus.FAILED
