"""API tokens: created once (the raw key is shown only then), stored as SHA-256."""

from __future__ import annotations

import hashlib
import secrets

from django.utils import timezone

from .models import ApiToken

PREFIX = "vc_"


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(user, name: str = "") -> tuple[str, ApiToken]:
    raw = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, prefix=raw[:10], key_hash=hash_key(raw))
    return raw, token


async def aauthenticate(raw: str) -> int | None:
    """The user id of an active token, or None."""
    token = await ApiToken.objects.filter(key_hash=hash_key(raw), revoked_at__isnull=True).select_related(
        "user"
    ).afirst()
    if token is None or not token.user.is_active:
        return None
    await ApiToken.objects.filter(pk=token.pk).aupdate(last_used_at=timezone.now())
    return token.user_id
