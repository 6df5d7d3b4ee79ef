"""Debian's Chromium for Playwright: where it is, how to launch it, and what to do
when it is missing (fail under CI=true, skip with the reason elsewhere)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import IN_CI

CHROMIUM = os.environ.get("VALUECELL_CHROMIUM", "/usr/bin/chromium")
# As root in a closed network: no sandbox, and no background calls home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (browser tests must run in CI: `make test` installs Debian's chromium)")
    pytest.skip(reason)


def chromium_executable() -> str:
    path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not path:
        unavailable(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    return path
