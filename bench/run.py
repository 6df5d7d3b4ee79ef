"""`python -m bench.run` (`make bench`): measure ours and the reference, print one table.

Runs the reference (uvicorn) and then our Daphne, one at a time, each warmed up
and measured `--repeat` times (medians reported). Exit 0 even when a target is
missed (it is a report); exit 1 only when a server lost events or did not run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import scenarios
from .report import Row, load_note, machine, stacks, summary, table
from .servers import OurServer, ReferenceServer, Target
from .sse_client import HttpError

TARGET_RATIO = 0.5
TARGET_FIRST_EVENT_MS = 20.0
TARGET_P99_MS = 15.0
TARGET_REPLAY_S = 1.0


@dataclass
class Figures:
    throughput: list[scenarios.Throughput] = field(default_factory=list)
    latency: list[scenarios.Latency] = field(default_factory=list)
    light: list[scenarios.Latency] = field(default_factory=list)
    stored_check: list[scenarios.Throughput] = field(default_factory=list)
    replay: list[scenarios.Throughput] = field(default_factory=list)
    client_cpu: dict[str, float] = field(default_factory=dict)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=20_000, help="(a)/(b): chunks of the one fast stream")
    parser.add_argument("--streams", type=int, default=200, help="(c): concurrent streams")
    parser.add_argument("--stream-chunks", type=int, default=200, help="(c): chunks per stream")
    parser.add_argument("--delay-ms", type=float, default=5.0, help="(c): delay between chunks")
    parser.add_argument("--light-streams", type=int, default=20, help="(c) again at this lighter load (info); 0 skips")
    parser.add_argument("--replay-events", type=int, default=10_000, help="(d): stored events to replay")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; medians are reported")
    parser.add_argument("--only", choices=("ours", "reference"), help="measure one server only")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the table's figures to PATH as JSON")
    parser.add_argument(
        "--py-spy", metavar="DIR", type=Path,
        help="record our server with py-spy (must be on PATH) during (a) and (c); collapsed stacks go to DIR",
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


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _events_per_s(f: Figures | None) -> float | None:
    return None if f is None else _median([t.events_per_s for t in f.throughput])


def _first_ms(f: Figures | None) -> float | None:
    return None if f is None else _median([t.first_event_s * 1000 for t in f.throughput])


def _latency_ms(runs: list[scenarios.Latency] | None, p: float | None) -> float | None:
    """Median over runs of one percentile (`None`: the maximum), in ms."""
    if not runs:
        return None
    return _median([(x.samples[-1] if p is None else x.percentile(p)) * 1000 for x in runs])


def rows(ours: Figures | None, ref: Figures | None, args: argparse.Namespace) -> list[Row]:
    lat = lambda f, p: _latency_ms(f.latency if f else None, p)  # noqa: E731
    light = lambda f, p: _latency_ms(f.light if f else None, p)  # noqa: E731
    replay_s = _median([r.seconds for r in ours.replay]) if ours else None
    stored_s = _median([r.seconds for r in ours.stored_check]) if ours else None
    c = f"{args.streams} streams x {args.stream_chunks} chunks {args.delay_ms:g} ms apart"
    table = [
        Row(f"(a) events/s, 1 stream of {args.chunks} chunks", _events_per_s(ours), _events_per_s(ref), "ev/s",
            f"ratio >= {TARGET_RATIO}", lambda v, r: r >= TARGET_RATIO, needs_ratio=True),
        Row("(b) time to first event, same stream", _first_ms(ours), _first_ms(ref), "ms",
            f"< {TARGET_FIRST_EVENT_MS:g} ms", lambda v, r: v < TARGET_FIRST_EVENT_MS),
        Row(f"(c) emit->receive p99, {c}", lat(ours, 99), lat(ref, 99), "ms",
            f"< {TARGET_P99_MS:g} ms", lambda v, r: v < TARGET_P99_MS),
        Row("    emit->receive p50", lat(ours, 50), lat(ref, 50), "ms"),
        Row("    emit->receive max", lat(ours, None), lat(ref, None), "ms"),
    ]
    if args.light_streams:
        table += [
            Row(f"    p99 at a lighter load: {args.light_streams} streams", light(ours, 99), light(ref, 99), "ms"),
            Row("    p50 at that lighter load", light(ours, 50), light(ref, 50), "ms"),
        ]
    return table + [
        Row(f"(d) replay {args.replay_events} stored events (Last-Event-ID: 0)", replay_s, None, "s",
            f"< {TARGET_REPLAY_S:g} s", lambda v, r: v < TARGET_REPLAY_S),
        Row("    persistence check: replay of the (a) stream", stored_s, None, "s"),
    ]  # fmt: skip


def details(name: str, figures: Figures | None) -> list[str]:
    """Every run's figures, so the spread behind each median is visible."""
    if figures is None:
        return []
    lines = [
        f"  {name} (a): " + ", ".join(f"{t.events_per_s:,.0f} ev/s ({t.seconds:.3f} s)" for t in figures.throughput),
        f"  {name} (b): " + ", ".join(f"{t.first_event_s * 1000:.1f} ms" for t in figures.throughput),
        f"  {name} (c): " + ", ".join(
            f"p50 {x.percentile(50) * 1000:.1f} / p99 {x.percentile(99) * 1000:.1f} ms, batch {x.seconds:.2f} s"
            for x in figures.latency
        ),
    ]
    if figures.light:
        light = (f"p50 {x.percentile(50) * 1000:.1f} / p99 {x.percentile(99) * 1000:.1f} ms" for x in figures.light)
        lines.append(f"  {name} (c, lighter): " + ", ".join(light))
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
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results: dict[str, Figures] = {}
    load_before = os.getloadavg()[0]
    try:
        if args.only != "ours":
            with ReferenceServer() as target:
                results["reference"] = asyncio.run(measure(target, args))
        if args.only != "reference":
            server = OurServer()
            with server as target:
                results["ours"] = asyncio.run(measure(target, args, Profiler(args.py_spy, server.pid)))
    except (scenarios.Incomplete, HttpError, RuntimeError) as exc:
        print(f"INVALID RUN: {exc}", flush=True)
        return 1
    ours, ref = results.get("ours"), results.get("reference")
    table_rows = rows(ours, ref, args)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    header = [*machine(), *load_note(load_before, os.getloadavg()[0], cores), *stacks(), *workloads(args)]
    per_run = ["Per run:", *details("ours", ours), *details("reference", ref)]
    print("\n".join(["", *header, "", *table(table_rows), "", *per_run, "", summary(table_rows)]))
    if args.json:
        figures = [
            {"metric": r.metric.strip(), "ours": r.ours, "reference": r.reference, "unit": r.unit,
             "ratio": r.ratio, "target": r.target or None, "result": r.verdict}
            for r in table_rows
        ]  # fmt: skip
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        args.json.write_text(json.dumps({"args": settings, "rows": figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
