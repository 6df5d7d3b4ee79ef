"""Every bad input gets a JSON error with a stable code, never a 500; foreign data is 404."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.client import read_events, run


@pytest.fixture
def alice(daphne_server, alice_token):
    with httpx.Client(base_url=daphne_server.url, timeout=30, headers={"Authorization": f"Bearer {alice_token}"}) as c:
        yield c


@pytest.fixture
def bob(daphne_server, bob_token):
    with httpx.Client(base_url=daphne_server.url, timeout=30, headers={"Authorization": f"Bearer {bob_token}"}) as c:
        yield c


@pytest.fixture(scope="module")
def alices_conversation(daphne_server, alice_token):
    with httpx.Client(base_url=daphne_server.url, timeout=30, headers={"Authorization": f"Bearer {alice_token}"}) as c:
        _, events = run(c, "k=3 delay_ms=0", agent_name="bench")
    return events[0]["data"]["conversation_id"]


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body["error"]) == {"code", "message"} and body["error"]["message"]
    return body["error"]["code"]


@pytest.mark.parametrize(
    "content, status, code",
    [
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_json"),
        (b"", 400, "invalid_json"),
        (b"\xff\xfe", 400, "invalid_json"),
        (b'{"agent_name": "demo"}', 400, "missing_field"),
        (b'{"query": ""}', 400, "empty_query"),
        (b'{"query": "   \\n "}', 400, "empty_query"),
        (b'{"query": 42}', 400, "invalid_field"),
        (b'{"query": "AAPL", "temperature": 1}', 400, "unknown_field"),
        (b'{"query": "AAPL", "agent_name": "nobody"}', 404, "unknown_agent"),
        (b'{"query": "AAPL", "conversation_id": "conv-0000"}', 404, "conversation_not_found"),
    ],
)
def test_bad_stream_requests(alice, content, status, code):
    response = alice.post("/agents/stream", content=content, headers={"Content-Type": "application/json"})
    assert error_of(response, status) == code


NESTED = b'{"query": "x", "deep": ' + b"[" * 5000 + b"]" * 5000 + b"}"


@pytest.mark.parametrize(
    "content, status, code",
    [
        (b'{"query": "AAPL\\u0000"}', 400, "invalid_field"),
        (b'{"query": "\\ud800"}', 400, "invalid_field"),
        (b'{"query": "AAPL \\udfff and more"}', 400, "invalid_field"),
        (b'{"query": "AAPL", "conversation_id": "conv-\\u0000"}', 404, "conversation_not_found"),
        (b'{"query": "AAPL", "conversation_id": "\\ud800"}', 400, "invalid_field"),
        (b'{"query": "AAPL", "agent_name": "\\u0000"}', 404, "unknown_agent"),
        (b'{"query": "AAPL", "agent_name": "\\ud800"}', 400, "invalid_field"),
        (NESTED, 400, "invalid_json"),
        (b"[" * 100_000, 400, "invalid_json"),
        (b'{"query": ' + b"{" * 1000 + b"}" * 1000 + b"}", 400, "invalid_json"),
    ],
)
def test_hostile_text_is_a_4xx_on_every_backend(alice, content, status, code):
    response = alice.post("/agents/stream", content=content, headers={"Content-Type": "application/json"})
    assert error_of(response, status) == code


@pytest.mark.parametrize("quoted_id", ["conv-%00", "%00", "%ED%A0%80", "conv-%C0%80"])
def test_a_path_id_that_names_no_storable_text_is_not_found(alice, quoted_id):
    for method, suffix in (("GET", ""), ("DELETE", ""), ("GET", "/items"), ("GET", "/stream"), ("POST", "/cancel")):
        response = alice.request(method, f"/conversations/{quoted_id}{suffix}")
        assert error_of(response, 404) in ("conversation_not_found", "not_found"), (method, suffix)


def test_query_over_the_size_limit(alice):
    response = alice.post("/agents/stream", json={"query": "x" * (32 * 1024 + 1)})
    assert error_of(response, 413) == "query_too_large"
    assert alice.post("/agents/stream", json={"query": "é" * (16 * 1024 + 1)}).status_code == 413, "bytes, not characters"


def test_huge_body_is_refused_cleanly(alice):
    response = alice.post("/agents/stream", content=b'{"query": "' + b"x" * 3_000_000 + b'"}')
    assert error_of(response, 413) == "request_too_large"


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "9" * 40, "1 2", "0x10"])
def test_malformed_resume_point(alice, alices_conversation, value):
    by_header = alice.get(f"/conversations/{alices_conversation}/stream", headers={"Last-Event-ID": value})
    assert error_of(by_header, 400) == "invalid_resume_point"
    by_query = alice.get(f"/conversations/{alices_conversation}/stream", params={"after": value})
    assert error_of(by_query, 400) == "invalid_resume_point"


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/agents/stream"),
        ("POST", "/agents"),
        ("PUT", "/conversations"),
        ("PATCH", "/conversations/conv-x"),
        ("GET", "/conversations/conv-x/cancel"),
        ("POST", "/conversations/conv-x/items"),
        ("DELETE", "/conversations/conv-x/stream"),
    ],
)
def test_wrong_method_is_405_with_allow(alice, method, path):
    response = alice.request(method, path)
    assert error_of(response, 405) == "method_not_allowed"
    assert response.headers["allow"]


def test_bad_token_is_401(daphne_server):
    with httpx.Client(base_url=daphne_server.url, timeout=30) as c:
        assert error_of(c.get("/conversations", headers={"Authorization": "Bearer nope"}), 401) == "invalid_token"
        assert error_of(c.get("/conversations", headers={"Authorization": "Basic abc"}), 401) == "invalid_token"


def test_foreign_conversation_is_404_everywhere(alice, bob, alices_conversation):
    cid = alices_conversation
    assert error_of(bob.get(f"/conversations/{cid}"), 404) == "conversation_not_found"
    assert error_of(bob.get(f"/conversations/{cid}/items"), 404) == "conversation_not_found"
    assert error_of(bob.get(f"/conversations/{cid}/stream"), 404) == "conversation_not_found"
    assert error_of(bob.post(f"/conversations/{cid}/cancel"), 404) == "conversation_not_found"
    assert error_of(bob.delete(f"/conversations/{cid}"), 404) == "conversation_not_found"
    assert error_of(bob.post("/agents/stream", json={"query": "AAPL", "conversation_id": cid}), 404) == "conversation_not_found"
    assert cid not in [c["id"] for c in bob.get("/conversations").json()["conversations"]]
    assert alice.get(f"/conversations/{cid}").status_code == 200


def test_delete_refuses_a_running_conversation_then_deletes(alice):
    with alice.stream("POST", "/agents/stream", json={"query": "k=50 delay_ms=5", "agent_name": "bench"}) as response:
        cid = read_events(response, limit=1)[0].json["data"]["conversation_id"]
        assert error_of(alice.delete(f"/conversations/{cid}"), 409) == "conversation_busy"
        read_events(response)
    assert alice.delete(f"/conversations/{cid}").status_code == 204
    assert alice.get(f"/conversations/{cid}").status_code == 404


def test_agents_lists_names_and_descriptions(alice):
    agents = {a["name"]: a["description"] for a in alice.get("/agents").json()["agents"]}
    assert {"demo", "bench"} <= set(agents)
    assert all(agents.values())


def test_create_api_token_prints_the_token_last(daphne_server):
    token = daphne_server.token("dave")
    assert token.startswith("vc_") and len(token) > 30
    with httpx.Client(base_url=daphne_server.url, timeout=30) as c:
        assert c.get("/conversations", headers={"Authorization": f"Bearer {token}"}).status_code == 200
