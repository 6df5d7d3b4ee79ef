"""Two Daphne workers sharing PostgreSQL and Redis, for the two-worker rows of `make bench`.

Services come from DATABASE_URL (when it is a postgres URL) and REDIS_URL, else the
local defaults of tests/scaleout; each run gets a fresh database, dropped afterwards.
"""

from __future__ import annotations

import os
import re
import uuid
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlparse, urlunparse

from tests.live import LiveServer

from .servers import OUR_ENV, Target

# The same defaults as tests/scaleout/conftest.py (not imported: a conftest is pytest's).
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
CONNECT_TIMEOUT_S = 3
# The last line of a traceback: "django.db.utils.OperationalError: couldn't get a connection ..."
ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Timeout)\b: .{0,200}", re.MULTILINE)


class Unavailable(RuntimeError):
    """PostgreSQL or Redis cannot be reached: the two-worker rows are skipped, not failed."""


def service_urls() -> tuple[str, str]:
    database = os.environ.get("DATABASE_URL", "")
    if not database.startswith(("postgres://", "postgresql://")):
        database = DEFAULT_DATABASE_URL
    return database, os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def _hide_password(url: str) -> str:
    parts = urlparse(url)
    if parts.password is None:
        return url
    return urlunparse(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


@dataclass
class Services:
    database_url: str  # the admin database: CREATE/DROP DATABASE run there
    redis_url: str
    postgres_version: str
    redis_version: str


def check_services() -> Services:
    """Both services answer, or `Unavailable` with the reason."""
    import psycopg
    import redis

    database_url, redis_url = service_urls()
    try:
        with psycopg.connect(database_url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True) as conn:
            number = conn.info.server_version  # e.g. 150020
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        raise Unavailable(f"PostgreSQL at {_hide_password(database_url)}: {exc}".strip()) from None
    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=CONNECT_TIMEOUT_S)
        redis_version = str(client.info("server").get("redis_version", "?"))
        client.close()
    except Exception as exc:  # noqa: BLE001
        raise Unavailable(f"Redis at {_hide_password(redis_url)}: {exc}".strip()) from None
    postgres_version = f"{number // 10000}.{number % 10000}"
    return Services(database_url, redis_url, postgres_version, redis_version)


class TwoWorkers:
    """A fresh database, migrated once, and two workers on it and one Redis prefix."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.name = f"vc_bench_{uuid.uuid4().hex[:10]}"
        self.prefix = f"vc-bench-{uuid.uuid4().hex[:8]}"
        self.database_url = urlunparse(urlparse(services.database_url)._replace(path=f"/{self.name}"))
        self.workers: list[LiveServer] = []
        self._created = False

    def __enter__(self) -> tuple[Target, Target]:
        import psycopg

        try:
            with psycopg.connect(self.services.database_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
            self._created = True
            env = {**OUR_ENV, "REDIS_URL": self.services.redis_url, "REDIS_PREFIX": self.prefix}
            for migrate in (True, False):
                worker = LiveServer(env=env, database_url=self.database_url, migrate=migrate)
                self.workers.append(worker)
                worker.start()
            token = self.workers[0].token("bench")
        except BaseException:
            self.__exit__()
            raise
        headers = {"Authorization": f"Bearer {token}"}
        a, b = (Target(f"worker {n}", "127.0.0.1", w.port, headers) for n, w in zip("AB", self.workers))
        return a, b

    @property
    def pids(self) -> list[int]:
        return [worker.process.pid for worker in self.workers if worker.process is not None]

    def server_errors(self) -> list[str]:
        """The distinct exception lines of both workers' logs, most frequent first, with counts."""
        counts: Counter[str] = Counter()
        for worker in self.workers:
            counts.update(match.group(0) for match in ERROR_LINE.finditer(worker.log()))
        return [f"{count} x {line}" for line, count in counts.most_common()]

    def __exit__(self, *exc: object) -> None:
        import psycopg
        import redis

        for worker in self.workers:
            worker.close()
        if self._created:
            with psycopg.connect(self.services.database_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self._created = False
        # The layer's keys expire on their own; deleting them keeps Redis tidy for others.
        client = redis.Redis.from_url(self.services.redis_url, socket_connect_timeout=CONNECT_TIMEOUT_S)
        try:
            keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        except redis.RedisError:
            pass
        finally:
            client.close()
