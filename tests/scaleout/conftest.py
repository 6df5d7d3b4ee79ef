"""Two real Daphne workers sharing PostgreSQL and Redis.

The services come from DATABASE_URL / REDIS_URL, or the local defaults
(127.0.0.1:5432 user postgres database test, 127.0.0.1:6379). Unreachable
services fail the tests under CI=true and skip them (with the reason) elsewhere.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlparse, urlunparse

import pytest

from tests.conftest import IN_CI
from tests.live import LiveServer

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def service_urls() -> tuple[str, str]:
    database = os.environ.get("DATABASE_URL", "")
    if not database.startswith(("postgres://", "postgresql://")):
        database = DEFAULT_DATABASE_URL
    return database, os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"scale-out tests need PostgreSQL and Redis under CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL/Redis not reachable ({reason}); set DATABASE_URL and REDIS_URL to run these")


@pytest.fixture(scope="session")
def services():
    import psycopg
    import redis

    database_url, redis_url = service_urls()
    try:
        with psycopg.connect(database_url, connect_timeout=3, autocommit=True) as conn:
            conn.execute("select 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        _unavailable(f"PostgreSQL at {database_url}: {exc}")
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001
        _unavailable(f"Redis at {redis_url}: {exc}")
    return database_url, redis_url


@pytest.fixture(scope="module")
def scaleout_database(services):
    """A fresh PostgreSQL database for one test module, dropped afterwards."""
    import psycopg

    admin_url, _ = services
    name = f"vc_scaleout_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlparse(admin_url)
    yield urlunparse(parts._replace(path=f"/{name}"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


WORKER_ENV = {
    "VALUECELL_RUN_LEASE_SECONDS": "6",
    "VALUECELL_REAPER_INTERVAL_SECONDS": "0.5",
    "VALUECELL_FOLLOW_RECHECK_SECONDS": "0.5",
    "VALUECELL_SHUTDOWN_GRACE_SECONDS": "2",
    # These tests drive up to 50 runs at once from one token (or one address): limits far
    # above that, so admission still runs (its lock under contention, on Redis) but never refuses.
    "VALUECELL_MAX_RUNS_PER_PRINCIPAL": "500",
    "VALUECELL_RUN_RATE": "10000/min",
}


class Cluster:
    def __init__(self, database_url: str, redis_url: str, layer: str) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.layer = layer
        self.env = {
            **WORKER_ENV,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": f"vc-test-{uuid.uuid4().hex[:8]}",
            "REDIS_CHANNEL_LAYER": layer,
        }
        self.workers: list[LiveServer] = []

    def worker(self, migrate: bool = False) -> LiveServer:
        server = LiveServer(env=self.env, database_url=self.database_url, migrate=migrate).start()
        self.workers.append(server)
        return server

    def close(self) -> None:
        for server in self.workers:
            server.close()


# Both channels_redis layers the settings offer: pub/sub (the default) and core.
@pytest.fixture(scope="module", params=["pubsub", "core"])
def cluster(request, services, scaleout_database):
    cluster = Cluster(scaleout_database, services[1], request.param)
    cluster.worker(migrate=True)
    cluster.worker()
    yield cluster
    cluster.close()


@pytest.fixture(scope="module")
def token(cluster):
    return cluster.workers[0].token("scaler")
