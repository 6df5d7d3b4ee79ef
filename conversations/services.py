"""Writes to conversations, threads and tasks (async, small, one transition each).

The orchestrator calls these; views and consumers never write models directly.
Claims are conditional updates so two inputs racing for one conversation cannot
both start a run, on any number of workers.
"""

from __future__ import annotations

from django.utils import timezone

from .models import Conversation, ConversationStatus, Task, TaskStatus, Thread
from .ownership import Principal

TITLE_LENGTH = 80


def title_from_query(query: str) -> str:
    line = " ".join(query.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1] + "…"


async def create_conversation(conversation_id: str, principal: Principal, query: str, agent_name: str) -> Conversation:
    return await Conversation.objects.acreate(
        id=conversation_id,
        owner_id=principal.user_id,
        session_key=principal.session_key or "",
        title=title_from_query(query),
        status=ConversationStatus.RUNNING,
        agent_name=agent_name,
    )


async def claim_for_run(conversation_id: str, agent_name: str) -> bool:
    """idle -> running; False when a run is in progress or waiting for input."""
    updated = await Conversation.objects.filter(pk=conversation_id, status=ConversationStatus.IDLE).aupdate(
        status=ConversationStatus.RUNNING, agent_name=agent_name, updated_at=timezone.now()
    )
    return updated == 1


async def claim_answer(conversation_id: str) -> bool:
    """require_user_input -> running: the one input that answers the waiting question."""
    updated = await Conversation.objects.filter(
        pk=conversation_id, status=ConversationStatus.REQUIRE_USER_INPUT
    ).aupdate(status=ConversationStatus.RUNNING, updated_at=timezone.now())
    return updated == 1


async def set_conversation_status(conversation_id: str, status: str) -> None:
    await Conversation.objects.filter(pk=conversation_id).aupdate(status=status, updated_at=timezone.now())


async def create_thread(thread_id: str, conversation_id: str, query: str) -> Thread:
    return await Thread.objects.acreate(id=thread_id, conversation_id=conversation_id, query=query)


async def create_task(task_id: str, conversation_id: str, thread_id: str, agent_name: str) -> Task:
    return await Task.objects.acreate(
        id=task_id,
        conversation_id=conversation_id,
        thread_id=thread_id,
        agent_name=agent_name,
        status=TaskStatus.RUNNING,
        started_at=timezone.now(),
    )


async def set_task_status(task_id: str, status: str, error: str = "") -> None:
    fields: dict = {"status": status}
    if error:
        fields["error"] = error
    if status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED):
        fields["finished_at"] = timezone.now()
    await Task.objects.filter(pk=task_id).aupdate(**fields)
