"""Live delivery inside this process: the writer hands each stored batch of a
conversation straight to the subscriptions that follow it here.

Before, every event went through the channel layer even to a follower in the
same process: a copy of the message per member, a receiving task and a layer
channel per stream. The layer now only carries events to other processes (the
writer publishes there when the layer crosses processes). One fan-out per
event loop, like the writer.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

Member = Callable[[dict[str, Any]], None]  # takes a message; must not block (a bounded inbox)

_fanouts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Fanout] = weakref.WeakKeyDictionary()


class Fanout:
    def __init__(self) -> None:
        self._members: dict[str, set[Member]] = {}

    def join(self, conversation_id: str, member: Member) -> None:
        self._members.setdefault(conversation_id, set()).add(member)

    def leave(self, conversation_id: str, member: Member) -> None:
        members = self._members.get(conversation_id)
        if members is not None:
            members.discard(member)
            if not members:
                del self._members[conversation_id]

    def deliver(self, conversation_id: str, message: dict[str, Any]) -> None:
        """The same message to every member: members read it, never change it."""
        members = self._members.get(conversation_id)
        if members:
            for member in list(members):
                member(message)


def local_fanout() -> Fanout:
    """This event loop's fan-out."""
    loop = asyncio.get_running_loop()
    fanout = _fanouts.get(loop)
    if fanout is None:
        fanout = _fanouts[loop] = Fanout()
    return fanout
