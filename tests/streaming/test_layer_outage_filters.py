"""The log filters that fold channels_redis' outage noise into one warning per outage."""

from __future__ import annotations

import logging
import sys

import pytest

from streaming.eventlog.layer_outage import LayerTaskErrorFilter, OutageLogFilter, layer_outage


def record(logger: str, message: str, exc: BaseException | None) -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord(logger, logging.ERROR, __file__, 1, message, None, exc_info)


@pytest.fixture(autouse=True)
def fresh_outage():
    layer_outage.since, layer_outage.failures = None, 0
    yield
    layer_outage.since, layer_outage.failures = None, 0


def test_a_dead_channels_redis_task_counts_toward_the_outage_instead_of_a_traceback():
    dying = record(
        "asyncio",
        "Task exception was never retrieved\nfuture: <Task finished coro=<RedisChannelLayer._clean_receive_backup()>>",
        ConnectionError("Error 111 connecting to 127.0.0.1:6379"),
    )
    assert LayerTaskErrorFilter().filter(dying) is False
    assert layer_outage.ongoing and layer_outage.failures == 1


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
