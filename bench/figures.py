"""What one setup's measurements add up to, and the medians the report prints.

A `Figures` holds every run of every scenario for one setup (the reference, our
single process, or our two workers), with the server's CPU time per run and its
memory growth while streams were held; the helpers reduce them to one number each.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from . import scenarios


@dataclass
class Figures:
    throughput: list[scenarios.Throughput] = field(default_factory=list)  # (1)
    sequential: list[scenarios.Sequential] = field(default_factory=list)  # (2)
    latency: list[scenarios.Latency] = field(default_factory=list)  # (3)
    held: list[scenarios.Latency] = field(default_factory=list)  # (4)
    crossing: list[scenarios.Crossing] = field(default_factory=list)  # two workers only
    stored_check: list[scenarios.Throughput] = field(default_factory=list)
    replay: list[scenarios.Throughput] = field(default_factory=list)
    server_cpu: dict[str, list[float]] = field(default_factory=dict)  # scenario -> server CPU seconds, per run
    rss_growth: list[int] = field(default_factory=list)  # (4): peak RSS - RSS before, bytes, per run
    client_cpu: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # scenario ("1", "a'", ...) -> why it has no figure


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def events_per_s(f: Figures | None) -> float | None:
    return None if f is None else median([t.events_per_s for t in f.throughput])


def first_ms(f: Figures | None) -> float | None:
    """(1)'s time to first event (from the request's send)."""
    return None if f is None else median([t.first_event_s * 1000 for t in f.throughput])


def sequential_first_ms(f: Figures | None, p: float = 50) -> float | None:
    return None if f is None else median([s.first_event(p) * 1000 for s in f.sequential])


def concurrent_events_per_s(runs: list[scenarios.Latency] | None) -> float | None:
    return median([x.events_per_s for x in runs]) if runs else None


def latency_ms(runs: list[scenarios.Latency] | None, p: float | None) -> float | None:
    """Median over runs of one percentile (`None`: the maximum), in ms."""
    if not runs:
        return None
    return median([(x.samples[-1] if p is None else x.percentile(p)) * 1000 for x in runs])


def held_first_ms(runs: list[scenarios.Latency] | None, p: float = 50) -> float | None:
    return median([x.first_event(p) * 1000 for x in runs]) if runs else None


def rss_kb_per_stream(f: Figures | None, streams: int) -> float | None:
    """(4)'s first run: later runs reuse memory the first one left to the allocator."""
    if f is None or not f.rss_growth:
        return None
    return f.rss_growth[0] / streams / 1024


def cpu_per(f: Figures | None, scenario: str, counts: list[int] | int) -> float | None:
    """Median over runs of the server's CPU seconds per unit (an event, a stream)."""
    if f is None or not f.server_cpu.get(scenario):
        return None
    runs = f.server_cpu[scenario]
    each = counts if isinstance(counts, list) else [counts] * len(runs)
    return median([cpu / count for cpu, count in zip(runs, each) if count])


def cpu_us_per_event(f: Figures | None, scenario: str) -> float | None:
    if f is None:
        return None
    runs = {"1": f.throughput, "3": f.latency, "4": f.held}[scenario]
    value = cpu_per(f, scenario, [run.events for run in runs])
    return None if value is None else value * 1e6


def cpu_ms_per_stream(f: Figures | None, scenario: str, streams: int) -> float | None:
    value = cpu_per(f, scenario, streams)
    return None if value is None else value * 1000


def setup_cpu_ms(f: Figures | None, streams: int, events_per_stream: int) -> float | None:
    """(2)'s CPU per stream minus its events at (1)'s CPU per event: the stream's set-up."""
    per_stream, per_event = cpu_ms_per_stream(f, "2", streams), cpu_us_per_event(f, "1")
    if per_stream is None or per_event is None:
        return None
    return per_stream - events_per_stream * per_event / 1000


def seconds(runs: list[scenarios.Throughput] | None) -> float | None:
    return median([r.seconds for r in runs]) if runs else None


def latency_line(runs: list[scenarios.Latency]) -> str:
    return ", ".join(
        f"{x.events_per_s:,.0f} ev/s, p50 {x.percentile(50) * 1000:.1f} / p99 {x.percentile(99) * 1000:.1f} ms, "
        f"first event p50 {x.first_event(50) * 1000:.0f} ms, batch {x.seconds:.2f} s"
        for x in runs
    )
