"""Several workers on PostgreSQL + Redis keep every promise of one worker."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.e2e.client import names, read_events, resume, run
from tests.e2e.test_sse_runs import wait_for

pytestmark = pytest.mark.services


def client_for(server, token):
    return httpx.Client(base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {token}"})


def status(client, conversation_id):
    return client.get(f"/conversations/{conversation_id}").json()


def test_run_started_on_a_is_resumed_on_b_exactly(cluster, token):
    a, b = cluster.workers[:2]
    with client_for(a, token) as on_a, client_for(b, token) as on_b:
        with on_a.stream("POST", "/agents/stream", json={"query": "k=150 delay_ms=4", "agent_name": "bench"}) as response:
            head = [e.json for e in read_events(response, limit=20)]
        conversation_id = head[0]["data"]["conversation_id"]
        tail = resume(on_b, conversation_id, head[-1]["seq"])
        union = head + tail
        assert [e["seq"] for e in union] == list(range(1, 156))
        assert names(union)[-2:] == ["task_completed", "done"]
        assert resume(on_b, conversation_id, 0) == union
        items = on_b.get(f"/conversations/{conversation_id}/items").json()
        assert items["last_seq"] == 155
        assert items["items"][-1]["payload"]["content"] == "".join(f"chunk {i} " for i in range(150))
        assert items["items"][-1]["metadata"]["i"] == 0  # JSON columns hold JSON, not JSON text
        assert items["items"][0]["metadata"] is None and items["items"][0]["payload"] == {"content": "k=150 delay_ms=4"}


def test_cancel_from_b_stops_a_run_on_a(cluster, token):
    a, b = cluster.workers[:2]
    with client_for(a, token) as on_a, client_for(b, token) as on_b:
        with on_a.stream("POST", "/agents/stream", json={"query": "k=5000 delay_ms=5", "agent_name": "bench"}) as response:
            head = read_events(response, limit=5)
            conversation_id = head[0].json["data"]["conversation_id"]
            assert on_b.post(f"/conversations/{conversation_id}/cancel").status_code == 202
            rest = [e.json for e in read_events(response)]
        assert names(rest)[-2:] == ["task_cancelled", "done"]
        assert status(on_b, conversation_id)["tasks"][0]["status"] == "cancelled"


def test_question_asked_on_a_is_answered_through_b(cluster, token):
    a, b = cluster.workers[:2]
    with client_for(a, token) as on_a, client_for(b, token) as on_b:
        _, first = run(on_a, "What about the market?")
        assert names(first)[-2:] == ["plan_require_user_input", "done"]
        conversation_id = first[0]["data"]["conversation_id"]
        _, second = run(on_b, "AAPL", conversation_id=conversation_id)
        assert names(second)[0] == "thread_started" and names(second)[-2:] == ["task_completed", "done"]
        assert second[0]["seq"] == first[-1]["seq"] + 1
        assert {e["data"]["task_id"] for e in second if "task_id" in e["data"]} == {first[-2]["data"]["task_id"]}


def test_seq_uniqueness_is_enforced_by_the_database(cluster, token):
    with client_for(cluster.workers[0], token) as on_a:
        _, events = run(on_a, "k=1 delay_ms=0", agent_name="bench")
    conversation_id = events[0]["data"]["conversation_id"]
    with psycopg.connect(cluster.database_url) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "insert into conversations_event (conversation_id, seq, event, thread_id, task_id, item_id, agent_name, body, created_at)"
                " values (%s, 1, 'done', '', '', '', '', '{}', now())",
                (conversation_id,),
            )


def test_fifty_concurrent_runs_with_random_disconnects_are_exact(cluster, token):
    rng = random.Random(7)
    workers = cluster.workers[:2]
    failures: list[str] = []

    def one(index: int) -> None:
        start, follow = rng.choice(workers), rng.choice(workers)
        cut = rng.randint(1, 60)
        chunks = 40
        try:
            with client_for(start, token) as first, client_for(follow, token) as second:
                with first.stream("POST", "/agents/stream", json={"query": f"k={chunks} delay_ms=3", "agent_name": "bench"}) as response:
                    head = [e.json for e in read_events(response, limit=cut)]
                conversation_id = head[0]["data"]["conversation_id"]
                if head[-1]["event"] == "done":
                    union = head
                else:
                    union = head + resume(second, conversation_id, head[-1]["seq"])
                expected = list(range(1, chunks + 6))
                if [e["seq"] for e in union] != expected or union[-1]["event"] != "done":
                    failures.append(f"run {index}: got seqs {[e['seq'] for e in union]}")
                    return
                wait_for(lambda: status(second, conversation_id)["conversation"]["status"] == "idle", timeout=30)
                if resume(second, conversation_id, 0) != union:
                    failures.append(f"run {index}: stored sequence differs from the delivered one")
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            failures.append(f"run {index}: {exc!r}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert failures == [], "\n".join(failures)


def test_sigkill_mid_run_fails_the_task_and_frees_the_conversation(cluster, token):
    doomed = cluster.worker()
    b = cluster.workers[1]
    with client_for(doomed, token) as on_doomed, client_for(b, token) as on_b:
        with on_doomed.stream("POST", "/agents/stream", json={"query": "k=100000 delay_ms=5", "agent_name": "bench"}) as response:
            head = [e.json for e in read_events(response, limit=10)]
        conversation_id = head[0]["data"]["conversation_id"]
        received: list[dict] = []

        def follow_on_b():
            received.extend(resume(on_b, conversation_id, head[-1]["seq"]))

        follower = threading.Thread(target=follow_on_b)
        follower.start()
        wait_for(lambda: status(on_b, conversation_id)["conversation"]["status"] == "running")
        doomed.stop(signal.SIGKILL)
        follower.join(timeout=6 + 10)  # lease (6 s) plus a margin
        assert not follower.is_alive(), "the follower on B did not finish"
        assert names(received)[-2:] == ["task_failed", "done"]
        seqs = [e["seq"] for e in head + received]
        assert seqs == list(range(1, len(seqs) + 1))
        detail = status(on_b, conversation_id)
        assert detail["tasks"][0]["status"] == "failed"
        assert detail["conversation"]["status"] == "idle"
        _, again = run(on_b, "k=3 delay_ms=0", agent_name="bench", conversation_id=conversation_id)
        assert names(again)[-2:] == ["task_completed", "done"]


def test_sigterm_finishes_or_fails_runs_within_the_grace(cluster, token):
    leaving = cluster.worker()
    b = cluster.workers[1]
    with client_for(leaving, token) as on_leaving, client_for(b, token) as on_b:
        with on_leaving.stream("POST", "/agents/stream", json={"query": "k=100000 delay_ms=5", "agent_name": "bench"}) as response:
            head = [e.json for e in read_events(response, limit=5)]
        conversation_id = head[0]["data"]["conversation_id"]
        leaving.process.send_signal(signal.SIGTERM)
        leaving.process.wait(timeout=2 + 10)  # grace (2 s) plus a margin
        tail = resume(on_b, conversation_id, head[-1]["seq"])
        assert names(tail)[-2:] == ["task_failed", "done"]
        assert "shut down" in tail[-2]["data"]["payload"]["content"]
        assert status(on_b, conversation_id)["conversation"]["status"] == "idle"


def local_ports_to(pid: int, remote_port: int) -> list[int]:
    """The local ports of a process's TCP connections to `remote_port` (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                ports.append(int(local.rsplit(":", 1)[1], 16))
    return ports


