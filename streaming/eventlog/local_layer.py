"""The embedded channel layer: Channels' in-memory layer without its per-call sweep.

`channels.layers.InMemoryChannelLayer` sweeps every channel and every group for
expired messages on each `group_send` and each `receive`, and `group_send`
starts a task per member. With one group and one follower per live stream, that
makes every event cost O(open streams): 200 concurrent streams spent more time
sweeping than delivering. Here the sweep runs at most once per `sweep_interval`
seconds (expiry stays approximate to that interval), sends put straight onto
the member's queue, and queues are created only when missing. Messages are
still copied per receiver, as the library does, so a receiver never shares a
mutable message with another; the copy knows the types a channel message may
hold (dicts, lists and immutable scalars) and leaves anything else to `deepcopy`.

Process-local like its parent: a deployment of several workers uses Redis.
"""

from __future__ import annotations

import asyncio
import time
from copy import deepcopy
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

_IMMUTABLE = (str, bytes, int, float, bool, type(None))


def copy_message(value: Any) -> Any:
    """A deep copy of a channel message, several times cheaper than `copy.deepcopy`."""
    if isinstance(value, _IMMUTABLE):
        return value
    if type(value) is dict:
        return {key: copy_message(item) for key, item in value.items()}
    if type(value) is list:
        return [copy_message(item) for item in value]
    if type(value) is tuple:
        return tuple(copy_message(item) for item in value)
    return deepcopy(value)


class LocalChannelLayer(InMemoryChannelLayer):
    def __init__(self, sweep_interval: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sweep_interval = sweep_interval
        self._next_sweep = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.sweep_interval
        super()._clean_expired()

    def _queue(self, channel: str) -> asyncio.Queue:
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        return queue

    def _put(self, channel: str, message: dict) -> None:
        try:
            self._queue(channel).put_nowait((time.time() + self.expiry, copy_message(message)))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    async def send(self, channel: str, message: dict) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        self._put(channel, message)

    async def receive(self, channel: str) -> dict:
        self.require_valid_channel_name(channel)
        self._clean_expired()
        queue = self._queue(channel)
        try:
            _, message = await queue.get()
        finally:
            if queue.empty() and self.channels.get(channel) is queue:
                del self.channels[channel]
        return message

    async def group_send(self, group: str, message: dict) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            try:
                self._put(channel, message)
            except ChannelFull:
                pass  # as the library: a full member misses the message (followers see the gap)
