"""Idempotency keys in the record layer: one claim per key, expiry, abandoned claims."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations import idempotency
from conversations.models import Conversation, IdempotencyKey
from streaming.errors import ServiceError

pytestmark = pytest.mark.django_db(transaction=True)

DAY = timedelta(days=1)


async def test_of_many_concurrent_claims_of_one_key_exactly_one_is_fresh():
    outcomes = await asyncio.gather(
        *(idempotency.claim("user:1", "k", "f", DAY) for _ in range(10)), return_exceptions=True
    )
    fresh = [o for o in outcomes if isinstance(o, idempotency.Claim) and o.fresh]
    waiting = [o for o in outcomes if isinstance(o, ServiceError)]
    assert len(fresh) == 1 and len(waiting) == 9
    assert {e.code for e in waiting} == {"idempotency_key_in_progress"}
    assert all(e.headers == {"Retry-After": "1"} for e in waiting)


async def test_a_recorded_key_returns_its_run_and_refuses_another_input():
    await Conversation.objects.acreate(id="conv-1")
    assert (await idempotency.claim("user:1", "k", "f", DAY)).fresh
    await idempotency.record("user:1", "k", "conv-1", 7)
    assert await idempotency.claim("user:1", "k", "f", DAY) == idempotency.Claim(False, "conv-1", 7)
    with pytest.raises(ServiceError) as reused:
        await idempotency.claim("user:1", "k", "other", DAY)
    assert (reused.value.status, reused.value.code) == (422, "idempotency_key_reused")
    assert (await idempotency.claim("session:abc", "k", "other", DAY)).fresh  # another principal's key


async def test_an_expired_key_is_claimed_afresh_and_purged():
    await Conversation.objects.acreate(id="conv-1")
    assert (await idempotency.claim("user:1", "old", "f", timedelta(seconds=-1))).fresh
    await idempotency.record("user:1", "old", "conv-1", 0)
    assert (await idempotency.claim("user:1", "old", "g", DAY)).fresh  # expired: forgotten
    assert (await idempotency.claim("user:1", "gone", "f", timedelta(seconds=-1))).fresh
    assert await idempotency.purge_expired() == 1
    assert [k async for k in IdempotencyKey.objects.values_list("key", flat=True)] == ["old"]


async def test_a_claim_whose_run_was_never_recorded_is_free_after_a_grace_period():
    assert (await idempotency.claim("user:1", "k", "f", DAY)).fresh
    with pytest.raises(ServiceError):
        await idempotency.claim("user:1", "k", "f", DAY)
    stale = timezone.now() - idempotency.UNRECORDED_GRACE - timedelta(seconds=1)
    await IdempotencyKey.objects.filter(key="k").aupdate(created_at=stale)
    assert (await idempotency.claim("user:1", "k", "f", DAY)).fresh  # its worker died before recording


async def test_release_frees_only_an_unrecorded_claim():
    await Conversation.objects.acreate(id="conv-1")
    assert (await idempotency.claim("user:1", "a", "f", DAY)).fresh
    await idempotency.release("user:1", "a")
    assert (await idempotency.claim("user:1", "a", "g", DAY)).fresh
    await idempotency.record("user:1", "a", "conv-1", 0)
    await idempotency.release("user:1", "a")
    assert not (await idempotency.claim("user:1", "a", "g", DAY)).fresh
