"""Who a socket is from: bearer token (header or `?token=`), session cookie,
anonymous session or a socket-only identity; refused handshakes; origins."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone

from conversations.models import ApiToken, Conversation
from conversations.tokens import create_token
from streaming.runtime.orchestrator import orchestrator
from tests.streaming.test_consumer import PATH, WS_APP, Socket, alice, settle  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def cookie(session_key: str) -> tuple[bytes, bytes]:
    return (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={session_key}".encode())


async def refused(headers=None, path: str = PATH) -> bool:
    communicator = WebsocketCommunicator(WS_APP, path, headers=headers or [])
    connected, _ = await communicator.connect(timeout=5)
    await communicator.disconnect(timeout=5)
    return not connected


async def create_conversation(ws: Socket) -> Conversation:
    await ws.send(type="query", query="k=1 delay_ms=0", agent_name="bench")
    accepted = await ws.recv()
    assert accepted["type"] == "accepted", accepted
    await ws.events_until_done()
    await orchestrator.wait_idle()
    return await Conversation.objects.aget(pk=accepted["conversation_id"])


@pytest.fixture
def anonymous_session():
    session = SessionStore()
    session["anonymous"] = True
    session.create()
    return session.session_key


@pytest.fixture
def login_session(django_user_model):
    user = django_user_model.objects.create_user("carol", password="pw-carol-123")
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return user, session.session_key


async def test_bearer_token_in_the_authorization_header(alice):
    user, headers = alice
    async with Socket(headers) as ws:
        conversation = await create_conversation(ws)
    assert conversation.owner_id == user.pk


async def test_bearer_token_in_the_query_string(alice, django_user_model):
    user = await django_user_model.objects.aget(username="alice")
    raw, _ = await sync_to_async(create_token)(user)
    async with Socket(path=f"{PATH}?token={raw}") as ws:
        conversation = await create_conversation(ws)
    assert conversation.owner_id == user.pk


async def test_bad_tokens_are_refused_at_the_handshake(alice):
    user, headers = alice
    raw = headers[0][1].decode().split(" ", 1)[1]
    assert await refused([(b"authorization", b"Bearer vc_not-a-real-token")])
    assert await refused([(b"authorization", f"Basic {raw}".encode())])
    assert await refused(path=f"{PATH}?token=")
    assert await refused(path=f"{PATH}?token=vc_wrong")
    await ApiToken.objects.filter(user=user).aupdate(revoked_at=timezone.now())
    assert await refused(headers)


async def test_a_logged_in_session_cookie_is_its_user(login_session):
    user, session_key = login_session
    async with Socket([cookie(session_key)]) as ws:
        conversation = await create_conversation(ws)
    assert conversation.owner_id == user.pk


async def test_an_anonymous_session_owns_what_its_sockets_create(anonymous_session):
    async with Socket([cookie(anonymous_session)]) as ws:
        conversation = await create_conversation(ws)
    assert (conversation.owner_id, conversation.session_key) == (None, anonymous_session)
    async with Socket([cookie(anonymous_session)]) as again:
        await again.send(type="subscribe", conversation_id=conversation.id)
        assert (await again.recv())["type"] == "subscribed"


async def test_a_socket_without_a_session_owns_only_what_it_creates(anonymous_session):
    async with Socket() as first:
        conversation = await create_conversation(first)
        assert conversation.owner_id is None and conversation.session_key.startswith("ws-")
        await first.send(type="subscribe", conversation_id=conversation.id)
        assert (await first.recv())["type"] == "subscribed"
        for headers in ([], [cookie(anonymous_session)], [cookie("bogus-session-key")]):
            async with Socket(headers) as other:
                await other.send(type="subscribe", conversation_id=conversation.id)
                assert (await other.recv())["code"] == "conversation_not_found"


async def test_anonymous_sockets_are_refused_when_anonymous_use_is_off(alice, anonymous_session, settings):
    settings.VALUECELL_ALLOW_ANONYMOUS = False
    assert await refused()
    assert await refused([cookie(anonymous_session)])
    async with Socket(alice[1]) as ws:
        await ws.send(type="ping")
        assert await ws.recv() == {"type": "pong"}


async def test_browsers_must_come_from_an_allowed_host(alice):
    token = alice[1][0]
    assert await refused([token, (b"origin", b"http://evil.example")])
    async with Socket([token, (b"origin", b"http://127.0.0.1:8000")]) as ws:
        await ws.send(type="ping")
        assert await ws.recv() == {"type": "pong"}


async def test_programs_without_an_origin_still_have_to_authenticate(settings):
    settings.VALUECELL_ALLOW_ANONYMOUS = False
    assert await refused([])


async def test_a_socket_closes_once_its_token_is_revoked(alice, django_user_model, settings):
    settings.VALUECELL_WS_REAUTH_SECONDS = 0.05
    user = await django_user_model.objects.aget(username="alice")
    raw, token = await sync_to_async(create_token)(user)
    async with Socket(path=f"{PATH}?token={raw}") as ws, Socket(alice[1]) as other:
        await create_conversation(ws)  # works while the token is valid
        await ApiToken.objects.filter(pk=token.pk).aupdate(revoked_at=timezone.now())
        closed = await ws.comm.receive_output(5)
        while closed["type"] == "websocket.send":  # a ping may come first
            closed = await ws.comm.receive_output(5)
        assert closed == {"type": "websocket.close", "code": 4003}
        await create_conversation(other)  # another token's socket is untouched
