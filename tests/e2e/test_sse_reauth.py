"""A revoked API token ends the SSE streams opened with it, as it closes WebSockets:
the native stream with a comment, the dialects' streams in their own words (AG-UI's
`RUN_ERROR invalid_token`, ValueCell's `system_failed` frame)."""

from __future__ import annotations

import sqlite3
import time
import uuid

import httpx
import pytest
from ag_ui.core import Event, EventType
from pydantic import TypeAdapter

from conversations.tokens import hash_key
from tests.e2e.client import read_events
from tests.live import LiveServer
from tests.streaming.dialect_runs import verify

pytestmark = pytest.mark.e2e

REAUTH_SECONDS = 0.5
EVENT = TypeAdapter(Event)


@pytest.fixture(scope="module")
def server():
    server = LiveServer(env={"VALUECELL_SSE_REAUTH_SECONDS": str(REAUTH_SECONDS)}).start()
    yield server
    server.close()


def revoke(server: LiveServer, token: str) -> None:
    path = server.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path, timeout=30) as db:
        updated = db.execute(
            "UPDATE conversations_apitoken SET revoked_at = CURRENT_TIMESTAMP WHERE key_hash = ?", (hash_key(token),)
        ).rowcount
    assert updated == 1


def read_to_the_end(stream: httpx.Response, within: float) -> list:
    """The rest of the response's events; fails, rather than hangs, if it is still
    streaming `within` seconds from now (the runs here would go on for minutes)."""
    deadline = time.monotonic() + within
    events = []
    while batch := read_events(stream, limit=1):
        events += batch
        assert time.monotonic() < deadline, f"still streaming after {within} s ({len(events)} more events)"
    return events


