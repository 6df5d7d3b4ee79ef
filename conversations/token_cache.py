"""API tokens resolved without a database hit on every request: a short-lived cache.

An HTTP request with a bearer token used to cost a query (and the request a
thread of its own to run it on). Here a valid token's user id is kept for
`VALUECELL_TOKEN_CACHE_SECONDS`. Revoking a token or deactivating a user
empties this process's cache at once (model signals; the admin's revoke action
calls `forget_all`); other workers stop accepting it within that many seconds.
"""

from __future__ import annotations

import asyncio
import time

from django.conf import settings
from django.db.models.signals import post_delete, post_save

from conversations.models import ApiToken
from conversations.tokens import aauthenticate, hash_key

MAX_ENTRIES = 10_000

_valid: dict[str, tuple[int, float]] = {}  # key hash -> (user id, monotonic expiry)
_looking: dict[str, asyncio.Future[int | None]] = {}  # key hash -> the look-up in progress


async def aauthenticate_cached(raw: str) -> int | None:
    """The user id of an active token, or None; from the cache when it knows it."""
    key = hash_key(raw)
    ttl = settings.VALUECELL_TOKEN_CACHE_SECONDS
    entry = _valid.get(key)
    if entry is not None and entry[1] > time.monotonic() and ttl > 0:
        return entry[0]
    # One look-up per token at a time: a burst of requests with a token not
    # (or no longer) cached waits for the first one's instead of each starting
    # a query, and a thread of its own for it.
    pending = _looking.get(key)
    if pending is not None and pending.get_loop() is asyncio.get_running_loop():
        return await asyncio.shield(pending)
    looking = _looking[key] = asyncio.get_running_loop().create_future()
    try:
        user_id = await aauthenticate(raw)
    except BaseException as exc:
        looking.set_exception(exc)
        looking.exception()  # retrieved: those waiting get it, nobody else need
        raise
    finally:
        if _looking.get(key) is looking:
            del _looking[key]
    looking.set_result(user_id)
    if user_id is not None and ttl > 0:
        if len(_valid) >= MAX_ENTRIES:
            _valid.clear()  # bounded; a full cache only costs queries again
        _valid[key] = (user_id, time.monotonic() + ttl)
    else:
        _valid.pop(key, None)
    return user_id


def forget(key_hash: str) -> None:
    """Forget one token: a stream that found it revoked tells the requests that follow."""
    _valid.pop(key_hash, None)


def forget_all(**kwargs: object) -> None:
    """Forget every cached token (a token or a user changed); also a signal receiver."""
    _valid.clear()


post_save.connect(forget_all, sender=ApiToken, dispatch_uid="token-cache-token-saved")
post_delete.connect(forget_all, sender=ApiToken, dispatch_uid="token-cache-token-deleted")
post_save.connect(forget_all, sender=settings.AUTH_USER_MODEL, dispatch_uid="token-cache-user-saved")
post_delete.connect(forget_all, sender=settings.AUTH_USER_MODEL, dispatch_uid="token-cache-user-deleted")
