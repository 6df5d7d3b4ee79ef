"""`python -m bench.run` (`make bench`): measure ours and the reference, print one table.

Runs the reference (uvicorn), our Daphne, then our two workers on PostgreSQL +
Redis, one at a time, each warmed up and measured `--repeat` times (medians
reported). Exit 0 even when a target is missed (it is a report) or the services
of the two workers are down; exit 1 only when a server did not run, answered an
error or lost events (a failed two-worker scenario included: it is printed FAILED).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import scenarios, two_workers
from .figures import Figures, events_per_s, first_ms, latency_line, latency_ms, median, seconds
from .report import Row, load_note, machine, stacks, summary, table
from .servers import OurServer, ReferenceServer, Target
from .sse_client import HttpError

TARGET_RATIO = 0.5
TARGET_FIRST_EVENT_MS = 20.0
TARGET_P99_MS = 15.0
TARGET_REPLAY_S = 1.0
SETUPS = ("reference", "ours", "two-workers")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=20_000, help="(a)/(b): chunks of the one fast stream")
    parser.add_argument("--streams", type=int, default=200, help="(c): concurrent streams")
    parser.add_argument("--stream-chunks", type=int, default=200, help="(c): chunks per stream")
    parser.add_argument("--delay-ms", type=float, default=5.0, help="(c): delay between chunks")
    parser.add_argument("--light-streams", type=int, default=20, help="(c) again at this lighter load (info); 0 skips")
    parser.add_argument("--replay-events", type=int, default=10_000, help="(d): stored events to replay")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; medians are reported")
    parser.add_argument(
        "--only", choices=SETUPS, action="append",
        help="measure this setup only (repeatable); two-workers needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)",
    )  # fmt: skip
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the table's figures to PATH as JSON")
    parser.add_argument(
        "--py-spy", metavar="DIR", type=Path,
        help="record our single process with py-spy (must be on PATH) during (a) and (c); stacks go to DIR",
    )  # fmt: skip
    return parser.parse_args(argv)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Profiler:
    """py-spy recording our Daphne process while one scenario runs (optional)."""

    def __init__(self, directory: Path | None, pid: int | None) -> None:
        self.directory, self.pid = directory, pid
        self.process: subprocess.Popen | None = None

    def start(self, name: str) -> None:
        if self.directory is None or self.pid is None:
            return
        exe = shutil.which("py-spy")
        if exe is None:
            raise SystemExit("--py-spy needs py-spy on PATH (pip install py-spy)")
        self.directory.mkdir(parents=True, exist_ok=True)
        # Collapsed stacks ("raw"): grep-able, and flamegraph.pl / speedscope read them.
        out = self.directory / f"{name}.folded"
        command = [exe, "record", "--pid", str(self.pid), "--threads", "--rate", "250", "--format", "raw"]
        command += ["--output", str(out)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)  # py-spy writes its output and exits
            self.process.wait(timeout=60)
            self.process = None


async def measure(target: Target, args: argparse.Namespace, profiler: Profiler | None = None) -> Figures:
    figures = Figures()
    _say(f"[{target.name}] warming up")
    await scenarios.throughput(target, 200)
    await scenarios.latency(target, 10, 10, args.delay_ms)

    cpu = time.process_time()
    for attempt in range(args.repeat):
        _say(f"[{target.name}] (a)/(b) one stream of {args.chunks} chunks, run {attempt + 1}/{args.repeat}")
        if profiler and attempt == 0:
            profiler.start("a-throughput")
        result, live = await scenarios.throughput(target, args.chunks, keep_data=target.name == "ours")
        if profiler and attempt == 0:
            profiler.stop()
        figures.throughput.append(result)
        if target.name == "ours":
            figures.stored_check.append(await scenarios.verify_stored(target, live))
    figures.client_cpu["a"] = (time.process_time() - cpu) / args.repeat

    cpu = time.process_time()
    for attempt in range(args.repeat):
        _say(
            f"[{target.name}] (c) {args.streams} streams x {args.stream_chunks} chunks, "
            f"{args.delay_ms:g} ms apart, run {attempt + 1}/{args.repeat}"
        )
        if profiler and attempt == 0:
            profiler.start("c-latency")
        figures.latency.append(await scenarios.latency(target, args.streams, args.stream_chunks, args.delay_ms))
        if profiler and attempt == 0:
            profiler.stop()
    figures.client_cpu["c"] = (time.process_time() - cpu) / args.repeat

    for attempt in range(args.repeat if args.light_streams else 0):
        _say(f"[{target.name}] (c) again with {args.light_streams} streams, run {attempt + 1}/{args.repeat}")
        figures.light.append(await scenarios.latency(target, args.light_streams, args.stream_chunks, args.delay_ms))

    if target.name == "ours":
        _say(f"[{target.name}] (d) storing a conversation of {args.replay_events} events, then replaying it")
        conversation_id = await scenarios.stored_conversation(target, args.replay_events)
        for _ in range(args.repeat):
            figures.replay.append(await scenarios.replay(target, conversation_id, args.replay_events))
    return figures


def rows(
    ours: Figures | None, ref: Figures | None, args: argparse.Namespace, two: Figures | None = None
) -> list[Row]:
    """The table: targets and verdicts on our single process; `two` (our two workers) is a last, info column."""
    lat = lambda f, p: latency_ms(f.latency if f else None, p)  # noqa: E731
    light = lambda f, p: latency_ms(f.light if f else None, p)  # noqa: E731
    measured = ours is not None
    failed = lambda key: two is not None and key in two.failures  # noqa: E731
    c = f"{args.streams} streams x {args.stream_chunks} chunks {args.delay_ms:g} ms apart"
    table = [
        Row(f"(a) events/s, 1 stream of {args.chunks} chunks", events_per_s(ours), events_per_s(ref), "ev/s",
            f"ratio >= {TARGET_RATIO}", lambda v, r: r >= TARGET_RATIO, needs_ratio=True,
            two_workers=events_per_s(two), two_workers_failed=failed("a"), measured=measured),
    ]
    if two is not None:
        crossing, lost = two.crossing, failed("a'")
        table += [
            Row("    (a') the same, run on A and followed live on B", None, None, "ev/s",
                two_workers=median([x.events_per_s for x in crossing]), two_workers_failed=lost),
            Row("         B's last event after A's last event", None, None, "ms",
                two_workers=median([x.lag_s * 1000 for x in crossing]), two_workers_failed=lost),
            Row("         B's first event after B's request", None, None, "ms",
                two_workers=median([x.follower.first_event_s * 1000 for x in crossing]), two_workers_failed=lost),
        ]
    table += [
        Row("(b) time to first event, same stream", first_ms(ours), first_ms(ref), "ms",
            f"< {TARGET_FIRST_EVENT_MS:g} ms", lambda v, r: v < TARGET_FIRST_EVENT_MS,
            two_workers=first_ms(two), two_workers_failed=failed("a"), measured=measured),
        Row(f"(c) emit->receive p99, {c}", lat(ours, 99), lat(ref, 99), "ms",
            f"< {TARGET_P99_MS:g} ms", lambda v, r: v < TARGET_P99_MS, two_workers=lat(two, 99),
            two_workers_failed=failed("c"), measured=measured),
        Row("    emit->receive p50", lat(ours, 50), lat(ref, 50), "ms", two_workers=lat(two, 50),
            two_workers_failed=failed("c")),
        Row("    emit->receive max", lat(ours, None), lat(ref, None), "ms", two_workers=lat(two, None),
            two_workers_failed=failed("c")),
    ]
    if args.light_streams:
        table += [
            Row(f"    p99 at a lighter load: {args.light_streams} streams", light(ours, 99), light(ref, 99), "ms",
                two_workers=light(two, 99), two_workers_failed=failed("c, lighter")),
            Row("    p50 at that lighter load", light(ours, 50), light(ref, 50), "ms", two_workers=light(two, 50),
                two_workers_failed=failed("c, lighter")),
        ]
    return table + [
        Row(f"(d) replay {args.replay_events} stored events (Last-Event-ID: 0)", seconds(ours and ours.replay),
            None, "s", f"< {TARGET_REPLAY_S:g} s", lambda v, r: v < TARGET_REPLAY_S,
            two_workers=seconds(two and two.replay), two_workers_failed=failed("d"), measured=measured),
        Row("    persistence check: replay of the (a) stream", seconds(ours and ours.stored_check), None, "s",
            two_workers=seconds(two and two.stored_check), two_workers_failed=failed("a")),
    ]  # fmt: skip


def details(name: str, figures: Figures | None) -> list[str]:
    """Every run's figures, so the spread behind each median is visible."""
    if figures is None:
        return []
    lines = []
    if figures.throughput:
        lines += [
            f"  {name} (a): " + ", ".join(f"{t.events_per_s:,.0f} ev/s ({t.seconds:.3f} s)" for t in figures.throughput),
            f"  {name} (b): " + ", ".join(f"{t.first_event_s * 1000:.1f} ms" for t in figures.throughput),
        ]  # fmt: skip
    if figures.crossing:
        lines.append(f"  {name} (a'), read on B (on A; B's lag): " + ", ".join(
            f"{x.events_per_s:,.0f} ev/s ({x.origin.events_per_s:,.0f}; {x.lag_s * 1000:.0f} ms)"
            for x in figures.crossing
        ))  # fmt: skip
    if figures.latency:
        lines.append(f"  {name} (c): " + latency_line(figures.latency))
    if figures.light:
        lines.append(f"  {name} (c, lighter): " + latency_line(figures.light, batch=False))
    if figures.replay:
        lines.append(f"  {name} (d): " + ", ".join(f"{r.seconds:.3f} s" for r in figures.replay))
    cpu = ", ".join(f"({k}) {v:.2f} s" for k, v in figures.client_cpu.items())
    lines.append(f"  {name} client CPU per run: {cpu}")
    return lines


def workloads(args: argparse.Namespace) -> list[str]:
    offered = args.streams * 1000 / args.delay_ms if args.delay_ms else float("inf")
    return [
        f"Workloads: (a)/(b) 1 stream 'k={args.chunks} delay_ms=0'; (c) {args.streams} concurrent streams "
        f"'k={args.stream_chunks} delay_ms={args.delay_ms:g}'",
        f"           (about {offered:,.0f} events/s offered; above (a), producers outrun the server",
        "           and the latency is queueing);",
        f"           (d) replay of {args.replay_events} stored events; median of {args.repeat} runs after a warm-up",
        "           2 workers: (a)/(b) run and read on A, replayed on B for the check; (a') run on A and followed",
        "           from B with ?after=0 once A's first event names it; (c) streams alternate A/B; (d) stored via",
        "           A, replayed on B",
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
            with ReferenceServer() as target:
                results["reference"] = asyncio.run(measure(target, args))
        if "ours" in selected:
            loads["ours"] = os.getloadavg()[0]
            server = OurServer()
            with server as target:
                results["ours"] = asyncio.run(measure(target, args, Profiler(args.py_spy, server.pid)))
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
