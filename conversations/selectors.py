"""Reads for the history API: lists, details and a consistent history snapshot."""

from __future__ import annotations

from contextlib import contextmanager

from asgiref.sync import sync_to_async
from django.db import connection, transaction

from conversations.models import Conversation, Event, Item
from conversations.ownership import Principal


def conversation_json(conversation: Conversation) -> dict:
    return {
        "id": conversation.id,
        "title": conversation.title,
        "status": conversation.status,
        "agent_name": conversation.agent_name,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
    }


async def owned_conversation(principal: Principal, conversation_id: str) -> Conversation | None:
    return await Conversation.objects.filter(principal.owns(), pk=conversation_id).afirst()


async def list_conversations(principal: Principal, limit: int = 100) -> list[dict]:
    return [conversation_json(c) async for c in Conversation.objects.filter(principal.owns())[:limit]]


async def conversation_detail(conversation: Conversation) -> dict:
    threads = [
        {"id": t.id, "query": t.query, "created_at": t.created_at.isoformat()}
        async for t in conversation.threads.all()
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
        last_seq = (
            Event.objects.filter(conversation_id=conversation_id).order_by("-seq").values_list("seq", flat=True).first()
            or 0
        )
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
    return {"items": items, "last_seq": last_seq}


ahistory = sync_to_async(history)