def test_redis_connections_dropped_mid_run_lose_nothing(cluster, token):
    """Drop every Redis connection and the layer's state (as a restart does) mid-run."""
    import redis

    a, b = cluster.workers[:2]
    admin = redis.Redis.from_url(cluster.redis_url)
    with client_for(a, token) as on_a, client_for(b, token) as on_b:
        with on_a.stream("POST", "/agents/stream", json={"query": "k=400 delay_ms=5", "agent_name": "bench"}) as response:
            head = [e.json for e in read_events(response, limit=10)]
            conversation_id = head[0]["data"]["conversation_id"]
            received: list[dict] = []
            follower = threading.Thread(target=lambda: received.extend(resume(on_b, conversation_id, 0)))
            follower.start()
            middle = [e.json for e in read_events(response, limit=20)]  # the follower is under way meanwhile
            prefix = cluster.env["REDIS_PREFIX"]
            for key in admin.scan_iter(match=f"{prefix}*"):
                admin.delete(key)  # group memberships and queued messages vanish
            # Only this cluster's connections: other suites may share the Redis server.
            killed = sum(
                admin.client_kill_filter(addr=f"127.0.0.1:{port}")
                for worker in (a, b)
                for port in local_ports_to(worker.process.pid, 6379)
            )
            assert killed >= 1
            rest = [e.json for e in read_events(response)]
        follower.join(timeout=60)
        assert not follower.is_alive()
    assert [e["seq"] for e in head + middle + rest] == list(range(1, 406)), "the starting client lost nothing"
    assert names(received)[-2:] == ["task_completed", "done"]
    assert [e["seq"] for e in received] == list(range(1, 406)), "the follower on B lost nothing"
    with client_for(b, token) as on_b:
        assert resume(on_b, conversation_id, 0) == received


