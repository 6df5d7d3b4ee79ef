"""`python -m bench.run` (`make bench`): measure ours and the reference, print one table.

Runs the reference (uvicorn), our Daphne, then our two workers on PostgreSQL +
Redis, one at a time, each warmed up and measured `--repeat` times (medians
reported), with each server's CPU time and memory. Exit 0 even when a target is
missed (it is a report) or the services of the two workers are down; exit 1
only when a server did not run, answered an error or lost events (a failed
two-worker scenario included: it is printed FAILED).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from . import scenarios, two_workers
from .figures import (
    Figures,
    concurrent_events_per_s,
    cpu_ms_per_stream,
    cpu_us_per_event,
    events_per_s,
    first_ms,
    held_first_ms,
    latency_line,
    latency_ms,
    median,
    rss_kb_per_stream,
    seconds,
    sequential_first_ms,
    setup_cpu_ms,
)
from .measure import SCENARIOS, Measurement, Profiler
from .report import Row, load_note, machine, stacks, summary, table
from .scenarios import LIFECYCLE_EVENTS
from .servers import OurServer, ReferenceServer
from .sse_client import HttpError

# The targets, each a ratio ours / reference measured in the same run.
TARGET_EVENTS_RATIO = 1.0  # (1), (3): events/s at least the reference's
TARGET_SEQUENTIAL_RATIO = 3.0  # (2): first event at most 3x
TARGET_P99_RATIO = 2.0  # (3): message_chunk p99 at most 2x
TARGET_HELD_RATIO = 2.0  # (4): first event and RSS per stream at most 2x
TARGET_REPLAY_S = 1.0  # (d), from issue #2
SETUPS = ("reference", "ours", "two-workers")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--chunks", type=int, default=20_000, help="(1): chunks of the one fast stream")
    add("--sequential", type=int, default=100, help="(2): streams one after another")
    add("--sequential-chunks", type=int, default=5, help="(2): chunks per stream")
    add("--streams", type=int, default=200, help="(3): streams at once")
    add("--stream-chunks", type=int, default=200, help="(3): chunks per stream")
    add("--delay-ms", type=float, default=5.0, help="(3): delay between chunks")
    add("--held", type=int, default=1000, help="(4): streams held open at once")
    add("--held-chunks", type=int, default=20, help="(4): chunks per stream")
    add("--held-delay-ms", type=float, default=500.0, help="(4): delay between chunks")
    add("--replay-events", type=int, default=10_000, help="(d): stored events to replay")
    add("--repeat", type=int, default=3, help="runs per measurement; medians are reported")
    add("--only", choices=SETUPS, action="append",
        help="measure this setup only (repeatable); two-workers needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    add("--scenario", choices=SCENARIOS, action="append", help="run this scenario only (repeatable)")
    add("--json", metavar="PATH", type=Path, help="also write the table's figures to PATH as JSON")
    add("--py-spy", metavar="DIR", type=Path,
        help="record our single process with py-spy (on PATH) during each scenario's first run; stacks go to DIR")
    return parser.parse_args(argv)  # fmt: skip


def rows(
    ours: Figures | None, ref: Figures | None, args: argparse.Namespace, two: Figures | None = None
) -> list[Row]:
    """The table: targets and verdicts on our single process; `two` (our two workers) is a last, info column."""
    measured = ours is not None
    failed = lambda key: two is not None and key in two.failures  # noqa: E731
    per_stream = args.sequential_chunks + LIFECYCLE_EVENTS

    def row(metric: str, get, unit: str, key: str, target: str = "", passed=None, **kw) -> Row:
        return Row(metric, get(ours), get(ref), unit, target, passed, two_workers=get(two),
                   two_workers_failed=failed(key), measured=measured, **kw)  # fmt: skip

    at_least = lambda limit: lambda v, r: r >= limit  # noqa: E731
    at_most = lambda limit: lambda v, r: r <= limit  # noqa: E731
    table = [
        row(f"(1) 1 stream of {args.chunks} chunks: events/s", events_per_s, "ev/s", "1",
            f"ratio >= {TARGET_EVENTS_RATIO:g}", at_least(TARGET_EVENTS_RATIO), needs_ratio=True),
        row("    first event of that stream", first_ms, "ms", "1"),
        row("    server CPU per event", lambda f: cpu_us_per_event(f, "1"), "us", "1"),
    ]  # fmt: skip
    if two is not None:
        crossing, lost = two.crossing, failed("a'")
        table += [
            Row("    (a') the same, run on A and followed live on B", None, None, "ev/s",
                two_workers=median([x.events_per_s for x in crossing]), two_workers_failed=lost),
            Row("         B's last event after A's last event", None, None, "ms",
                two_workers=median([x.lag_s * 1000 for x in crossing]), two_workers_failed=lost),
            Row("         B's first event after B's request", None, None, "ms",
                two_workers=median([x.follower.first_event_s * 1000 for x in crossing]), two_workers_failed=lost),
        ]  # fmt: skip
    c = f"{args.streams} streams at once, {args.stream_chunks} chunks {args.delay_ms:g} ms apart"
    h = f"{args.held} streams held open, {args.held_chunks} chunks {args.held_delay_ms:g} ms apart"
    table += [
        row(f"(2) {args.sequential} streams one after another, {args.sequential_chunks} chunks: first event p50",
            sequential_first_ms, "ms", "2", f"ratio <= {TARGET_SEQUENTIAL_RATIO:g}",
            at_most(TARGET_SEQUENTIAL_RATIO), needs_ratio=True),
        row("    first event p99", lambda f: sequential_first_ms(f, 99), "ms", "2"),
        row(f"    server CPU per stream (set-up and its {per_stream} events)",
            lambda f: cpu_ms_per_stream(f, "2", args.sequential), "ms", "2"),
        row(f"    of which set-up (less {per_stream} x (1)'s CPU per event)",
            lambda f: setup_cpu_ms(f, args.sequential, per_stream), "ms", "2"),
        row(f"(3) {c}: events/s", lambda f: concurrent_events_per_s(f and f.latency), "ev/s", "3",
            f"ratio >= {TARGET_EVENTS_RATIO:g}", at_least(TARGET_EVENTS_RATIO), needs_ratio=True),
        row("    message_chunk emit->receive p99", lambda f: latency_ms(f and f.latency, 99), "ms", "3",
            f"ratio <= {TARGET_P99_RATIO:g}", at_most(TARGET_P99_RATIO), needs_ratio=True),
        row("    emit->receive p50", lambda f: latency_ms(f and f.latency, 50), "ms", "3"),
        row("    server CPU per event (set-ups included)", lambda f: cpu_us_per_event(f, "3"), "us", "3"),
        row(f"(4) {h}: first event p50", lambda f: held_first_ms(f and f.held), "ms", "4",
            f"ratio <= {TARGET_HELD_RATIO:g}", at_most(TARGET_HELD_RATIO), needs_ratio=True),
        row("    peak RSS growth per stream (first run)", lambda f: rss_kb_per_stream(f, args.held), "KB", "4",
            f"ratio <= {TARGET_HELD_RATIO:g}", at_most(TARGET_HELD_RATIO), needs_ratio=True),
        row("    first event p99", lambda f: held_first_ms(f and f.held, 99), "ms", "4"),
        row("    server CPU per stream (set-up and its events)",
            lambda f: cpu_ms_per_stream(f, "4", args.held), "ms", "4"),
        row(f"(d) replay {args.replay_events} stored events (Last-Event-ID: 0)",
            lambda f: seconds(f and f.replay), "s", "d", f"< {TARGET_REPLAY_S:g} s",
            lambda v, r: v < TARGET_REPLAY_S),
        row("    persistence check: replay of the (1) stream", lambda f: seconds(f and f.stored_check), "s", "1"),
    ]  # fmt: skip
    return table


def details(name: str, figures: Figures | None) -> list[str]:
    """Every run's figures, so the spread behind each median is visible."""
    if figures is None:
        return []
    lines = []
    if figures.throughput:
        lines.append(f"  {name} (1): " + ", ".join(
            f"{t.events_per_s:,.0f} ev/s ({t.seconds:.3f} s, first {t.first_event_s * 1000:.1f} ms)"
            for t in figures.throughput
        ))  # fmt: skip
    if figures.crossing:
        lines.append(f"  {name} (a'), read on B (on A; B's lag): " + ", ".join(
            f"{x.events_per_s:,.0f} ev/s ({x.origin.events_per_s:,.0f}; {x.lag_s * 1000:.0f} ms)"
            for x in figures.crossing
        ))  # fmt: skip
    if figures.sequential:
        lines.append(f"  {name} (2): first event " + ", ".join(
            f"p50 {s.first_event(50) * 1000:.1f} / p99 {s.first_event(99) * 1000:.1f} ms" for s in figures.sequential
        ))  # fmt: skip
    if figures.latency:
        lines.append(f"  {name} (3): " + latency_line(figures.latency))
    if figures.held:
        lines.append(f"  {name} (4): " + latency_line(figures.held))
        growth = ", ".join(f"{g / 1024 / 1024:.1f} MB" for g in figures.rss_growth)
        lines.append(f"  {name} (4) peak RSS growth: {growth}")
    if figures.replay:
        lines.append(f"  {name} (d): " + ", ".join(f"{r.seconds:.3f} s" for r in figures.replay))
    cpu = "; ".join(
        f"({k}) " + ", ".join(f"{v:.2f}" for v in values) + " s" for k, values in figures.server_cpu.items()
    )
    lines.append(f"  {name} server CPU per run: {cpu}")
    client = ", ".join(f"({k}) {v:.2f} s" for k, v in figures.client_cpu.items())
    lines.append(f"  {name} client CPU per run: {client}")
    return lines


