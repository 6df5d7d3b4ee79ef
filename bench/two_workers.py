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
from dataclasses import dataclass

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
    invalid: str | None = None  # a worker failed or a stream lost events: the run is void
    load_before: float | None = None


def _say(text: str) -> None:
    print(f"[{NAME}] {text}", file=sys.stderr, flush=True)


async def measure(a: Target, b: Target, args: argparse.Namespace) -> Figures:
    figures = Figures()
    _say("warming up both workers")
    await scenarios.throughput(a, 200)
    await scenarios.throughput(b, 200)
    await scenarios.latency_spread([a, b], 10, 10, args.delay_ms)

    cpu = time.process_time()
    for attempt in range(args.repeat):
        _say(f"(a)/(b) one stream of {args.chunks} chunks run and read on A, run {attempt + 1}/{args.repeat}")
        result, live = await scenarios.throughput(a, args.chunks, keep_data=True)
        figures.throughput.append(result)
        # Replayed on B: what A delivered live is in PostgreSQL, byte for byte.
        figures.stored_check.append(await scenarios.verify_stored(b, live))
    figures.client_cpu["a"] = (time.process_time() - cpu) / args.repeat

    cpu = time.process_time()
    for attempt in range(args.repeat):
        _say(f"(a') the same stream run on A, followed live on B, run {attempt + 1}/{args.repeat}")
        figures.crossing.append(await scenarios.follow_across(a, b, args.chunks))
    figures.client_cpu["a'"] = (time.process_time() - cpu) / args.repeat

    cpu = time.process_time()
    for attempt in range(args.repeat):
        _say(
            f"(c) {args.streams} streams x {args.stream_chunks} chunks, {args.delay_ms:g} ms apart, "
            f"half on A and half on B, run {attempt + 1}/{args.repeat}"
        )
        figures.latency.append(
            await scenarios.latency_spread([a, b], args.streams, args.stream_chunks, args.delay_ms)
        )
    figures.client_cpu["c"] = (time.process_time() - cpu) / args.repeat

    for attempt in range(args.repeat if args.light_streams else 0):
        _say(f"(c) again with {args.light_streams} streams, run {attempt + 1}/{args.repeat}")
        figures.light.append(
            await scenarios.latency_spread([a, b], args.light_streams, args.stream_chunks, args.delay_ms)
        )

    _say(f"(d) storing a conversation of {args.replay_events} events through A, then replaying it on B")
    conversation_id = await scenarios.stored_conversation(a, args.replay_events)
    for _ in range(args.repeat):
        figures.replay.append(await scenarios.replay(b, conversation_id, args.replay_events))
    return figures


def run(args: argparse.Namespace) -> Outcome:
    """Check the services, start the workers, measure; never raises for a down service."""
    import psycopg

    try:
        services = check_services()
    except Unavailable as exc:
        return Outcome(skipped=f"PostgreSQL/Redis not reachable ({exc}); set DATABASE_URL and REDIS_URL")
    outcome = Outcome(services=services, load_before=os.getloadavg()[0])
    try:
        with TwoWorkers(services) as (a, b):
            outcome.figures = asyncio.run(measure(a, b, args))
    except psycopg.Error as exc:
        if outcome.figures is None:
            outcome.skipped = f"PostgreSQL refused the bench's database ({exc}); the role needs CREATEDB"
        else:
            _say(f"WARNING: could not drop the bench's database: {exc}")
    except (scenarios.Incomplete, HttpError, RuntimeError) as exc:
        outcome.invalid = str(exc)
    return outcome
