"""Admission control across two real Daphne workers on PostgreSQL + Redis: the
counts are shared, a run in progress survives a limit change, and a dead
worker's runs stop counting once their lease expires."""

from __future__ import annotations

import signal

import httpx
import pytest

from tests.e2e.client import names, read_events, run
from tests.e2e.test_sse_runs import wait_for
from tests.live import LiveServer
from tests.scaleout.conftest import Cluster

pytestmark = pytest.mark.services

LIMITS = {"VALUECELL_MAX_RUNS_PER_PRINCIPAL": "2", "VALUECELL_RUN_RATE": "4/min"}
LONG = {"query": "k=100000 delay_ms=5", "agent_name": "bench"}


@pytest.fixture(scope="module")
def limited(services, scaleout_database):
    cluster = Cluster(scaleout_database, services[1], "pubsub")
    cluster.env.update(LIMITS)
    cluster.worker(migrate=True)
    cluster.worker()
    yield cluster
    cluster.close()


def client_for(server: LiveServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {token}"})


def start_long(client: httpx.Client) -> str:
    """Start a long run and return its conversation (the stream is closed: the run goes on)."""
    with client.stream("POST", "/agents/stream", json=LONG) as response:
        assert response.status_code == 200, response.read()
        return read_events(response, limit=3)[0].json["data"]["conversation_id"]


def refusal(client: httpx.Client, **fields) -> tuple[str, int]:
    response, _ = run(client, "k=1", agent_name="bench", **fields)
    assert response.status_code == 429, response.status_code
    return response.json()["error"]["code"], int(response.headers["Retry-After"])


def stop(client: httpx.Client, conversation_id: str) -> None:
    assert client.post(f"/conversations/{conversation_id}/cancel").status_code == 202
    wait_for(lambda: client.get(f"/conversations/{conversation_id}").json()["conversation"]["status"] == "idle")


def test_runs_in_progress_are_counted_across_workers(limited):
    a, b = limited.workers[:2]
    token = a.token("concurrent")
    with client_for(a, token) as on_a, client_for(b, token) as on_b:
        first = start_long(on_a)
        second = start_long(on_b)
        for client in (on_a, on_b):
            code, retry_after = refusal(client)
            assert code == "too_many_runs" and retry_after >= 1
        stop(on_b, first)  # the run on A, cancelled through B, frees its place everywhere
        third = start_long(on_a)
        assert refusal(on_b)[0] == "too_many_runs"
        stop(on_a, second)
        stop(on_b, third)


def test_the_run_rate_is_shared_across_workers(limited):
    a, b = limited.workers[:2]
    token = a.token("hasty")
    with client_for(a, token) as on_a, client_for(b, token) as on_b:
        admitted = [run(client, "k=1", agent_name="bench")[0].status_code for client in (on_a, on_b, on_a, on_b)]
        assert admitted == [200] * 4
        for client in (on_a, on_b, on_a):
            code, retry_after = refusal(client)
            assert code == "rate_limited" and 1 <= retry_after <= 60
    # Another principal is untouched.
    other = a.token("patient")
    with client_for(b, other) as on_b:
        assert run(on_b, "k=1", agent_name="bench")[0].status_code == 200


def test_a_run_in_progress_survives_a_lower_limit_on_a_new_worker(limited):
    a = limited.workers[0]
    token = a.token("steady")
    with client_for(a, token) as on_a, on_a.stream("POST", "/agents/stream", json=LONG) as one:
        head = [e.json for e in read_events(one, limit=3)]
        conversation_id = head[0]["data"]["conversation_id"]
        # A redeploy lowers the limit to 1: the new worker refuses, the run on A goes on.
        stricter = LiveServer(
            env={**limited.env, "VALUECELL_MAX_RUNS_PER_PRINCIPAL": "1"}, database_url=limited.database_url, migrate=False
        )
        limited.workers.append(stricter.start())
        with client_for(stricter, token) as on_strict:
            assert refusal(on_strict)[0] == "too_many_runs"
            middle = [e.json for e in read_events(one, limit=50)]
            assert names(middle) == ["message_chunk"] * 50
            stop(on_strict, conversation_id)
        rest = [e.json for e in read_events(one)]
    everything = head + middle + rest
    assert [e["seq"] for e in everything] == list(range(1, len(everything) + 1))
    assert names(everything)[-2:] == ["task_cancelled", "done"]


def test_a_dead_workers_runs_stop_counting_once_their_lease_expires(limited):
    doomed = limited.worker()
    b = limited.workers[1]
    token = b.token("orphaned")
    with client_for(doomed, token) as on_doomed, client_for(b, token) as on_b:
        start_long(on_doomed)
        start_long(on_doomed)
        assert refusal(on_b)[0] == "too_many_runs"
        doomed.stop(signal.SIGKILL)
        # Keep asking (a refusal does not count): admitted once the lease (6 s) has expired.
        wait_for(lambda: run(on_b, "k=1", agent_name="bench")[0].status_code == 200, timeout=6 + 20, interval=0.5)


def test_anonymous_runs_from_one_address_are_counted_across_workers(limited):
    a, b = limited.workers[:2]

    def anonymous_run(server: LiveServer) -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=60) as fresh:  # no cookie: a new session each time
            return run(fresh, "k=1", agent_name="bench")[0]

    assert [anonymous_run(server).status_code for server in (a, b, a, b)] == [200] * 4
    refused = anonymous_run(b)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert "address" in refused.json()["error"]["message"]
