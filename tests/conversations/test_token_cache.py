"""A bearer token is looked up once per VALUECELL_TOKEN_CACHE_SECONDS per worker, and a
revocation (or a deactivated user) is refused at once on the worker where it happened."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse
from django.utils import timezone

from conversations import token_cache
from conversations.models import ApiToken
from conversations.tokens import create_token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def lookups(monkeypatch):
    """Counts the database look-ups behind the cache."""
    token_cache.forget_all()
    calls: list[str] = []
    real = token_cache.aauthenticate

    async def counted(raw: str):
        calls.append(raw)
        return await real(raw)

    monkeypatch.setattr(token_cache, "aauthenticate", counted)
    yield calls
    token_cache.forget_all()


@pytest.fixture
def alice_token(django_user_model):
    user = django_user_model.objects.create_user("alice")
    raw, token = create_token(user)
    return user, raw, token


async def test_a_valid_token_is_looked_up_once_while_cached(lookups, alice_token, settings):
    user, raw, _ = alice_token
    for _ in range(3):
        assert await token_cache.aauthenticate_cached(raw) == user.pk
    assert len(lookups) == 1
    settings.VALUECELL_TOKEN_CACHE_SECONDS = 0  # off: every request looks
    assert await token_cache.aauthenticate_cached(raw) == user.pk
    assert await token_cache.aauthenticate_cached(raw) == user.pk
    assert len(lookups) == 3


async def test_unknown_tokens_are_never_cached(lookups):
    assert await token_cache.aauthenticate_cached("vc_nope") is None
    assert await token_cache.aauthenticate_cached("vc_nope") is None
    assert len(lookups) == 2


async def test_an_expired_entry_is_looked_up_again(lookups, alice_token, settings):
    user, raw, _ = alice_token
    settings.VALUECELL_TOKEN_CACHE_SECONDS = 0.01
    assert await token_cache.aauthenticate_cached(raw) == user.pk
    key = token_cache.hash_key(raw)
    token_cache._valid[key] = (user.pk, 0.0)  # as if its time had passed
    assert await token_cache.aauthenticate_cached(raw) == user.pk
    assert len(lookups) == 2


async def test_revoking_a_token_or_deactivating_its_user_takes_effect_at_once(lookups, alice_token):
    user, raw, token = alice_token
    assert await token_cache.aauthenticate_cached(raw) == user.pk
    token.revoked_at = timezone.now()
    await token.asave()
    assert await token_cache.aauthenticate_cached(raw) is None

    other_raw, _ = await sync_to_async(create_token)(user)
    assert await token_cache.aauthenticate_cached(other_raw) == user.pk
    user.is_active = False
    await user.asave()
    assert await token_cache.aauthenticate_cached(other_raw) is None


def test_the_admins_revoke_action_empties_the_cache(admin_client, alice_token, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user, raw, token = alice_token
    token_cache._valid[token_cache.hash_key(raw)] = (user.pk, float("inf"))
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())  # update(): no signal
    assert token_cache._valid
    admin_client.post(
        reverse("admin:conversations_apitoken_changelist"), {"action": "revoke", "_selected_action": [token.pk]}
    )
    assert not token_cache._valid


async def test_a_burst_of_requests_with_an_uncached_token_makes_one_look_up(lookups, alice_token):
    user, raw, _ = alice_token
    results = await asyncio.gather(*(token_cache.aauthenticate_cached(raw) for _ in range(20)))
    assert results == [user.pk] * 20
    assert len(lookups) == 1
