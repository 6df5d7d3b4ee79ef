"""The two servers under test, each a subprocess on a free loopback port.

Ours: a real Daphne via `tests.live.LiveServer` (own SQLite file, in-memory
layer, DEBUG off). The reference: uvicorn serving `bench.reference_app:app`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import httpx

from tests.live import ROOT, LiveServer, free_port

OUR_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789abcdef",
    "LOG_LEVEL": "WARNING",
    "VALUECELL_BENCH_AGENT": "true",
    # The bench runs up to 200 streams from one token and overloads the writer on purpose.
    "VALUECELL_MAX_RUNS_PER_PRINCIPAL": "0",
    "VALUECELL_RUN_RATE": "off",
    "VALUECELL_OVERLOAD_BACKLOG": "0",
}


@dataclass
class Target:
    """Where a server listens and what the client sends it."""

    name: str
    host: str
    port: int
    headers: dict[str, str]


class OurServer:
    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        self.live = LiveServer(env={**OUR_ENV, **(extra_env or {})})

    def __enter__(self) -> Target:
        self.live.start()
        token = self.live.token("bench")
        return Target("ours", "127.0.0.1", self.live.port, {"Authorization": f"Bearer {token}"})

    def __exit__(self, *exc: object) -> None:
        self.live.close()

    @property
    def pid(self) -> int | None:
        return self.live.process.pid if self.live.process else None


class ReferenceServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()

    def __enter__(self) -> Target:
        command = [
            sys.executable, "-m", "uvicorn", "bench.reference_app:app",
            "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited early:\n{self.log()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return Target("reference", "127.0.0.1", self.port, {})
            except httpx.HTTPError:
                pass
            time.sleep(0.05)  # polling a port that is not open yet; bounded by the deadline
        raise RuntimeError(f"uvicorn did not answer within 30 s:\n{self.log()}")

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def __exit__(self, *exc: object) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None
