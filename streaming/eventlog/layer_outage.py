"""Channel-layer outages, logged once: a warning when the layer starts failing,
one when it works again (per process).

While Redis is down every receive loop, publish and group join fails, again
and again: logged one by one, a 5 s outage left 847 tracebacks. Each failure
is reported here instead; nothing is lost meanwhile (followers re-read the
store, runs find stored answers), so one line at each end is what an operator
needs. channels_redis' own per-second tracebacks go through `OutageLogFilter`.
"""

from __future__ import annotations

import asyncio
import logging
import time

log = logging.getLogger(__name__)


class LayerOutage:
    """One process's view of the channel layer: failing since when, and how often."""

    QUIET_SECONDS = 2.0
    """An outage is over once the layer has worked this long with no new failure: the
    first operations after Redis returns may still meet connections it closed."""

    def __init__(self) -> None:
        self.since: float | None = None  # monotonic time of the first failure of the outage in progress
        self.failures = 0
        self._recovered_at: float | None = None  # it worked again; the end is confirmed after QUIET_SECONDS
        self._ending: asyncio.TimerHandle | None = None

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def failed(self, what: str, exc: BaseException | None = None) -> None:
        """A layer operation failed (`what`: "publishing to conv-…", …)."""
        self.failures += 1
        if self.since is not None:
            if self._ending is not None:  # not over after all: a stale connection, or Redis again
                self._ending.cancel()
                self._ending, self._recovered_at = None, None
            log.debug("%s failed during the channel layer outage", what, exc_info=exc)
            return
        self.since = time.monotonic()
        reason = f"{type(exc).__name__}: {exc}" if exc is not None else "unknown error"
        log.warning(
            "the channel layer is failing (%s: %s); live delivery waits, followers read the store meanwhile",
            what,
            reason,
        )

    def worked(self) -> None:
        """A message was published or received: the outage in progress, if any, ends
        (logged once the layer has kept working for QUIET_SECONDS).

        (Not a group join: channels_redis' pub/sub layer answers one for a group
        its worker already listens to without asking Redis.)"""
        if self.since is None or self._ending is not None:
            return
        self._recovered_at = time.monotonic()
        try:
            self._ending = asyncio.get_running_loop().call_later(self.QUIET_SECONDS, self._end)
        except RuntimeError:  # no event loop here: nothing to wait with
            self._end()

    def _end(self) -> None:
        if self.since is None:
            return
        recovered = self._recovered_at if self._recovered_at is not None else time.monotonic()
        lasted, failures = recovered - self.since, self.failures
        self.since, self.failures, self._recovered_at, self._ending = None, 0, None, None
        log.warning("the channel layer works again after %.1fs (%d operations failed meanwhile)", lasted, failures)


layer_outage = LayerOutage()


class OutageLogFilter(logging.Filter):
    """For channels_redis' loggers: its tracebacks (a failing receive task logs one
    a second) count as failures of the outage instead of being logged each."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info is None or record.exc_info[1] is None:
            return True
        layer_outage.failed(f"channels_redis ({record.getMessage()})", record.exc_info[1])
        return False


class LayerTaskErrorFilter(logging.Filter):
    """For asyncio's logger: a channels_redis task that died with an outage
    ("Task exception was never retrieved" from one of its internal tasks) is
    reported when the task is collected, often after the outage ended: it is
    not a new failure, and not worth a traceback (logged at debug). Every other
    asyncio error is logged as ever."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info is None or record.exc_info[1] is None:
            return True
        message = record.getMessage()
        if "RedisChannelLayer" not in message and "RedisPubSub" not in message and "channels_redis" not in message:
            return True
        log.debug("a channels_redis task died: %s", message, exc_info=record.exc_info)
        return False
