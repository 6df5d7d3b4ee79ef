"""What one setup's measurements add up to, and the medians the report prints.

A `Figures` holds every run of every scenario for one setup (the reference, our
single process, or our two workers); the helpers reduce them to one number each.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from . import scenarios


@dataclass
class Figures:
    throughput: list[scenarios.Throughput] = field(default_factory=list)
    crossing: list[scenarios.Crossing] = field(default_factory=list)  # two workers only
    latency: list[scenarios.Latency] = field(default_factory=list)
    light: list[scenarios.Latency] = field(default_factory=list)
    stored_check: list[scenarios.Throughput] = field(default_factory=list)
    replay: list[scenarios.Throughput] = field(default_factory=list)
    client_cpu: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # scenario ("a", "c", ...) -> why it has no figure


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def events_per_s(f: Figures | None) -> float | None:
    return None if f is None else median([t.events_per_s for t in f.throughput])


def first_ms(f: Figures | None) -> float | None:
    return None if f is None else median([t.first_event_s * 1000 for t in f.throughput])


def latency_ms(runs: list[scenarios.Latency] | None, p: float | None) -> float | None:
    """Median over runs of one percentile (`None`: the maximum), in ms."""
    if not runs:
        return None
    return median([(x.samples[-1] if p is None else x.percentile(p)) * 1000 for x in runs])


def seconds(runs: list[scenarios.Throughput] | None) -> float | None:
    return median([r.seconds for r in runs]) if runs else None


def latency_line(runs: list[scenarios.Latency], batch: bool = True) -> str:
    return ", ".join(
        f"p50 {x.percentile(50) * 1000:.1f} / p99 {x.percentile(99) * 1000:.1f} ms"
        + (f", batch {x.seconds:.2f} s" if batch else "")
        for x in runs
    )
