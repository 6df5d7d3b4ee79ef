"""SSE wire format, heartbeats and the anonymous session with CSRF."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.client import read_events
from tests.live import LiveServer
from tests.sse import SseParser


def test_wire_format_headers_retry_and_frames(daphne_server, alice_token):
    headers = {"Authorization": f"Bearer {alice_token}"}
    with httpx.Client(base_url=daphne_server.url, headers=headers, timeout=30) as client:
        with client.stream("POST", "/agents/stream", json={"query": "k=2 delay_ms=0", "agent_name": "bench"}) as response:
            raw = "".join(response.iter_text())
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert raw.startswith("retry: 3000\n\n")
    assert "\r" not in raw
    blocks = raw.strip("\n").split("\n\n")[1:]
    assert len(blocks) == 7
    for seq, block in enumerate(blocks, start=1):
        lines = block.split("\n")
        assert len(lines) == 2 and lines[0].startswith("data: {")
        assert lines[1] == f"id: {seq}"  # after the data since issue 13


@pytest.fixture(scope="module")
def chatty_server():
    server = LiveServer(env={"VALUECELL_SSE_HEARTBEAT_SECONDS": "0.2", "VALUECELL_FOLLOW_RECHECK_SECONDS": "0.1"}).start()
    yield server
    server.close()


def test_idle_stream_sends_comment_heartbeats(chatty_server):
    headers = {"Authorization": f"Bearer {chatty_server.token('hb')}"}
    with httpx.Client(base_url=chatty_server.url, headers=headers, timeout=30) as client:
        with client.stream("POST", "/agents/stream", json={"query": "k=2 delay_ms=900", "agent_name": "bench"}) as response:
            parser = SseParser()
            events = []
            for text in response.iter_text():
                events.extend(parser.feed(text))
    assert "ping" in parser.comments
    assert [e.json["event"] for e in events][-1] == "done"


def test_anonymous_session_owns_its_conversation_and_needs_csrf(daphne_server):
    with httpx.Client(base_url=daphne_server.url, timeout=30) as browser:
        with browser.stream("POST", "/agents/stream", json={"query": "hello"}) as response:
            events = [e.json for e in read_events(response)]
        assert "sessionid" in browser.cookies
        conversation_id = events[0]["data"]["conversation_id"]
        listed = [c["id"] for c in browser.get("/conversations").json()["conversations"]]
        assert conversation_id in listed

        # The session cookie is an ambient credential: a POST without the CSRF token is refused.
        refused = browser.post("/agents/stream", json={"query": "AAPL", "conversation_id": conversation_id})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
        token = browser.cookies["csrftoken"]
        with browser.stream(
            "POST",
            "/agents/stream",
            json={"query": "AAPL", "conversation_id": conversation_id},
            headers={"X-CSRFToken": token, "Origin": daphne_server.url},
        ) as response:
            assert response.status_code == 200
            answer = [e.json for e in read_events(response)]
        assert answer[-1]["event"] == "done" and answer[-2]["event"] == "task_completed"

    with httpx.Client(base_url=daphne_server.url, timeout=30) as stranger:
        assert stranger.get(f"/conversations/{conversation_id}/items").status_code == 404
