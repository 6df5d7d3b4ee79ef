"""Submitting an input at most once per `Idempotency-Key`, whichever door it came through.

The first request with a key claims it and starts the run; a repeat from the
same principal with the same input starts nothing and gets that run back.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings

from conversations import idempotency
from conversations.ownership import Principal
from streaming.errors import ServiceError
from streaming.runtime.orchestrator import Submission

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Once:
    submission: Submission
    replayed: bool  # True: an earlier request with this key started the run


def fingerprint(*parts: object) -> str:
    """What identifies the input a key was sent with (a repeat must match it)."""
    return hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()


async def submit_once(
    principal: Principal, key: str, input_fingerprint: str, submit: Callable[[], Awaitable[Submission]]
) -> Once:
    ttl = timedelta(seconds=settings.VALUECELL_IDEMPOTENCY_TTL_SECONDS)
    claim = await idempotency.claim(principal.key(), key, input_fingerprint, ttl)
    if not claim.fresh:
        assert claim.conversation_id is not None
        return Once(Submission(claim.conversation_id, claim.after_seq, is_answer=False), replayed=True)
    try:
        submission = await submit()
    except ServiceError:
        # Refused before anything started (busy, unknown agent…): a retry may succeed.
        await idempotency.release(principal.key(), key)
        raise
    await idempotency.record(principal.key(), key, submission.conversation_id, submission.after_seq)
    return Once(submission, replayed=False)


async def purge_expired_keys() -> None:
    """Forget keys older than VALUECELL_IDEMPOTENCY_TTL_SECONDS, once an hour."""
    while True:
        try:
            deleted = await idempotency.purge_expired()
            if deleted:
                log.info("forgot %d expired idempotency keys", deleted)
        except Exception:
            log.warning("purging expired idempotency keys failed; trying again later", exc_info=True)
        await asyncio.sleep(3600)
