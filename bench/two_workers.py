"""The two-worker setup of `make bench`: workers A and B on one PostgreSQL database and Redis.

The same client and scenarios as the single process (streams alternate between A
and B), plus (a'): a stream run on A and followed live on B. Informational (no
targets); skipped when services are down.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass, field

from . import scenarios
from .cluster import Services, TwoWorkers, Unavailable, check_services
from .figures import Figures
from .measure import Measurement
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

    def __enter__(self) -> "_Scenario":
        return self

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None or not isinstance(exc, (scenarios.Incomplete, HttpError)):
            return False
        self.figures.failures[self.key] = str(exc)
        _say(f"({self.key}) FAILED: {exc}")
        return True


async def measure(a: Target, b: Target, pids: list[int], args: argparse.Namespace) -> Figures:
    measurement = Measurement(NAME, [a, b], pids, args)
    figures = measurement.figures
    measurement.guard = lambda key: _Scenario(figures, key)

    async def crossing() -> None:
        with _Scenario(figures, "a'"):
            runs = []
            for attempt in range(args.repeat):
                _say(f"(a') one stream of {args.chunks} chunks run on A, followed live on B, run {attempt + 1}")
                runs.append(await scenarios.follow_across(a, b, args.chunks))
            figures.crossing = runs

    return await measurement.all(between=crossing)


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
                outcome.figures = asyncio.run(measure(a, b, cluster.pids, args))
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
