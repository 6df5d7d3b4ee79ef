"""What a server process costs, read from /proc: CPU time and resident memory.

CPU is the process's user + system time (all its threads), read around a
scenario: unlike wall-clock figures, it hardly moves when other work shares the
machine. Memory is sampled on a thread of its own while a scenario runs, so the
peak is seen even when the client's event loop is busy.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of these processes so far (0 where /proc has none)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                raw = handle.read()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces), from field 3 on.
        fields = raw[raw.rindex(b")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
    return total


def rss_bytes(pids: Sequence[int]) -> int:
    """Resident set size of these processes, summed."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", "rb") as handle:
                for line in handle:
                    if line.startswith(b"VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


class RssSampler:
    """Samples RSS every `interval` seconds while in its `with` block; `.peak`, `.baseline`."""

    def __init__(self, pids: Sequence[int], interval: float = 0.02) -> None:
        self.pids, self.interval = list(pids), interval
        self.baseline = self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes(self.pids))

    def __enter__(self) -> RssSampler:
        self.baseline = self.peak = rss_bytes(self.pids)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.pids))

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


class CpuMeter:
    """Server CPU seconds spent inside its `with` block: `.seconds`."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self.seconds = 0.0
        self._start = 0.0

    def __enter__(self) -> CpuMeter:
        self._start = cpu_seconds(self.pids)
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = cpu_seconds(self.pids) - self._start
