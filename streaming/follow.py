"""Following a conversation: stored events after a seq, then live ones, exactly once.

The follower joins the conversation's group *before* reading the store, so an
event is either in what it reads or arrives live (or both; duplicates are
dropped by seq). Events are published only after they are stored, so a gap in
what arrives live (a slow follower's full channel, a lost message) is filled by
re-reading the store. While idle it re-reads the store too, so a lost final
message cannot leave a follower hanging.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from channels.layers import get_channel_layer
from django.conf import settings

from conversations.models import Conversation, ConversationStatus
from conversations.store import aevents_after

from .events import SystemResponseEvent
from .groups import conversation_group

Row = tuple[int, str, str]  # (seq, event name, envelope JSON)
DONE = SystemResponseEvent.DONE.value
PAGE = 2000


async def _is_running(conversation_id: str) -> bool:
    status = await Conversation.objects.filter(pk=conversation_id).values_list("status", flat=True).afirst()
    return status == ConversationStatus.RUNNING


def _until_done(rows: list[Row]) -> tuple[list[Row], bool]:
    for index, row in enumerate(rows):
        if row[1] == DONE:
            return rows[: index + 1], True
    return rows, False


async def follow(
    conversation_id: str, after: int, *, until_done: bool = True, idle_seconds: float | None = None
) -> AsyncIterator[list[Row] | None]:
    """Yield batches of rows in seq order after `after`; `None` when idle.

    With `until_done`, stop after the `done` that ends the run in progress (at
    once if none is in progress); otherwise follow until the caller stops.
    """
    idle = idle_seconds if idle_seconds is not None else settings.VALUECELL_FOLLOW_RECHECK_SECONDS
    layer = get_channel_layer()
    channel = await layer.new_channel()
    group = conversation_group(conversation_id)
    await layer.group_add(group, channel)
    try:
        running = await _is_running(conversation_id)
        last = after
        last_event = None
        while True:
            rows = await aevents_after(conversation_id, last, PAGE)
            if not rows:
                break
            yield rows
            last, last_event = rows[-1][0], rows[-1][1]
            if len(rows) < PAGE:
                break
        if until_done and (not running or last_event == DONE):
            return

        while True:
            try:
                message = await asyncio.wait_for(layer.receive(channel), idle)
            except TimeoutError:
                rows = await aevents_after(conversation_id, last, PAGE)
                if not rows:
                    if until_done and not await _is_running(conversation_id):
                        # The run ended but its final messages were lost: read them.
                        rows = await aevents_after(conversation_id, last, PAGE)
                        if not rows:
                            return
                    else:
                        yield None
                        continue
            else:
                rows = [tuple(row) for row in message.get("events", ()) if row[0] > last]
                if not rows:
                    continue
                if rows[0][0] != last + 1 or any(b[0] != a[0] + 1 for a, b in zip(rows, rows[1:])):
                    rows = await aevents_after(conversation_id, last, PAGE)
                    if not rows:
                        continue
            if until_done:
                rows, finished = _until_done(rows)
            else:
                finished = False
            yield rows
            last = rows[-1][0]
            if finished:
                return
    finally:
        await layer.group_discard(group, channel)