def workloads(args: argparse.Namespace) -> list[str]:
    offered = args.streams * 1000 / args.delay_ms if args.delay_ms else float("inf")
    return [
        f"Scenarios: (1) 1 stream 'k={args.chunks} delay_ms=0'; (2) {args.sequential} streams one after another, "
        f"'k={args.sequential_chunks} delay_ms=0';",
        f"           (3) {args.streams} streams at once 'k={args.stream_chunks} delay_ms={args.delay_ms:g}' "
        f"(about {offered:,.0f} events/s offered);",
        f"           (4) {args.held} streams at once 'k={args.held_chunks} delay_ms={args.held_delay_ms:g}' "
        "(first event from the connection attempt);",
        f"           (d) replay of {args.replay_events} stored events; median of {args.repeat} runs after a warm-up;",
        "           server CPU = the server process's user+sys time (/proc) around each run; RSS sampled every 20 ms",
        "           2 workers: streams alternate A/B, (1) is read on A and replayed on B, (a') run on A and",
        "           followed from B with ?after=0; CPU and RSS are both workers' (not PostgreSQL's or Redis')",
    ]


def two_workers_note(outcome: two_workers.Outcome | None) -> list[str]:
    if outcome is None:
        return ["2 workers: not measured (--only)"]
    if outcome.skipped:
        return [f"2 workers: SKIPPED: {outcome.skipped}"]
    if outcome.invalid:
        return [f"2 workers: INVALID RUN: {outcome.invalid}"]
    lines = ["2 workers: info only, no targets; every stream checked like the single process's"]
    assert outcome.figures is not None
    lines += [f"           ({key}) FAILED: {why}" for key, why in outcome.figures.failures.items()]
    if outcome.figures.failures:
        lines += [f"           workers' log: {line}" for line in outcome.server_errors[:5]]
    return lines


