"""Admission control in process: each limit through `orchestrator.submit` (the
door every transport uses), what counts and what does not, and Retry-After.
The shared counts across two real workers are in tests/scaleout/test_admission.py."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time

import pytest
from django.contrib.auth import get_user_model

from conversations.models import Conversation, ConversationStatus, Event
from conversations.ownership import Principal
from streaming import metrics
from streaming.errors import ServiceError
from streaming.runtime import overload
from streaming.runtime.admission import Rate, parse_rate
from streaming.runtime.orchestrator import orchestrator

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = Principal(session_key="alice-session")
HERE = ipaddress.ip_address("192.0.2.10")
LONG = "k=100000 delay_ms=5"


@pytest.fixture
def limits(settings):
    settings.VALUECELL_MAX_RUNS_PER_PRINCIPAL = 0
    settings.VALUECELL_RUN_RATE = "off"
    settings.VALUECELL_OVERLOAD_BACKLOG = 0
    return settings


async def refused(*args, **kwargs) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        await orchestrator.submit(*args, **kwargs)
    return caught.value


async def names(conversation_id: str) -> list[str]:
    bodies = Event.objects.filter(conversation_id=conversation_id).order_by("seq").values_list("body", flat=True)
    return [json.loads(body)["event"] async for body in bodies]


async def stop(*conversation_ids: str) -> None:
    """Cancel these runs (if still going) and wait until their conversations are idle."""
    for conversation_id in conversation_ids:
        if (await Conversation.objects.aget(pk=conversation_id)).status != ConversationStatus.IDLE:
            await orchestrator.cancel(None, conversation_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    for conversation_id in conversation_ids:
        while (await Conversation.objects.aget(pk=conversation_id)).status != ConversationStatus.IDLE:
            assert loop.time() < deadline, f"{conversation_id} did not stop"
            await asyncio.sleep(0.02)


def test_rates_are_written_like_60_per_min():
    assert parse_rate("60/min") == Rate(60, 60)
    assert parse_rate("10/30s") == Rate(10, 30)
    assert parse_rate("500/hour") == Rate(500, 3600)
    assert parse_rate(" 3 / 2 minutes ") == Rate(3, 120)
    assert parse_rate("2000/day") == Rate(2000, 86400)
    assert parse_rate("off") is None and parse_rate("") is None and parse_rate("0/min") is None
    for bad in ("60", "60/fortnight", "many/min", "-1/min"):
        with pytest.raises(Exception, match="VALUECELL_RUN_RATE"):
            parse_rate(bad)


async def test_runs_in_progress_beyond_the_limit_get_too_many_runs(limits):
    limits.VALUECELL_MAX_RUNS_PER_PRINCIPAL = 2
    first = await orchestrator.submit(ALICE, LONG, "bench")
    second = await orchestrator.submit(ALICE, LONG, "bench")
    before = metrics.REJECTED_TOTAL.labels(reason="too_many_runs")._value.get()
    error = await refused(ALICE, "k=1", "bench")
    assert (error.status, error.code) == (429, "too_many_runs")
    assert int(error.headers["Retry-After"]) >= 1 and error.fields["retry_after"] >= 1
    assert metrics.REJECTED_TOTAL.labels(reason="too_many_runs")._value.get() == before + 1
    # Someone else is not limited by Alice's runs.
    other = await orchestrator.submit(Principal(session_key="bob-session"), "k=1", "bench")
    # A run that ends frees its place.
    await stop(first.conversation_id)
    third = await orchestrator.submit(ALICE, "k=1", "bench")
    await stop(second.conversation_id, third.conversation_id, other.conversation_id)


async def test_a_run_in_progress_survives_a_lower_limit(limits):
    limits.VALUECELL_MAX_RUNS_PER_PRINCIPAL = 3
    runs = [await orchestrator.submit(ALICE, "k=150 delay_ms=10", "bench") for _ in range(2)]
    limits.VALUECELL_MAX_RUNS_PER_PRINCIPAL = 1
    limits.VALUECELL_RUN_RATE = "1/hour"
    assert (await refused(ALICE, "k=1", "bench")).code == "too_many_runs"
    await asyncio.wait_for(orchestrator.wait_idle(), 60)
    for run in runs:
        assert (await names(run.conversation_id))[-2:] == ["task_completed", "done"]
        assert len(await names(run.conversation_id)) == 155


async def test_new_runs_beyond_the_rate_get_rate_limited_with_the_wait(limits):
    limits.VALUECELL_RUN_RATE = "2/min"
    started = [await orchestrator.submit(ALICE, "k=1", "bench") for _ in range(2)]
    error = await refused(ALICE, "k=1", "bench")
    assert (error.status, error.code) == (429, "rate_limited")
    assert 55 <= int(error.headers["Retry-After"]) <= 60
    # A new conversation and a new run in an existing idle one count alike.
    await asyncio.wait_for(orchestrator.wait_idle(), 30)
    again = await refused(ALICE, "k=1", "bench", started[0].conversation_id)
    assert again.code == "rate_limited"


async def test_refused_attempts_do_not_count_toward_the_rate(limits):
    limits.VALUECELL_RUN_RATE = "1/2s"
    await orchestrator.submit(ALICE, "k=1", "bench")
    loop = asyncio.get_running_loop()
    first_refusal = loop.time()
    error = await refused(ALICE, "k=1", "bench")
    assert int(error.headers["Retry-After"]) in (1, 2)
    # Keep knocking: if refusals counted, the window would never clear.
    while True:
        try:
            await orchestrator.submit(ALICE, "k=1", "bench")
            break
        except ServiceError as exc:
            assert exc.code == "rate_limited"
            assert loop.time() - first_refusal < 10, "still refused long after the window"
            await asyncio.sleep(0.1)
    await asyncio.wait_for(orchestrator.wait_idle(), 30)


async def test_an_answer_is_not_a_new_run(limits):
    limits.VALUECELL_RUN_RATE = "1/hour"
    limits.VALUECELL_MAX_RUNS_PER_PRINCIPAL = 1
    question = await orchestrator.submit(ALICE, "What about the market?", "demo")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while (await Conversation.objects.aget(pk=question.conversation_id)).status != ConversationStatus.REQUIRE_USER_INPUT:
        assert loop.time() < deadline
        await asyncio.sleep(0.02)
    answer = await orchestrator.submit(ALICE, "AAPL", "demo", question.conversation_id)
    assert answer.is_answer
    await asyncio.wait_for(orchestrator.wait_idle(), 30)
    assert (await names(question.conversation_id))[-2:] == ["task_completed", "done"]
    assert (await refused(ALICE, "k=1", "bench")).code == "rate_limited"


async def test_anonymous_sessions_are_also_limited_per_address(limits):
    limits.VALUECELL_RUN_RATE = "2/min"
    first, second, third = (Principal(session_key=f"anon-{n}") for n in range(3))
    await orchestrator.submit(first, "k=1", "bench", client=HERE)
    await orchestrator.submit(second, "k=1", "bench", client=HERE)
    error = await refused(third, "k=1", "bench", client=HERE)
    assert error.code == "rate_limited" and "address" in error.message
    # Another address, and a signed-in user at the same address, are not affected.
    await orchestrator.submit(third, "k=1", "bench", client=ipaddress.ip_address("192.0.2.11"))
    carol = await get_user_model().objects.acreate(username="carol")
    await orchestrator.submit(Principal(user_id=carol.pk), "k=1", "bench", client=HERE)
    await asyncio.wait_for(orchestrator.wait_idle(), 30)


async def test_simultaneous_submissions_cannot_both_take_the_last_place(limits):
    limits.VALUECELL_MAX_RUNS_PER_PRINCIPAL = 1
    results = await asyncio.gather(
        *(orchestrator.submit(ALICE, LONG, "bench") for _ in range(4)), return_exceptions=True
    )
    admitted = [r for r in results if not isinstance(r, BaseException)]
    assert len(admitted) == 1
    assert {r.code for r in results if isinstance(r, ServiceError)} == {"too_many_runs"}
    await stop(admitted[0].conversation_id)


async def test_an_overloaded_writer_refuses_new_runs_with_503(limits, monkeypatch):
    limits.VALUECELL_OVERLOAD_BACKLOG = 100
    watch = overload.BacklogWatch()
    monkeypatch.setattr("streaming.runtime.admission.WATCH", watch)
    now = time.monotonic()
    watch.sample(5000, 0, now - 0.5, 100)
    await orchestrator.submit(ALICE, "k=1", "bench")  # above for half a second: not yet overload
    watch.sample(4000, 1000, now - 0.2, 100)
    watch.above_since = now - 1.5
    error = await refused(ALICE, "k=1", "bench")
    assert (error.status, error.code) == (503, "overloaded")
    assert 1 <= int(error.headers["Retry-After"]) <= overload.MAX_RETRY_AFTER
    watch.sample(10, 5000, time.monotonic(), 100)  # caught up: admitted at once
    await orchestrator.submit(ALICE, "k=1", "bench")
    await asyncio.wait_for(orchestrator.wait_idle(), 30)


def test_the_backlog_must_stay_above_the_threshold_for_over_a_second():
    watch = overload.BacklogWatch()
    for step in range(11):  # above from 0.0 s to 1.0 s
        watch.sample(500, step * 100, step * 0.1, 200)
    assert not watch.overloaded(1.0)
    watch.sample(500, 1100, 1.1, 200)
    assert watch.overloaded(1.1)
    assert watch.retry_after(200) == 1  # 300 over the threshold, draining about 1000 events/s
    watch.sample(150, 1200, 1.2, 200)  # one sample below starts over
    assert not watch.overloaded(1.2)
    watch.sample(500, 1200, 1.3, 200)
    assert not watch.overloaded(2.0)
    assert watch.overloaded(2.4)
    stuck = overload.BacklogWatch()
    stuck.sample(5000, 0, 0.0, 200)
    stuck.sample(5000, 0, 1.5, 200)  # nothing stored: the longest wait
    assert stuck.retry_after(200) == overload.MAX_RETRY_AFTER
