"""Writes to conversations, threads and tasks (async, small, one transition each).

The orchestrator calls these; views and consumers never write models directly.
Claims are conditional updates so two inputs racing for one conversation cannot
both start a run, on any number of workers.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from conversations.db import database_sync_to_async
from conversations.models import Conversation, ConversationStatus, Task, TaskStatus, Thread
from conversations.ownership import Principal
from conversations.write_lane import on_write_lane
from streaming.errors import ErrorCode, ServiceError

TITLE_LENGTH = 80
ACTIVE = (ConversationStatus.RUNNING, ConversationStatus.REQUIRE_USER_INPUT)


async def _update(queryset: QuerySet, **fields) -> int:
    return await on_write_lane(queryset.update)(**fields)


def lease_until():
    return timezone.now() + timedelta(seconds=settings.VALUECELL_RUN_LEASE_SECONDS)


def title_from_query(query: str) -> str:
    line = " ".join(query.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1] + "…"


async def create_conversation(
    conversation_id: str, principal: Principal, query: str, agent_name: str, holder: str
) -> Conversation:
    return await on_write_lane(Conversation.objects.create)(
        lease_expires_at=lease_until(),
        worker=holder,
        id=conversation_id,
        owner_id=principal.user_id,
        session_key=principal.session_key or "",
        title=title_from_query(query),
        status=ConversationStatus.RUNNING,
        agent_name=agent_name,
    )


async def claim_for_run(conversation_id: str, agent_name: str, holder: str) -> bool:
    """idle -> running, leased to `holder`; False when a run is in progress or waiting for input."""
    updated = await _update(
        Conversation.objects.filter(pk=conversation_id, status=ConversationStatus.IDLE),
        status=ConversationStatus.RUNNING,
        agent_name=agent_name,
        lease_expires_at=lease_until(),
        worker=holder,
        updated_at=timezone.now(),
    )
    return updated == 1


async def claim_answer(conversation_id: str, answer: str = "") -> bool:
    """require_user_input -> running: the one input that answers the waiting question.

    The answer is stored with the claim (the run takes it with `take_answer`);
    the run itself claims with no answer when nobody answered in time.
    """
    updated = await _update(
        Conversation.objects.filter(pk=conversation_id, status=ConversationStatus.REQUIRE_USER_INPUT),
        status=ConversationStatus.RUNNING,
        answer=answer,
        updated_at=timezone.now(),
    )
    return updated == 1


def _stored_answer(conversation_id: str) -> str | None:
    return (
        Conversation.objects.filter(pk=conversation_id, status=ConversationStatus.RUNNING)
        .exclude(answer="")
        .values_list("answer", flat=True)
        .first()
    )


_astored_answer = database_sync_to_async(_stored_answer)


async def take_answer(conversation_id: str) -> str | None:
    """The stored answer, taken once (cleared), or None while there is none."""
    answer = await _astored_answer(conversation_id)
    if answer is None:
        return None
    taken = await _update(Conversation.objects.filter(pk=conversation_id, answer=answer), answer="")
    return answer if taken == 1 else None


async def release(conversation_id: str, holder: str) -> bool:
    """The run is over: idle again, lease dropped (unless another worker took it over)."""
    updated = await _update(
        Conversation.objects.filter(pk=conversation_id, worker=holder),
        status=ConversationStatus.IDLE,
        lease_expires_at=None,
        updated_at=timezone.now(),
    )
    return updated == 1


async def renew_lease(conversation_id: str, holder: str) -> bool:
    """False when the lease was lost (expired and taken over): the run must stop."""
    updated = await _update(
        Conversation.objects.filter(pk=conversation_id, worker=holder, status__in=ACTIVE),
        lease_expires_at=lease_until(),
    )
    return updated == 1


def _expired_runs(limit: int = 100) -> list[str]:
    """Active conversations whose run lease has expired (their worker stopped renewing it)."""
    now = timezone.now()
    return list(
        Conversation.objects.filter(status__in=ACTIVE, lease_expires_at__lt=now).values_list("id", flat=True)[:limit]
    )


expired_runs = database_sync_to_async(_expired_runs)


async def take_over(conversation_id: str, holder: str) -> bool:
    """Claim an active conversation whose lease has expired (one worker wins)."""
    now = timezone.now()
    updated = await _update(
        Conversation.objects.filter(
            Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True), pk=conversation_id, status__in=ACTIVE
        ),
        worker=holder,
        lease_expires_at=lease_until(),
    )
    return updated == 1


async def delete_conversation(conversation: Conversation) -> None:
    """Delete an idle conversation with everything it holds; a busy one is refused."""
    if conversation.status != ConversationStatus.IDLE:
        raise ServiceError(ErrorCode.CONVERSATION_BUSY, "Cancel the running task before deleting this conversation.")
    await on_write_lane(conversation.delete)()


async def create_thread(thread_id: str, conversation_id: str, query: str) -> Thread:
    return await on_write_lane(Thread.objects.create)(id=thread_id, conversation_id=conversation_id, query=query)


async def create_task(task_id: str, conversation_id: str, thread_id: str, agent_name: str) -> Task:
    return await on_write_lane(Task.objects.create)(
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
    await _update(Task.objects.filter(pk=task_id), **fields)
