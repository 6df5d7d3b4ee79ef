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
import logging
from collections.abc import AsyncIterator

from channels.layers import get_channel_layer
from django.conf import settings

from conversations.models import ConversationStatus
from conversations.store import aevents_after, astatus_of

from streaming.events import SystemResponseEvent
from streaming.eventlog.groups import conversation_group
from streaming.eventlog.layer_receive import messages

log = logging.getLogger(__name__)

Row = tuple[int, str, str]  # (seq, event name, envelope JSON)
DONE = SystemResponseEvent.DONE.value
PAGE = 2000
INBOX = 64  # live messages waiting for a slow follower; beyond, they are dropped and re-read


class Subscription:
    """Group membership plus one receiving task feeding a bounded inbox.

    A full inbox drops messages (the follower sees a seq gap and re-reads the
    store); a failing layer (Redis restarting) is retried, and the membership
    renewed, so the follower degrades to reading the store instead of dying.
    """

    def __init__(self, conversation_id: str) -> None:
        self.layer = get_channel_layer()
        self.group = conversation_group(conversation_id)
        self.inbox: asyncio.Queue[dict] = asyncio.Queue(INBOX)
        self.channel = ""
        self._task: asyncio.Task | None = None
        self._claimed = False
        self._closed = False

    async def __aenter__(self) -> "Subscription":
        self.channel = await self.layer.new_channel()
        await self.rejoin()
        self._task = asyncio.create_task(self._receive(), name=f"follow-{self.group}")
        return self

    async def rejoin(self) -> None:
        try:
            await self.layer.group_add(self.group, self.channel)
        except Exception:
            log.warning("could not join %s; reading the store meanwhile", self.group)

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
                asyncio.get_running_loop().create_task(self.__aexit__())

        asyncio.get_running_loop().call_later(after, check)

    async def __aexit__(self, *exc) -> None:
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
        try:
            await self.layer.group_discard(self.group, self.channel)
        except Exception:
            pass


async def _retrying(read, *args):
    """A store read, retried while the database is unavailable (reads are idempotent)."""
    delay = 0.1
    for _ in range(8):
        try:
            return await read(*args)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("reading the store failed; retrying in %.1fs", delay, exc_info=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    return await read(*args)


async def _read_after(conversation_id: str, last: int) -> list[Row]:
    return await _retrying(aevents_after, conversation_id, last, PAGE)


async def subscribe_ahead(conversation_id: str, unclaimed_seconds: float = 30.0) -> Subscription:
    """Join a conversation's group before its run starts: `follow(..., subscription=)`
    then needs no store read, every event of the run arrives live."""
    subscription = Subscription(conversation_id)
    await subscription.__aenter__()
    subscription.close_unless_claimed(after=unclaimed_seconds)
    return subscription


async def _is_running(conversation_id: str) -> bool:
    return await _retrying(astatus_of, conversation_id) == ConversationStatus.RUNNING


def _until_done(rows: list[Row]) -> tuple[list[Row], bool]:
    for index, row in enumerate(rows):
        if row[1] == DONE:
            return rows[: index + 1], True
    return rows, False


async def follow(
    conversation_id: str,
    after: int,
    *,
    until_done: bool = True,
    idle_seconds: float | None = None,
    running: bool | None = None,
    subscription: Subscription | None = None,
) -> AsyncIterator[list[Row] | None]:
    """Yield batches of rows in seq order after `after`; `None` when idle.

    With `until_done`, stop after the `done` that ends the run in progress (at
    once if none is in progress); otherwise follow until the caller stops.
    `running` spares a read when the caller knows (it just started the run);
    a `subscription` from `subscribe_ahead`, joined before the run started,
    spares the initial store read too.
    """
    base_idle = idle_seconds if idle_seconds is not None else settings.VALUECELL_FOLLOW_RECHECK_SECONDS
    # A long-lived follower of a quiet conversation backs off its re-reads (many
    # idle subscriptions must not poll the database every few seconds); one that
    # waits for a run's `done` keeps re-reading at the base pace.
    max_idle = base_idle if until_done else max(base_idle, settings.VALUECELL_FOLLOW_MAX_RECHECK_SECONDS)
    idle = base_idle
    joined_ahead = subscription is not None
    if subscription is None:
        subscription = Subscription(conversation_id)
        await subscription.__aenter__()
    else:
        subscription.claim()
    try:
        if running is None:
            running = await _is_running(conversation_id)
        last = after
        last_event = None
        while not joined_ahead:
            rows = await _read_after(conversation_id, last)
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
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
                # cancellation that races with a message (the client went away).
                async with asyncio.timeout(idle):
                    message = await subscription.inbox.get()
            except TimeoutError:
                await subscription.rejoin()  # memberships vanish when Redis restarts
                rows = await _read_after(conversation_id, last)
                if not rows:
                    if until_done and not await _is_running(conversation_id):
                        # The run ended but its final messages were lost: read them.
                        rows = await _read_after(conversation_id, last)
                        if not rows:
                            return
                    else:
                        idle = min(idle * 2, max_idle)
                        yield None
                        continue
            else:
                rows = [tuple(row) for row in message.get("events", ()) if row[0] > last]
                if not rows:
                    continue
                if rows[0][0] != last + 1 or any(b[0] != a[0] + 1 for a, b in zip(rows, rows[1:])):
                    rows = await _read_after(conversation_id, last)
                    if not rows:
                        continue
            idle = base_idle
            if until_done:
                rows, finished = _until_done(rows)
            else:
                finished = False
            yield rows
            last = rows[-1][0]
            if finished:
                return
    finally:
        await subscription.__aexit__()
