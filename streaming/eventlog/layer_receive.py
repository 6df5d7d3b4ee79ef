"""Receiving from a channel-layer channel for as long as the receiver lives.

A failing layer (Redis restarting, connections dropped) is retried with a
back-off, and the channel rejoins its group (memberships vanish with a restart).
A cancelled receive that channels_redis surfaces as an error ends the loop.
Failures are reported to `layer_outage` (one warning per outage), not logged each.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from streaming.eventlog.layer_outage import layer_outage


async def messages(layer, channel: str, group: str) -> AsyncIterator[dict]:
    delay = 0.1
    while True:
        try:
            message = await layer.receive(channel)
            delay = 0.1
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                return
            layer_outage.failed(f"receiving on {group}", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            try:
                await layer.group_add(group, channel)
            except Exception as rejoin:
                layer_outage.failed(f"rejoining {group}", rejoin)
            continue
        layer_outage.worked()
        yield message
