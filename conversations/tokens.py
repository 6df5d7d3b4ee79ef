"""API tokens: created once (the raw key is shown only then), stored as SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from conversations.db import database_sync_to_async
from conversations.models import ApiToken

PREFIX = "vc_"
# `last_used_at` is refreshed at most this often: not one database write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None when malformed."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(user, name: str = "") -> tuple[str, ApiToken]:
    raw = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, prefix=raw[:10], key_hash=hash_key(raw))
    return raw, token


def authenticate(raw: str) -> int | None:
    """The user id of an active token, or None."""
    token = ApiToken.objects.filter(key_hash=hash_key(raw), revoked_at__isnull=True).select_related("user").first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION), pk=token.pk
        ).update(last_used_at=now)
    return token.user_id


def is_active(key_hash: str) -> bool:
    """Whether the token with this hash is still valid (not revoked, its user active)."""
    return ApiToken.objects.filter(key_hash=key_hash, revoked_at__isnull=True, user__is_active=True).exists()


# Not on the thread runs and the event writer share (thread-sensitive calls
# outside a request): a handshake must not wait behind their writes.
aauthenticate = database_sync_to_async(authenticate, thread_sensitive=False)
ais_active = database_sync_to_async(is_active, thread_sensitive=False)
