"""`Idempotency-Key` on POST /agents/stream: a retried request starts no second run."""

from __future__ import annotations

import threading
import uuid

import httpx
import pytest

from tests.e2e.client import names, read_events

pytestmark = pytest.mark.e2e


@pytest.fixture
def user(daphne_server):
    """A user of its own, so its conversations can be counted."""
    token = daphne_server.token(f"idem-{uuid.uuid4().hex[:8]}")
    with httpx.Client(base_url=daphne_server.url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def post(client: httpx.Client, body: dict, key: str | None, **headers: str) -> tuple[httpx.Response, list[dict]]:
    if key is not None:
        headers["Idempotency-Key"] = key
    with client.stream("POST", "/agents/stream", json=body, headers=headers) as response:
        if response.status_code != 200:
            response.read()
            return response, []
        return response, [e.json for e in read_events(response)]


def conversations(client: httpx.Client) -> list[str]:
    return [c["id"] for c in client.get("/conversations").json()["conversations"]]


BODY = {"query": "k=5 delay_ms=0", "agent_name": "bench"}


def test_a_repeat_starts_no_run_and_streams_the_first(user):
    key = str(uuid.uuid4())
    first, events = post(user, BODY, key)
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    again, replayed = post(user, BODY, key)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert replayed == events and names(events)[-1] == "done"
    assert conversations(user) == [events[0]["data"]["conversation_id"]]


def test_a_repeat_resumes_from_last_event_id(user):
    key = str(uuid.uuid4())
    _, events = post(user, BODY, key)
    _, tail = post(user, BODY, key, **{"Last-Event-ID": "6"})
    assert tail == events[6:]
    nothing, _ = post(user, BODY, key, **{"Last-Event-ID": str(events[-1]["seq"])})
    assert nothing.status_code == 204  # the run is over and the client has all of it


def test_a_repeat_while_the_run_goes_on_follows_it_live(user):
    key = str(uuid.uuid4())
    body = {"query": "k=30 delay_ms=30", "agent_name": "bench"}
    with user.stream("POST", "/agents/stream", json=body, headers={"Idempotency-Key": key}) as first:
        head = [e.json for e in read_events(first, limit=2)]
        again, replayed = post(user, body, key)  # the client retried: its first connection looked dead
        rest = [e.json for e in read_events(first)]
    assert again.status_code == 200 and replayed == head + rest
    assert len(conversations(user)) == 1


def test_a_repeat_into_an_existing_conversation_streams_only_that_run(user):
    _, first_run = post(user, BODY, None)
    conversation_id = first_run[0]["data"]["conversation_id"]
    key = str(uuid.uuid4())
    body = {**BODY, "conversation_id": conversation_id}
    _, second_run = post(user, body, key)
    _, third_run = post(user, {**body, "query": "k=2 delay_ms=0"}, None)  # a later run, no key
    _, replayed = post(user, body, key)
    assert replayed == second_run  # ends at that run's `done`, not the later run's
    assert replayed[0]["seq"] == first_run[-1]["seq"] + 1 and third_run[0]["seq"] == second_run[-1]["seq"] + 1


def test_the_same_key_with_another_request_is_422(user):
    key = str(uuid.uuid4())
    post(user, BODY, key)
    response, _ = post(user, {**BODY, "query": "k=6 delay_ms=0"}, key)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"


def test_keys_belong_to_their_principal(user, daphne_server, alice_token):
    key = str(uuid.uuid4())
    _, mine = post(user, BODY, key)
    with httpx.Client(base_url=daphne_server.url, timeout=30, headers={"Authorization": f"Bearer {alice_token}"}) as alice:
        response, hers = post(alice, BODY, key)
    assert response.status_code == 200 and "idempotent-replayed" not in response.headers
    assert hers[0]["data"]["conversation_id"] != mine[0]["data"]["conversation_id"]


def test_a_refused_request_leaves_its_key_free_for_the_retry(user):
    """Nothing started, nothing remembered (as a validation error): the corrected request may use the key."""
    key = str(uuid.uuid4())
    refused, _ = post(user, {**BODY, "agent_name": "nobody"}, key)
    assert refused.status_code == 404
    fixed, events = post(user, BODY, key)
    assert fixed.status_code == 200 and "idempotent-replayed" not in fixed.headers
    again, replayed = post(user, BODY, key)
    assert again.headers["idempotent-replayed"] == "true" and replayed == events


@pytest.mark.parametrize("key", ["", "\"\"", "x" * 256, "caf\u00e9", "tab\there"])
def test_a_malformed_key_is_400(user, key):
    response = user.post("/agents/stream", json=BODY, headers={"Idempotency-Key": key.encode("latin-1")})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert conversations(user) == []


def test_a_quoted_key_is_the_same_key(user):
    _, events = post(user, BODY, "abc-123")
    again, replayed = post(user, BODY, '"abc-123"')
    assert again.headers["idempotent-replayed"] == "true" and replayed == events


def test_concurrent_requests_with_one_key_start_one_run(user):
    key = str(uuid.uuid4())
    body = {"query": "k=20 delay_ms=10", "agent_name": "bench"}
    barrier = threading.Barrier(8)
    results: list[tuple[int, str | None, list[dict]]] = []

    def attempt() -> None:
        barrier.wait()
        response, events = post(user, body, key)
        results.append((response.status_code, response.headers.get("x-conversation-id"), events))

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 8
    assert {status for status, _, _ in results} <= {200, 409}
    streamed = [(cid, events) for status, cid, events in results if status == 200]
    assert streamed and len({cid for cid, _ in streamed}) == 1
    assert all(names(events)[-1] == "done" for _, events in streamed)
    assert len(conversations(user)) == 1
