"""Who an HTTP request is from: bearer token, session user, or anonymous session."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError
from django.middleware.csrf import CsrfViewMiddleware, get_token

from conversations.db import database_sync_to_async
from conversations.ownership import Principal
from conversations.token_cache import aauthenticate_cached
from conversations.tokens import bearer_token, hash_key
from streaming.addresses import Address, client_address
from streaming.errors import ErrorCode, ServiceError


def _user_id(request: HttpRequest) -> int | None:
    """The signed-in user's id, or None (loads the session and the user, on the request's thread)."""
    user = request.user
    return user.pk if user.is_authenticated else None


def _save_session(request: HttpRequest) -> None:
    request.session.save()


_auser_id = database_sync_to_async(_user_id)
_asave_session = database_sync_to_async(_save_session)


async def resolve_principal(request: HttpRequest) -> Principal:
    # META, not request.headers: that builds a dict of every header first.
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        raw = bearer_token(header)
        if raw is None:
            raise ServiceError(ErrorCode.INVALID_TOKEN, "Authorization must be 'Bearer <token>'.")
        user_id = await aauthenticate_cached(raw)  # no query while the token is cached
        if user_id is None:
            raise ServiceError(ErrorCode.INVALID_TOKEN, "This API token is unknown or revoked.")
        return Principal(user_id=user_id, via_token=True)
    user_id = await _auser_id(request)
    if user_id is not None:
        return Principal(user_id=user_id)
    if not settings.VALUECELL_ALLOW_ANONYMOUS:
        raise ServiceError(ErrorCode.AUTHENTICATION_REQUIRED, "Sign in or send 'Authorization: Bearer <token>'.")
    return Principal(session_key=request.session.session_key)


def stream_token_hash(request: HttpRequest, principal: Principal) -> str | None:
    """The hash of the API token a request authenticated with: a long stream re-checks it."""
    if not principal.via_token:
        return None
    raw = bearer_token(request.headers.get("Authorization", ""))
    return hash_key(raw) if raw else None


async def ensure_session(request: HttpRequest, principal: Principal) -> Principal:
    """An anonymous visitor about to create something gets a session to own it."""
    if principal.user_id is not None or principal.session_key:
        return principal
    request.session["anonymous"] = True
    await _asave_session(request)
    get_token(request)  # the csrftoken cookie its later unsafe requests will need
    return Principal(session_key=request.session.session_key)


def request_client(request: HttpRequest) -> Address | None:
    """The client's address (a trusted proxy's `X-Forwarded-For`, else the peer)."""
    return client_address(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"))


def check_csrf(request: HttpRequest, principal: Principal) -> None:
    """Cookie-authenticated unsafe requests need the CSRF token; token clients do not."""
    if principal.via_token or request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
        return
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return  # no ambient credential to forge
    middleware = CsrfViewMiddleware(lambda r: None)  # type: ignore[arg-type]
    middleware.process_request(request)
    try:
        failure = middleware.process_view(request, None, (), {})  # type: ignore[arg-type]
    except RequestDataTooBig:
        raise ServiceError(ErrorCode.REQUEST_TOO_LARGE, "The request body is too large.") from None
    except (SuspiciousOperation, MultiPartParserError):
        # A form body it could not read for a `csrfmiddlewaretoken`: this API takes JSON.
        raise ServiceError(ErrorCode.INVALID_JSON, "The request body must be a JSON object.") from None
    if failure is not None:
        raise ServiceError(ErrorCode.CSRF_FAILED, "CSRF token missing or incorrect; send it in the X-CSRFToken header.")
