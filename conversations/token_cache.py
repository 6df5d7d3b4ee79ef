"""API tokens resolved without a database hit on every request: a short-lived cache.

An HTTP request with a bearer token used to cost a query (and the request a
thread of its own to run it on). Here a valid token's user id is kept for
`VALUECELL_TOKEN_CACHE_SECONDS`. Revoking a token or deactivating a user
empties this process's cache at once (model signals; the admin's revoke action
calls `forget_all`); other workers stop accepting it within that many seconds.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db.models.signals import post_delete, post_save

from conversations.models import ApiToken
from conversations.tokens import aauthenticate, hash_key

MAX_ENTRIES = 10_000

_valid: dict[str, tuple[int, float]] = {}  # key hash -> (user id, monotonic expiry)


async def aauthenticate_cached(raw: str) -> int | None:
    """The user id of an active token, or None; from the cache when it knows it."""
    key = hash_key(raw)
    ttl = settings.VALUECELL_TOKEN_CACHE_SECONDS
    entry = _valid.get(key)
    now = time.monotonic()
    if entry is not None and entry[1] > now and ttl > 0:
        return entry[0]
    user_id = await aauthenticate(raw)
    if user_id is not None and ttl > 0:
        if len(_valid) >= MAX_ENTRIES:
            _valid.clear()  # bounded; a full cache only costs queries again
        _valid[key] = (user_id, now + ttl)
    else:
        _valid.pop(key, None)
    return user_id


def forget_all(**kwargs: object) -> None:
    """Forget every cached token (a token or a user changed); also a signal receiver."""
    _valid.clear()


post_save.connect(forget_all, sender=ApiToken, dispatch_uid="token-cache-token-saved")
post_delete.connect(forget_all, sender=ApiToken, dispatch_uid="token-cache-token-deleted")
post_save.connect(forget_all, sender=settings.AUTH_USER_MODEL, dispatch_uid="token-cache-user-saved")
post_delete.connect(forget_all, sender=settings.AUTH_USER_MODEL, dispatch_uid="token-cache-user-deleted")
