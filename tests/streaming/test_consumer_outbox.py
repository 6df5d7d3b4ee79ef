"""The socket outbox on its own: order, the ping-acknowledged send window,
bounded waiting, and the two ways a socket gets closed (4001, 4008)."""

from __future__ import annotations

import asyncio
import json

import pytest

from streaming.ws.outbox import Outbox
from streaming.ws.protocol import CLOSE_PING_TIMEOUT, CLOSE_SLOW_CLIENT


class Wire:
    """What the outbox hands to the socket, with a way to wait for it."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.closed: int | None = None
        self.changed = asyncio.Condition()
        self.acknowledge: Outbox | None = None  # set: answer every ping, like a reading client

    async def send(self, frame: str) -> None:
        async with self.changed:
            self.frames.append(frame)
            self.changed.notify_all()
        if self.acknowledge is not None and frame.startswith('{"type":"ping"'):
            asyncio.get_running_loop().call_soon(self.acknowledge.pong, json.loads(frame)["id"])

    async def close(self, code: int) -> None:
        async with self.changed:
            self.closed = code
            self.changed.notify_all()

    async def until(self, predicate, timeout: float = 5.0) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(predicate), timeout)

    async def never(self, predicate, timeout: float = 0.2) -> bool:
        try:
            await self.until(predicate, timeout)
        except TimeoutError:
            return True
        return False

    def pings(self) -> list[str]:
        return [json.loads(f)["id"] for f in self.frames if f.startswith('{"type":"ping"')]

    def data(self) -> list[str]:
        return [f for f in self.frames if not f.startswith('{"type":"ping"')]


def outbox(wire: Wire, **overrides) -> Outbox:
    options = dict(
        max_frames=100, window_bytes=1_000_000, ping_interval=60.0, pong_timeout=60.0, send_timeout=5.0
    )
    options.update(overrides)
    return Outbox(wire.send, wire.close, **options)


@pytest.fixture
async def wire():
    return Wire()


async def running(box: Outbox) -> asyncio.Task:
    return asyncio.create_task(box.run())


async def test_frames_go_out_in_order(wire):
    box = outbox(wire)
    task = await running(box)
    for index in range(50):
        assert await box.put_event(f"e{index}")
        if index % 10 == 0:
            box.put_control(f"c{index}")
    expected = []
    for index in range(50):
        expected.append(f"e{index}")
        if index % 10 == 0:
            expected.append(f"c{index}")
    await wire.until(lambda: len(wire.data()) == len(expected))
    assert wire.data() == expected
    task.cancel()


async def test_the_window_stops_sending_until_a_pong_acknowledges(wire):
    box = outbox(wire, window_bytes=100)
    task = await running(box)
    for index in range(20):
        assert await box.put_event("x" * 19 + str(index % 10))  # 20 bytes each
    await wire.until(lambda: len(wire.data()) == 5)  # 100 bytes: the window is full
    assert len(wire.pings()) == 1, "a ping goes out at half the window"
    assert wire.frames.index(next(f for f in wire.frames if f.startswith('{"type":"ping"'))) == 3
    assert await wire.never(lambda: len(wire.data()) > 5), "nothing more before the pong"
    assert not box.pong("wrong-id")
    assert box.pong(wire.pings()[0])
    await wire.until(lambda: len(wire.data()) > 5)
    box.pong(wire.pings()[-1])
    await wire.until(lambda: len(wire.pings()) >= 2)
    for ping_id in wire.pings()[1:]:
        box.pong(ping_id)
    task.cancel()


async def test_an_unanswered_ping_closes_with_4001(wire):
    box = outbox(wire, ping_interval=0.05, pong_timeout=0.1)
    task = await running(box)
    await wire.until(lambda: wire.closed is not None)
    assert wire.closed == CLOSE_PING_TIMEOUT
    assert len(wire.pings()) == 1
    await asyncio.wait_for(task, 1)


async def test_hearing_from_the_client_postpones_the_idle_ping(wire):
    box = outbox(wire, ping_interval=0.2, pong_timeout=5)
    task = await running(box)
    await wire.until(lambda: len(wire.pings()) == 1)
    box.heard()
    box.pong(wire.pings()[0])
    await wire.until(lambda: len(wire.pings()) == 2)  # the next one comes an interval later
    assert wire.closed is None
    task.cancel()


async def test_events_wait_for_room_then_close_with_4008(wire):
    box = outbox(wire, max_frames=20, window_bytes=10, send_timeout=0.2)
    task = await running(box)
    results = [await box.put_event("0123456789")]  # fills the window at once
    await wire.until(lambda: len(wire.data()) == 1)
    while len(results) < 100 and results[-1]:
        results.append(await box.put_event("0123456789"))
    assert results[-1] is False, "an event that finds no room in time is refused"
    assert box.event_limit <= len(results) - 1 <= box.max_frames
    await wire.until(lambda: wire.closed is not None)
    assert wire.closed == CLOSE_SLOW_CLIENT
    assert await box.put_event("late") is False
    await asyncio.wait_for(task, 1)


async def test_events_leave_room_for_replies_and_a_full_queue_closes(wire):
    box = outbox(wire, max_frames=20, window_bytes=10, send_timeout=0.05)
    task = await running(box)
    assert await box.put_event("0123456789")
    await wire.until(lambda: len(wire.data()) == 1)
    for _ in range(box.event_limit):
        assert await box.put_event("e")
    box.put_control("reply")  # there is room for it
    assert box.close_code is None
    for _ in range(box.max_frames - box.event_limit):
        box.put_control("reply")
    await wire.until(lambda: wire.closed is not None)
    assert wire.closed == CLOSE_SLOW_CLIENT
    await asyncio.wait_for(task, 1)


async def test_a_waiting_event_goes_in_once_the_client_catches_up(wire):
    box = outbox(wire, max_frames=12, window_bytes=10, send_timeout=5)
    task = await running(box)
    assert await box.put_event("0123456789")
    await wire.until(lambda: len(wire.data()) == 1)
    while len(box._frames) < box.event_limit:
        assert await box.put_event("e")
    waiting = asyncio.create_task(box.put_event("waited"))
    await wire.until(lambda: len(wire.pings()) == 1)
    assert not waiting.done()
    wire.acknowledge = box
    box.pong(wire.pings()[0])
    assert await asyncio.wait_for(waiting, 5)
    await wire.until(lambda: wire.data()[-1] == "waited")
    assert box.close_code is None
    task.cancel()


async def test_a_failing_sender_closes_the_socket_with_1011(wire):
    async def broken(frame: str) -> None:
        raise ConnectionError("gone")

    box = Outbox(broken, wire.close, max_frames=10, window_bytes=100, ping_interval=60, pong_timeout=60, send_timeout=1)
    task = await running(box)
    assert await box.put_event("e")
    await wire.until(lambda: wire.closed is not None)
    assert wire.closed == 1011
    assert await box.put_event("after") is False
    await asyncio.wait_for(task, 1)
