"""Overload: this worker's event writer has stayed behind for over a second.

`watch_backlog` (a worker duty, see `maintenance`) samples the writer's backlog
ten times a second, publishes it as `valuecell_event_writer_backlog`, and keeps
`WATCH` up to date; admission refuses new runs while `WATCH.overloaded()`.
A momentary burst is not overload: only a backlog above the threshold at every
sample for longer than `HOLD` seconds is.
"""

from __future__ import annotations

import asyncio
import math
import time

from django.conf import settings

from streaming import metrics
from streaming.eventlog.writer import get_writer

HOLD = 1.0
INTERVAL = 0.1
MAX_RETRY_AFTER = 30


class BacklogWatch:
    def __init__(self) -> None:
        self.backlog = 0
        self.above_since: float | None = None
        self.drain_per_second = 0.0  # events stored per second, smoothed
        self._last: tuple[float, int] | None = None  # (when, events written by then)

    def sample(self, backlog: int, written: int, now: float, threshold: int) -> None:
        self.backlog = backlog
        if threshold > 0 and backlog > threshold:
            if self.above_since is None:
                self.above_since = now
        else:
            self.above_since = None
        if self._last is not None and now > self._last[0]:
            rate = (written - self._last[1]) / (now - self._last[0])
            self.drain_per_second = 0.7 * self.drain_per_second + 0.3 * rate
        self._last = (now, written)

    def overloaded(self, now: float) -> bool:
        return self.above_since is not None and now - self.above_since > HOLD

    def retry_after(self, threshold: int) -> int:
        """Whole seconds until the backlog is likely back under the threshold (at least 1)."""
        excess = max(0, self.backlog - threshold)
        if self.drain_per_second <= 0:
            return MAX_RETRY_AFTER if excess else 1
        return max(1, min(MAX_RETRY_AFTER, math.ceil(excess / self.drain_per_second)))


WATCH = BacklogWatch()


async def watch_backlog() -> None:
    """Sample this event loop's writer for as long as the worker lives."""
    writer = get_writer()
    while True:
        backlog = writer.backlog
        metrics.backlog(backlog)
        WATCH.sample(backlog, writer.written, time.monotonic(), settings.VALUECELL_OVERLOAD_BACKLOG)
        await asyncio.sleep(INTERVAL)
