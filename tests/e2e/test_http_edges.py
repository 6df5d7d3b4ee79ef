"""Where the API lives it answers like an API: HEAD like GET, JSON for unknown paths,
CSRF failures and server errors, and no unsafe request from another site."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.client import read_events, run

pytestmark = pytest.mark.e2e


@pytest.fixture
def alice(daphne_server, alice_token):
    with httpx.Client(base_url=daphne_server.url, timeout=30, headers={"Authorization": f"Bearer {alice_token}"}) as c:
        yield c


# --- HEAD -----------------------------------------------------------------------------
def test_head_answers_like_get_without_a_body(alice):
    _, events = run(alice, "k=2 delay_ms=0", agent_name="bench")
    conversation_id = events[0]["data"]["conversation_id"]
    for path in ("/agents", "/conversations", f"/conversations/{conversation_id}", f"/conversations/{conversation_id}/items"):
        get, head = alice.get(path), alice.head(path)
        assert (head.status_code, get.status_code) == (200, 200), path
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"] == "application/json"
        assert int(head.headers["content-length"]) == len(get.content)
    # Errors too: the status and headers of GET's.
    missing = alice.head("/conversations/conv-nope")
    assert missing.status_code == 404 and missing.content == b""


def test_head_on_a_stream_answers_at_once_and_starts_no_stream(alice):
    with alice.stream("POST", "/agents/stream", json={"query": "k=40 delay_ms=100", "agent_name": "bench"}) as running:
        conversation_id = read_events(running, limit=1)[0].json["data"]["conversation_id"]
        started = time.monotonic()
        head = alice.head(f"/conversations/{conversation_id}/stream", headers={"Last-Event-ID": "0"})
        assert time.monotonic() - started < 3  # not held open until the run's `done` (4 s away)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"].startswith("text/event-stream")
        read_events(running)
    idle = alice.head(f"/conversations/{conversation_id}/stream", headers={"Last-Event-ID": "45"})
    assert idle.status_code == 204


def test_head_is_405_where_get_is_not_allowed_and_allow_lists_it_where_it_is(alice):
    refused = alice.head("/agents/stream")
    assert refused.status_code == 405 and refused.headers["allow"] == "POST"
    wrong = alice.put("/conversations")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, HEAD"
