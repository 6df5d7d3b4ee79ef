from __future__ import annotations

import os

import pytest

from tests.live import LiveServer

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def daphne_server():
    """One real Daphne server for the session (SQLite, in-memory channel layer)."""
    server = LiveServer().start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def alice_token(daphne_server):
    return daphne_server.token("alice")


@pytest.fixture(scope="session")
def bob_token(daphne_server):
    return daphne_server.token("bob")


def pytest_configure(config):
    """In-process tests use the embedded defaults even when DATABASE_URL/REDIS_URL are set.

    Those variables (set by .ci/run) are for the scale-out tests' real workers
    (tests/scaleout); tests that run code in this process use SQLite and the
    in-memory channel layer, so they never share state with another run.
    """
    import dj_database_url
    from django.conf import settings

    database = dj_database_url.parse(f"sqlite:///{settings.BASE_DIR / 'db.sqlite3'}")
    database["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    database["TEST"] = {"NAME": str(settings.BASE_DIR / "test-db.sqlite3")}
    settings.DATABASES = {"default": database}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
