"""The chat page on a phone-sized screen, with the keyboard, and in production
mode (DEBUG off: WhiteNoise serves the collected, hashed static files)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.live import LiveServer

from .chat import ARTIFACTS, ChatPage, open_chat

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

HASHED = re.compile(r"\.[0-9a-f]{12}\.(m?js|css|svg)$")


def test_narrow_screen_uses_a_drawer_and_stays_within_the_width(narrow_chat: ChatPage):
    chat = narrow_chat
    chat.open()
    sidebar = chat.page.locator("#sidebar")
    menu = chat.page.get_by_role("button", name="Show conversations")
    expect(sidebar).to_be_hidden()
    expect(menu).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "false")

    chat.send("How did NVDA do this year?")
    chat.wait_task("done")
    expect(chat.page.locator("#transcript > .chart-card svg path.line")).to_have_count(1)
    overflow = chat.page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    assert chat.page.locator(".chart-plot svg").bounding_box()["width"] <= 390

    menu.click()
    expect(sidebar).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(chat.page.locator("#conversations a.conv")).to_be_focused()  # focus moves into the drawer
    chat.page.keyboard.press("Escape")
    expect(sidebar).to_be_hidden()
    expect(menu).to_be_focused()  # and comes back

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    chat.page.screenshot(path=str(ARTIFACTS / "chat_narrow.png"))


def test_keyboard_only_enter_sends_and_shift_enter_adds_a_line(chat: ChatPage):
    chat.open()
    expect(chat.query).to_be_focused()
    chat.page.select_option("#agent", "bench")
    chat.query.focus()
    chat.page.keyboard.type("k=2")
    chat.page.keyboard.press("Shift+Enter")
    expect(chat.query).to_have_value("k=2\n")
    expect(chat.transcript.locator("> *")).to_have_count(0)
    chat.page.keyboard.press("Backspace")
    chat.page.keyboard.press("Enter")
    chat.wait_task("done")
    expect(chat.messages).to_have_text("chunk 0 chunk 1")
    expect(chat.query).to_have_value("")
    expect(chat.query).to_be_focused()
    # An empty message is not sent.
    chat.page.keyboard.press("Enter")
    expect(chat.page.locator("#transcript > .task")).to_have_count(1)
    expect(chat.send_button).to_be_disabled()


@pytest.fixture
def production_chat(browser, request) -> Iterator[ChatPage]:
    server = LiveServer(env={"DEBUG": "false", "SECRET_KEY": "browser-test-" + "k" * 48})
    server.manage("collectstatic", "--noinput", "-v0")
    server.start()
    try:
        yield from open_chat(browser, server, request, viewport={"width": 1280, "height": 900})
    finally:
        server.close()


def test_production_mode_serves_hashed_static_files_and_the_page_works(production_chat: ChatPage):
    chat = production_chat
    statics: dict[str, tuple[int, str]] = {}
    chat.page.on(
        "response",
        lambda r: statics.__setitem__(r.url, (r.status, r.headers.get("cache-control", "")))
        if "/static/" in r.url
        else None,
    )
    chat.open()
    chat.send("k=3", agent="bench")
    chat.wait_task("done")
    expect(chat.messages).to_have_text("chunk 0 chunk 1 chunk 2")

    modules = [url for url in statics if re.search(r"\.m?js$", url)]
    names = {re.sub(r"\.[0-9a-f]{12}(?=\.)", "", url.rsplit("/", 1)[1]) for url in modules}
    assert {"chat.js", "sse.js", "stream.js", "markdown.js", "marked.esm.js", "purify.es.mjs"} <= names
    for url, (status, cache_control) in statics.items():
        assert status == 200, url
        assert HASHED.search(url), f"{url} is not a hashed (cache-forever) URL"
        assert "max-age=315360000" in cache_control, (url, cache_control)