@pytest.mark.parametrize("door", ["start", "resume"])
def test_revoking_the_token_ends_an_open_stream_within_the_reauth_interval(server, door):
    token = server.token(f"revoked-{door}")
    headers = {"Authorization": f"Bearer {token}"}
    body = {"query": "k=100000 delay_ms=20", "agent_name": "bench"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        with client.stream("POST", "/agents/stream", json=body) as started:
            head = read_events(started, limit=3)
            conversation_id = head[0].json["data"]["conversation_id"]
            if door == "start":
                stream = started
            else:
                resumed = client.stream("GET", f"/conversations/{conversation_id}/stream", headers={"Last-Event-ID": "3"})
                stream = resumed.__enter__()
                assert stream.status_code == 200
            read_events(stream, limit=5)
            revoke(server, token)
            revoked_at = time.monotonic()
            rest = read_to_the_end(stream, REAUTH_SECONDS + 10)  # the server must end it
            ended_after = time.monotonic() - revoked_at
            if door == "resume":
                resumed.__exit__(None, None, None)
        # It ended because of the token, not because the run finished: no `done`.
        assert all(e.json["event"] != "done" for e in rest)
        assert ended_after < REAUTH_SECONDS + 10, ended_after
        tail = stream.extensions["sse"]["parser"].comments
        assert any("revoked" in comment for comment in tail), tail
        # The reconnect is refused, so a client stops there.
        again = client.get(f"/conversations/{conversation_id}/stream", headers={"Last-Event-ID": "3"})
        assert again.status_code == 401 and again.json()["error"]["code"] == "invalid_token"
    # The run went on regardless; a valid token of the same user stops it.
    cancel = httpx.post(
        f"{server.url}/conversations/{conversation_id}/cancel",
        headers={"Authorization": f"Bearer {server.token(f'revoked-{door}')}"},
    )
    assert cancel.status_code == 202


def cancel_with_a_new_token(server: LiveServer, username: str, conversation_id: str) -> None:
    """The run went on regardless of the revoked token; a valid token of the same user stops it."""
    cancel = httpx.post(
        f"{server.url}/conversations/{conversation_id}/cancel",
        headers={"Authorization": f"Bearer {server.token(username)}"},
    )
    assert cancel.status_code == 202


def agui_input(thread_id: str, query: str) -> dict:
    return {"threadId": thread_id, "runId": "run-1", "state": {}, "tools": [], "context": [], "forwardedProps": {},
            "messages": [{"id": "u1", "role": "user", "content": query}]}  # fmt: skip


@pytest.mark.parametrize("door", ["run", "resume"])
def test_revoking_the_token_ends_an_agui_stream_with_run_error(server, door):
    username = f"agui-revoked-{door}"
    token = server.token(username)
    thread = f"t-{uuid.uuid4().hex}"
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        with client.stream("POST", "/ag-ui/bench", json=agui_input(thread, "k=100000 delay_ms=20")) as started:
            assert started.status_code == 200, started.read()
            conversation_id = started.headers["X-Conversation-Id"]
            head = read_events(started, limit=8)
            if door == "run":
                stream, raw = started, head
            else:
                after = next(e.id for e in reversed(head) if e.id is not None)
                resumed = client.stream("GET", f"/ag-ui/bench/threads/{thread}/stream", headers={"Last-Event-ID": after})
                stream = resumed.__enter__()
                assert stream.status_code == 200
                raw = []
            raw += read_events(stream, limit=5)
            revoke(server, token)
            revoked_at = time.monotonic()
            raw += read_to_the_end(stream, REAUTH_SECONDS + 10)  # the server must end it
            ended_after = time.monotonic() - revoked_at
            if door == "resume":
                resumed.__exit__(None, None, None)
        assert ended_after < REAUTH_SECONDS + 10, ended_after
        events = verify(EVENT.validate_python(e.json) for e in raw)  # still one valid AG-UI run
        assert (events[-1].type, events[-1].code) == (EventType.RUN_ERROR, "invalid_token")
        assert "revoked" in events[-1].message and raw[-1].id is None  # the door's frame, not a stored event's
        assert all(e.type != EventType.RUN_FINISHED for e in events)
        # The client's reconnect is refused.
        again = client.get(f"/ag-ui/bench/threads/{thread}/stream", headers={"Last-Event-ID": "3"})
        assert again.status_code == 401 and again.json()["error"]["code"] == "invalid_token"
    cancel_with_a_new_token(server, username, conversation_id)


def test_revoking_the_token_ends_a_valuecell_stream_with_a_system_failed_frame(server):
    token = server.token("valuecell-revoked")
    body = {"query": "k=100000 delay_ms=20", "agent_name": "bench", "conversation_id": ""}
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        with client.stream("POST", "/api/v1/agents/stream", json=body) as stream:
            assert stream.status_code == 200, stream.read()
            conversation_id = stream.headers["X-Conversation-Id"]
            read_events(stream, limit=8)
            revoke(server, token)
            revoked_at = time.monotonic()
            rest = [e.json for e in read_to_the_end(stream, REAUTH_SECONDS + 10)]
            ended_after = time.monotonic() - revoked_at
        assert ended_after < REAUTH_SECONDS + 10, ended_after
        assert rest and all(e["event"] != "done" for e in rest)
        last = rest[-1]
        assert last["event"] == "system_failed" and "revoked" in last["data"]["payload"]["content"]
        assert last["data"]["conversation_id"] == conversation_id
        # ValueCell's frontend never gets a 401: the next call is a 403 `invalid_token`.
        again = client.get("/api/v1/conversations/")
        assert again.status_code == 403 and again.json()["error"]["code"] == "invalid_token"
    cancel_with_a_new_token(server, "valuecell-revoked", conversation_id)


def test_a_stream_with_a_valid_token_runs_to_its_end_across_many_checks(server):
    token = server.token("steady")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        body = {"query": "k=40 delay_ms=50", "agent_name": "bench"}  # ~2 s: several re-checks
        with client.stream("POST", "/agents/stream", json=body) as response:
            events = [e.json for e in read_events(response)]
    assert [e["seq"] for e in events] == list(range(1, 46))
    assert events[-1]["event"] == "done"
