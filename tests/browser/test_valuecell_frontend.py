"""ValueCell's own web frontend (the production build in ../shared/valuecell-web/)
served by Django on the same origin as `/api/v1/`, in Chromium against a real
Daphne: a chat with the demo agent, a reload from history, a question and its
answer, and deleting a conversation. Every request that is not to 127.0.0.1
is aborted (the app also reaches for ValueCell's cloud and TradingView).

Without the build these tests FAIL under CI=true and skip elsewhere.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.chat import ARTIFACTS
from tests.conftest import IN_CI
from tests.live import ROOT, LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

BUILD = Path(os.environ.get("VALUECELL_WEB_BUILD") or ROOT.parent / "shared" / "valuecell-web" / "client")
INPUT = "Type your message..."
THINKING = 'output[aria-label="AI is thinking"]'
# The frontend aborts its own stream once it has read `done`, and logs that as an error.
ITS_OWN_ABORT = re.compile(r"SSE connection error: AbortError")
# Collects every error toast (sonner) the app shows, even those gone by the end of a test.
TOAST_WATCH = """
window.__errorToasts = [];
new MutationObserver(() => {
  for (const toast of document.querySelectorAll('[data-sonner-toast][data-type="error"]')) {
    if (!toast.dataset.seen) { toast.dataset.seen = "1"; window.__errorToasts.push(toast.textContent); }
  }
}).observe(document, { childList: true, subtree: true });
"""


@pytest.fixture(scope="module")
def valuecell_server() -> Iterator[LiveServer]:
    if not (BUILD / "index.html").is_file():
        reason = f"ValueCell's web frontend build is not at {BUILD} (set VALUECELL_WEB_BUILD)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    env = {
        "VALUECELL_WEB_CLIENT_DIR": str(BUILD),
        "VALUECELL_DEMO_CHUNK_DELAY_MS": "30",  # a run outlasts the history request the app makes mid-run
        "VALUECELL_SHUTDOWN_GRACE_SECONDS": "0.5",
    }
    server = LiveServer(env=env).start()
    yield server
    server.close()


class ValueCellApp:
    def __init__(self, page: Page, server: LiveServer) -> None:
        self.page = page
        self.server = server
        self.console: list[str] = []
        self.aborted: list[str] = []
        page.on("console", lambda m: self.console.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))

    @property
    def input(self):
        return self.page.get_by_placeholder(INPUT)

    def open(self, path: str) -> None:
        self.page.goto(path)
        expect(self.input).to_be_visible()  # the app renders once /api/v1/healthz answered

    def send(self, text: str) -> None:
        """Type, press Enter, and wait until the run has ended and the app has closed its stream."""
        expect(self.input).to_be_enabled()
        self.input.fill(text)
        with self.page.expect_response(lambda r: r.url.endswith("/api/v1/agents/stream")) as started:
            self.input.press("Enter")
        assert started.value.status == 200
        expect(self.page).to_have_url(re.compile(r"[?&]id=conv-[0-9a-f]{32}$"))
        self._wait_run_ended(self.conversation_id())
        # "AI is thinking…" shows while the stream is open; it goes once the app has read `done`.
        expect(self.page.locator(THINKING)).to_have_count(0)
        expect(self.input).to_be_enabled()

    def _wait_run_ended(self, conversation_id: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.page.request.get(f"/conversations/{conversation_id}").json()["conversation"]["status"]
            if status != "running":
                return
            time.sleep(0.05)  # polling the server's state, bounded by the deadline
        raise AssertionError(f"the run of {conversation_id} did not end in {timeout} s")

    def conversation_id(self) -> str:
        match = re.search(r"[?&]id=(conv-[0-9a-f]{32})$", self.page.url)
        assert match, self.page.url
        return match.group(1)

    def chat_text(self) -> str:
        return re.sub(r"\s+", " ", self.page.locator("main.main-chat-area").inner_text()).strip()

    def stored_items(self, conversation_id: str) -> list[dict]:
        """The history as the project stores it, read with the page's own cookies (the same visitor)."""
        response = self.page.request.get(f"/conversations/{conversation_id}/items")
        assert response.ok, response.text()
        return response.json()["items"]

    def error_toasts(self) -> list[str]:
        return self.page.evaluate("window.__errorToasts")


