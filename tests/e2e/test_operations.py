"""Operations over a real Daphne: /metrics moves as runs and streams do and is
served only to allowed addresses, limits answer 429/503 with Retry-After on
both transports, the client address behind a trusted proxy, JSON logs."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect as ws_connect

from tests.e2e.client import names, read_events, resume, run
from tests.e2e.test_sse_runs import wait_for
from tests.live import LiveServer

pytestmark = pytest.mark.e2e

LONG = {"query": "k=100000 delay_ms=5", "agent_name": "bench"}

FAMILIES = {
    "valuecell_streams_open": ("gauge", {"transport"}),
    "valuecell_runs_active": ("gauge", set()),
    "valuecell_runs": ("counter", {"agent", "outcome"}),
    "valuecell_events": ("counter", {"event"}),
    "valuecell_event_writer_backlog": ("gauge", set()),
    "valuecell_event_store_batch_seconds": ("histogram", set()),
    "valuecell_resumes": ("counter", {"transport"}),
    "valuecell_rejected": ("counter", {"reason"}),
}


@pytest.fixture(scope="module")
def ops_server():
    """JSON logs (Daphne's plain-text access log off) and one run at a time per principal."""
    env = {"VALUECELL_LOG_FORMAT": "json", "VALUECELL_MAX_RUNS_PER_PRINCIPAL": "1", "VALUECELL_RUN_RATE": "off"}
    server = LiveServer(env=env, daphne_args=("-v", "0")).start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def proxied_server():
    """Behind a proxy on loopback; metrics for 10.0.0.0/8; anonymous runs 2 a minute."""
    env = {
        "VALUECELL_TRUSTED_PROXIES": "127.0.0.1",
        "VALUECELL_METRICS_ALLOW": "10.0.0.0/8",
        "VALUECELL_RUN_RATE": "2/min",
    }
    server = LiveServer(env=env).start()
    yield server
    server.close()


def client(server: LiveServer, token: str | None = None, **headers: str) -> httpx.Client:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.Client(base_url=server.url, timeout=30, headers=headers)


class Scrape:
    def __init__(self, text: str) -> None:
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = {
            (s.name, frozenset(s.labels.items())): s.value for f in self.families.values() for s in f.samples
        }

    def __call__(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)


def scrape(server: LiveServer, **headers: str) -> Scrape:
    response = httpx.get(server.url + "/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


def scrape_until(server: LiveServer, predicate) -> Scrape:
    def matching() -> Scrape | None:
        metrics = scrape(server)
        return metrics if predicate(metrics) else None

    return wait_for(matching, timeout=30)


def test_metrics_have_the_required_families_names_types_and_labels(ops_server):
    metrics = scrape(ops_server)
    for name, (kind, labels) in FAMILIES.items():
        family = metrics.families[name]
        assert family.type == kind, name
        for sample in family.samples:
            assert set(sample.labels) - {"le"} == labels, (name, sample)
    assert metrics("valuecell_rejected_total", reason="overloaded") == 0  # every reason exists from the start
    assert not any(name.endswith("_created") for name, _ in metrics.samples)


def test_metrics_move_as_runs_and_streams_do(ops_server):
    token = ops_server.token("watcher")
    before = scrape(ops_server)
    with client(ops_server, token) as api, api.stream("POST", "/agents/stream", json=LONG) as response:
        head = read_events(response, limit=5)
        conversation_id = head[0].json["data"]["conversation_id"]
        scrape_until(ops_server, lambda m: m("valuecell_streams_open", transport="sse") == 1)
        during = scrape_until(ops_server, lambda m: m("valuecell_runs_active") == 1)
        assert during("valuecell_events_total", event="message_chunk") > before("valuecell_events_total", event="message_chunk")
        with ws_connect(ops_server.ws_url + "/ws/agents/", additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            ws.send(json.dumps({"type": "subscribe", "conversation_id": conversation_id, "after": 3}))
            assert json.loads(ws.recv(timeout=30))["type"] == "subscribed"
            on_ws = scrape_until(ops_server, lambda m: m("valuecell_streams_open", transport="ws") == 1)
            assert on_ws("valuecell_websockets_open") == 1
            assert on_ws("valuecell_resumes_total", transport="ws") == before("valuecell_resumes_total", transport="ws") + 1
        assert api.post(f"/conversations/{conversation_id}/cancel").status_code == 202
        rest = [e.json for e in read_events(response)]
    assert names(rest)[-2:] == ["task_cancelled", "done"]
    after = scrape_until(
        ops_server,
        lambda m: m("valuecell_streams_open", transport="sse") == 0
        and m("valuecell_streams_open", transport="ws") == 0
        and m("valuecell_runs_active") == 0,
    )
    assert after("valuecell_websockets_open") == 0
    ended = ("valuecell_runs_total", {"agent": "bench", "outcome": "cancelled"})
    assert after(ended[0], **ended[1]) == before(ended[0], **ended[1]) + 1
    assert after("valuecell_events_total", event="done") == before("valuecell_events_total", event="done") + 1
    stored = rest[-1]["seq"]
    grew = sum(after("valuecell_events_total", **dict(labels)) for name, labels in after.samples if name == "valuecell_events_total")
    was = sum(before("valuecell_events_total", **dict(labels)) for name, labels in before.samples if name == "valuecell_events_total")
    assert grew - was == stored  # every event of the run, counted once
    assert after("valuecell_event_store_batch_seconds_count") > before("valuecell_event_store_batch_seconds_count")
    assert after("valuecell_event_writer_backlog") >= 0
    with client(ops_server, token) as api:
        resume(api, conversation_id, stored - 1)
    resumed = scrape(ops_server)
    assert resumed("valuecell_resumes_total", transport="sse") == before("valuecell_resumes_total", transport="sse") + 1


def test_a_run_beyond_the_limit_gets_429_over_http_and_an_error_frame_over_ws(ops_server):
    token = ops_server.token("busy")
    before = scrape(ops_server)("valuecell_rejected_total", reason="too_many_runs")
    with client(ops_server, token) as api, api.stream("POST", "/agents/stream", json=LONG) as response:
        conversation_id = read_events(response, limit=3)[0].json["data"]["conversation_id"]
        refused = api.post("/agents/stream", json={"query": "k=1", "agent_name": "bench"})
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "too_many_runs"
        assert int(refused.headers["Retry-After"]) >= 1
        with ws_connect(ops_server.ws_url + "/ws/agents/", additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            ws.send(json.dumps({"type": "query", "query": "k=1", "agent_name": "bench", "request_id": "q"}))
            frame = json.loads(ws.recv(timeout=30))
            assert (frame["type"], frame["code"], frame["request_id"]) == ("error", "too_many_runs", "q")
            assert frame["retry_after"] >= 1
        assert api.post(f"/conversations/{conversation_id}/cancel").status_code == 202
        assert names([e.json for e in read_events(response)])[-2:] == ["task_cancelled", "done"]
    assert scrape(ops_server)("valuecell_rejected_total", reason="too_many_runs") == before + 2
    with client(ops_server, token) as api:  # the place is free again
        assert run(api, "k=1", agent_name="bench")[0].status_code == 200


def test_each_finished_run_writes_one_json_line_and_every_line_of_a_run_names_it(ops_server):
    token = ops_server.token("logged")
    with client(ops_server, token) as api:
        _, events = run(api, "k=7 delay_ms=1", agent_name="bench")
        _, failed = run(api, "not a bench query", agent_name="bench")
    conversation_id, task_id = events[0]["data"]["conversation_id"], events[2]["data"]["task_id"]
    failed_id = failed[0]["data"]["conversation_id"]

    def lines() -> list[dict]:
        return [json.loads(line) for line in ops_server.log().splitlines() if line.strip()]  # every line is JSON

    def finished(cid: str) -> list[dict]:
        return [line for line in lines() if line.get("conversation_id") == cid and "outcome" in line]

    wait_for(lambda: finished(conversation_id) and finished(failed_id))
    [line] = finished(conversation_id)
    assert (line["task_id"], line["agent"], line["outcome"], line["events"]) == (task_id, "bench", "completed", len(events))
    assert isinstance(line["duration_ms"], int) and line["duration_ms"] >= 0
    assert line["level"] == "INFO" and "time" in line and "message" in line
    [failure] = finished(failed_id)
    assert (failure["outcome"], failure["events"]) == ("failed", len(failed))
    # The agent's failure was logged while its run ran: it names the run's conversation.
    agent_lines = [entry for entry in lines() if entry["logger"] == "streaming.runtime.run" and "bench expects" in entry["message"]]
    assert [entry["conversation_id"] for entry in agent_lines] == [failed_id]


def test_metrics_are_refused_to_other_addresses(ops_server, proxied_server):
    # The ops server trusts no proxy: a forwarded request may come from anyone.
    refused = httpx.get(ops_server.url + "/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    # Behind its trusted proxy, the proxied server serves 10.0.0.0/8 only.
    assert httpx.get(proxied_server.url + "/metrics").status_code == 403
    assert httpx.get(proxied_server.url + "/metrics", headers={"X-Forwarded-For": "10.1.2.3"}).status_code == 200
    spoofed = {"X-Forwarded-For": "10.1.2.3, 198.51.100.7"}  # the client wrote the first, the proxy appended its peer
    assert httpx.get(proxied_server.url + "/metrics", headers=spoofed).status_code == 403


def test_metrics_answer_get_and_head_only(ops_server):
    refused = httpx.post(ops_server.url + "/metrics", headers={"Content-Type": "application/json"}, content=b"{}")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"
    assert refused.json()["error"]["code"] == "method_not_allowed"
    head = httpx.head(ops_server.url + "/metrics")
    assert head.status_code == 200 and head.content == b""


def test_anonymous_runs_are_limited_per_forwarded_client_address(proxied_server):
    def anonymous_run(address: str) -> httpx.Response:
        with client(proxied_server, **{"X-Forwarded-For": address}) as fresh:  # no cookie: a new session each time
            return run(fresh, "k=1", agent_name="bench")[0]

    assert [anonymous_run("203.0.113.5").status_code for _ in range(2)] == [200, 200]
    refused = anonymous_run("203.0.113.5")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert anonymous_run("203.0.113.6").status_code == 200
    # A spoofed leftmost entry changes nothing: the proxy's rightmost one is the client.
    assert anonymous_run("203.0.113.99, 203.0.113.5").status_code == 429


@pytest.fixture
def overload_server():
    server = LiveServer(env={"VALUECELL_OVERLOAD_BACKLOG": "50", "VALUECELL_MAX_RUNS_PER_PRINCIPAL": "0"}).start()
    yield server
    server.close()


def test_a_writer_behind_for_over_a_second_refuses_new_runs_and_cuts_nothing(overload_server):
    token = overload_server.token("flood")
    started = time.monotonic()
    with client(overload_server, token) as api:
        with api.stream("POST", "/agents/stream", json={"query": "k=1000000 delay_ms=0", "agent_name": "bench"}) as flood:
            conversation_id = read_events(flood, limit=3)[0].json["data"]["conversation_id"]
        # The flood goes on without its client; new runs are refused once the writer stays behind.

        def refused_run():
            response, _ = run(api, "k=1", agent_name="bench")
            return response if response.status_code == 503 else None

        refused = wait_for(refused_run, timeout=60, interval=0.1)
        assert time.monotonic() - started >= 1.0
        assert refused.json()["error"]["code"] == "overloaded"
        assert int(refused.headers["Retry-After"]) >= 1
        assert scrape(overload_server)("valuecell_rejected_total", reason="overloaded") >= 1
        assert api.get(f"/conversations/{conversation_id}").json()["conversation"]["status"] == "running"
        assert api.post(f"/conversations/{conversation_id}/cancel").status_code == 202
        wait_for(lambda: api.get(f"/conversations/{conversation_id}").json()["conversation"]["status"] == "idle", timeout=60)
        last = api.get(f"/conversations/{conversation_id}/items").json()["last_seq"]
        assert names(resume(api, conversation_id, last - 2)) == ["task_cancelled", "done"]
        # Caught up again: new runs are admitted.
        wait_for(lambda: run(api, "k=1", agent_name="bench")[0].status_code == 200, timeout=60, interval=0.2)
