"""The transcript's renderers fed hand-made envelopes in Chromium: replacement of
components by item_id, fallbacks, tool results, de-duplication by seq."""

from __future__ import annotations

import json

import pytest

from .chat import ChatPage

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

APPLY_JS = """
async (envelopes) => {
  const { Transcript } = await import('/static/chat/transcript.js');
  const root = document.createElement('div');
  root.style.width = '700px';
  document.body.append(root);
  const hooks = { questions: [], done: 0 };
  const transcript = new Transcript(root, {
    onQuestion: (text) => hooks.questions.push(text),
    onTaskState: () => {},
    onConversationStarted: () => {},
    onDone: () => hooks.done++,
  });
  for (const envelope of envelopes) transcript.apply(envelope);
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  const entries = [...root.children].map((node) => ({
    cls: node.className,
    type: node.dataset.componentType || null,
    state: node.dataset.state || null,
    text: node.textContent,
    html: node.innerHTML,
  }));
  root.remove();
  return { entries, hooks, lastSeq: transcript.lastSeq };
}
"""


def envelope(seq: int, event: str, item_id: str | None = None, payload: dict | None = None, **data) -> dict:
    body = {"conversation_id": "conv-test", "task_id": "task-1", "thread_id": "th-1", **data}
    if item_id:
        body["item_id"] = item_id
    if payload is not None:
        body["payload"] = payload
    return {"event": event, "data": body, "seq": seq}


def component(seq: int, item_id: str, component_type: str, content) -> dict:
    text = content if isinstance(content, str) else json.dumps(content)
    return envelope(seq, "component_generator", item_id, {"content": text, "component_type": component_type})


@pytest.fixture
def apply(chat: ChatPage):
    chat.open()
    return lambda envelopes: chat.page.evaluate(APPLY_JS, envelopes)


def test_events_at_or_below_the_last_seq_are_ignored(apply):
    chunk = lambda seq, text: envelope(seq, "message_chunk", "item-m", {"content": text})  # noqa: E731
    result = apply([chunk(1, "a"), chunk(2, "b"), chunk(2, "b"), chunk(1, "a"), chunk(3, "c")])
    assert [e["text"] for e in result["entries"]] == ["abc"]
    assert result["lastSeq"] == 3


def test_a_component_with_a_known_item_id_replaces_the_old_one_in_place(apply):
    result = apply(
        [
            component(1, "item-c", "report", {"title": "Draft", "data": "first *version*"}),
            envelope(2, "message_chunk", "item-m", {"content": "after"}),
            component(3, "item-c", "report", {"title": "Final", "data": "second **version**"}),
            component(4, "item-c2", "filtered_line_chart", {"title": "T", "data": [["Date", "A"], ["2025-01-02", 1], ["2025-01-03", 2]]}),
            component(5, "item-c2", "report", {"title": "Chart became a report", "data": "text"}),
        ]
    )
    entries = result["entries"]
    assert [e["type"] for e in entries] == ["report", None, "report"]
    assert "Final" in entries[0]["text"] and "Draft" not in entries[0]["text"]
    assert "<strong>version</strong>" in entries[0]["html"]
    assert entries[1]["text"].strip() == "after"
    assert "Chart became a report" in entries[2]["text"]


def test_unknown_and_malformed_components_fall_back_to_readable_text(apply):
    result = apply(
        [
            component(1, "item-a", "scheduled_task_result", {"title": "Nightly", "rows": [1, 2]}),
            component(2, "item-b", "filtered_line_chart", "not json <b>at all</b>"),
        ]
    )
    first, second = result["entries"]
    assert "fallback" in first["cls"]
    assert first["text"].startswith("scheduled task resultNightly")
    assert '"rows": [' in first["text"]
    assert "fallback" in second["cls"]
    assert "not json <b>at all</b>" in second["text"]
    assert "<b>" not in second["html"]


def test_tool_cards_show_a_spinner_then_the_result_content(apply):
    result = apply(
        [
            envelope(1, "task_started"),
            envelope(2, "tool_call_started", "item-t1", {"tool_call_id": "c1", "tool_name": "lookup"}),
            envelope(3, "tool_call_started", "item-t2", {"tool_call_id": "c2", "tool_name": "raw"}),
            envelope(4, "tool_call_completed", "item-t1", {"tool_call_id": "c1", "tool_name": "lookup", "tool_result": json.dumps([{"content": "one"}, {"content": "two"}])}),
            envelope(5, "tool_call_completed", "item-t2", {"tool_call_id": "c2", "tool_name": "raw", "tool_result": "plain text"}),
            envelope(6, "tool_call_started", "item-t3", {"tool_call_id": "c3", "tool_name": "slow"}),
        ]
    )
    tools = [e for e in result["entries"] if e["cls"] == "tool"]
    assert [(t["state"], t["text"]) for t in tools] == [
        ("done", "lookupone\ntwo"),
        ("done", "rawplain text"),
        ("running", "slowrunning…"),
    ]
    result = apply(
        [
            envelope(1, "task_started"),
            envelope(2, "tool_call_started", "item-t3", {"tool_call_id": "c3", "tool_name": "slow"}),
            envelope(3, "task_cancelled", payload={"content": "Cancelled by the user."}),
        ]
    )
    tool, task = result["entries"]
    assert (tool["state"], task["state"]) == ("stopped", "cancelled")
    assert "1 tool call" in task["text"] and "Cancelled by the user." in task["text"]


def test_a_paragraph_renders_its_markdown_when_it_ends(apply):
    result = apply(
        [
            envelope(1, "message_chunk", "item-p1", {"content": "**bold** "}),
            envelope(2, "message_chunk", "item-p1", {"content": "and `code`"}),
        ]
    )
    assert result["entries"][0]["state"] == "streaming"
    assert result["entries"][0]["text"] == "**bold** and `code`"
    result = apply(
        [
            envelope(1, "message_chunk", "item-p1", {"content": "**bold** "}),
            envelope(2, "message_chunk", "item-p2", {"content": "next"}),
            envelope(3, "message", "item-n", {"content": "a notice"}),
            envelope(4, "done"),
        ]
    )
    first, second, note = result["entries"]
    assert first["state"] is None and first["html"].strip() == "<p><strong>bold</strong> </p>"
    assert second["html"].strip() == "<p>next</p>"
    assert "note-info" in note["cls"] and note["text"].endswith("a notice")
    assert result["hooks"]["done"] == 1
