"""The printed report of `make bench`: machine and settings, then one table.

A row is a metric with our figure, the reference's, the ratio, the target and
PASS / MISSED (rows without a target are `info`), then our two workers' figure.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version


@dataclass
class Row:
    metric: str
    ours: float | None
    reference: float | None
    unit: str  # "ev/s", "ms", "s", "us" or "KB"
    target: str = ""
    passed: Callable[[float, float], bool] | None = None  # (ours, ratio) -> met?
    needs_ratio: bool = False  # the target is on the ratio: no reference, no verdict
    two_workers: float | None = None  # the same metric on two workers (PostgreSQL + Redis); no target
    two_workers_failed: bool = False  # that scenario failed on two workers (the report says why)
    measured: bool = True  # False: our single process was not run (--only), so no verdict

    @property
    def ratio(self) -> float | None:
        if self.ours is None or not self.reference:
            return None
        return self.ours / self.reference

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "info"
        if not self.measured:
            return "not measured"
        if self.ours is None:
            return "MISSED (no figure)"
        ratio = self.ratio
        if ratio is None and self.needs_ratio:
            return "n/a (no reference run)"
        return "PASS" if self.passed(self.ours, ratio if ratio is not None else 0.0) else "MISSED"


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ev/s":
        return f"{value:,.0f} ev/s"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "us":
        return f"{value:.0f} µs"
    if unit == "KB":
        return f"{value:.0f} KB"
    return f"{value:.3f} s"


def _pkg(name: str) -> str:
    try:
        return f"{name} {version(name)}"
    except PackageNotFoundError:
        return f"{name} (not installed)"


def machine() -> list[str]:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    lines = [
        f"Machine:   {usable} usable cores (os.cpu_count()={os.cpu_count()}){', ' + cpu if cpu else ''}",
        f"           {platform.system()} {platform.release()}, Python {platform.python_version()}",
    ]
    return lines


def load_note(before: float, after: float, cores: int, setups: dict[str, float] | None = None) -> list[str]:
    """The 1-minute load average around the run (the bench itself adds about 2), and
    before each setup started (`setups`: name -> load), since a run takes minutes."""
    lines = [f"Load:      1-min load average {before:.1f} before the run, {after:.1f} after ({cores} cores)"]
    if setups:
        # The 1-min average decays slowly: these include the bench's own previous setup.
        each = ", ".join(f"{name} {load:.1f}" for name, load in setups.items())
        lines.append(f"           when each setup started: {each} (includes the previous setup's load)")
    if before > 0.5 * cores:
        lines.append("           WARNING: the machine was already busy; figures are pessimistic and noisy")
    return lines


def stacks(two_workers: tuple[str, str] | None = None) -> list[str]:
    """The setups measured; `two_workers` is (PostgreSQL version, Redis version) when they ran."""
    lines = [
        f"Ours:      {_pkg('daphne')} (listen backlog 1024, TCP_NODELAY), {_pkg('Django')}, {_pkg('channels')},",
        "           1 process; SQLite file DB (WAL, synchronous=NORMAL), in-memory channel layer, DEBUG=false,",
        "           bearer-token auth; every event stored",
        f"Reference: {_pkg('uvicorn')} (h11, asyncio loop), {_pkg('fastapi')}, {_pkg('sse-starlette')}, 1 process;",
        "           pydantic envelopes from a detached producer task per request through an asyncio.Queue;",
        "           none of this project's code; the same frames byte for byte; nothing stored",
    ]
    if two_workers:
        postgres, redis = two_workers
        lines += [
            f"2 workers: ours as 2 Daphne processes (A, B) on one fresh PostgreSQL {postgres} database (psycopg pool)",
            f"           and Redis {redis} ({_pkg('channels-redis')}), same settings; all on this machine",
        ]
    return lines + [
        "Client:    one asyncio process, raw HTTP/1.1 (bench/sse_client.py), the same code for every server;",
        "           setups run one at a time, never side by side",
    ]


def table(rows: list[Row], two_workers: bool = False) -> list[str]:
    """The table; with `two_workers`, a last column of our two workers' figures (info)."""
    header: tuple[str, ...] = ("metric", "ours", "reference", "ours/ref", "target", "result")
    header += ("2 workers",) if two_workers else ()
    cells = [
        (
            row.metric,
            _fmt(row.ours, row.unit),
            _fmt(row.reference, row.unit),
            "—" if row.ratio is None else f"{row.ratio:.2f}",
            row.target or "—",
            row.verdict,
            *([("FAILED" if row.two_workers_failed else _fmt(row.two_workers, row.unit))] if two_workers else []),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]
    right = {1, 2, 3, 6}

    def render(line: tuple[str, ...]) -> str:
        padded = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths)))
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return [render(header), rule, *(render(line) for line in cells)]


def summary(rows: list[Row]) -> str:
    missed, scenario = [], ""
    for row in rows:
        name = row.metric.strip()
        if name.startswith("("):
            scenario = name.split(")")[0] + ")"
            name = scenario
        else:  # a row under a scenario's first row: "(3) message_chunk emit->receive p99"
            name = f"{scenario} {name}"
        if row.verdict.startswith("MISSED"):
            missed.append(name)
    if not any(row.verdict == "PASS" for row in rows) and not missed:
        return "No target measured (targets are on our single process; see --only)."
    if not missed:
        return "All targets met."
    return f"MISSED {len(missed)} target(s): {', '.join(missed)}"
