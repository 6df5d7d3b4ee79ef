"""Reads for the history API: lists, details and a consistent history snapshot."""

from __future__ import annotations

from contextlib import contextmanager

from asgiref.sync import sync_to_async
from django.db import connection, transaction

from conversations.models import Conversation, Item, Task, TaskStatus, Thread
from conversations.ownership import Principal
from conversations.store import last_seq
from streaming.errors import conversation_not_found
from streaming.text import is_storable


def conversation_json(conversation: Conversation) -> dict:
    return {
        "id": conversation.id,
        "title": conversation.title,
        "status": conversation.status,
        "agent_name": conversation.agent_name,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
    }


async def owned_conversation(principal: Principal | None, conversation_id: str) -> Conversation | None:
    """The principal's conversation (any conversation for `None`: operators)."""
    if not is_storable(conversation_id):
        return None  # names no conversation; PostgreSQL would refuse the query itself
    queryset = Conversation.objects.filter(pk=conversation_id)
    if principal is not None:
        queryset = queryset.filter(principal.owns())
    return await queryset.afirst()


async def owned_conversation_or_error(principal: Principal | None, conversation_id: str) -> Conversation:
    """The principal's conversation, or `conversation_not_found` (someone else's is not found either)."""
    conversation = await owned_conversation(principal, conversation_id)
    if conversation is None:
        raise conversation_not_found(conversation_id)
    return conversation


async def list_conversations(principal: Principal, limit: int = 100) -> list[dict]:
    return [conversation_json(c) async for c in Conversation.objects.filter(principal.owns())[:limit]]


async def conversation_detail(conversation: Conversation) -> dict:
    threads = [
        {"id": t.id, "query": t.query, "created_at": t.created_at.isoformat()} async for t in conversation.threads.all()
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
        async for t in conversation.tasks.all()
    ]
    return {"conversation": conversation_json(conversation), "threads": threads, "tasks": tasks}


async def last_thread_id(conversation_id: str) -> str | None:
    """The conversation's latest input."""
    thread = await Thread.objects.filter(conversation_id=conversation_id).order_by("-created_at").afirst()
    return thread.id if thread else None


async def unfinished_tasks(conversation_id: str) -> list[Task]:
    """Tasks that have not ended (a run that stopped without ending them: the reaper's work)."""
    unfinished = (TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.WAITING_INPUT)
    return [task async for task in Task.objects.filter(conversation_id=conversation_id, status__in=unfinished)]


@contextmanager
def _snapshot():
    """One transaction whose reads all see the same committed state."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def history(conversation_id: str) -> dict:
    """Items plus the seq they are complete up to: follow after `last_seq` to go on."""
    with _snapshot():
        upto = last_seq(conversation_id)
        items = [
            {
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
            for i in Item.objects.filter(conversation_id=conversation_id).order_by("first_seq")
        ]
    return {"items": items, "last_seq": upto}


ahistory = sync_to_async(history)