@pytest.fixture
def app(browser, valuecell_server: LiveServer, request) -> Iterator[ValueCellApp]:
    context = browser.new_context(
        base_url=valuecell_server.url, locale="en-US", timezone_id="UTC", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(20_000)
    app = ValueCellApp(context.new_page(), valuecell_server)

    def only_this_server(route) -> None:
        if route.request.url.startswith(valuecell_server.url + "/"):
            route.continue_()
        else:
            app.aborted.append(route.request.url)
            route.abort()

    context.route("**/*", only_this_server)
    context.add_init_script(TOAST_WATCH)
    try:
        yield app
        assert app.error_toasts() == [], "the app showed error toasts"
        unexpected = [m for m in app.console if not ITS_OWN_ABORT.search(m)]
        assert unexpected == [], f"console errors: {unexpected}"
        assert all(not url.startswith(valuecell_server.url) for url in app.aborted)
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            app.page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"))
        context.close()


def test_a_chat_with_the_demo_agent_then_a_reload_from_history(app: ValueCellApp):
    app.open("/agent/demo")
    expect(app.page.get_by_role("heading", name="Welcome to Demo Agent!")).to_be_visible()
    app.send("Compare AAPL and MSFT")
    expect(app.page).to_have_url(re.compile(r"/agent/demo\?id=conv-[0-9a-f]{32}$"))
    items = app.stored_items(app.conversation_id())
    summary = next(i for i in items if i["event"] == "message_chunk")["payload"]["content"]

    page = app.page
    expect(page.get_by_text("Compare AAPL and MSFT", exact=True)).to_have_count(1)  # the user's bubble, once
    tools = page.locator("button", has_text=re.compile(r"^(load_prices|compute_\w+)$"))
    assert (
        tools.all_inner_texts() == ["load_prices", "compute_return", "compute_volatility", "compute_max_drawdown"] * 2
    )
    # The last sentence of the streamed answer appears exactly once, rendered (no Markdown left).
    last_sentence = summary.rsplit(". ", 1)[-1].strip()
    expect(page.get_by_text(last_sentence, exact=False)).to_have_count(1)
    expect(page.get_by_text("AAPL, MSFT: one year in review")).to_have_count(1)
    expect(page.get_by_text(re.compile(r"^Daily close, 2025-01-02 to 2025-12-31"))).to_have_count(1)
    live = app.chat_text()
    assert "**" not in live and "Thinking" in live
    # The reasoning streamed while the app reset its page to the history it fetched
    # mid-run: it must hold every delta, once.
    reasoning = next(i for i in items if i["event"] == "reasoning_completed")["payload"]["content"]
    page.get_by_text("Thinking", exact=True).click()
    expect(page.get_by_text(reasoning.strip(), exact=True)).to_be_visible()
    page.get_by_text("Thinking", exact=True).click()
    expect(page.get_by_text(reasoning.strip(), exact=True)).to_be_hidden()

    page.reload()
    expect(app.input).to_be_visible()
    expect(page.get_by_text(last_sentence, exact=False)).to_have_count(1)
    assert app.chat_text() == live  # the history rebuilds the same page

    # What is behind the reasoning, a tool call and the report, after the reload.
    page.get_by_text("Thinking", exact=True).click()
    expect(page.get_by_text(reasoning.strip(), exact=True)).to_be_visible()
    result = next(
        i for i in items if i["event"] == "tool_call_completed" and i["payload"]["tool_name"] == "compute_return"
    )
    page.locator("button", has_text=re.compile(r"^compute_return$")).first.click()
    expect(page.get_by_text(re.compile(r"^AAPL total return: [+-]\d+\.\d\d%"))).to_be_visible()
    assert "AAPL total return" in result["payload"]["tool_result"]
    page.get_by_text("AAPL, MSFT: one year in review").click()
    expect(page.get_by_role("heading", name="AAPL, MSFT: one year in review", level=4)).to_be_visible()
    expect(page.get_by_role("columnheader", name="Ticker")).to_be_visible()


def test_a_question_and_its_answer(app: ValueCellApp):
    app.open("/agent/demo")
    app.send("How is the market today?")
    page = app.page
    question = page.get_by_text(re.compile(r"^Which ticker should I analyse\?"))
    expect(question).to_have_count(1)
    cid = app.conversation_id()
    assert app.stored_items(cid)[-1]["event"] == "plan_require_user_input"

    app.send("NVDA")  # the answer goes to the same conversation
    assert app.conversation_id() == cid
    expect(page.locator("p").filter(has_text=re.compile(r"^NVDA$"))).to_have_count(1)  # the answer's bubble
    answer = page.get_by_text(re.compile(r"moved [+-]\d+\.\d\d% over the year"))
    expect(answer).to_have_count(1)
    assert question.bounding_box()["y"] < answer.bounding_box()["y"]
    assert page.locator("button", has_text=re.compile(r"^load_prices$")).count() == 1
    stored = app.stored_items(cid)
    assert [i["payload"]["content"] for i in stored if i["event"] == "thread_started"] == [
        "How is the market today?", "NVDA"
    ]  # fmt: skip

    before = app.chat_text()
    page.reload()
    expect(question).to_have_count(1)
    assert app.chat_text() == before


def test_deleting_a_conversation_from_the_list(app: ValueCellApp):
    app.open("/agent/bench")
    app.send("k=3 delay_ms=30")
    cid = app.conversation_id()
    app.open("/agent/demo")  # elsewhere: the list is the app's own, on every page
    page = app.page
    page.locator('button[data-slot="sheet-trigger"]').click()
    sheet = page.get_by_role("dialog")
    expect(sheet.get_by_role("heading", name="Conversation List")).to_be_visible()
    row = sheet.locator("li", has=page.locator(f'a[href="/agent/bench?id={cid}"]'))
    expect(row).to_contain_text("k=3 delay_ms=30")
    row.hover()
    row.locator('button[data-slot="dropdown-menu-trigger"]').click()
    page.get_by_role("menuitem", name="Delete").click()
    expect(row).to_have_count(0)
    response = httpx.get(f"{app.server.url}/api/v1/conversations/{cid}/history", cookies=_cookies(page))
    assert response.status_code == 404 and response.json()["error"]["code"] == "conversation_not_found"


def _cookies(page: Page) -> dict[str, str]:
    return {c["name"]: c["value"] for c in page.context.cookies()}
