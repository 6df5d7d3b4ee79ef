"""What a held stream keeps alive in the server: no thread and no database
connection of its own (issue #12: 1,000 streams held 1,008 threads and 1,007
SQLite descriptors, about 300 KB each)."""

from __future__ import annotations

import os
import threading

import httpx

from tests.e2e.client import TIMEOUT, read_events

STREAMS = 20


def _threads_and_sqlite_files(pid: int) -> tuple[int, int]:
    files = 0
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            files += os.readlink(f"/proc/{pid}/fd/{name}").endswith(".sqlite3")
        except OSError:
            continue
    return len(os.listdir(f"/proc/{pid}/task")), files


def test_held_streams_hold_no_thread_and_no_database_connection(daphne_server, alice_token):
    assert daphne_server.process is not None
    pid = daphne_server.process.pid
    headers = {"Authorization": f"Bearer {alice_token}"}
    with httpx.Client(base_url=daphne_server.url, timeout=TIMEOUT, headers=headers) as warm:
        with warm.stream("POST", "/agents/stream", json={"query": "k=2 delay_ms=0", "agent_name": "bench"}) as r:
            assert len(read_events(r)) == 7  # the token is known, the writer's thread started
    threads_before, files_before = _threads_and_sqlite_files(pid)

    started = threading.Barrier(STREAMS + 1, timeout=60)
    release = threading.Event()
    failures: list[str] = []

    def hold() -> None:
        try:
            with httpx.Client(base_url=daphne_server.url, timeout=TIMEOUT, headers=headers) as client:
                body = {"query": "k=3 delay_ms=400", "agent_name": "bench"}
                with client.stream("POST", "/agents/stream", json=body) as response:
                    first = read_events(response, limit=3)  # conversation, thread and task started
                    started.wait()
                    release.wait(60)
                    rest = read_events(response)
                    if len(first) + len(rest) != 8:
                        failures.append(f"{len(first) + len(rest)} events instead of 8")
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(repr(exc))
            started.abort()

    holders = [threading.Thread(target=hold) for _ in range(STREAMS)]
    for holder in holders:
        holder.start()
    try:
        started.wait()  # every stream is open and has begun
        threads, files = _threads_and_sqlite_files(pid)
    finally:
        release.set()
        for holder in holders:
            holder.join(60)
    assert not failures, failures
    # A bounded pool's threads may start (the event writer's; asgiref's executor for
    # database reads and cache calls: at most min(32, CPUs + 4) = 6 here), never one per stream.
    pool = min(32, (os.cpu_count() or 1) + 4)
    assert threads - threads_before <= min(pool, STREAMS // 2), (threads_before, threads)
    # (Each of those threads may hold one database connection.)
    assert files - files_before <= min(pool, STREAMS // 2), (files_before, files)
