"""Deliveries on their own: `unsubscribe` stops one for good, even when the
follower's cancellation is swallowed by `asyncio.wait_for` (Python 3.11)."""

from __future__ import annotations

import asyncio

import pytest

import streaming.ws.delivery as ws_delivery
from streaming.ws.delivery import Deliveries
from tests.streaming.test_consumer_outbox import Wire, outbox


@pytest.fixture
def live(monkeypatch):
    """A stand-in for `follow_conversation` that waits for live rows the way it does."""
    rows: asyncio.Queue = asyncio.Queue()
    waiting = asyncio.Event()

    async def fake_follow(conversation_id, after, **options):
        while True:
            waiting.set()
            yield await asyncio.wait_for(rows.get(), 10)
            waiting.clear()

    monkeypatch.setattr(ws_delivery, "follow_conversation", fake_follow)
    return rows, waiting


async def test_unsubscribe_stops_a_delivery_whose_cancellation_is_lost(live):
    rows, waiting = live
    wire = Wire()
    box = outbox(wire)
    sender = asyncio.create_task(box.run())
    deliveries = Deliveries(box, max_active=4)
    deliveries.subscribe("conv-a", 0)
    task = deliveries._active["conv-a"].task
    rows.put_nowait([(1, "message_chunk", "one")])
    await wire.until(lambda: wire.data() == ["one"])
    await waiting.wait()
    # A live row arrives in the very step the client unsubscribes: wait_for
    # returns the row instead of raising CancelledError.
    rows.put_nowait([(2, "message_chunk", "two")])
    assert deliveries.unsubscribe("conv-a")
    box.put_control("unsubscribed")
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)
    await wire.until(lambda: wire.data()[-1] == "unsubscribed")
    assert wire.data() == ["one", "unsubscribed"]
    sender.cancel()


async def test_close_stops_every_delivery(live):
    rows, waiting = live
    wire = Wire()
    box = outbox(wire)
    deliveries = Deliveries(box, max_active=4)
    deliveries.subscribe("conv-a", 0)
    deliveries.deliver_run("conv-b", 0)
    tasks = [d.task for d in deliveries._active.values()]
    await deliveries.close()
    assert all(task.done() for task in tasks)
    assert not deliveries.is_active("conv-a") and not deliveries.is_active("conv-b")


async def test_a_stopped_delivery_ends_even_if_only_idle_batches_follow(monkeypatch):
    """A lost cancellation followed by rows already sent, then idleness: it still ends."""
    gate: asyncio.Queue = asyncio.Queue()
    waiting = asyncio.Event()

    async def fake_follow(conversation_id, after, **options):
        while True:
            waiting.set()
            batch = await asyncio.wait_for(gate.get(), 10)
            waiting.clear()
            yield batch

    monkeypatch.setattr(ws_delivery, "follow_conversation", fake_follow)
    box = outbox(Wire())
    deliveries = Deliveries(box, max_active=4)
    deliveries.subscribe("conv-a", 5)
    task = deliveries._active["conv-a"].task
    await waiting.wait()
    gate.put_nowait(None)  # an idle batch arrives as the socket closes
    await asyncio.wait_for(deliveries.close(), 5)
    assert task.done()
