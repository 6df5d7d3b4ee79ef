"""PostgreSQL restarts under two streaming workers: once it is back, everything works.

A private cluster (never the shared server) is stopped for a few seconds while
two Daphne workers (plus Redis) stream a run, a follower reads it on the other
worker, and a third worker has just been killed. Then: no 500 at any time
(503 `database_unavailable` while it is down), the next request, run and
WebSocket handshake on each worker work, the run that was streaming finishes
with every event once, resume returns what is stored, and the killed worker's
run is ended by the reaper.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from dataclasses import dataclass, field

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.conftest import IN_CI
from tests.e2e.client import names, read_events, resume, run
from tests.e2e.test_sse_runs import wait_for
from tests.scaleout.conftest import Cluster, service_urls
from tests.scaleout.private_postgres import PrivatePostgres, postgres_bin
from tests.scaleout.readers import Reader, client_for

pytestmark = pytest.mark.services

OUTAGE_SECONDS = 8
CHUNKS = 800  # 25 ms apart: the run streams before, during and after the outage
LEASE = 6  # VALUECELL_RUN_LEASE_SECONDS of the scale-out workers


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"the database restart test needs PostgreSQL's binaries and Redis under CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def private_postgres():
    bin_dir = postgres_bin()
    if bin_dir is None:
        _unavailable("PostgreSQL's initdb/pg_ctl not found (looked in /usr/lib/postgresql/*/bin and PATH)")
    server = PrivatePostgres(bin_dir).init()
    yield server
    server.close()


@pytest.fixture(scope="module")
def restart_cluster(private_postgres):
    import redis

    redis_url = service_urls()[1]
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except Exception as exc:
        _unavailable(f"Redis at {redis_url}: {exc}")
    cluster = Cluster(private_postgres.url, redis_url, "pubsub")
    cluster.env["DB_POOL_TIMEOUT"] = "3"  # a request while the database is down waits this long for its 503
    cluster.worker(migrate=True)
    cluster.worker()
    yield cluster
    cluster.close()


async def _handshake(server, token: str, conversation_id: str) -> str:
    """'subscribed' when a token socket opens and works, else how it ended ('close 4013', …)."""
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with websockets.connect(f"{server.ws_url}/ws/agents/", additional_headers=headers, open_timeout=30) as ws:
            await ws.send(json.dumps({"type": "subscribe", "conversation_id": conversation_id}))
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if frame.get("type") in ("subscribed", "error"):
                    return frame["type"] if frame["type"] == "subscribed" else f"error {frame['code']}"
    except ConnectionClosed as closed:
        return f"close {closed.rcvd.code if closed.rcvd else None}"
    except Exception as exc:
        return f"failed {exc!r}"


def handshake(server, token: str, conversation_id: str) -> str:
    return asyncio.run(_handshake(server, token, conversation_id))


@dataclass
class Outage:
    token: str = ""
    conversation_id: str = ""  # the run streaming on A through the outage
    starter: Reader | None = None  # the client that started it on A
    follower: Reader | None = None  # a follower on B, from seq 0
    streamed_before: int = 0  # events the starter had when the database went down
    killed_conversation: str = ""  # the run of the worker killed as the database went down
    during: list[tuple[str, int, str, str]] = field(default_factory=list)  # (worker, status, code, Retry-After)
    ws_during: str = ""
    first_after: dict[str, int] = field(default_factory=dict)
    ws_after: dict[str, str] = field(default_factory=dict)
    runs_after: dict[str, list[str]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def outage(restart_cluster, private_postgres) -> Outage:
    cluster = restart_cluster
    a, b = cluster.workers
    token = a.token("restarter")
    seen = Outage(token=token)

    # Warm every path up, so the restart leaves dead connections everywhere: the
    # pools, the write lane's thread, asgiref's threads, the handshake's look-ups.
    with client_for(a, token) as on_a, client_for(b, token) as on_b:
        _, warm = run(on_a, "k=2 delay_ms=0", agent_name="bench")
        warm_id = warm[0]["data"]["conversation_id"]
        for client in (on_a, on_b):
            assert resume(client, warm_id, 0) == warm
        for worker in (a, b):
            assert handshake(worker, token, warm_id) == "subscribed"

    doomed = cluster.worker()
    body = {"query": "k=100000 delay_ms=5", "agent_name": "bench"}
    with client_for(doomed, token) as on_doomed, on_doomed.stream("POST", "/agents/stream", json=body) as response:
        seen.killed_conversation = read_events(response, limit=3)[0].json["data"]["conversation_id"]

    seen.starter = starter = Reader(a, token, query=f"k={CHUNKS} delay_ms=25")
    starter.start()
    wait_for(lambda: len(starter.events) >= 20 or starter.error, timeout=30)
    assert starter.error is None, starter.error
    seen.conversation_id = starter.conversation_id
    seen.follower = follower = Reader(b, token, conversation_id=seen.conversation_id)
    follower.start()
    wait_for(lambda: len(follower.events) >= 20, timeout=30)  # both streams are under way

    doomed.stop(signal.SIGKILL)
    seen.streamed_before = len(starter.events)
    private_postgres.stop()
    down_until = time.monotonic() + OUTAGE_SECONDS
    with client_for(a, token) as on_a, client_for(b, token) as on_b:
        while time.monotonic() < down_until:
            for worker, client in (("a", on_a), ("b", on_b)):
                response = client.get(f"/conversations/{seen.conversation_id}")
                code = response.json().get("error", {}).get("code", "") if response.headers.get("content-type") == "application/json" else response.text[:80]
                seen.during.append((worker, response.status_code, code, response.headers.get("Retry-After", "")))
            if not seen.ws_during:
                seen.ws_during = handshake(a, token, seen.conversation_id)
    private_postgres.start()

    with client_for(a, token) as on_a, client_for(b, token) as on_b:
        for worker, client in (("a", on_a), ("b", on_b)):
            seen.first_after[worker] = client.get("/conversations").status_code
        for worker, server in (("a", a), ("b", b)):
            seen.ws_after[worker] = handshake(server, token, seen.conversation_id)
        for worker, client in (("a", on_a), ("b", on_b)):
            response, events = run(client, "k=3 delay_ms=0", agent_name="bench")
            seen.runs_after[worker] = names(events) if response.status_code == 200 else [f"HTTP {response.status_code}"]
    starter.join(timeout=120)
    follower.join(timeout=120)
    return seen


def test_no_request_fails_with_500_and_a_down_database_is_a_503(outage, restart_cluster):
    assert outage.during, "no request was made while the database was down"
    statuses = {status for _, status, _, _ in outage.during}
    assert statuses <= {200, 503}, outage.during
    refused = [entry for entry in outage.during if entry[1] == 503]
    assert refused, "no request saw the database down"
    assert all(code == "database_unavailable" and retry == "5" for _, _, code, retry in refused), refused
    for worker in restart_cluster.workers[:2]:
        assert "Internal Server Error" not in worker.log()


def test_a_websocket_handshake_while_the_database_is_down_is_told_to_try_again(outage):
    assert outage.ws_during == "close 4013"


def test_the_next_request_websocket_and_run_on_each_worker_work(outage):
    assert outage.first_after == {"a": 200, "b": 200}
    assert outage.ws_after == {"a": "subscribed", "b": "subscribed"}
    for worker in ("a", "b"):
        assert outage.runs_after[worker][-2:] == ["task_completed", "done"], (worker, outage.runs_after[worker])


def test_the_run_streaming_through_the_outage_completes_with_every_event_once(outage):
    expected = list(range(1, CHUNKS + 6))
    assert outage.streamed_before < len(expected) / 2, "the run was not streaming when the database went down"
    for reader in (outage.starter, outage.follower):
        assert reader is not None and reader.error is None and not reader.is_alive(), reader and reader.error
        assert [e["seq"] for e in reader.events] == expected, f"{reader.server.url} lost or repeated events"
    assert names(outage.starter.events)[-2:] == ["task_completed", "done"], "the run failed instead of waiting"
    assert outage.follower.events == outage.starter.events


def test_resume_returns_what_is_stored_on_each_worker(outage, restart_cluster):
    for worker in restart_cluster.workers[:2]:
        with client_for(worker, outage.token) as client:
            assert resume(client, outage.conversation_id, 0) == outage.starter.events
            assert resume(client, outage.conversation_id, 100) == outage.starter.events[100:]


def test_the_reaper_ends_the_killed_workers_run(outage, restart_cluster):
    b = restart_cluster.workers[1]
    with client_for(b, outage.token) as on_b:

        def ended() -> dict | None:
            detail = on_b.get(f"/conversations/{outage.killed_conversation}").json()
            return detail if detail["conversation"]["status"] == "idle" else None

        # The lease, then the reaper's grace of one lease after the outage, plus a margin.
        detail = wait_for(ended, timeout=2 * LEASE + 30, interval=0.2)
        assert detail["tasks"][0]["status"] == "failed"
        events = resume(on_b, outage.killed_conversation, 0)
        assert names(events)[-2:] == ["task_failed", "done"]
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
