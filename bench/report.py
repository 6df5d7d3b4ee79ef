"""The printed report of `make bench`: machine and settings, then one table.

A row is a metric with our figure, the reference's, the ratio, the target and
PASS / MISSED; rows without a target are printed as `info`.
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
    unit: str  # "ev/s", "ms" or "s"
    target: str = ""
    passed: Callable[[float, float], bool] | None = None  # (ours, ratio) -> met?
    needs_ratio: bool = False  # the target is on the ratio: no reference, no verdict

    @property
    def ratio(self) -> float | None:
        if self.ours is None or not self.reference:
            return None
        return self.ours / self.reference

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "info"
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


def load_note(before: float, after: float, cores: int) -> list[str]:
    """The 1-minute load average around the run (the bench itself adds about 2)."""
    line = f"Load:      1-min load average {before:.1f} before the run, {after:.1f} after ({cores} cores)"
    if before > 0.5 * cores:
        line += "\n           WARNING: the machine was already busy; figures are pessimistic and noisy"
    return [line]


def stacks() -> list[str]:
    return [
        f"Ours:      {_pkg('daphne')}, {_pkg('Django')}, {_pkg('channels')}, 1 process; SQLite file DB (WAL,",
        "           synchronous=NORMAL), in-memory channel layer, DEBUG=false, bearer-token auth; every event stored",
        f"Reference: {_pkg('uvicorn')} (h11, asyncio loop), {_pkg('fastapi')}, {_pkg('sse-starlette')}, 1 process;",
        "           same agent, router, Envelope and envelope_json; nothing stored",
        "Client:    one asyncio process, raw HTTP/1.1 (bench/sse_client.py), the same code for both servers;",
        "           servers run one at a time, never side by side",
    ]


def table(rows: list[Row]) -> list[str]:
    header = ("metric", "ours", "reference", "ours/ref", "target", "result")
    cells = [
        (
            row.metric,
            _fmt(row.ours, row.unit),
            _fmt(row.reference, row.unit),
            "—" if row.ratio is None else f"{row.ratio:.2f}",
            row.target or "—",
            row.verdict,
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]
    right = {1, 2, 3}

    def render(line: tuple[str, ...]) -> str:
        padded = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths)))
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return [render(header), rule, *(render(line) for line in cells)]


def summary(rows: list[Row]) -> str:
    missed = [row.metric.split(")")[0] + ")" for row in rows if row.verdict.startswith("MISSED")]
    if not missed:
        return "All targets met."
    return f"MISSED {len(missed)} target(s): {', '.join(missed)}"
