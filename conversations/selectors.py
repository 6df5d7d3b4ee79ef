"""Reads for the history API: lists, details and a consistent history snapshot."""

from __future__ import annotations

from contextlib import contextmanager

from django.db import connection, transaction
from django.utils import timezone

from conversations.db import database_sync_to_async
from conversations.models import Conversation, ConversationStatus, Event, Item, Task, TaskStatus, Thread
from conversations.ownership import Principal
from conversations.store import last_seq
from streaming.errors import ErrorCode, ServiceError, conversation_not_found
from streaming.events import SystemResponseEvent
from streaming.text import is_storable

DONE = SystemResponseEvent.DONE.value


def conversation_json(conversation: Conversation) -> dict:
    return {
        "id": conversation.id,
        "title": conversation.title,
        "status": conversation.status,
        "agent_name": conversation.agent_name,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
    }


def _owned_conversation(principal: Principal | None, conversation_id: str) -> Conversation | None:
    """The principal's conversation (any conversation for `None`: operators)."""
    if not is_storable(conversation_id):
        return None  # names no conversation; PostgreSQL would refuse the query itself
    queryset = Conversation.objects.filter(pk=conversation_id)
    if principal is not None:
        queryset = queryset.filter(principal.owns())
    return queryset.first()


owned_conversation = database_sync_to_async(_owned_conversation)


async def owned_conversation_or_error(principal: Principal | None, conversation_id: str) -> Conversation:
    """The principal's conversation, or `conversation_not_found` (someone else's is not found either)."""
    conversation = await owned_conversation(principal, conversation_id)
    if conversation is None:
        raise conversation_not_found(conversation_id)
    return conversation


def _list_conversations(principal: Principal, limit: int = 100) -> list[dict]:
    return [conversation_json(c) for c in Conversation.objects.filter(principal.owns())[:limit]]


def _conversation_detail(conversation: Conversation) -> dict:
    threads = [
        {"id": t.id, "query": t.query, "created_at": t.created_at.isoformat()} for t in conversation.threads.all()
    ]
    tasks = [
        {
            "id": t.id,
            "thread_id": t.thread_id,
            "agent_name": t.agent_name,
            "status": t.status,
            "error": t.error,
            "created_at": t.created_at.isoformat(),
            "started_at": t.started_at.isoformat() if t.started_at else None,
            "finished_at": t.finished_at.isoformat() if t.finished_at else None,
        }
        for t in conversation.tasks.all()
    ]
    return {"conversation": conversation_json(conversation), "threads": threads, "tasks": tasks}


def runs_in_progress(principal: Principal) -> int:
    """The principal's conversations with a run going now, on any worker (sync: admission
    calls it inside its own database call).

    A run waiting for an answer does no work and is not counted; nor is one whose
    lease expired (its worker died: the reaper is about to end it).
    """
    return (
        Conversation.objects.filter(principal.owns(), status=ConversationStatus.RUNNING)
        .exclude(lease_expires_at__lt=timezone.now())
        .count()
    )


def _task_event_count(conversation_id: str, task_id: str) -> int:
    """How many stored events belong to the task."""
    return Event.objects.filter(conversation_id=conversation_id, task_id=task_id).count()


def _last_thread_id(conversation_id: str) -> str | None:
    """The conversation's latest input."""
    thread = Thread.objects.filter(conversation_id=conversation_id).order_by("-created_at").first()
    return thread.id if thread else None


def _unfinished_tasks(conversation_id: str) -> list[Task]:
    """Tasks that have not ended (a run that stopped without ending them: the reaper's work)."""
    unfinished = (TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.WAITING_INPUT)
    return list(Task.objects.filter(conversation_id=conversation_id, status__in=unfinished))


def _last_done_before(conversation_id: str, seq: int) -> int:
    """The seq of the last `done` before `seq` (0 if none): where the run holding `seq` starts after."""
    done = Event.objects.filter(conversation_id=conversation_id, event=DONE, seq__lt=seq).order_by("-seq")
    return done.values_list("seq", flat=True).first() or 0


def _pending_question(conversation_id: str) -> str | None:
    """The item id of the question a waiting run asked last."""
    asked = Event.objects.filter(
        conversation_id=conversation_id, event=SystemResponseEvent.PLAN_REQUIRE_USER_INPUT.value
    )
    return asked.order_by("-seq").values_list("item_id", flat=True).first()


def _owned_task(principal: Principal, task_id: str) -> Task | None:
    if not is_storable(task_id):
        return None  # names no task; PostgreSQL would refuse the query itself
    return Task.objects.filter(pk=task_id, conversation__in=Conversation.objects.filter(principal.owns())).first()


list_conversations = database_sync_to_async(_list_conversations)
conversation_detail = database_sync_to_async(_conversation_detail)
last_thread_id = database_sync_to_async(_last_thread_id)
unfinished_tasks = database_sync_to_async(_unfinished_tasks)
task_event_count = database_sync_to_async(_task_event_count)
last_done_before = database_sync_to_async(_last_done_before)
pending_question = database_sync_to_async(_pending_question)
owned_task = database_sync_to_async(_owned_task)


async def owned_task_or_error(principal: Principal, task_id: str) -> Task:
    """The principal's task (through its conversation); someone else's is not found either."""
    task = await owned_task(principal, task_id)
    if task is None:
        raise ServiceError(ErrorCode.NOT_FOUND, f"No task {task_id[:80]!r}.")
    return task


@contextmanager
def _snapshot():
    """One transaction whose reads all see the same committed state."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def _item_json(i: Item) -> dict:
    return {
        "item_id": i.item_id,
        "event": i.event,
        "role": i.role,
        "thread_id": i.thread_id,
        "task_id": i.task_id,
        "agent_name": i.agent_name,
        "payload": i.payload,
        "metadata": i.metadata,
        "first_seq": i.first_seq,
        "last_seq": i.last_seq,
        "created_at": i.created_at.isoformat(),
        "updated_at": i.updated_at.isoformat(),
    }


def history(conversation_id: str) -> dict:
    """Items plus the seq they are complete up to: follow after `last_seq` to go on."""
    with _snapshot():
        upto = last_seq(conversation_id)
        items = [_item_json(i) for i in Item.objects.filter(conversation_id=conversation_id).order_by("first_seq")]
    return {"items": items, "last_seq": upto}


ahistory = database_sync_to_async(history)


def finished_history(conversation_id: str) -> list[dict]:
    """The items of the runs that have ended (up to the last `done`): a client
    that cannot resume builds the run in progress from its own live stream."""
    with _snapshot():
        items = Item.objects.filter(conversation_id=conversation_id)
        status = Conversation.objects.filter(pk=conversation_id).values_list("status", flat=True).first()
        if status == ConversationStatus.RUNNING:
            done = Event.objects.filter(conversation_id=conversation_id, event=DONE).order_by("-seq")
            items = items.filter(first_seq__lte=done.values_list("seq", flat=True).first() or 0)
        return [_item_json(i) for i in items.order_by("first_seq")]


afinished_history = database_sync_to_async(finished_history)
