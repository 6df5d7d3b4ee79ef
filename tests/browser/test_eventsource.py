"""A browser's own EventSource can follow a conversation's stream (GET, cookies, ids)."""

from __future__ import annotations

JS = """
async ([query]) => {
  const csrf = () => (document.cookie.match(/csrftoken=([^;]+)/) || [])[1] || "";
  const start = await fetch("/agents/stream", {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-CSRFToken": csrf()},
    body: JSON.stringify({query, agent_name: "bench"}),
  });
  const reader = start.body.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  await reader.cancel();  // walk away after the first bytes: the run goes on
  const conversationId = start.headers.get("X-Conversation-Id");
  return await new Promise((resolve, reject) => {
    const source = new EventSource(`/conversations/${conversationId}/stream?after=0`);
    const seen = [];
    source.onmessage = (message) => {
      const envelope = JSON.parse(message.data);
      seen.push({seq: envelope.seq, event: envelope.event, id: message.lastEventId});
      if (envelope.event === "done") { source.close(); resolve({conversationId, seen, first}); }
    };
    source.onerror = () => { source.close(); reject(new Error("EventSource error after " + seen.length)); };
    setTimeout(() => { source.close(); reject(new Error("timeout")); }, 20000);
  });
}
"""


def test_eventsource_receives_the_whole_sequence_with_ids(browser, chat_server):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(chat_server.url + "/")
        result = page.evaluate(JS, ["k=30 delay_ms=10"])
    finally:
        context.close()
    seen = result["seen"]
    assert [s["seq"] for s in seen] == list(range(1, 36))
    assert all(s["id"] == str(s["seq"]) for s in seen)
    assert [s["event"] for s in seen][-2:] == ["task_completed", "done"]


FINISHED_JS = """
async ([query]) => {
  const csrf = () => (document.cookie.match(/csrftoken=([^;]+)/) || [])[1] || "";
  const start = await fetch("/agents/stream", {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-CSRFToken": csrf()},
    body: JSON.stringify({query, agent_name: "bench"}),
  });
  const text = await start.text();  // the whole run, to its `done`
  const lastSeq = Math.max(...[...text.matchAll(/^id: (\\d+)$/gm)].map((m) => Number(m[1])));
  const conversationId = start.headers.get("X-Conversation-Id");
  return await new Promise((resolve) => {
    const source = new EventSource(`/conversations/${conversationId}/stream?after=${lastSeq}`);
    let opened = 0;
    source.onopen = () => opened++;
    source.onerror = () => { const state = source.readyState; source.close(); resolve({state, opened, lastSeq}); };
    setTimeout(() => { source.close(); resolve({state: "timeout", opened, lastSeq}); }, 15000);
  });
}
"""


def test_eventsource_stops_on_a_finished_conversation_instead_of_reconnecting_forever(browser, chat_server):
    """Nothing after the cursor and no run in progress: 204, and EventSource closes for good
    (with a 200 and an empty body it reopened every `retry` ms)."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(chat_server.url + "/")
        result = page.evaluate(FINISHED_JS, ["k=3 delay_ms=0"])
    finally:
        context.close()
    assert result["lastSeq"] == 8
    assert result["opened"] == 0
    assert result["state"] == 2  # EventSource.CLOSED: it will not reconnect