def test_websocket_subscriber_on_b_sees_a_run_started_by_sse_on_a(cluster, token):
    """Live delivery crosses workers through Redis: a socket on B follows a run on A."""
    import asyncio
    import json

    import websockets

    a, b = cluster.workers[:2]
    with client_for(a, token) as on_a:
        _, warmup = run(on_a, "k=1 delay_ms=0", agent_name="bench")
    conversation_id = warmup[0]["data"]["conversation_id"]
    start_seq = warmup[-1]["seq"]

    async def scenario() -> tuple[list[dict], list[dict]]:
        headers = {"Authorization": f"Bearer {token}"}
        async with websockets.connect(f"{b.ws_url}/ws/agents/", additional_headers=headers) as socket:
            await socket.send(json.dumps({"type": "subscribe", "conversation_id": conversation_id, "after": start_seq}))
            while (reply := json.loads(await asyncio.wait_for(socket.recv(), 10))).get("type") != "subscribed":
                pass
            # Now start a run on A over SSE, in a thread, and read it there too.
            loop = asyncio.get_running_loop()
            def run_on_a() -> list[dict]:
                with client_for(a, token) as on_a:
                    return run(on_a, "k=60 delay_ms=5", agent_name="bench", conversation_id=conversation_id)[1]

            sse_events = loop.run_in_executor(None, run_on_a)
            over_ws: list[dict] = []
            while not over_ws or over_ws[-1]["event"] != "done":
                frame = json.loads(await asyncio.wait_for(socket.recv(), 20))
                if "type" not in frame:
                    over_ws.append(frame)
            return over_ws, await sse_events

    over_ws, over_sse = asyncio.run(scenario())
    assert over_ws == over_sse
    assert [e["seq"] for e in over_ws] == list(range(start_seq + 1, start_seq + 1 + 64))


def in_parallel(count: int, one) -> list[str]:
    """Run `one()` in `count` threads at once; their results, "ok" or what went wrong."""
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(one())) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    return results


def test_open_streams_do_not_hold_database_connections(cluster, token):
    """More concurrent streams than one worker's connection pool (20): all complete."""
    a = cluster.workers[0]

    def one() -> str:
        with client_for(a, token) as client:
            response, events = run(client, "k=40 delay_ms=50", agent_name="bench")
            return "ok" if response.status_code == 200 and events[-1]["event"] == "done" else response.text[:200]

    assert in_parallel(45, one) == ["ok"] * 45


def test_first_time_anonymous_streams_do_not_hold_database_connections(cluster):
    """Each request below creates a session (saved after the view): it must not keep its connection either.

    The streams outlast the pool's timeout (10 s): had each kept a connection, the
    requests beyond the pool's 20 would have failed waiting for one."""
    a = cluster.workers[0]

    def one() -> str:
        with httpx.Client(base_url=a.url, timeout=60) as client:  # no token, no cookie: a new anonymous session
            response, events = run(client, "k=120 delay_ms=100", agent_name="bench")
            ok = response.status_code == 200 and events[-1]["event"] == "done" and "sessionid" in response.cookies
            return "ok" if ok else f"{response.status_code} {response.text[:200]}"

    assert in_parallel(30, one) == ["ok"] * 30


@pytest.mark.parametrize("cluster", ["pubsub"], indirect=True)  # the core layer's receiver does not nap
def test_an_idle_worker_stays_subscribed_so_a_first_event_is_not_held_back(cluster, token):
    """channels_redis' pub/sub receiver naps 100 ms at a time while a worker has no subscription."""
    import redis

    admin = redis.Redis.from_url(cluster.redis_url)
    for worker in cluster.workers:
        if worker.process.poll() is None:
            httpx.get(f"{worker.url}/healthz", timeout=10).raise_for_status()
    alive = sum(1 for worker in cluster.workers if worker.process.poll() is None)
    prefix = cluster.env["REDIS_PREFIX"]
    wait_for(lambda: len(admin.pubsub_channels(f"{prefix}worker.*")) >= alive)
