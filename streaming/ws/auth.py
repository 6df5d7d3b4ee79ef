"""Who a WebSocket is from, decided once at the handshake: a bearer token
(`Authorization` header or `?token=`), else the session cookie's user, else an
anonymous session (when allowed). Refused handshakes get HTTP 403.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from urllib.parse import parse_qs

from channels.auth import AuthMiddleware
from channels.security.websocket import WebsocketDenier
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.db import InterfaceError, OperationalError

from conversations.ownership import Principal
from conversations.tokens import aauthenticate, bearer_token, hash_key
from streaming.errors import ErrorCode, ServiceError
from streaming.ws.protocol import CLOSE_TRY_AGAIN_LATER

log = logging.getLogger(__name__)

# The handshake's database look-ups get this long: Daphne drops a handshake the
# application has not answered within 5 s (--websocket_connect_timeout), with
# no answer a client could act on. Beyond it the socket closes with 4013.
LOOKUP_SECONDS = 3.0

SOCKET_ONLY_PREFIX = "ws-"
"""Django session keys are lowercase letters and digits: this prefix never names a real session."""


def socket_only_principal() -> Principal:
    """An anonymous socket without a session owns only the conversations it creates."""
    return Principal(session_key=SOCKET_ONLY_PREFIX + secrets.token_hex(16))


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin1")
    return None


def _presented_token(scope) -> tuple[bool, str | None]:
    """(whether a token was presented, the raw token or None when malformed)."""
    header = _header(scope, b"authorization")
    if header is not None:
        return True, bearer_token(header)
    values = parse_qs(scope.get("query_string", b"").decode("latin1"), keep_blank_values=True).get("token")
    if values is not None:
        return True, values[0].strip() or None
    return False, None


async def _deny(scope, receive, send, why: str):
    log.info("refused a WebSocket to %s: %s", scope.get("path", ""), why)
    return await WebsocketDenier()(scope, receive, send)


async def _try_again_later(scope, receive, send):
    """The database is unavailable (or too slow): accept, then close with 4013 (try again later).

    A refused handshake can only be a 403, which says "not allowed" and which
    clients do not retry; a close code can say "come back in a few seconds".
    """
    log.warning("a WebSocket handshake to %s found the database unavailable; closing it (4013)", scope.get("path", ""))
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN_LATER, "reason": "database unavailable"})


class _SessionAuth(AuthMiddleware):
    """Channels' AuthMiddleware, except that a database it cannot reach while loading
    the session's user closes the socket with 4013 instead of failing the handshake."""

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        self.populate_scope(scope)
        try:
            async with asyncio.timeout(LOOKUP_SECONDS):
                await self.resolve_scope(scope)
        except (OperationalError, InterfaceError, TimeoutError):
            return await _try_again_later(scope, receive, send)
        return await self.inner(scope, receive, send)


class _SessionPrincipal:
    """Inside Channels' auth stack: the session's user, or its anonymous visitor."""

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        user = scope["user"]
        if user.is_authenticated:
            principal = Principal(user_id=user.pk)
        elif not settings.VALUECELL_ALLOW_ANONYMOUS:
            return await _deny(scope, receive, send, "authentication required")
        else:
            # `session_key` is None when the cookie named no live session.
            session_key = scope["session"].session_key
            principal = Principal(session_key=session_key) if session_key else socket_only_principal()
        return await self.inner({**scope, "principal": principal}, receive, send)


class WsAuthMiddleware:
    """Puts `scope["principal"]` on every accepted socket, or refuses the handshake."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.session_auth = CookieMiddleware(SessionMiddleware(_SessionAuth(_SessionPrincipal(inner))))

    async def __call__(self, scope, receive, send):
        presented, raw = _presented_token(scope)
        if not presented:
            return await self.session_auth(scope, receive, send)
        try:
            async with asyncio.timeout(LOOKUP_SECONDS):
                user_id = await aauthenticate(raw) if raw else None
        except TimeoutError:
            return await _try_again_later(scope, receive, send)
        except ServiceError as error:
            if error.code != ErrorCode.DATABASE_UNAVAILABLE:
                raise
            return await _try_again_later(scope, receive, send)
        if raw is None or user_id is None:
            return await _deny(scope, receive, send, "invalid or malformed token")
        principal = Principal(user_id=user_id, via_token=True)
        # The consumer re-checks the token while the socket lives (revocation).
        return await self.inner({**scope, "principal": principal, "token_hash": hash_key(raw)}, receive, send)
