"""A redis-server of a test's own, on a free port, which the test may stop and
start at will (the shared server is never touched)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time

from tests.live import free_port


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


class PrivateRedis:
    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tempfile.TemporaryDirectory(prefix="vc-redis-")
        self.process: subprocess.Popen | None = None

    def start(self) -> PrivateRedis:
        import redis

        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", self.dir.name],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)  # polling a port that is not open yet; bounded by the deadline
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        """Gone at once, every connection with it (as when Redis crashes)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def close(self) -> None:
        self.stop()
        self.dir.cleanup()
