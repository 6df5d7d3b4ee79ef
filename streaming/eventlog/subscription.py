"""Following a conversation's live events: a bounded inbox fed by this process's
fan-out (`fanout`) and, when the channel layer crosses processes, by the
layer's group too.

A full inbox drops the oldest message (the follower sees a seq gap and
re-reads the store); a failing layer (Redis restarting) is retried and the
membership renewed, so a follower degrades to reading the store, never dies.
A subscription for a run of this process (`subscribe_ahead`) needs no layer
at all: the writer here hands it every event.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer

from streaming.eventlog.fanout import local_fanout
from streaming.eventlog.groups import conversation_group
from streaming.eventlog.layer_outage import layer_outage
from streaming.eventlog.layer_receive import messages

INBOX = 64  # live messages waiting for a slow follower; beyond, they are dropped and re-read


def crosses_processes(layer: Any) -> bool:
    """Whether the channel layer reaches other processes (Redis), unlike the in-memory ones."""
    return layer is not None and not isinstance(layer, InMemoryChannelLayer)


class Subscription:
    """Membership of this process's fan-out (and of the layer's group when it
    crosses processes), feeding `inbox`."""

    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        self.layer = get_channel_layer()
        self.group = conversation_group(conversation_id)
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(INBOX)
        self.fanout = local_fanout()
        self.channel = ""  # the layer channel, when it crosses processes
        self._task: asyncio.Task[None] | None = None
        self._claimed = False
        self._closed = False

    @classmethod
    async def open(cls, conversation_id: str, *, local: bool = False) -> Subscription:
        """`local`: only events written by this process (its run) are wanted live."""
        subscription = cls(conversation_id)
        subscription.fanout.join(conversation_id, subscription.offer)
        if not local and crosses_processes(subscription.layer):
            subscription.channel = await subscription.layer.new_channel()
            await subscription.rejoin()
            subscription._task = asyncio.create_task(subscription._receive(), name=f"follow-{subscription.group}")
        return subscription

    def offer(self, message: dict[str, Any]) -> None:
        if self._closed:
            return
        if self.inbox.full():
            self.inbox.get_nowait()  # drop the oldest; the gap is re-read from the store
        self.inbox.put_nowait(message)

    async def rejoin(self) -> None:
        """Renew the memberships (the layer's vanish when Redis restarts)."""
        if self._closed:
            return
        self.fanout.join(self.conversation_id, self.offer)
        if not self.channel:
            return
        try:
            await self.layer.group_add(self.group, self.channel)
        except Exception as exc:
            layer_outage.failed(f"joining {self.group}", exc)  # the follower reads the store meanwhile

    async def _receive(self) -> None:
        async for message in messages(self.layer, self.channel, self.group):
            self.offer(message)

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
        self.fanout.leave(self.conversation_id, self.offer)
        if self._task is not None:
            self._task.cancel()
        if not self.channel:
            return
        try:
            await self.layer.group_discard(self.group, self.channel)
        except Exception as exc:
            layer_outage.failed(f"leaving {self.group}", exc)


async def subscribe_ahead(conversation_id: str, unclaimed_seconds: float = 30.0) -> Subscription:
    """Follow a run this process is about to start, before it starts: `follow_run(...,
    subscription=)` then needs no store read, every event of the run arrives live,
    from this process's writer (a run taken over by another worker is read from
    the store, on the follower's idle re-reads)."""
    subscription = await Subscription.open(conversation_id, local=True)
    subscription.close_unless_claimed(after=unclaimed_seconds)
    return subscription
