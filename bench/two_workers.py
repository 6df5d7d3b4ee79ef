"""The two-worker setup of `make bench`: workers A and B on one PostgreSQL database and Redis.

The same client and workloads as the single-process rows, plus (a'): a stream run on
A and followed live on B. Informational (no targets); skipped when services are down.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass, field

from . import scenarios
from .cluster import Services, TwoWorkers, Unavailable, check_services
from .figures import Figures
from .servers import Target
from .sse_client import HttpError

NAME = "2 workers"


@dataclass
class Outcome:
    figures: Figures | None = None
    services: Services | None = None
    skipped: str | None = None  # PostgreSQL/Redis unreachable: a note, not a failure
    invalid: str | None = None  # a worker did not start: no figures at all
    load_before: float | None = None
    server_errors: list[str] = field(default_factory=list)  # exception lines of the workers' logs

    @property
    def failed(self) -> bool:
        return bool(self.invalid or (self.figures and self.figures.failures))


def _say(text: str) -> None:
    print(f"[{NAME}] {text}", file=sys.stderr, flush=True)


class _Scenario:
    """One scenario's runs: on a failure (HTTP error, lost events) the scenario gets no
    figure, the reason is recorded, and the next scenario still runs."""

    def __init__(self, figures: Figures, key: str) -> None:
        self.figures, self.key = figures, key
        self.cpu = 0.0

    def __enter__(self) -> "_Scenario":
        self.cpu = time.process_time()
        return self

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None:
            if self.key in ("a", "a'", "c"):  # as for the single process
                self.figures.client_cpu[self.key] = time.process_time() - self.cpu
            return False
        if not isinstance(exc, (scenarios.Incomplete, HttpError)):
            return False
        self.figures.failures[self.key] = str(exc)
        _say(f"({self.key}) FAILED: {exc}")
        return True


async def measure(a: Target, b: Target, args: argparse.Namespace) -> Figures:
    figures = Figures()
    _say("warming up both workers")
    await scenarios.throughput(a, 200)
    await scenarios.throughput(b, 200)
    await scenarios.latency_spread([a, b], 10, 10, args.delay_ms)
    runs = range(args.repeat)

    with _Scenario(figures, "a"):
        throughput, stored = [], []
        for attempt in runs:
            _say(f"(a)/(b) one stream of {args.chunks} chunks run and read on A, run {attempt + 1}/{args.repeat}")
            result, live = await scenarios.throughput(a, args.chunks, keep_data=True)
            throughput.append(result)
            # Replayed on B: what A delivered live is in PostgreSQL, byte for byte.
            stored.append(await scenarios.verify_stored(b, live))
        figures.throughput, figures.stored_check = throughput, stored

    with _Scenario(figures, "a'"):
        crossing = []
        for attempt in runs:
            _say(f"(a') the same stream run on A, followed live on B, run {attempt + 1}/{args.repeat}")
            crossing.append(await scenarios.follow_across(a, b, args.chunks))
        figures.crossing = crossing

    with _Scenario(figures, "c"):
        latency = []
        for attempt in runs:
            _say(
                f"(c) {args.streams} streams x {args.stream_chunks} chunks, {args.delay_ms:g} ms apart, "
                f"half on A and half on B, run {attempt + 1}/{args.repeat}"
            )
            latency.append(await scenarios.latency_spread([a, b], args.streams, args.stream_chunks, args.delay_ms))
        figures.latency = latency

    if args.light_streams:
        with _Scenario(figures, "c, lighter"):
            light = []
            for attempt in runs:
                _say(f"(c) again with {args.light_streams} streams, run {attempt + 1}/{args.repeat}")
                light.append(
                    await scenarios.latency_spread([a, b], args.light_streams, args.stream_chunks, args.delay_ms)
                )
            figures.light = light

    with _Scenario(figures, "d"):
        _say(f"(d) storing a conversation of {args.replay_events} events through A, then replaying it on B")
        conversation_id = await scenarios.stored_conversation(a, args.replay_events)
        figures.replay = [await scenarios.replay(b, conversation_id, args.replay_events) for _ in runs]
    for key in figures.client_cpu:
        figures.client_cpu[key] /= args.repeat
    return figures


def run(args: argparse.Namespace) -> Outcome:
    """Check the services, start the workers, measure; never raises for a down service."""
    import psycopg

    try:
        services = check_services()
    except Unavailable as exc:
        return Outcome(skipped=f"PostgreSQL/Redis not reachable ({exc}); set DATABASE_URL and REDIS_URL")
    outcome = Outcome(services=services, load_before=os.getloadavg()[0])
    cluster = TwoWorkers(services)
    try:
        with cluster as (a, b):
            try:
                outcome.figures = asyncio.run(measure(a, b, args))
            finally:
                outcome.server_errors = cluster.server_errors()
    except psycopg.Error as exc:
        if outcome.figures is None:
            outcome.skipped = f"PostgreSQL refused the bench's database ({exc}); the role needs CREATEDB"
        else:
            _say(f"WARNING: could not drop the bench's database: {exc}")
    except (scenarios.Incomplete, HttpError, RuntimeError) as exc:
        outcome.invalid = str(exc)  # the warm-up failed, or a worker did not start
    return outcome