def two_workers_verdict(outcome: two_workers.Outcome | None) -> str:
    if outcome is None or not outcome.failed:
        return ""
    if outcome.invalid or outcome.figures is None:
        return "2 workers: INVALID RUN (exit 1)."
    return f"2 workers: FAILED {', '.join(f'({key})' for key in outcome.figures.failures)} (exit 1)."


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    selected = set(args.only or SETUPS)
    results: dict[str, Figures] = {}
    load_before = os.getloadavg()[0]
    loads: dict[str, float] = {}
    try:
        if "reference" in selected:
            loads["reference"] = os.getloadavg()[0]
            reference = ReferenceServer()
            with reference as target:
                assert reference.pid is not None
                measurement = Measurement("reference", [target], [reference.pid], args, stores=False)
                results["reference"] = asyncio.run(measurement.all())
        if "ours" in selected:
            loads["ours"] = os.getloadavg()[0]
            server = OurServer()
            with server as target:
                assert server.pid is not None
                profiler = Profiler(args.py_spy, server.pid)
                measurement = Measurement("ours", [target], [server.pid], args, profiler=profiler)
                results["ours"] = asyncio.run(measurement.all())
    except (scenarios.Incomplete, HttpError, RuntimeError) as exc:
        print(f"INVALID RUN: {exc}", flush=True)
        return 1
    outcome = two_workers.run(args) if "two-workers" in selected else None
    if outcome is not None and outcome.load_before is not None:
        loads[two_workers.NAME] = outcome.load_before
    ours, ref, two = results.get("ours"), results.get("reference"), outcome and outcome.figures
    table_rows = rows(ours, ref, args, two)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    versions = (outcome.services.postgres_version, outcome.services.redis_version) if two else None
    header = [
        *machine(), *load_note(load_before, os.getloadavg()[0], cores, loads), *stacks(versions), *workloads(args)
    ]  # fmt: skip
    per_run = ["Per run:", *details("ours", ours), *details("reference", ref), *details(two_workers.NAME, two)]
    report = [*table(table_rows, two_workers=two is not None), *two_workers_note(outcome)]
    verdicts = list(filter(None, [summary(table_rows), two_workers_verdict(outcome)]))
    print("\n".join(["", *header, "", *report, "", *per_run, "", *verdicts]))
    if args.json:
        figures = [
            {"metric": r.metric.strip(), "ours": r.ours, "reference": r.reference, "unit": r.unit,
             "ratio": r.ratio, "target": r.target or None, "result": r.verdict, "two_workers": r.two_workers,
             "two_workers_failed": r.two_workers_failed}
            for r in table_rows
        ]  # fmt: skip
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        notes = {"two_workers": two_workers_note(outcome), "load": {"before": load_before, **loads}}
        args.json.write_text(json.dumps({"args": settings, "rows": figures, "notes": notes}, indent=2))
    return 1 if outcome is not None and outcome.failed else 0


if __name__ == "__main__":
    sys.exit(main())
