"""One socket's outbound path: a bounded frame queue drained by one sender task,
with keep-alive pings that double as flow control.

Daphne never pushes back on a send (Twisted buffers whatever it is given), so
the sender keeps at most `window` bytes unacknowledged: a ping goes out after
every half window, and the client's pong says it has read everything before it.
Beyond the window, frames wait here; a full queue closes the socket (4008), a
ping unanswered in time closes it too (4001). A slow socket costs only itself.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable

from streaming.ws.protocol import CLOSE_PING_TIMEOUT, CLOSE_SERVER_ERROR, CLOSE_SLOW_CLIENT, control_frame

log = logging.getLogger(__name__)

SendText = Callable[[str], Awaitable[None]]
Close = Callable[[int], Awaitable[None]]


def _size(frame: str) -> int:
    return len(frame) if frame.isascii() else len(frame.encode("utf-8", "surrogatepass"))


class Outbox:
    def __init__(
        self,
        send_text: SendText,
        close: Close,
        *,
        max_frames: int,
        window_bytes: int,
        ping_interval: float,
        pong_timeout: float,
        send_timeout: float,
    ) -> None:
        self._send_text = send_text
        self._close = close
        self.max_frames = max(max_frames, 2)
        # Events leave room for replies, so a busy socket can still answer a ping.
        self.event_limit = self.max_frames - max(1, min(64, self.max_frames // 10))
        self.window = max(window_bytes, 2)
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.send_timeout = send_timeout
        self._frames: deque[str] = deque()
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._sent = 0  # bytes handed to the server so far
        self._acked = 0  # bytes the client has confirmed reading
        self._ping: tuple[str, int, float] | None = None  # (id, bytes sent before it, sent at)
        self._loop = asyncio.get_running_loop()
        self._heard_at = self._loop.time()
        self.close_code: int | None = None

    # --- producers -----------------------------------------------------------------
    def put_control(self, frame: str) -> None:
        """Queue a reply; never waits. A full queue means the client is not keeping up."""
        if self.close_code is not None:
            return
        if len(self._frames) >= self.max_frames:
            self.fail(CLOSE_SLOW_CLIENT, "no room for a reply")
            return
        self._append(frame)

    async def put_event(self, frame: str, wanted: Callable[[], bool] = lambda: True) -> bool:
        """Queue an event, waiting for room at most `send_timeout`.

        False, and nothing queued, once closing or when `wanted()` turns false
        meanwhile: on Python 3.11 a task's cancellation can be lost inside
        `asyncio.wait_for`, so producers are stopped by this check, not by it.
        """
        if len(self._frames) >= self.event_limit and self.close_code is None:
            deadline = self._loop.time() + self.send_timeout
            while len(self._frames) >= self.event_limit and self.close_code is None:
                self._room.clear()
                try:
                    async with asyncio.timeout_at(deadline):
                        await self._room.wait()
                except TimeoutError:
                    self.fail(CLOSE_SLOW_CLIENT, f"events waited {self.send_timeout:g}s for room")
        if self.close_code is not None or not wanted():
            return False
        self._append(frame)
        return True

    def _append(self, frame: str) -> None:
        self._frames.append(frame)
        self._wake.set()

    # --- what the client says ---------------------------------------------------------
    def heard(self) -> None:
        """The client sent something: it is alive, so idle pings can wait."""
        self._heard_at = self._loop.time()

    def pong(self, ping_id: str) -> bool:
        """Acknowledge the outstanding ping; False if no ping has this id."""
        if self._ping is None or not secrets.compare_digest(self._ping[0], ping_id):
            return False
        self._acked = self._ping[1]
        self._ping = None
        self._wake.set()
        return True

    def fail(self, code: int, why: str) -> None:
        if self.close_code is None:
            log.info("closing socket with %d: %s", code, why)
            self.close_code = code
            self._frames.clear()
            self._room.set()
            self._wake.set()

    # --- the sender task -----------------------------------------------------------------
    async def run(self) -> None:
        """Send frames in order within the window; ping; close on failure."""
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the socket sender failed")
            self.fail(CLOSE_SERVER_ERROR, "sender failed")
        await self._close(self.close_code or CLOSE_SERVER_ERROR)

    async def _run(self) -> None:
        while self.close_code is None:
            self._wake.clear()
            now = self._loop.time()
            if self._ping is not None and now - self._ping[2] >= self.pong_timeout:
                self.fail(CLOSE_PING_TIMEOUT, f"no pong within {self.pong_timeout:g}s")
                break
            if self._ping is None and (
                now - self._heard_at >= self.ping_interval or self._sent - self._acked >= self.window // 2
            ):
                await self._send_ping()
            if self._frames and self._sent - self._acked < self.window:
                await self._drain()
                continue
            await self._sleep(now)

    async def _drain(self) -> None:
        while self._frames and self._sent - self._acked < self.window and self.close_code is None:
            frame = self._frames.popleft()
            if len(self._frames) < self.event_limit:
                self._room.set()
            await self._send_text(frame)
            self._sent += _size(frame)
            if self._ping is None and self._sent - self._acked >= self.window // 2:
                await self._send_ping()

    async def _send_ping(self) -> None:
        ping_id = secrets.token_urlsafe(6)
        self._ping = (ping_id, self._sent, self._loop.time())
        await self._send_text(control_frame("ping", id=ping_id))

    async def _sleep(self, now: float) -> None:
        if self._ping is not None:
            deadline = self._ping[2] + self.pong_timeout
        else:
            deadline = self._heard_at + self.ping_interval
        try:
            async with asyncio.timeout(max(deadline - now, 0.001)):
                await self._wake.wait()
        except TimeoutError:
            pass
