"""A revoked API token ends the SSE streams opened with it, as it closes WebSockets."""

from __future__ import annotations

import sqlite3
import time

import httpx
import pytest

from conversations.tokens import hash_key
from tests.e2e.client import read_events
from tests.live import LiveServer

pytestmark = pytest.mark.e2e

REAUTH_SECONDS = 0.5


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
            rest = read_events(stream)  # to the end of the response: the server must end it
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


def test_a_stream_with_a_valid_token_runs_to_its_end_across_many_checks(server):
    token = server.token("steady")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        body = {"query": "k=40 delay_ms=50", "agent_name": "bench"}  # ~2 s: several re-checks
        with client.stream("POST", "/agents/stream", json=body) as response:
            events = [e.json for e in read_events(response)]
    assert [e["seq"] for e in events] == list(range(1, 46))
    assert events[-1]["event"] == "done"
