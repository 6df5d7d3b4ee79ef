"""ValueCell's `/api/v1/` over a real Daphne, as its web frontend calls it: the
wrappers, paths with and without a slash, the stream, history, delete, cancel,
ownership, the JSON content type that guards unsafe requests, and never a 401."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.e2e.client import read_events
from tests.live import LiveServer

pytestmark = pytest.mark.e2e

JSON_HEADERS = {"Content-Type": "application/json"}  # what the frontend sends on every request


@pytest.fixture
def visitor(daphne_server):
    """An anonymous browser: cookies only, no token, no CSRF header."""
    with httpx.Client(base_url=daphne_server.url, timeout=30, headers=JSON_HEADERS) as client:
        yield client


def vc_stream(client: httpx.Client, query: str, conversation_id: str = "", agent_name: str = "demo", limit=None):
    body = {"query": query, "agent_name": agent_name, "conversation_id": conversation_id}
    with client.stream("POST", "/api/v1/agents/stream", json=body) as response:
        assert response.status_code == 200, response.read()
        events = read_events(response, limit)
    return events


def data_of(response: httpx.Response):
    body = response.json()
    assert response.status_code == 200 and body["code"] == 0 and body["msg"] == "success", body
    return body["data"]


def refused(response: httpx.Response, status: int, code: str) -> dict:
    body = response.json()
    assert response.status_code == status, body
    assert body["code"] == status and body["data"] is None and body["detail"] == body["msg"]
    assert body["error"]["code"] == code
    return body


def test_healthz_and_the_agents_in_valuecells_shapes(visitor):
    assert data_of(visitor.get("/api/v1/healthz"))["status"] == "healthy"
    listed = data_of(visitor.get("/api/v1/agents/?enabled_only=true&language=en"))
    unslashed = data_of(visitor.get("/api/v1/agents"))
    assert [a["agent_name"] for a in unslashed["agents"]] == [a["agent_name"] for a in listed["agents"]]
    assert listed["total"] == len(listed["agents"])
    demo = next(a for a in listed["agents"] if a["agent_name"] == "demo")
    assert demo["display_name"] and demo["enabled"] is True and demo["description"]
    assert isinstance(demo["agent_metadata"]["tags"], list)
    by_name = data_of(visitor.get("/api/v1/agents/by-name/demo?language=en"))
    assert {k: by_name[k] for k in ("agent_name", "display_name", "agent_metadata")} == {
        k: demo[k] for k in ("agent_name", "display_name", "agent_metadata")
    }
    assert data_of(visitor.get("/api/v1/agents/by-name/demo/"))["agent_name"] == "demo"
    body = refused(visitor.get("/api/v1/agents/by-name/Nobody?language=en"), 404, "unknown_agent")
    assert body["detail"] == "Agent with name 'Nobody' not found"


def test_a_chat_streams_valuecell_frames_that_begin_with_conversation_started(visitor):
    events = vc_stream(visitor, "Compare AAPL and MSFT")
    frames = [e.json for e in events]
    assert frames[0]["event"] == "conversation_started" and frames[-1]["event"] == "done"
    assert all(set(f) == {"event", "data"} for f in frames)  # ValueCell frames: no seq
    assert [int(e.id) for e in events] == list(range(1, len(events) + 1))  # the same cursor as natively
    cid = frames[0]["data"]["conversation_id"]
    assert all(f["data"]["conversation_id"] == cid for f in frames)
    tool = next(f for f in frames if f["event"] == "tool_call_completed")["data"]["payload"]
    assert [set(part) for part in json.loads(tool["tool_result"])] == [{"content"}]
    components = [f["data"]["payload"] for f in frames if f["event"] == "component_generator"]
    assert [c["component_type"] for c in components] == ["report", "report"]  # the chart, then the report
    chart, content = (json.loads(c["content"]) for c in components)
    assert chart["title"].startswith("Daily close") and "| Last (2025-12-31) |" in chart["data"]
    assert content["title"] == "AAPL, MSFT: one year in review" and content["data"].startswith("| Ticker")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", content["create_time"])

    # The anonymous session that started it owns it: the list, then the history its reducer replays.
    listed = data_of(visitor.get("/api/v1/conversations/"))
    assert data_of(visitor.get("/api/v1/conversations")) == listed
    (entry,) = [c for c in listed["conversations"] if c["conversation_id"] == cid]
    assert entry["title"] == "Compare AAPL and MSFT" and entry["agent_name"] == "demo"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["update_time"])
    history = data_of(visitor.get(f"/api/v1/conversations/{cid}/history"))
    assert history["conversation_id"] == cid
    items = history["items"]
    names = [i["event"] for i in items]
    assert names[:2] == ["thread_started", "reasoning"] and names.count("tool_call_completed") == 8
    assert "reasoning_completed" not in names and "tool_call_started" not in names
    assert items[0]["data"]["payload"] == {"content": "Compare AAPL and MSFT"} and items[0]["data"]["role"] == "user"
    assert all(set(i) == {"event", "data"} and i["data"]["conversation_id"] == cid for i in items)
    summary = "".join(f["data"]["payload"]["content"] for f in frames if f["event"] == "message_chunk")
    assert [i["data"]["payload"]["content"] for i in items if i["event"] == "message_chunk"] == [summary]
    assert data_of(visitor.get(f"/api/v1/conversations/{cid}/scheduled-task-results")) == {
        "conversation_id": cid,
        "items": [],
    }
    assert data_of(visitor.get("/api/v1/conversations/scheduled-task-results")) == {"agents": []}


def test_history_leaves_out_the_run_in_progress(visitor):
    body = {"query": "k=300 delay_ms=10", "agent_name": "bench", "conversation_id": ""}
    with visitor.stream("POST", "/api/v1/agents/stream", json=body) as response:
        head = [e.json for e in read_events(response, limit=6)]
        cid = head[0]["data"]["conversation_id"]
        assert data_of(visitor.get(f"/api/v1/conversations/{cid}/history"))["items"] == []
        task_id = next(f["data"]["task_id"] for f in head if f["event"] == "task_started")
        cancelled = data_of(visitor.post(f"/api/v1/tasks/{task_id}/cancel"))
        assert cancelled == {"task_id": task_id, "success": True}
        rest = [e.json["event"] for e in read_events(response)]
    assert rest[-2:] == ["task_cancelled", "done"]
    items = data_of(visitor.get(f"/api/v1/conversations/{cid}/history"))["items"]
    assert [i["event"] for i in items] == ["thread_started", "message_chunk"]


def test_a_cancelled_run_can_be_deleted_at_once_and_a_busy_one_cannot(visitor):
    body = {"query": "k=1000 delay_ms=10", "agent_name": "bench", "conversation_id": ""}
    with visitor.stream("POST", "/api/v1/agents/stream", json=body) as response:
        head = [e.json for e in read_events(response, limit=5)]
        cid = head[0]["data"]["conversation_id"]
        refused(visitor.delete(f"/api/v1/conversations/{cid}"), 409, "conversation_busy")
        task_id = next(f["data"]["task_id"] for f in head if f["event"] == "task_started")
        assert data_of(visitor.post(f"/api/v1/tasks/{task_id}/cancel/"))["success"] is True
        assert data_of(visitor.delete(f"/api/v1/conversations/{cid}")) == {"conversation_id": cid, "deleted": True}
    refused(visitor.get(f"/api/v1/conversations/{cid}/history"), 404, "conversation_not_found")
    refused(visitor.post(f"/api/v1/tasks/{task_id}/cancel"), 404, "not_found")
    assert cid not in [c["conversation_id"] for c in data_of(visitor.get("/api/v1/conversations/"))["conversations"]]


def test_a_question_ends_the_stream_and_the_next_message_answers_it(visitor):
    first = [e.json for e in vc_stream(visitor, "How is the market today?")]
    assert [f["event"] for f in first][-2:] == ["plan_require_user_input", "done"]
    cid = first[0]["data"]["conversation_id"]
    second = [e.json for e in vc_stream(visitor, "NVDA", conversation_id=cid)]
    assert second[0]["event"] == "thread_started" and "conversation_started" not in [f["event"] for f in second]
    assert second[0]["data"]["payload"]["content"] == "NVDA"
    assert second[-2]["event"] == "task_completed" and second[-1]["event"] == "done"
    question = next(f for f in first if f["event"] == "plan_require_user_input")
    assert second[-2]["data"]["task_id"] == question["data"]["task_id"]  # the same task goes on
    names = [i["event"] for i in data_of(visitor.get(f"/api/v1/conversations/{cid}/history"))["items"]]
    assert names[:3] == ["thread_started", "plan_require_user_input", "thread_started"]


def test_the_home_pages_valuecell_agent_is_the_default_agent(visitor):
    frames = [e.json for e in vc_stream(visitor, "How did NVDA do?", agent_name="ValueCellAgent")]
    assert frames[-1]["event"] == "done"
    assert next(f for f in frames if f["event"] == "task_started")["data"]["agent_name"] == "demo"


def test_someone_elses_conversation_and_task_are_not_found(daphne_server, visitor, bob_token):
    frames = [e.json for e in vc_stream(visitor, "k=2", agent_name="bench")]
    cid = frames[0]["data"]["conversation_id"]
    task_id = next(f["data"]["task_id"] for f in frames if f["event"] == "task_started")
    bob = {"Authorization": f"Bearer {bob_token}", **JSON_HEADERS}
    with httpx.Client(base_url=daphne_server.url, timeout=30, headers=bob) as client:
        refused(client.get(f"/api/v1/conversations/{cid}/history"), 404, "conversation_not_found")
        refused(client.get(f"/api/v1/conversations/{cid}/scheduled-task-results"), 404, "conversation_not_found")
        refused(client.delete(f"/api/v1/conversations/{cid}"), 404, "conversation_not_found")
        refused(client.post(f"/api/v1/tasks/{task_id}/cancel"), 404, "not_found")
        assert cid not in [c["conversation_id"] for c in data_of(client.get("/api/v1/conversations/"))["conversations"]]
        stream = client.post("/api/v1/agents/stream", json={"query": "hi", "conversation_id": cid})
        refused(stream, 404, "conversation_not_found")


def test_unsafe_requests_need_the_json_content_type_and_unknown_paths_are_json_404s(daphne_server):
    with httpx.Client(base_url=daphne_server.url, timeout=30) as client:
        form = client.post("/api/v1/agents/stream", data={"query": "hi"})  # what a cross-site form can send
        refused(form, 415, "unsupported_media_type")
        plain = client.post("/api/v1/agents/stream", content=b'{"query": "hi"}', headers={"Content-Type": "text/plain"})
        refused(plain, 415, "unsupported_media_type")
        refused(client.delete("/api/v1/conversations/conv-x"), 415, "unsupported_media_type")
        assert client.get("/api/v1/conversations/").status_code == 200  # safe methods need nothing
        for method in ("GET", "POST"):
            unknown = client.request(method, "/api/v1/watchlist/asset/search?q=x", headers=JSON_HEADERS)
            refused(unknown, 404, "not_found")
        refused(client.put("/api/v1/healthz", headers=JSON_HEADERS), 405, "method_not_allowed")
        bad = client.post("/api/v1/agents/stream", content=b"{nope", headers=JSON_HEADERS)
        refused(bad, 400, "invalid_json")
        empty = client.post("/api/v1/agents/stream", json={"query": "  ", "conversation_id": ""})
        refused(empty, 400, "empty_query")
        assert data_of(client.get("/api/v1/watchlist/")) == []


def test_with_anonymous_use_off_never_a_401_and_a_proxy_signs_users_in():
    env = {"VALUECELL_ALLOW_ANONYMOUS": "false", "VALUECELL_REMOTE_USER_HEADER": "X-Forwarded-User"}
    server = LiveServer(env=env).start()
    try:
        token = server.token("carol")
        with httpx.Client(base_url=server.url, timeout=30, headers=JSON_HEADERS) as client:
            assert data_of(client.get("/api/v1/healthz"))["status"] == "healthy"  # the app's gate needs no identity
            refused(client.get("/api/v1/conversations/"), 403, "authentication_required")
            refused(client.get("/api/v1/agents/by-name/demo"), 403, "authentication_required")
            refused(client.post("/api/v1/agents/stream", json={"query": "hi"}), 403, "authentication_required")
            bad = client.get("/api/v1/conversations/", headers={"Authorization": "Bearer vc_nope"})
            refused(bad, 403, "invalid_token")
            signed_in = client.get("/api/v1/conversations/", headers={"Authorization": f"Bearer {token}"})
            assert data_of(signed_in) == {"conversations": [], "total": 0}

        # The proxy's authentication: each request names its user; no cookie needed.
        dana, erin = {"X-Forwarded-User": "dana", **JSON_HEADERS}, {"X-Forwarded-User": "erin", **JSON_HEADERS}
        with httpx.Client(base_url=server.url, timeout=30) as proxy:
            body = {"query": "k=2", "agent_name": "bench", "conversation_id": ""}
            with proxy.stream("POST", "/api/v1/agents/stream", json=body, headers=dana) as response:
                assert response.status_code == 200, response.read()
                frames = [e.json for e in read_events(response)]
            cid = frames[0]["data"]["conversation_id"]
            # Without the header, the session the proxy's user got is signed out.
            refused(proxy.get("/api/v1/conversations/", headers=JSON_HEADERS), 403, "authentication_required")
            listed = data_of(proxy.get("/api/v1/conversations/", headers=dana))["conversations"]
            assert [c["conversation_id"] for c in listed] == [cid]
            assert data_of(proxy.get("/api/v1/conversations/", headers=erin))["conversations"] == []
            refused(proxy.get(f"/api/v1/conversations/{cid}/history", headers=erin), 404, "conversation_not_found")
            proxy.cookies.clear()
            refused(
                proxy.get(f"/api/v1/conversations/{cid}/history", headers=JSON_HEADERS), 403, "authentication_required"
            )
    finally:
        server.close()
