"""The log filters that fold channels_redis' outage noise into one warning per outage."""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest

from streaming.eventlog.layer_outage import LayerOutage, LayerTaskErrorFilter, OutageLogFilter, layer_outage


def record(logger: str, message: str, exc: BaseException | None) -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord(logger, logging.ERROR, __file__, 1, message, None, exc_info)


@pytest.fixture(autouse=True)
def fresh_outage():
    layer_outage.since, layer_outage.failures = None, 0
    yield
    layer_outage.since, layer_outage.failures = None, 0
    if layer_outage._ending is not None:
        layer_outage._ending.cancel()
        layer_outage._ending = None


def test_a_dead_channels_redis_task_is_no_traceback_and_no_new_outage():
    """asyncio reports such a task when it is collected, often after the outage ended."""
    dying = record(
        "asyncio",
        "Task exception was never retrieved\nfuture: <Task finished coro=<RedisChannelLayer._clean_receive_backup()>>",
        ConnectionError("Error 111 connecting to 127.0.0.1:6379"),
    )
    assert LayerTaskErrorFilter().filter(dying) is False
    assert not layer_outage.ongoing


def test_any_other_asyncio_error_is_logged_as_ever():
    other = record("asyncio", "Task exception was never retrieved\nfuture: <Task finished coro=<mine()>>", ValueError("x"))
    plain = record("asyncio", "Executing <Handle> took 0.2 seconds", None)
    assert LayerTaskErrorFilter().filter(other) is True
    assert LayerTaskErrorFilter().filter(plain) is True
    assert not layer_outage.ongoing


def test_channels_redis_tracebacks_count_toward_the_outage():
    try:
        raise ConnectionError("gone")
    except ConnectionError:
        exc_info = sys.exc_info()
    failing = logging.LogRecord("channels_redis.pubsub", logging.ERROR, __file__, 1, "receive failed", None, exc_info)
    assert OutageLogFilter().filter(failing) is False
    assert OutageLogFilter().filter(record("channels_redis.pubsub", "plain info", None)) is True
    assert layer_outage.failures == 1


async def test_an_outage_ends_once_the_layer_kept_working_and_a_stale_connection_does_not_start_another(caplog):
    """After Redis returns, the first publish may still meet a connection Redis closed."""
    outage = LayerOutage()
    outage.QUIET_SECONDS = 0.05
    with caplog.at_level(logging.WARNING, logger="streaming.eventlog.layer_outage"):
        outage.failed("receiving", ConnectionError("Connection closed by server."))
        outage.worked()  # Redis is back...
        outage.failed("publishing", ConnectionError("Connection closed by server."))  # ...a stale connection
        outage.worked()
        async with asyncio.timeout(5):
            while outage.ongoing:
                await asyncio.sleep(0.01)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("the channel layer is failing (receiving")
    assert lines[1].startswith("the channel layer works again") and "(2 operations failed meanwhile)" in lines[1]
