"""A Redis outage under two streaming workers is logged once when it starts and
once when it ends, per worker: not one traceback per failed receive, publish
or group join (a 5 s outage used to log 847). And nothing is lost.

Redis here is a private redis-server on a free port, killed and started again
by the test (never the shared one); PostgreSQL is the scale-out suite's.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import IN_CI
from tests.e2e.client import names
from tests.e2e.test_sse_runs import wait_for
from tests.scaleout.conftest import Cluster
from tests.scaleout.private_redis import PrivateRedis, redis_server_binary
from tests.scaleout.readers import Reader

pytestmark = pytest.mark.services

OUTAGE_SECONDS = 4
CHUNKS = 400  # 20 ms apart: streaming before, during and after the outage
STARTED = "the channel layer is failing"
ENDED = "the channel layer works again"


@pytest.fixture(scope="module")
def private_redis():
    binary = redis_server_binary()
    if binary is None:
        if IN_CI:
            pytest.fail("the Redis outage test needs redis-server under CI", pytrace=False)
        pytest.skip("redis-server not found on PATH")
    server = PrivateRedis(binary).start()
    yield server
    server.close()


@pytest.fixture(scope="module", params=["pubsub", "core"])
def redis_cluster(request, services, scaleout_database, private_redis):
    cluster = Cluster(scaleout_database, private_redis.url, request.param)
    cluster.worker(migrate=True)
    cluster.worker()
    yield cluster
    cluster.close()


def test_a_redis_outage_is_logged_once_when_it_starts_and_once_when_it_ends(redis_cluster, private_redis):
    a, b = redis_cluster.workers
    token = a.token("outage")
    starter = Reader(a, token, query=f"k={CHUNKS} delay_ms=20")
    starter.start()
    wait_for(lambda: len(starter.events) >= 20 or starter.error, timeout=30)
    assert starter.error is None, starter.error
    followers = [Reader(b, token, conversation_id=starter.conversation_id) for _ in range(4)]
    for follower in followers:
        follower.start()
    wait_for(lambda: all(len(f.events) >= 20 for f in followers), timeout=30)
    before = {worker.port: len(worker.log()) for worker in (a, b)}

    def since(worker) -> str:
        return worker.log()[before[worker.port] :]

    private_redis.stop()
    back_at = time.monotonic() + OUTAGE_SECONDS
    # Both workers notice (A publishes, B's followers rejoin their group), then it lasts a while.
    wait_for(lambda: all(STARTED in since(worker) for worker in (a, b)), timeout=30)
    wait_for(lambda: time.monotonic() >= back_at, timeout=OUTAGE_SECONDS + 1)
    assert len(starter.events) < CHUNKS + 5, "the run ended before Redis came back"
    private_redis.start()

    for reader in (starter, *followers):
        reader.join(timeout=90)
        assert reader.error is None and not reader.is_alive(), reader.error
        assert [e["seq"] for e in reader.events] == list(range(1, CHUNKS + 6)), "lost or repeated events"
    assert names(starter.events)[-2:] == ["task_completed", "done"]
    wait_for(lambda: all(ENDED in since(worker) for worker in (a, b)), timeout=30)
    for worker in (a, b):
        logged = since(worker)
        assert logged.count(STARTED) == 1, logged[-3000:]
        assert logged.count(ENDED) == 1, logged[-3000:]
        assert "Traceback" not in logged, logged[-3000:]
