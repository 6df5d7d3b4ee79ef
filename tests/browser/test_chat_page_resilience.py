"""The chat page when things go wrong mid-run: the network drops, the page is
reloaded, the user presses Stop. The conversation must end up exactly right."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.live import LiveServer

from .chat import ChatPage, open_chat

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

QUERY = "Compare AAPL and MSFT"


def test_offline_mid_stream_then_online_resumes_with_text_identical_to_an_uninterrupted_run(chat: ChatPage):
    chat.open()
    chat.send(QUERY)
    chat.wait_task("done")
    reference = chat.snapshot()
    chat.page.get_by_role("button", name="New chat").click()

    chat.send(QUERY)
    expect(chat.page.locator("#transcript > .reasoning[data-state=thinking] .reasoning-body")).not_to_be_empty()
    conversation_id = chat.conversation_id()
    resumed_from = []
    chat.page.on(
        "request",
        lambda r: resumed_from.append(r.headers.get("last-event-id")) if r.url.endswith("/stream") and r.method == "GET" else None,
    )
    chat.page.context.set_offline(True)
    expect(chat.banner).to_be_visible()
    expect(chat.banner).to_contain_text("reconnecting…")
    seen = chat.last_seq()
    # The run goes on without us: wait until it stored events the page has not seen.
    chat.wait_server_seq(conversation_id, after=seen, at_least=seen + 15)
    assert chat.last_seq() == seen, "the page received events while offline"
    expect(chat.task).to_have_attribute("data-state", "running")

    chat.page.context.set_offline(False)
    expect(chat.banner).to_be_hidden()
    chat.wait_task("done")
    assert resumed_from[0] == str(seen)
    assert chat.snapshot() == reference
    stored = chat.api_get(f"/conversations/{conversation_id}/items")
    assert chat.last_seq() == stored["last_seq"]
    summary = [i for i in stored["items"] if i["event"] == "message_chunk"][-1]["payload"]["content"]
    assert summary.startswith("**AAPL** moved")
    expect(chat.messages.last).to_have_text(summary.replace("**", ""))


def test_reload_mid_run_shows_history_and_continues_live(chat: ChatPage):
    chunks = 300
    chat.open()
    chat.send(f"k={chunks} delay_ms=15", agent="bench")
    expect(chat.messages.last).to_contain_text("chunk 30 ")
    conversation_id = chat.conversation_id()

    chat.reload()
    assert chat.conversation_id() == conversation_id
    # History first (the beginning of the paragraph is there at once), then live.
    expect(chat.messages.last).to_contain_text("chunk 0 chunk 1 chunk 2 ")
    expect(chat.task).to_have_attribute("data-state", "running")
    expect(chat.send_button).to_have_attribute("data-action", "stop")
    expect(chat.page.locator("#transcript > .turn-user")).to_have_text(f"k={chunks} delay_ms=15")

    chat.wait_task("done")
    expected = " ".join(f"chunk {i}" for i in range(chunks))
    expect(chat.messages).to_have_text(expected)
    assert chat.last_seq() == chat.api_get(f"/conversations/{conversation_id}/items")["last_seq"]


def test_stop_cancels_the_running_task(chat: ChatPage):
    chat.open()
    chat.send("k=3000 delay_ms=10", agent="bench")
    expect(chat.messages.last).to_contain_text("chunk 10 ")
    expect(chat.send_button).to_have_attribute("data-action", "stop")
    expect(chat.send_button).to_have_accessible_name("Stop the running task")
    expect(chat.page.locator("#conversations .conv-status")).to_have_text("running")

    chat.send_button.click()
    chat.wait_task("cancelled")
    expect(chat.task.locator(".task-reason")).to_have_text("Cancelled by the user.")
    expect(chat.send_button).to_have_attribute("data-action", "send")
    assert "chunk 2999" not in chat.messages.last.text_content()
    expect(chat.page.locator("#conversations .conv-status")).to_have_text("idle")
    detail = chat.api_get(f"/conversations/{chat.conversation_id()}")
    assert [t["status"] for t in detail["tasks"]] == ["cancelled"]

    # Reloaded, the cancelled task still says so.
    chat.reload()
    chat.wait_task("cancelled")
    expect(chat.task.locator(".task-reason")).to_have_text("Cancelled by the user.")


@pytest.fixture
def restartable_chat(browser, request) -> Iterator[ChatPage]:
    """A page on a server of its own, which the test kills and starts again."""
    server = LiveServer(
        env={"VALUECELL_RUN_LEASE_SECONDS": "2", "VALUECELL_REAPER_INTERVAL_SECONDS": "0.5"}
    ).start()
    try:
        yield from open_chat(browser, server, request, viewport={"width": 1280, "height": 900})
    finally:
        server.close()


def test_server_killed_mid_run_then_restarted_the_page_reconnects_and_shows_the_end(restartable_chat: ChatPage):
    chat = restartable_chat
    # The broken stream and the refused reconnections are logged by the browser itself.
    chat.allow_console(r"Failed to load resource|net::ERR_")
    chat.open()
    chat.send("k=5000 delay_ms=10", agent="bench")
    expect(chat.messages.last).to_contain_text("chunk 20 ")
    conversation_id = chat.conversation_id()

    chat.server.stop(signal.SIGKILL)
    expect(chat.banner).to_be_visible()
    chat.server.start()

    # The new worker's reaper ends the abandoned run; the page hears it on its resumed stream.
    chat.wait_task("failed")
    expect(chat.banner).to_be_hidden()
    expect(chat.page.locator("#transcript > .note-error")).to_contain_text("stopped responding")
    stored = chat.api_get(f"/conversations/{conversation_id}/items")
    assert chat.last_seq() == stored["last_seq"]
    text = [i for i in stored["items"] if i["event"] == "message_chunk"][0]["payload"]["content"]
    expect(chat.messages).to_have_text(text.strip())


def test_leaving_a_running_conversation_and_opening_it_from_the_sidebar_follows_it_again(chat: ChatPage):
    chunks = 250
    chat.open()
    chat.send(f"k={chunks} delay_ms=15", agent="bench")
    expect(chat.messages.last).to_contain_text("chunk 10 ")
    conversation_id = chat.conversation_id()

    chat.page.get_by_role("button", name="New chat").click()
    expect(chat.page.locator("#empty")).to_be_visible()
    expect(chat.send_button).to_have_attribute("data-action", "send")
    entry = chat.page.locator("#conversations a.conv")
    expect(entry.locator(".conv-status")).to_have_text("running")

    entry.click()
    assert chat.conversation_id() == conversation_id
    expect(chat.task).to_have_attribute("data-state", "running")
    chat.wait_task("done")
    expect(chat.messages).to_have_text(" ".join(f"chunk {i}" for i in range(chunks)))
    expect(entry.locator(".conv-status")).to_have_text("idle")
