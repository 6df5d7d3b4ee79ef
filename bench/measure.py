"""One setup's measurement: warm up, then each scenario `--repeat` times, with the
server's CPU time around every run and its RSS sampled while streams are held.

The same sequence for every setup: the reference, our single process, our two
workers (`targets` A and B: streams alternate between them, a stream run on A is
checked and replayed on B).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from . import scenarios
from .figures import Figures
from .procstat import CpuMeter, RssSampler
from .servers import Target

SCENARIOS = ("1", "2", "3", "4", "d")
Guard = Callable[[str], AbstractContextManager]


def say(text: str) -> None:
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
        # --gil: only the thread holding the GIL, i.e. where Python's CPU goes (a
        # busy machine otherwise shows threads waiting for a core as busy).
        command = [exe, "record", "--pid", str(self.pid), "--threads", "--gil", "--rate", "250", "--format", "raw"]
        command += ["--output", str(out)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # py-spy attaches before the scenario starts

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)  # py-spy writes its output and exits
            self.process.wait(timeout=60)
            self.process = None


class Measurement:
    def __init__(
        self,
        name: str,
        targets: Sequence[Target],
        pids: Sequence[int],
        args: argparse.Namespace,
        guard: Guard | None = None,
        profiler: Profiler | None = None,
        stores: bool = True,
    ) -> None:
        self.name, self.targets, self.pids, self.args = name, list(targets), list(pids), args
        self.figures = Figures()
        self.guard: Guard = guard or (lambda key: contextlib.nullcontext())
        self.profiler = profiler
        self.stores = stores  # the server stores events: check (1) by replaying it
        self.selected = set(args.scenario or SCENARIOS)

    def _say(self, text: str) -> None:
        say(f"[{self.name}] {text}")

    async def _run(self, key: str, attempt: int, run):
        """One run of a scenario, with the server's CPU time (and a profile of the first run)."""
        profile = self.profiler is not None and attempt == 0
        if profile:
            assert self.profiler is not None
            self.profiler.start(f"{key}-{self.name.replace(' ', '-')}")
        try:
            with CpuMeter(self.pids) as cpu:
                result = await run()
        finally:
            if profile:
                assert self.profiler is not None
                self.profiler.stop()
        self.figures.server_cpu.setdefault(key, []).append(cpu.seconds)
        return result

    async def warm_up(self) -> None:
        self._say("warming up")
        for target in self.targets:
            await scenarios.throughput(target, 200)
        await scenarios.latency_spread(self.targets, 10, 10, 5)

    async def all(self, between: Callable[[], object] | None = None) -> Figures:
        """Every selected scenario; (4) first, while the heap is fresh, for its memory figure."""
        await self.warm_up()
        steps = [("4", self.held), ("1", self.one_stream), ("2", self.sequential), ("3", self.concurrent)]
        if self.stores:
            steps.append(("d", self.replay))
        for key, step in steps:
            if key in self.selected:
                cpu = time.process_time()
                with self.guard(key):
                    await step()
                self.figures.client_cpu[key] = (time.process_time() - cpu) / self.args.repeat
                if key == "1" and between is not None:
                    await between()  # type: ignore[misc]
        return self.figures

    # --- the scenarios ----------------------------------------------------------------
    async def held(self) -> None:
        a = self.args
        runs = []
        for attempt in range(a.repeat):
            self._say(
                f"(4) {a.held} streams held open, {a.held_chunks} chunks {a.held_delay_ms:g} ms apart, "
                f"run {attempt + 1}/{a.repeat}"
            )
            with RssSampler(self.pids) as rss:
                runs.append(
                    await self._run(
                        "4",
                        attempt,
                        lambda: scenarios.latency_spread(self.targets, a.held, a.held_chunks, a.held_delay_ms),
                    )
                )
            self.figures.rss_growth.append(rss.growth)
        self.figures.held = runs

    async def one_stream(self) -> None:
        a, runs, stored = self.args, [], []
        origin, reader = self.targets[0], self.targets[-1]
        for attempt in range(a.repeat):
            self._say(f"(1) one stream of {a.chunks} chunks, run {attempt + 1}/{a.repeat}")
            result, live = await self._run(
                "1", attempt, lambda: scenarios.throughput(origin, a.chunks, keep_data=self.stores)
            )
            runs.append(result)
            if self.stores:  # every event it delivered is stored, byte for byte (read on B with two workers)
                stored.append(await scenarios.verify_stored(reader, live))
        self.figures.throughput, self.figures.stored_check = runs, stored

    async def sequential(self) -> None:
        a, runs = self.args, []
        for attempt in range(a.repeat):
            self._say(
                f"(2) {a.sequential} streams one after another, {a.sequential_chunks} chunks, "
                f"run {attempt + 1}/{a.repeat}"
            )
            runs.append(await self._run("2", attempt, lambda: self._one_after_another(a)))
        self.figures.sequential = runs

    async def _one_after_another(self, a: argparse.Namespace) -> scenarios.Sequential:
        per_target = [
            await scenarios.one_after_another(target, a.sequential // len(self.targets), a.sequential_chunks)
            for target in self.targets
        ]
        return scenarios.Sequential(sorted(x for run in per_target for x in run.first_events))

    async def concurrent(self) -> None:
        a, runs = self.args, []
        for attempt in range(a.repeat):
            self._say(
                f"(3) {a.streams} streams at once, {a.stream_chunks} chunks {a.delay_ms:g} ms apart, "
                f"run {attempt + 1}/{a.repeat}"
            )
            runs.append(
                await self._run(
                    "3", attempt, lambda: scenarios.latency_spread(self.targets, a.streams, a.stream_chunks, a.delay_ms)
                )
            )
        self.figures.latency = runs

    async def replay(self) -> None:
        a = self.args
        self._say(f"(d) storing a conversation of {a.replay_events} events, then replaying it")
        conversation_id = await scenarios.stored_conversation(self.targets[0], a.replay_events)
        self.figures.replay = [
            await scenarios.replay(self.targets[-1], conversation_id, a.replay_events) for _ in range(a.repeat)
        ]
