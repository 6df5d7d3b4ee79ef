"""Idempotency keys: claimed once per principal, recorded with the run they started.

A claim is an INSERT under a unique constraint, so of two requests with the
same key, on any number of workers, exactly one gets to start a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError
from django.utils import timezone

from conversations.models import IdempotencyKey
from conversations.write_lane import on_write_lane
from streaming.errors import ErrorCode, ServiceError

# A claim whose run was never recorded (its worker died in between) is free again after this.
UNRECORDED_GRACE = timedelta(seconds=60)


@dataclass(frozen=True)
class Claim:
    """`fresh`: this request holds the key and starts the run. Otherwise the
    key's earlier run: its conversation and the seq its events come after."""

    fresh: bool
    conversation_id: str | None = None
    after_seq: int = 0


async def claim(principal: str, key: str, fingerprint: str, ttl: timedelta) -> Claim:
    """Claim `key` for a new run, or find the run it already started.

    Raises `idempotency_key_reused` (the key came with another input) and
    `idempotency_key_in_progress` (its first request has not started its run yet).
    """
    for _ in range(3):
        now = timezone.now()
        try:
            await on_write_lane(IdempotencyKey.objects.create)(
                principal=principal, key=key, fingerprint=fingerprint, created_at=now, expires_at=now + ttl
            )
            return Claim(fresh=True)
        except IntegrityError:
            pass
        held = await IdempotencyKey.objects.filter(principal=principal, key=key).afirst()
        if held is None:
            continue  # expired and purged meanwhile: claim again
        abandoned = held.conversation_id is None and held.created_at < now - UNRECORDED_GRACE
        if held.expires_at <= now or abandoned:
            # Only the one that deletes this very row claims it again.
            await on_write_lane(IdempotencyKey.objects.filter(pk=held.pk, created_at=held.created_at).delete)()
            continue
        if held.fingerprint != fingerprint:
            raise ServiceError(
                ErrorCode.IDEMPOTENCY_KEY_REUSED,
                "This Idempotency-Key was already used with a different request; use a new key for a new request.",
            )
        if held.conversation_id is None:
            raise ServiceError(
                ErrorCode.IDEMPOTENCY_KEY_IN_PROGRESS,
                "The first request with this Idempotency-Key is still starting its run; retry in a moment.",
                headers={"Retry-After": "1"},
            )
        return Claim(fresh=False, conversation_id=held.conversation_id, after_seq=held.after_seq)
    raise ServiceError(
        ErrorCode.IDEMPOTENCY_KEY_IN_PROGRESS,
        "This Idempotency-Key is being claimed by another request; retry in a moment.",
        headers={"Retry-After": "1"},
    )


async def record(principal: str, key: str, conversation_id: str, after_seq: int) -> None:
    """The claimed key started this run: repeats stream it from now on."""
    await on_write_lane(IdempotencyKey.objects.filter(principal=principal, key=key).update)(
        conversation_id=conversation_id, after_seq=after_seq
    )


async def release(principal: str, key: str) -> None:
    """The claimed request was refused before starting anything: the key may be used again."""
    await on_write_lane(IdempotencyKey.objects.filter(principal=principal, key=key, conversation__isnull=True).delete)()


async def purge_expired() -> int:
    deleted, _ = await on_write_lane(IdempotencyKey.objects.filter(expires_at__lte=timezone.now()).delete)()
    return deleted
