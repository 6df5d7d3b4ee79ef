"""Admission control: whether a new run may start now, on any worker.

`Orchestrator.submit` wraps the claim that starts a new run in `admit(...)`;
an answer to a waiting question continues a run and is never checked, and
nothing already going is ever cut. Refusals, in this order:

- `overloaded` (503): this worker's event writer stayed behind (`overload`);
- `too_many_runs` (429): the principal's conversations running now, counted
  in the database (VALUECELL_MAX_RUNS_PER_PRINCIPAL). The rows are the truth
  on every worker: a run that ends, is reaped or whose worker died (its lease
  expired) stops counting with nothing to release and nothing to drift;
- `rate_limited` (429): runs admitted in the last window (VALUECELL_RUN_RATE),
  a sliding log per principal, and per client address for anonymous ones, in
  Django's cache (Redis across workers). Only admitted runs are logged.

The checks and the claim run under a short per-principal lock in the cache,
so two workers cannot both give away the last slot. If the cache is down,
admission falls back to the database count alone (and says so in the log).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

from conversations.db import database_sync_to_async
from conversations.ownership import Principal
from conversations.selectors import runs_in_progress
from streaming import metrics
from streaming.addresses import Address, rate_key
from streaming.errors import ErrorCode, ServiceError
from streaming.runtime.overload import WATCH

log = logging.getLogger(__name__)

LOCK_SECONDS = 10  # a lock left by a dead worker frees itself after this
LOCK_WAIT_SECONDS = 5.0
_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_RATE = re.compile(r"^(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*(s|sec|second|m|min|minute|h|hour|d|day)s?$")


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: float


@lru_cache(maxsize=8)
def parse_rate(text: str) -> Rate | None:
    """`60/min`, `10/30s`, `500/hour`, `2000/day`; empty, `off` or a count of 0: no limit."""
    text = text.strip().lower()
    if text in ("", "off", "none", "0"):
        return None
    match = _RATE.match(text)
    if match is None:
        raise ImproperlyConfigured(f"VALUECELL_RUN_RATE must look like '60/min' or '10/30s', not {text!r}")
    count, every, unit = match.groups()
    seconds = float(every or 1) * _UNITS[unit]
    if seconds <= 0:
        raise ImproperlyConfigured(f"VALUECELL_RUN_RATE has an empty window: {text!r}")
    return Rate(int(count), seconds) if int(count) > 0 else None


parse_rate(settings.VALUECELL_RUN_RATE)  # a malformed rate stops the worker at start, not at the first run


def principal_key(principal: Principal) -> str:
    if principal.user_id is not None:
        return f"user:{principal.user_id}"  # a token's user and the signed-in user are one principal
    return f"session:{principal.session_key or '-'}"


def refusal(code: ErrorCode, message: str, retry_after: float) -> ServiceError:
    seconds = max(1, math.ceil(retry_after))
    metrics.rejected(str(code))
    return ServiceError(code, message, headers={"Retry-After": str(seconds)}, retry_after=seconds)


@asynccontextmanager
async def admit(principal: Principal, client: Address | None = None) -> AsyncIterator[None]:
    """Refuse a new run beyond a limit (`ServiceError`), else let the caller claim it.

    The run counts toward the rate only if the body (the claim) succeeds.
    """
    threshold = settings.VALUECELL_OVERLOAD_BACKLOG
    if threshold > 0 and WATCH.overloaded(time.monotonic()):
        raise refusal(
            ErrorCode.OVERLOADED, "The server is overloaded; try again shortly.", WATCH.retry_after(threshold)
        )
    max_runs = settings.VALUECELL_MAX_RUNS_PER_PRINCIPAL
    rate = parse_rate(settings.VALUECELL_RUN_RATE)
    if max_runs <= 0 and rate is None:
        yield
        return
    keys = [principal_key(principal)]
    if principal.is_anonymous and client is not None and rate is not None:
        keys.append(f"address:{rate_key(client)}")  # new sessions cost nothing to make
    async with _locked(keys):
        now = time.time()
        running, history = await _read(principal, keys, max_runs > 0, rate is not None)
        logs = _check(keys, running, history, max_runs, rate, now)
        yield
        if rate is not None and history is not None:
            await _write({key: [*times, now] for key, times in logs.items()}, rate)


def _check(
    keys: list[str],
    running: int,
    history: dict[str, list[float]] | None,
    max_runs: int,
    rate: Rate | None,
    now: float,
) -> dict[str, list[float]]:
    """The rate logs trimmed to the window, or the refusal. When both limits refuse,
    Retry-After is the later of the two."""
    logs: dict[str, list[float]] = {}
    wait, limited_by = 0.0, ""
    if rate is not None and history is not None:
        for key in keys:
            times = [t for t in history.get(key, ()) if t > now - rate.seconds]
            logs[key] = times
            if len(times) >= rate.count and times[-rate.count] + rate.seconds - now > wait:
                wait, limited_by = times[-rate.count] + rate.seconds - now, key
    if max_runs > 0 and running >= max_runs:
        raise refusal(
            ErrorCode.TOO_MANY_RUNS,
            f"{running} of your runs are in progress, the most allowed at once is {max_runs}; wait for one to end.",
            wait,
        )
    if limited_by:
        assert rate is not None
        whose = "this address's" if limited_by.startswith("address:") else "your"
        raise refusal(
            ErrorCode.RATE_LIMITED,
            f"Too many new runs: {whose} limit is {rate.count} per {rate.seconds:g} s; try again in {math.ceil(wait)} s.",
            wait,
        )
    return logs


def _rate_key(key: str) -> str:
    return f"vc:runs:{key}"


def _lock_key(key: str) -> str:
    return f"vc:admit:{key}"


def _read_sync(principal: Principal, keys: list[str], count: bool, rates: bool) -> tuple[int, dict | None]:
    running = runs_in_progress(principal) if count else 0
    if not rates:
        return running, None
    try:
        stored = cache.get_many([_rate_key(key) for key in keys])
    except Exception:
        log.warning("the cache is unreachable: run rates are not checked", exc_info=True)
        return running, None
    return running, {key: stored.get(_rate_key(key)) or [] for key in keys}


# Off the event loop, and off any request's own thread: one hop for the cache and the count.
_read = database_sync_to_async(_read_sync, thread_sensitive=False)


async def _write(logs: dict[str, list[float]], rate: Rate) -> None:
    try:
        await sync_to_async(cache.set_many, thread_sensitive=False)(
            {_rate_key(key): times for key, times in logs.items()}, math.ceil(rate.seconds) + 1
        )
    except Exception:
        log.warning("the cache is unreachable: this run was not counted toward the rate", exc_info=True)


@asynccontextmanager
async def _locked(keys: Iterable[str]) -> AsyncIterator[None]:
    """Hold each key's lock (in order: no two admissions wait on each other crosswise)."""
    held: list[str] = []
    try:
        for key in sorted(keys):
            if await _acquire(_lock_key(key)):
                held.append(_lock_key(key))
        yield
    finally:
        if held:
            try:
                await sync_to_async(cache.delete_many, thread_sensitive=False)(held)
            except Exception:
                log.warning("could not release admission locks %s; they expire in %d s", held, LOCK_SECONDS)


async def _acquire(lock: str) -> bool:
    """Take the lock, waiting while another admission of the same principal holds it.

    False when it could not be had in time (the cache is down or a holder hangs):
    admission then goes on without it rather than refusing everyone.
    """
    add = sync_to_async(cache.add, thread_sensitive=False)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    pause = 0.005
    while True:
        try:
            if await add(lock, 1, LOCK_SECONDS):
                return True
        except Exception:
            log.warning("the cache is unreachable: admission goes on unlocked", exc_info=True)
            return False
        if time.monotonic() >= deadline:
            log.warning("admission lock %s still held after %.0f s; going on without it", lock, LOCK_WAIT_SECONDS)
            return False
        await asyncio.sleep(pause)  # the holder is between its check and its claim: milliseconds
        pause = min(pause * 2, 0.1)
