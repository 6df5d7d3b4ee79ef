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



@pytest.fixture(autouse=True)
def _fresh_cache():
    """Admission control's counts live in Django's cache (process memory here): one test's runs
    must not count against the next's."""
    from django.core.cache import cache

    cache.clear()
