"""Playwright fixtures for the chat page: Debian's Chromium against a live Daphne.

Without Chromium (or Playwright) these tests FAIL under CI=true and skip elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chromium import CHROMIUM_ARGS, unavailable
from tests.chromium import chromium_executable as find_chromium
from tests.conftest import SUITE_LIMITS
from tests.live import LiveServer

from .chat import ChatPage, open_chat

# Slow enough that a person (and a test) can interrupt a demo run mid-way.
DEMO_CHUNK_DELAY_MS = "30"


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    return find_chromium()


# Per module: sync Playwright runs an event loop on the main thread while it is
# open, which async tests in other modules could not share.
@pytest.fixture(scope="module")
def browser(chromium_executable: str):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install -r requirements.txt)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def chat_server() -> Iterator[LiveServer]:
    # Some tests leave a run waiting for an answer: do not wait long for it at shutdown.
    env = {
        **SUITE_LIMITS,
        "VALUECELL_DEMO_CHUNK_DELAY_MS": DEMO_CHUNK_DELAY_MS,
        "VALUECELL_SHUTDOWN_GRACE_SECONDS": "0.5",
    }
    server = LiveServer(env=env).start()
    yield server
    server.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def chat(browser, chat_server: LiveServer, request) -> Iterator[ChatPage]:
    """A fresh browser context (a new anonymous visitor) on the shared server."""
    yield from open_chat(browser, chat_server, request, viewport={"width": 1280, "height": 900})


@pytest.fixture
def narrow_chat(browser, chat_server: LiveServer, request) -> Iterator[ChatPage]:
    yield from open_chat(
        browser, chat_server, request, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
