"""The chat page in Chromium against a live Daphne: a full demo run, the question
an agent asks, failures, the sidebar and history, read as a person would."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .chat import ChatPage

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_demo_query_renders_reasoning_tools_chart_report_and_summary_then_done(chat: ChatPage):
    chat.open()
    expect(chat.page.locator("#empty")).to_be_visible()
    expect(chat.page.locator("#agent")).to_have_value("demo")
    chat.send("Compare AAPL and MSFT")

    # Reasoning streams in an open "Thinking…" block, then collapses.
    reasoning = chat.page.locator("#transcript > .reasoning")
    expect(reasoning).to_have_attribute("data-state", "thinking")
    expect(reasoning).to_have_attribute("open", "")
    expect(reasoning.locator("summary")).to_contain_text("Thinking…")
    expect(chat.send_button).to_have_attribute("data-action", "stop")
    expect(reasoning).to_have_attribute("data-state", "done")
    expect(reasoning).not_to_have_attribute("open", "")
    expect(reasoning.locator(".reasoning-body")).to_contain_text("I will load a year of daily closes")

    chat.wait_task("done")
    expect(chat.query).to_be_focused()
    expect(chat.page.locator("#empty")).to_be_hidden()

    tools = chat.page.locator("#transcript > .tool")
    expect(tools).to_have_count(8)
    expect(chat.page.locator("#transcript > .tool[data-state=done]")).to_have_count(8)
    assert tools.locator(".tool-name").all_text_contents() == [
        "load_prices", "compute_return", "compute_volatility", "compute_max_drawdown"
    ] * 2
    expect(tools.nth(1).locator(".tool-result")).to_have_text(re.compile(r"^AAPL total return: [+-]\d+\.\d\d% "))

    chart = chat.page.locator("#transcript > .chart-card")
    expect(chart.locator(".card-title")).to_contain_text("Daily close")
    expect(chart.locator("svg path.line")).to_have_count(2)
    assert chart.locator(".chart-key").all_text_contents() == ["AAPL", "MSFT"]
    assert len(chart.locator(".axis-y text").all()) >= 3
    expect(chart.locator(".axis-x text").first).to_have_text("Jan 2025")
    # The legend filters series.
    chart.locator(".chart-key", has_text="MSFT").click()
    expect(chart.locator("svg path.line")).to_have_count(1)
    expect(chart.locator(".chart-key", has_text="MSFT")).to_have_attribute("aria-pressed", "false")
    chart.locator(".chart-key", has_text="MSFT").click()
    expect(chart.locator("svg path.line")).to_have_count(2)

    report = chat.page.locator("#transcript > .report")
    expect(report.locator(".card-title")).to_have_text("AAPL, MSFT: one year in review")
    expect(report.locator("tbody tr")).to_have_count(2)
    expect(report.locator("th").first).to_have_text("Ticker")

    # The streamed summary ends up as rendered Markdown.
    summary = chat.messages.last
    expect(summary).not_to_have_attribute("data-state", "streaming")
    assert summary.locator("strong").all_text_contents()[:2] == ["AAPL", "MSFT"]
    expect(summary).to_contain_text("treat them as a demonstration only.")
    assert "**" not in summary.text_content()

    expect(chat.task).to_contain_text("Done")
    expect(chat.task.locator(".task-tools")).to_have_text("8 tool calls")
    expect(chat.task.locator(".task-elapsed")).to_have_text(re.compile(r"^\d+(\.\d)? s$"))
    expect(chat.send_button).to_have_attribute("data-action", "send")

    conversation_id = chat.conversation_id()
    assert conversation_id.startswith("conv-")
    entry = chat.page.locator("#conversations a.conv")
    expect(entry).to_have_count(1)
    expect(entry.locator(".conv-title")).to_have_text("Compare AAPL and MSFT")
    expect(entry.locator(".conv-status")).to_have_text("idle")
    expect(entry).to_have_attribute("aria-current", "page")

    shot = chat.screenshot_whole("chat_finished.png")
    assert shot.stat().st_size > 10_000

    # The same conversation rebuilt from history shows exactly the same.
    live = chat.snapshot()
    chat.reload()
    chat.wait_task("done")
    assert chat.snapshot() == live
    expect(chat.task.locator(".task-tools")).to_have_text("8 tool calls")
    assert chat.last_seq() == chat.api_get(f"/conversations/{conversation_id}/items")["last_seq"]


def test_question_is_shown_and_answered_from_the_composer(chat: ChatPage):
    chat.open()
    chat.send("Analyse my favourite stock")

    question = chat.page.locator("#transcript > .question")
    expect(question).to_have_attribute("data-state", "pending")
    expect(question.locator(".question-text")).to_contain_text("Which ticker should I analyse?")
    expect(question.locator(".question-text")).to_contain_text("“Analyse my favourite stock”")
    chat.wait_task("waiting")
    expect(chat.page.locator("#composer")).to_have_attribute("data-mode", "answer")
    expect(chat.send_button).to_have_attribute("data-action", "send")
    expect(chat.page.locator(".composer-hint")).to_contain_text("Answering: Which ticker should I analyse?")
    expect(chat.page.locator("#agent")).to_be_disabled()
    expect(chat.query).to_be_focused()
    expect(chat.page.locator("#conversations .conv-status")).to_have_text("needs input")
    conversation_id = chat.conversation_id()

    chat.query.type("NVDA, please")
    chat.query.press("Enter")

    expect(question).to_have_attribute("data-state", "answered")
    expect(chat.page.locator("#transcript > .turn-user")).to_have_text(["Analyse my favourite stock", "NVDA, please"])
    chat.wait_task("done")
    expect(chat.page.locator("#transcript > .task")).to_have_count(1)  # one task, resumed by the answer
    expect(chat.page.locator("#transcript > .tool[data-state=done]")).to_have_count(4)
    expect(chat.page.locator("#transcript > .chart-card .chart-key")).to_have_text(["NVDA"])
    expect(chat.page.locator("#composer")).to_have_attribute("data-mode", "ask")
    assert chat.conversation_id() == conversation_id
    expect(chat.page.locator("#conversations a.conv")).to_have_count(1)
    expect(chat.page.locator("#conversations .conv-status")).to_have_text("idle")


def test_a_task_waiting_for_an_answer_can_be_stopped(chat: ChatPage):
    chat.open()
    chat.send("Analyse my favourite stock")
    chat.wait_task("waiting")
    stop = chat.page.get_by_role("button", name="Stop the task")
    expect(stop).to_be_visible()
    expect(chat.send_button).to_have_attribute("data-action", "send")  # the answer is still possible
    stop.click()
    chat.wait_task("cancelled")
    expect(chat.page.locator("#transcript > .question")).to_have_attribute("data-state", "answered")
    expect(chat.page.locator("#composer")).to_have_attribute("data-mode", "ask")
    expect(stop).to_be_hidden()
    expect(chat.page.locator("#conversations .conv-status")).to_have_text("idle")
    conversation_id = chat.conversation_id()
    tasks = chat.api_get(f"/conversations/{conversation_id}")["tasks"]
    assert [t["status"] for t in tasks] == ["cancelled"]
    # The conversation takes a new input at once.
    chat.send("AAPL")
    chat.wait_task("done")
    expect(chat.page.locator("#transcript > .task")).to_have_count(2)


def test_failed_task_shows_its_error_and_a_failed_state(chat: ChatPage):
    chat.open()
    chat.send("hello there", agent="bench")
    chat.wait_task("failed")
    expect(chat.page.locator("#transcript > .note-error")).to_contain_text("bench expects a query of the form")
    expect(chat.task.locator(".task-label")).to_have_text("Failed")
    expect(chat.page.locator("#composer")).to_have_attribute("data-mode", "ask")


def test_sidebar_lists_conversations_newest_first_and_opens_them(chat: ChatPage):
    chat.open()
    chat.send("k=3", agent="bench")
    chat.wait_task("done")
    first = chat.conversation_id()
    expect(chat.messages).to_have_text("chunk 0 chunk 1 chunk 2")

    chat.page.get_by_role("button", name="New chat").click()
    expect(chat.page.locator("#empty")).to_be_visible()
    expect(chat.transcript.locator("> *")).to_have_count(0)
    assert chat.page.url.endswith("/")
    chat.send("k=2", agent="bench")
    chat.wait_task("done")
    second = chat.conversation_id()
    assert second != first

    entries = chat.page.locator("#conversations a.conv")
    expect(entries.locator(".conv-title")).to_have_text(["k=2", "k=3"])
    expect(entries.first).to_have_attribute("aria-current", "page")

    entries.nth(1).click()
    expect(chat.messages).to_have_text("chunk 0 chunk 1 chunk 2")
    assert chat.conversation_id() == first
    expect(entries.nth(1)).to_have_attribute("aria-current", "page")
    expect(chat.page.locator("#agent")).to_have_value("bench")

    chat.page.go_back()
    expect(chat.messages).to_have_text("chunk 0 chunk 1")
    assert chat.conversation_id() == second

    # A follow-up in an open conversation continues it.
    chat.send("k=1", agent="bench")
    expect(chat.page.locator("#transcript > .task")).to_have_count(2)
    chat.wait_task("done")
    expect(chat.messages).to_have_text(["chunk 0 chunk 1", "chunk 0"])
    expect(entries.locator(".conv-title")).to_have_text(["k=2", "k=3"])


def test_conversations_are_deleted_from_the_sidebar_but_not_while_a_task_waits(chat: ChatPage):
    chat.allow_console(r"status of 409")
    chat.open()
    chat.send("k=2", agent="bench")
    chat.wait_task("done")
    finished = chat.conversation_id()
    chat.page.get_by_role("button", name="New chat").click()
    chat.send("hello there", agent="demo")
    expect(chat.transcript.locator(".question")).to_be_visible()
    waiting = chat.conversation_id()
    items = chat.page.locator("#conversations li.conv-item")
    expect(items.locator(".conv-title")).to_have_text(["hello there", "k=2"])

    # The one waiting for an answer: the server refuses, the page says why.
    chat.page.once("dialog", lambda dialog: dialog.accept())
    chat.page.get_by_role("button", name="Delete “hello there”").click()
    expect(chat.page.locator(".composer-error")).to_contain_text("Cancel the running task")
    expect(items).to_have_count(2)

    # The finished one, open: dismissing the confirmation keeps it, accepting deletes it.
    items.locator("a.conv", has_text="k=2").click()
    expect(chat.messages).to_have_text("chunk 0 chunk 1")
    chat.page.once("dialog", lambda dialog: dialog.dismiss())
    chat.page.get_by_role("button", name="Delete “k=2”").click()
    expect(items).to_have_count(2)
    assert chat.conversation_id() == finished
    chat.page.once("dialog", lambda dialog: dialog.accept())
    chat.page.get_by_role("button", name="Delete “k=2”").click()
    expect(items.locator(".conv-title")).to_have_text(["hello there"])
    expect(chat.page.locator("#empty")).to_be_visible()
    assert chat.page.url.endswith("/")
    assert chat.page.request.get(f"/conversations/{finished}").status == 404
    assert chat.page.request.get(f"/conversations/{waiting}").status == 200


def test_unknown_conversation_says_so(chat: ChatPage):
    chat.allow_console(r"status of 404")
    chat.open("/?conversation=conv-does-not-exist")
    expect(chat.transcript.locator(".note-error")).to_contain_text("does not exist")
    expect(chat.page.locator("#composer")).to_have_attribute("data-mode", "ask")
