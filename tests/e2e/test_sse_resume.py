"""Disconnect at any moment, resume with Last-Event-ID: the union is the full sequence."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.e2e.client import names, read_events, resume, run
from tests.e2e.test_sse_runs import wait_for


@pytest.fixture
def client(daphne_server, alice_token):
    headers = {"Authorization": f"Bearer {alice_token}"}
    with httpx.Client(base_url=daphne_server.url, timeout=30, headers=headers) as c:
        yield c


def finished(client, conversation_id) -> bool:
    return client.get(f"/conversations/{conversation_id}").json()["conversation"]["status"] == "idle"


@pytest.mark.parametrize("cut_after", [1, 2, 3, 4, 17, 150, 203])
def test_resume_after_disconnect_delivers_every_event_once(client, cut_after):
    with client.stream("POST", "/agents/stream", json={"query": "k=200 delay_ms=1", "agent_name": "bench"}) as response:
        before = [e.json for e in read_events(response, limit=cut_after)]
    assert len(before) == cut_after
    conversation_id = before[0]["data"]["conversation_id"]
    after = resume(client, conversation_id, before[-1]["seq"])
    union = before + after
    assert [e["seq"] for e in union] == list(range(1, 206))
    assert names(union)[-2:] == ["task_completed", "done"]
    # And it is exactly what the store holds.
    wait_for(lambda: finished(client, conversation_id))
    assert resume(client, conversation_id, 0) == union


def test_resume_with_after_query_parameter(client):
    _, events = run(client, "k=5 delay_ms=0", agent_name="bench")
    conversation_id = events[0]["data"]["conversation_id"]
    assert resume(client, conversation_id, 3, header=False) == events[3:]


def test_run_completes_and_is_stored_when_the_client_vanishes_at_once(daphne_server, alice_token, client):
    """Close the TCP connection right after sending the request: nothing is lost."""
    body = b'{"query": "k=50 delay_ms=2", "agent_name": "bench"}'
    request = (
        b"POST /agents/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {alice_token}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    before = {c["id"] for c in client.get("/conversations").json()["conversations"]}
    with socket.create_connection(("127.0.0.1", daphne_server.port)) as sock:
        sock.sendall(request)
        sock.recv(1)  # the response has started: the run exists
    conversation_id = wait_for(
        lambda: next((c["id"] for c in client.get("/conversations").json()["conversations"] if c["id"] not in before), None)
    )
    wait_for(lambda: finished(client, conversation_id))
    events = resume(client, conversation_id, 0)
    assert [e["seq"] for e in events] == list(range(1, 56))
    assert names(events)[-2:] == ["task_completed", "done"]
    items = client.get(f"/conversations/{conversation_id}/items").json()["items"]
    assert items[-1]["payload"]["content"] == "".join(f"chunk {i} " for i in range(50))


def test_resuming_an_idle_conversation_with_nothing_new_is_204(client):
    """Was a 200 with an empty body (EventSource reconnected every 3 s forever); a 204 stops it."""
    _, events = run(client, "k=2 delay_ms=0", agent_name="bench")
    conversation_id = events[0]["data"]["conversation_id"]
    last = events[-1]["seq"]
    started = time.monotonic()
    for headers, params in (({"Last-Event-ID": str(last)}, {}), ({}, {"after": str(last)})):
        response = client.get(f"/conversations/{conversation_id}/stream", headers=headers, params=params)
        assert response.status_code == 204 and response.content == b""
        assert response.headers["x-conversation-id"] == conversation_id
    assert time.monotonic() - started < 5
    # Something after the cursor: a stream, even with no run in progress.
    assert resume(client, conversation_id, last - 1) == events[-1:]


def test_resuming_a_running_conversation_at_its_last_seq_streams_the_rest(client):
    with client.stream("POST", "/agents/stream", json={"query": "k=3 delay_ms=300", "agent_name": "bench"}) as response:
        head = [e.json for e in read_events(response, limit=3)]
        conversation_id = head[0]["data"]["conversation_id"]
        rest = resume(client, conversation_id, head[-1]["seq"])
        assert rest == [e.json for e in read_events(response)]
    assert names(rest)[-2:] == ["task_completed", "done"]


def test_a_resume_point_beyond_the_last_seq_is_refused_as_over_websocket(client):
    """Following from there would silently skip the events up to it."""
    _, events = run(client, "k=2 delay_ms=0", agent_name="bench")
    conversation_id = events[0]["data"]["conversation_id"]
    last = events[-1]["seq"]
    response = client.get(f"/conversations/{conversation_id}/stream", headers={"Last-Event-ID": str(last + 1)})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_resume_point",
        "message": f"The resume point {last + 1} is beyond this conversation's last seq ({last}).",
        "last_seq": last,
    }


def test_follower_joining_mid_run_sees_the_rest_live(client):
    with client.stream("POST", "/agents/stream", json={"query": "k=100 delay_ms=5", "agent_name": "bench"}) as response:
        head = [e.json for e in read_events(response, limit=10)]
        conversation_id = head[0]["data"]["conversation_id"]
        # A second client follows from seq 5 while the first keeps reading.
        second = resume(client, conversation_id, 5)
        first = head + [e.json for e in read_events(response)]
    assert second == first[5:]
