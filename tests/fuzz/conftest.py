"""The fuzzing suite's servers: a real Daphne on SQLite and one on a fresh
PostgreSQL database (the backend where hostile text used to become a 500).

PostgreSQL comes from DATABASE_URL, else the local default; unreachable, these
tests FAIL under CI=true and skip (with the reason) elsewhere.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse, urlunparse

import pytest

from tests.conftest import IN_CI
from tests.live import LiveServer

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"  # as tests/scaleout
SERVER_ENV = {"VALUECELL_DEMO_CHUNK_DELAY_MS": "0", "VALUECELL_SHUTDOWN_GRACE_SECONDS": "1"}


def _postgres_database() -> Iterator[str]:
    import psycopg

    admin_url = os.environ.get("DATABASE_URL", "")
    if not admin_url.startswith(("postgres://", "postgresql://")):
        admin_url = DEFAULT_DATABASE_URL
    try:
        with psycopg.connect(admin_url, connect_timeout=3, autocommit=True) as conn:
            conn.execute("select 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        reason = f"PostgreSQL at {admin_url} is not reachable: {exc}"
        if IN_CI:
            pytest.fail(f"the fuzzing suite needs PostgreSQL under CI: {reason}", pytrace=False)
        pytest.skip(f"{reason}; set DATABASE_URL to run the PostgreSQL half of the fuzzing suite")
    name = f"vc_fuzz_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunparse(urlparse(admin_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request) -> Iterator[LiveServer]:
    """One real Daphne per backend, for the whole module."""
    if request.param == "sqlite":
        live = LiveServer(env=SERVER_ENV).start()
        try:
            yield live
        finally:
            live.close()
        return
    for database_url in _postgres_database():
        live = LiveServer(env=SERVER_ENV, database_url=database_url).start()
        try:
            yield live
        finally:
            live.close()


@pytest.fixture(scope="module")
def token(server: LiveServer) -> str:
    return server.token("fuzzer")
