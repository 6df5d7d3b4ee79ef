"""A real Daphne server on a free loopback port, for end-to-end tests.

Each server gets its own migrated SQLite file (or the DATABASE_URL given) and
runs `valuecell_site.asgi:application` exactly as production does.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    def __init__(
        self,
        env: dict[str, str] | None = None,
        database_url: str | None = None,
        migrate: bool = True,
        daphne_args: tuple[str, ...] = (),
    ) -> None:
        self.daphne_args = daphne_args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self._tmp = tempfile.TemporaryDirectory(prefix="vc-live-")
        self.database_url = database_url or f"sqlite:///{self._tmp.name}/db.sqlite3"
        self.log_path = Path(self._tmp.name) / "daphne.log"
        inherited = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "REDIS_PREFIX")}
        # Servers use SQLite and the in-memory layer unless a test passes its own
        # (the scale-out tests pass DATABASE_URL/REDIS_URL explicitly).
        self.env = {
            **inherited,
            "DATABASE_URL": self.database_url,
            "DEBUG": "true",
            "VALUECELL_DEMO_CHUNK_DELAY_MS": "1",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self._migrate = migrate
        self.process: subprocess.Popen | None = None

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def start(self) -> "LiveServer":
        if self._migrate:
            self.manage("migrate", "--noinput", "-v0")
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), *self.daphne_args]
            + ["valuecell_site.asgi:application"],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited early:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)  # polling a port that is not open yet; bounded by the deadline
        raise RuntimeError(f"daphne did not answer within 30 s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def close(self) -> None:
        self.stop()
        keep = os.environ.get("VC_KEEP_SERVER_LOGS")  # a directory to copy server logs to
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            (Path(keep) / f"daphne-{self.port}.log").write_text(self.log())
        self._tmp.cleanup()

    def token(self, username: str = "alice") -> str:
        return self.manage("create_api_token", username).strip().splitlines()[-1]
