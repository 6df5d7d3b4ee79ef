"""Following a conversation: stored events after a seq, then live ones, exactly once.

The follower joins the conversation's group *before* reading the store, so an
event is either in what it reads or arrives live (or both; duplicates are
dropped by seq). Events are published only after they are stored, so a gap in
what arrives live (a slow follower's full inbox, a lost message) is filled by
re-reading the store. While idle it re-reads the store too, so a lost final
message cannot leave a follower hanging.

Two ways to follow: `follow_run` (until the `done` that ends the run in
progress) and `follow_conversation` (until the caller stops).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from itertools import pairwise
from typing import Any, TypeVar

from django.conf import settings

from streaming.eventlog.backend import event_store
from streaming.eventlog.subscription import Subscription
from streaming.events import SystemResponseEvent
from streaming.states import ConversationStatus
from streaming.stored import EventStore, Row, Rows

log = logging.getLogger(__name__)

DONE = SystemResponseEvent.DONE.value
PAGE = 2000
T = TypeVar("T")

Batches = AsyncGenerator[list[Row] | None, None]
"""Batches of rows in seq order; `None` when nothing arrived for a while (a
transport's cue for a heartbeat)."""


def follow_run(
    conversation_id: str,
    after: int,
    *,
    subscription: Subscription | None = None,
    idle_seconds: float | None = None,
    store: EventStore | None = None,
) -> Batches:
    """Events after `after` up to the `done` that ends the run in progress
    (at once if none is in progress).

    A `subscription` from `subscribe_ahead`, joined before the run started,
    spares the store reads: every event of that run arrives live.
    """
    follower = Follower(store or event_store(), conversation_id, after, until_done=True, idle_seconds=idle_seconds)
    return follower.batches(subscription)


def follow_conversation(
    conversation_id: str, after: int, *, idle_seconds: float | None = None, store: EventStore | None = None
) -> Batches:
    """Events after `after`, run after run, until the caller stops.

    A quiet conversation's follower backs off its store re-reads up to
    VALUECELL_FOLLOW_MAX_RECHECK_SECONDS: many idle subscriptions must not
    poll the database every few seconds.
    """
    follower = Follower(store or event_store(), conversation_id, after, until_done=False, idle_seconds=idle_seconds)
    return follower.batches(None)


class Follower:
    def __init__(
        self, store: EventStore, conversation_id: str, after: int, *, until_done: bool, idle_seconds: float | None
    ) -> None:
        self.store = store
        self.conversation_id = conversation_id
        self.last = after
        self.until_done = until_done
        self.base_idle = idle_seconds if idle_seconds is not None else settings.VALUECELL_FOLLOW_RECHECK_SECONDS
        # One that waits for a run's `done` keeps re-reading at the base pace.
        self.max_idle = (
            self.base_idle if until_done else max(self.base_idle, settings.VALUECELL_FOLLOW_MAX_RECHECK_SECONDS)
        )
        self.idle = self.base_idle
        # Following a run this worker has just started (joined ahead): a new
        # conversation's row is written with its first event, so until then
        # "no such conversation" means "not stored yet", not "not running".
        self.joined_ahead = False

    async def batches(self, subscription: Subscription | None) -> Batches:
        joined_ahead = self.joined_ahead = subscription is not None
        if subscription is None:
            subscription = await Subscription.open(self.conversation_id)
        else:
            subscription.claim()
        try:
            if not joined_ahead:
                running = await self._is_running()
                finished = False
                async for rows in self._stored():
                    yield rows
                    finished = rows[-1][1] == DONE
                if self.until_done and (not running or finished):
                    return
            async for batch in self._live(subscription):
                yield batch
        finally:
            await subscription.close()

    async def _stored(self) -> AsyncIterator[list[Row]]:
        """What the store holds after the cursor, page by page."""
        while True:
            rows = await self._read()
            if not rows:
                return
            yield rows
            self.last = rows[-1][0]
            if len(rows) < PAGE:
                return

    async def _live(self, subscription: Subscription) -> Batches:
        while True:
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
                # cancellation that races with a message (the client went away).
                async with asyncio.timeout(self.idle):
                    message = await subscription.inbox.get()
            except TimeoutError:
                rows, ended = await self._on_idle(subscription)
                if ended:
                    return
                if rows is None:
                    self.idle = min(self.idle * 2, self.max_idle)
                    yield None
                    continue
            else:
                rows = await self._from_message(message)
                if not rows:
                    continue
            self.idle = self.base_idle
            rows, finished = self._cut_at_done(rows)
            yield rows
            self.last = rows[-1][0]
            if finished:
                return

    async def _on_idle(self, subscription: Subscription) -> tuple[list[Row] | None, bool]:
        """Nothing live for a while: re-read the store. (rows or None, whether following ended)."""
        await subscription.rejoin()  # memberships vanish when Redis restarts
        rows = await self._read()
        if rows:
            return rows, False
        if self.until_done and not await self._is_running():
            # The run ended but its final messages were lost: read them.
            rows = await self._read()
            return (rows, False) if rows else (None, True)
        return None, False

    async def _from_message(self, message: dict[str, Any]) -> list[Row]:
        """The rows of a live message after the cursor; a gap is filled from the store."""
        events = message.get("events", ())
        if isinstance(events, Rows) and events and events[0][0] == self.last + 1:
            if events[-1][0] == self.last + len(events):
                return events  # this process's stored batch, whole and next: shared as it is
        rows: list[Row] = [(row[0], row[1], row[2]) for row in events if row[0] > self.last]
        if rows and (rows[0][0] != self.last + 1 or any(b[0] != a[0] + 1 for a, b in pairwise(rows))):
            return await self._read()
        return rows

    def _cut_at_done(self, rows: list[Row]) -> tuple[list[Row], bool]:
        if self.until_done:
            for index, row in enumerate(rows):
                if row[1] == DONE:
                    return rows[: index + 1], True
        return rows, False

    async def _read(self) -> list[Row]:
        return await _retrying(self.store.read_after, self.conversation_id, self.last, PAGE)

    async def _is_running(self) -> bool:
        status = await _retrying(self.store.status, self.conversation_id)
        return status == ConversationStatus.RUNNING or (status is None and self.joined_ahead)


async def _retrying(read: Callable[..., Awaitable[T]], *args: Any) -> T:
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
