"""Driving the chat page like a person: open it, type, press Enter, read what shows.

`ChatPage` wraps one Playwright page and records every console message and
uncaught error so each test can insist on a clean console.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
from playwright.sync_api import Locator, Page, expect

from tests.live import LiveServer
from tests.sse import SseParser

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"

# Each transcript entry as (kind, visible text); time-dependent labels are left out.
SNAPSHOT_JS = """
() => [...document.querySelectorAll('#transcript > *')]
  .filter((node) => !node.classList.contains('task'))
  .map((node) => {
    const kind = node.className.split(' ')[0];
    const copy = node.cloneNode(true);
    copy.querySelectorAll('summary, .question-badge, .chart-tooltip').forEach((n) => n.remove());
    return [kind, copy.textContent.replace(/\\s+/g, ' ').trim()];
  })
"""


class ChatPage:
    def __init__(self, page: Page, server: LiveServer) -> None:
        self.page = page
        self.server = server
        self.console: list[str] = []
        self.allowed_console: list[re.Pattern[str]] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))

    def _on_console(self, message) -> None:
        if message.type in ("error", "warning"):
            self.console.append(f"{message.type}: {message.text}")

    def allow_console(self, pattern: str) -> None:
        self.allowed_console.append(re.compile(pattern))

    def expect_clean_console(self) -> None:
        unexpected = [m for m in self.console if not any(p.search(m) for p in self.allowed_console)]
        assert unexpected == [], f"console errors: {unexpected}"

    # --- actions -----------------------------------------------------------
    def open(self, path: str = "/") -> None:
        self.page.goto(path)
        expect(self.page.locator("body")).to_have_attribute("data-ready", "true")

    def reload(self) -> None:
        self.page.reload()
        expect(self.page.locator("body")).to_have_attribute("data-ready", "true")

    def send(self, text: str, agent: str | None = None) -> None:
        if agent:
            self.page.select_option("#agent", agent)
        self.query.fill(text)
        self.query.press("Enter")

    # --- what the page shows -------------------------------------------------
    @property
    def query(self) -> Locator:
        return self.page.locator("#query")

    @property
    def transcript(self) -> Locator:
        return self.page.locator("#transcript")

    @property
    def task(self) -> Locator:
        """The progress line of the latest task."""
        return self.page.locator("#transcript > .task").last

    @property
    def messages(self) -> Locator:
        return self.page.locator("#transcript > .message")

    @property
    def send_button(self) -> Locator:
        return self.page.locator("#composer button[type=submit]")

    @property
    def banner(self) -> Locator:
        return self.page.locator("#connection")

    def wait_task(self, state: str, timeout: float = 30_000) -> None:
        expect(self.task).to_have_attribute("data-state", state, timeout=timeout)

    def last_seq(self) -> int:
        return int(self.transcript.get_attribute("data-last-seq"))

    def conversation_id(self) -> str:
        return parse_qs(urlparse(self.page.url).query)["conversation"][0]

    def snapshot(self) -> list[list[str]]:
        return self.page.evaluate(SNAPSHOT_JS)

    def api_get(self, path: str) -> dict:
        """A JSON API call with the page's own cookies (the same visitor)."""
        response = self.page.request.get(path)
        assert response.ok, response.text()
        return response.json()

    def screenshot_whole(self, name: str) -> Path:
        """The whole conversation in one picture (the transcript scrolls inside the page)."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        viewport = self.page.viewport_size
        height = self.page.evaluate(
            "() => { const s = document.getElementById('scroller');"
            " return s.scrollHeight + (document.body.scrollHeight - s.clientHeight); }"
        )
        self.page.set_viewport_size({"width": viewport["width"], "height": max(viewport["height"], int(height) + 8)})
        self.page.evaluate("document.getElementById('scroller').scrollTop = 0")
        self.page.mouse.move(0, 0)
        self.page.screenshot(path=str(path))
        self.page.set_viewport_size(viewport)
        return path

    # --- the server side, read independently of the page -------------------
    def wait_server_seq(self, conversation_id: str, after: int, at_least: int, timeout: float = 30.0) -> int:
        """Block until the server has stored an event with seq >= `at_least` (read over SSE)."""
        cookies = {c["name"]: c["value"] for c in self.page.context.cookies()}
        headers = {"Last-Event-ID": str(after)}
        with httpx.Client(base_url=self.server.url, cookies=cookies, timeout=timeout) as client:
            with client.stream("GET", f"/conversations/{conversation_id}/stream", headers=headers) as response:
                assert response.status_code == 200, response.read()
                parser = SseParser()
                for text in response.iter_text():
                    for event in parser.feed(text):
                        seq = int(event.id)
                        if seq >= at_least or event.json["event"] == "done":
                            return seq
        raise AssertionError(f"the stream ended before seq {at_least}")


def open_chat(browser, server: LiveServer, request, **context_options) -> Iterator[ChatPage]:
    """A fresh browser context (a new anonymous visitor) on `server`; checks the console at the end."""
    context = browser.new_context(base_url=server.url, **context_options)
    context.set_default_timeout(20_000)
    chat = ChatPage(context.new_page(), server)
    try:
        yield chat
        chat.expect_clean_console()
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            chat.page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"))
        context.close()
