"""Where the API lives it answers like an API: HEAD like GET, JSON for unknown paths,
CSRF failures and server errors, and no unsafe request from another site."""

from __future__ import annotations

import sqlite3
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


# --- JSON wherever the API lives --------------------------------------------------------
@pytest.mark.parametrize("method, path", [("GET", "/agents/nope"), ("GET", "/conversations/a/b/c"), ("POST", "/api/v1/none"), ("GET", "/ag-ui/")])
def test_unknown_api_paths_are_json_with_debug_on(daphne_server, method, path):
    # The live servers run with DEBUG=true: Django's HTML debug page is what this replaced.
    response = httpx.request(method, daphne_server.url + path, timeout=30)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


# --- cross-site requests -------------------------------------------------------------------
def conversations_in(server) -> int:
    with sqlite3.connect(server.database_url.removeprefix("sqlite:///"), timeout=30) as db:
        return db.execute("SELECT COUNT(*) FROM conversations_conversation").fetchone()[0]


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},  # a browser without Fetch Metadata
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_cross_site_post_plants_no_session_and_no_conversation(daphne_server, headers):
    before = conversations_in(daphne_server)
    with httpx.Client(base_url=daphne_server.url, timeout=30) as victim:  # anonymous, no session yet
        response = victim.post("/agents/stream", json={"query": "k=1", "agent_name": "bench"}, headers=headers)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "cross_site_request"
        assert "set-cookie" not in response.headers and not victim.cookies
    assert conversations_in(daphne_server) == before


def test_the_sites_own_pages_and_programs_still_post(daphne_server):
    own = {"Origin": daphne_server.url, "Sec-Fetch-Site": "same-origin"}
    for headers in (own, {}):
        with httpx.Client(base_url=daphne_server.url, timeout=30, headers=headers) as visitor:
            _, events = run(visitor, "k=1 delay_ms=0", agent_name="bench")
            assert events[-1]["event"] == "done", headers


def test_head_answers_like_get_in_the_dialects(alice):
    _, events = run(alice, "k=2 delay_ms=0", agent_name="bench")
    conversation_id = events[0]["data"]["conversation_id"]
    for path in ("/api/v1/healthz", "/api/v1/agents/", "/api/v1/agents/by-name/demo", "/api/v1/conversations/",
                 f"/api/v1/conversations/{conversation_id}/history"):
        get, head = alice.get(path), alice.head(path)
        assert (head.status_code, get.status_code) == (200, 200), path
        assert head.content == b""
        assert int(head.headers["content-length"]) == len(get.content)
    assert alice.head("/api/v1/agents/by-name/nope").status_code == 404
    assert alice.head("/api/v1/agents/stream").status_code == 405
    # AG-UI's resume: GET's status, no body (a thread named by no AG-UI run is unknown).
    head = alice.head("/ag-ui/demo/threads/never-run/stream", headers={"Last-Event-ID": "0"})
    assert head.status_code == alice.get("/ag-ui/demo/threads/never-run/stream").status_code == 404
    assert head.content == b""
