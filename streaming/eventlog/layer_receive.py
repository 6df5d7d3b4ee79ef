"""Receiving from a channel-layer channel for as long as the receiver lives.

A failing layer (Redis restarting, connections dropped) is retried with a
back-off, and the channel rejoins its group (memberships vanish with a restart).
A cancelled receive that channels_redis surfaces as an error ends the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

log = logging.getLogger(__name__)


async def messages(
    layer, channel: str, group: str, rejoin: Callable[[], Awaitable[None]] | None = None
) -> AsyncIterator[dict]:
    """Messages of `channel`; after a failure it rejoins `group` (or calls `rejoin`,
    for a channel in many groups)."""
    delay = 0.1
    while True:
        try:
            message = await layer.receive(channel)
            delay = 0.1
        except asyncio.CancelledError:
            raise
        except Exception:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                return
            log.warning("receiving on %s failed; retrying in %.1fs", group, delay, exc_info=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            try:
                await (rejoin() if rejoin is not None else layer.group_add(group, channel))
            except Exception:
                log.warning("could not rejoin %s yet", group)
            continue
        yield message
