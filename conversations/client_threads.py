"""Clients' own names for conversations (AG-UI's `threadId`): find, bind, and
remember the last client message taken as an input. Per owner, like
conversations: someone else's name is simply not found.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError

from conversations.db import database_sync_to_async
from conversations.models import ClientThread
from conversations.ownership import Principal
from conversations.write_lane import on_write_lane
from streaming.text import is_storable

log = logging.getLogger(__name__)


def _find_thread(principal: Principal, thread_id: str) -> ClientThread | None:
    """The principal's thread of that name, with its conversation."""
    if not is_storable(thread_id):
        return None  # names no thread; PostgreSQL would refuse the query itself
    return ClientThread.objects.filter(principal.owns(), thread_id=thread_id).select_related("conversation").first()


find_thread = database_sync_to_async(_find_thread)


async def bind_thread(principal: Principal, thread_id: str, conversation_id: str, message_id: str = "") -> None:
    """Name a new conversation. Two first runs racing on one name: the first keeps it."""
    try:
        await on_write_lane(ClientThread.objects.create)(
            conversation_id=conversation_id,
            owner_id=principal.user_id,
            session_key=principal.session_key or "",
            thread_id=thread_id,
            last_message_id=message_id,
        )
    except IntegrityError:
        log.warning("thread %r already names a conversation; %s stays unnamed", thread_id[:80], conversation_id)


async def took_message(thread: ClientThread, message_id: str) -> None:
    """The client message `message_id` was taken as this thread's input."""
    await on_write_lane(ClientThread.objects.filter(pk=thread.pk).update)(last_message_id=message_id)
