"""Membership of a conversation's channel-layer group, feeding a bounded inbox.

A full inbox drops the oldest message (the follower sees a seq gap and
re-reads the store); a failing layer (Redis restarting) is retried and the
membership renewed, so a follower degrades to reading the store, never dies.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels.layers import get_channel_layer

from streaming.eventlog.groups import conversation_group
from streaming.eventlog.layer_outage import layer_outage
from streaming.eventlog.layer_receive import messages

INBOX = 64  # live messages waiting for a slow follower; beyond, they are dropped and re-read


class Subscription:
    """Group membership plus one receiving task feeding `inbox`."""

    def __init__(self, conversation_id: str) -> None:
        self.layer = get_channel_layer()
        self.group = conversation_group(conversation_id)
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(INBOX)
        self.channel = ""
        self._task: asyncio.Task[None] | None = None
        self._claimed = False
        self._closed = False

    @classmethod
    async def open(cls, conversation_id: str) -> Subscription:
        subscription = cls(conversation_id)
        subscription.channel = await subscription.layer.new_channel()
        await subscription.rejoin()
        subscription._task = asyncio.create_task(subscription._receive(), name=f"follow-{subscription.group}")
        return subscription

    async def rejoin(self) -> None:
        try:
            await self.layer.group_add(self.group, self.channel)
        except Exception as exc:
            layer_outage.failed(f"joining {self.group}", exc)  # the follower reads the store meanwhile

    async def _receive(self) -> None:
        async for message in messages(self.layer, self.channel, self.group):
            if self.inbox.full():
                self.inbox.get_nowait()  # drop the oldest; the gap is re-read from the store
            self.inbox.put_nowait(message)

    def claim(self) -> None:
        self._claimed = True

    def close_unless_claimed(self, after: float) -> None:
        """A subscription opened ahead (before a run starts) closes itself if no
        follower takes it: the client may leave before its response is read."""

        def check() -> None:
            if not self._claimed and not self._closed:
                asyncio.get_running_loop().create_task(self.close())

        asyncio.get_running_loop().call_later(after, check)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
        try:
            await self.layer.group_discard(self.group, self.channel)
        except Exception as exc:
            layer_outage.failed(f"leaving {self.group}", exc)


async def subscribe_ahead(conversation_id: str, unclaimed_seconds: float = 30.0) -> Subscription:
    """Join a conversation's group before its run starts: `follow_run(...,
    subscription=)` then needs no store read, every event of the run arrives live."""
    subscription = await Subscription.open(conversation_id)
    subscription.close_unless_claimed(after=unclaimed_seconds)
    return subscription
