"""One socket's deliveries: per conversation, one follower task feeding the outbox.

A conversation is delivered as a subscription (until `unsubscribe` or close) or
for a query (until the `done` that ends that input's run). Per socket and
conversation, events go out in seq order and never twice.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
from dataclasses import dataclass

from streaming import metrics
from streaming.errors import ErrorCode, ServiceError
from streaming.eventlog.follow import follow_conversation
from streaming.events import SystemResponseEvent
from streaming.ws.outbox import Outbox
from streaming.ws.protocol import error_frame

log = logging.getLogger(__name__)

DONE = SystemResponseEvent.DONE.value


@dataclass(eq=False)
class Delivery:
    conversation_id: str
    cursor: int  # the last seq queued for this socket; only later ones go out
    subscribed: bool
    stop_after: int  # a query's delivery ends at the first `done` after this seq
    task: asyncio.Task | None = None


class Deliveries:
    def __init__(self, outbox: Outbox, max_active: int) -> None:
        self._outbox = outbox
        self._active: dict[str, Delivery] = {}
        self._sent_upto: dict[str, int] = {}  # survives deliveries: nothing is sent twice
        self.max_active = max_active

    def is_active(self, conversation_id: str) -> bool:
        return conversation_id in self._active

    def check_room(self, conversation_id: str | None) -> None:
        """Refuse a new delivery beyond the limit (an existing one is reused)."""
        if conversation_id in self._active or len(self._active) < self.max_active:
            return
        raise ServiceError(
            ErrorCode.TOO_MANY_SUBSCRIPTIONS,
            f"This socket already receives {self.max_active} conversations; unsubscribe from one first.",
        )

    def subscribe(self, conversation_id: str, after: int) -> int:
        """Follow the conversation until unsubscribed; return the `after` in effect."""
        delivery = self._active.get(conversation_id)
        if delivery is not None:
            if delivery.subscribed:
                raise ServiceError(ErrorCode.ALREADY_SUBSCRIBED, f"This socket already follows {conversation_id!r}.")
            # A query's delivery in progress simply goes on past its `done`.
            delivery.subscribed = True
            delivery.cursor = max(delivery.cursor, after)
            return delivery.cursor
        self.check_room(conversation_id)
        after = max(after, self._sent_upto.get(conversation_id, 0))
        self._start(Delivery(conversation_id, after, subscribed=True, stop_after=after))
        return after

    def deliver_run(self, conversation_id: str, after: int) -> None:
        """Deliver what an input just submitted produces, up to its run's `done`."""
        delivery = self._active.get(conversation_id)
        if delivery is not None:
            if not delivery.subscribed:
                delivery.stop_after = max(delivery.stop_after, after)
            return
        start = max(after, self._sent_upto.get(conversation_id, 0))
        self._start(Delivery(conversation_id, start, subscribed=False, stop_after=after))

    def unsubscribe(self, conversation_id: str) -> bool:
        delivery = self._active.pop(conversation_id, None)
        if delivery is None:
            return False
        if delivery.task is not None:
            delivery.task.cancel()  # and, detached, it queues nothing more even if that is lost
        return True

    async def close(self) -> None:
        tasks = [d.task for d in self._active.values() if d.task is not None]
        self._active.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- one follower ------------------------------------------------------------------
    def _start(self, delivery: Delivery) -> None:
        self._active[delivery.conversation_id] = delivery
        delivery.task = asyncio.create_task(self._deliver(delivery), name=f"ws-{delivery.conversation_id}")

    def _detach(self, delivery: Delivery) -> None:
        if self._active.get(delivery.conversation_id) is delivery:
            del self._active[delivery.conversation_id]

    async def _deliver(self, delivery: Delivery) -> None:
        conversation_id = delivery.conversation_id

        def wanted() -> bool:
            return self._active.get(conversation_id) is delivery

        metrics.stream_opened(metrics.WS)
        try:
            async with aclosing(follow_conversation(conversation_id, delivery.cursor)) as batches:
                async for rows in batches:
                    if not wanted():
                        return  # stopped, though the cancellation may have been lost
                    for seq, event, body in rows or ():
                        if seq <= delivery.cursor:
                            continue
                        if not await self._outbox.put_event(body, wanted):
                            return  # unsubscribed, or the socket is closing
                        delivery.cursor = seq
                        self._sent_upto[conversation_id] = seq
                        if event == DONE and not delivery.subscribed and seq > delivery.stop_after:
                            # Detach at once: an input arriving while the follower
                            # closes must start a delivery of its own.
                            self._detach(delivery)
                            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("delivering %s failed", conversation_id)
            if not wanted():
                return
            self._detach(delivery)
            self._outbox.put_control(
                error_frame(
                    ServiceError(
                        ErrorCode.DELIVERY_FAILED,
                        "Delivery of this conversation stopped; subscribe again after your last seq.",
                        conversation_id=conversation_id,
                        last_seq=delivery.cursor,
                    )
                )
            )
        finally:
            metrics.stream_closed(metrics.WS)
            self._detach(delivery)
