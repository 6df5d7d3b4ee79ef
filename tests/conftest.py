from __future__ import annotations

import os

import pytest

from tests.live import LiveServer

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# Shared servers run a whole suite's runs from a few principals (and, anonymous, one
# address): limits far above what the suite uses. Admission control is tested on
# servers of its own (tests/e2e/test_operations.py, tests/scaleout/test_admission.py).
SUITE_LIMITS = {"VALUECELL_MAX_RUNS_PER_PRINCIPAL": "200", "VALUECELL_RUN_RATE": "100000/min"}


@pytest.fixture(scope="session")
def daphne_server():
    """One real Daphne server for the session (SQLite, in-memory channel layer)."""
    server = LiveServer(env=SUITE_LIMITS).start()
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
