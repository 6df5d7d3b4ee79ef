"""The event writer: stores whatever accumulated while its previous write ran,
in one transaction, and only then publishes those events to the conversation's
channel-layer group. A follower never sees an event that is not stored, so
re-reading the store always fills a gap. One writer per event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import weakref

from channels.layers import get_channel_layer
from django.conf import settings

from streaming import metrics
from streaming.eventlog.backend import event_store
from streaming.eventlog.groups import EVENTS_MESSAGE, conversation_group
from streaming.eventlog.layer_outage import layer_outage
from streaming.eventlog.local_layer import LocalChannelLayer
from streaming.stored import EventStore, SeqConflict, StoredEvent

log = logging.getLogger(__name__)

_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, EventWriter] = weakref.WeakKeyDictionary()


class EventWriter:
    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._pending: list[StoredEvent] = []
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._submitted = 0
        self._done = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._failed: dict[str, SeqConflict] = {}
        self._task: asyncio.Task[None] | None = None
        self.max_pending = settings.VALUECELL_WRITER_MAX_PENDING
        self.publish_batch = settings.VALUECELL_PUBLISH_BATCH

    # --- producer side ---------------------------------------------------------
    def submit(self, stored: StoredEvent) -> None:
        failure = self._failed.get(stored.conversation_id)
        if failure is not None:
            raise SeqConflict(str(failure))
        self._pending.append(stored)
        self._submitted += 1
        if len(self._pending) >= self.max_pending:
            self._room.clear()
        self._wakeup.set()
        if self._task is None or self._task.done():
            # A fresh context: the writer serves every run, not the one that woke it first.
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), name="event-writer", context=contextvars.Context())

    async def wait_for_room(self) -> None:
        """Backpressure: a producer waits while the store is far behind."""
        if not self._room.is_set():
            await self._room.wait()

    async def flush(self) -> None:
        """Wait until every event submitted so far is stored and published."""
        target = self._submitted
        if self._done >= target:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        await future

    @property
    def backlog(self) -> int:
        """Events submitted and not yet stored and published."""
        return self._submitted - self._done

    @property
    def written(self) -> int:
        """Events stored and published so far."""
        return self._done

    def forget(self, conversation_id: str) -> None:
        self._failed.pop(conversation_id, None)

    # --- writer loop -----------------------------------------------------------
    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch, self._pending = self._pending, []
                self._room.set()
                count = len(batch)
                started = time.monotonic()
                await self._store(batch)
                stored_in = time.monotonic() - started
                await self._publish(batch)
                metrics.batch_written(batch, stored_in)
                self._done += count
                self._wake_waiters()

    async def _store(self, batch: list[StoredEvent]) -> None:
        """Store the batch, retrying while the database is unavailable.

        A seq conflict (another writer stored those numbers: this worker lost its
        lease) is isolated to its conversation, whose events are then dropped
        from the batch: they were never delivered, and its run is stopped.
        """
        if await self._append_retrying(batch):
            return
        by_conversation: dict[str, list[StoredEvent]] = {}
        for stored in batch:
            by_conversation.setdefault(stored.conversation_id, []).append(stored)
        for conversation_id, events in by_conversation.items():
            if not await self._append_retrying(events, conflict_of=conversation_id):
                batch[:] = [s for s in batch if s.conversation_id != conversation_id]

    async def _append_retrying(self, events: list[StoredEvent], conflict_of: str | None = None) -> bool:
        """True once stored; False on a seq conflict (recorded when `conflict_of` is given)."""
        delay = 0.05
        while True:
            try:
                await self.store.append(events)
                return True
            except SeqConflict as conflict:
                if conflict_of is not None:
                    log.error("seq conflict in %s: %s; its run is stopped", conflict_of, conflict)
                    self._failed[conflict_of] = conflict
                return False
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("storing %d events failed; retrying in %.2fs", len(events), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _publish(self, batch: list[StoredEvent]) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        by_conversation: dict[str, list[list]] = {}
        for stored in batch:
            by_conversation.setdefault(stored.conversation_id, []).append([stored.seq, stored.event, stored.json])

        async def send(conversation_id: str, rows: list[list]) -> None:
            for start in range(0, len(rows), self.publish_batch):
                message = {"type": EVENTS_MESSAGE, "events": rows[start : start + self.publish_batch]}
                try:
                    await layer.group_send(conversation_group(conversation_id), message)
                except Exception as exc:
                    # Followers notice the gap (or idle) and re-read the store.
                    layer_outage.failed(f"publishing to {conversation_id}", exc)
                    return
                layer_outage.worked()

        if isinstance(layer, LocalChannelLayer):
            # Sending never waits in process: no task per conversation.
            for cid, rows in by_conversation.items():
                await send(cid, rows)
            return
        # Conversations in parallel (a Redis round trip each), each in seq order.
        await asyncio.gather(*(send(cid, rows) for cid, rows in by_conversation.items()))

    def _wake_waiters(self) -> None:
        still = []
        for target, future in self._waiters:
            if self._done >= target:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((target, future))
        self._waiters = still


def get_writer() -> EventWriter:
    """This event loop's writer, storing to the configured event store."""
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None:
        writer = _writers[loop] = EventWriter(event_store())
    return writer
