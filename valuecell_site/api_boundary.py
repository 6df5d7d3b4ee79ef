"""Where the API lives (its path prefixes) and what every request there gets,
whichever door serves it: no unsafe request from another site, JSON errors.

Unknown paths, CSRF failures and unhandled exceptions under the API prefixes
answer `{"error": {"code", "message"}}` whatever DEBUG is; pages keep Django's.
"""

from __future__ import annotations

import logging
import secrets
from urllib.parse import urlsplit

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import BadRequest, DisallowedHost, PermissionDenied, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponseBase
from django.http.multipartparser import MultiPartParserError
from django.utils.http import is_same_domain
from django.views import csrf

from streaming.errors import ErrorCode, ServiceError, database_unavailable
from streaming.http.api import error_response

log = logging.getLogger(__name__)

# The first path segment of every API door: the JSON/SSE API, ValueCell's own
# frontend's API and AG-UI.
API_ROOTS = frozenset({"agents", "conversations", "api", "ag-ui"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Exceptions Django itself answers with a 4xx: not server errors.
DJANGO_ANSWERS = (Http404, PermissionDenied, BadRequest, SuspiciousOperation, MultiPartParserError)


def is_api_path(path: str) -> bool:
    return path.lstrip("/").split("/", 1)[0] in API_ROOTS


def _is_json(response: HttpResponseBase) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


# --- cross-site requests ------------------------------------------------------------
def _own_origin(request: HttpRequest) -> str | None:
    try:
        return f"{request.scheme}://{request.get_host()}"
    except DisallowedHost:
        return None


def _trusted_origin(origin: str) -> bool:
    """`CSRF_TRUSTED_ORIGINS` (`https://*.example.com` covers its subdomains), or a
    host named in `ALLOWED_HOSTS` as WebSocket handshakes accept. A bare `*` there
    accepts any Host header; it does not make every site trusted."""
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    parsed = urlsplit(origin)
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        pattern = urlsplit(trusted)
        if "*" in trusted and pattern.scheme == parsed.scheme and is_same_domain(parsed.netloc, pattern.netloc[1:]):
            return True
    host = parsed.hostname
    if not host or parsed.scheme not in ("http", "https"):
        return False
    return any(pattern != "*" and is_same_domain(host, pattern) for pattern in settings.ALLOWED_HOSTS)


def cross_site_refusal(request: HttpRequest) -> str | None:
    """Why an unsafe API request is refused as cross-site, or None.

    Browsers say where a request comes from (`Origin`, `Sec-Fetch-Site`);
    programs such as curl send neither and pass (they carry no ambient cookie).
    """
    if request.method in SAFE_METHODS or not is_api_path(request.path_info):
        return None
    if request.headers.get("Sec-Fetch-Site", "").strip().lower() == "cross-site":
        return "Sec-Fetch-Site says this request comes from another site"
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    origin = origin.strip()
    if origin == _own_origin(request) or _trusted_origin(origin):
        return None
    return f"its Origin {origin[:100]!r} is not this site nor a trusted origin"


class CrossSiteRequestMiddleware:
    """Refuse (403 JSON) unsafe API requests from other sites, before a session exists.

    CSRF tokens protect a session's requests; an anonymous visitor has no
    session yet, and a forged first request would plant one (with a
    conversation) in the victim's browser.
    """

    sync_capable = False
    async_capable = True

    def __init__(self, get_response) -> None:
        if not iscoroutinefunction(get_response):
            raise TypeError("CrossSiteRequestMiddleware needs an async middleware chain")
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        why = cross_site_refusal(request)
        if why is not None:
            log.info("refused a cross-site %s %s: %s", request.method, request.path, why)
            return error_response(
                ServiceError(ErrorCode.CROSS_SITE_REQUEST, f"Refused: {why}. Send it from this site's own pages.")
            )
        return await self.get_response(request)


# --- JSON errors --------------------------------------------------------------------
class ApiErrorsMiddleware:
    """Under the API prefixes: an unknown path is a JSON 404 (with DEBUG on
    Django would show its HTML page), an unhandled exception a JSON 500 whose
    message names the log line (`ref`) that holds the details."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response) -> None:
        if not iscoroutinefunction(get_response):
            raise TypeError("ApiErrorsMiddleware needs an async middleware chain")
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = await self.get_response(request)
        if response.status_code == 404 and not _is_json(response) and is_api_path(request.path_info):
            return error_response(ServiceError(ErrorCode.NOT_FOUND, f"No such resource: {request.path[:200]}"))
        return response

    async def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponseBase | None:
        if not is_api_path(request.path_info) or isinstance(exception, DJANGO_ANSWERS):
            return None  # Django's own handling (its status; a 404 comes back here as JSON)
        if isinstance(exception, OperationalError | InterfaceError):
            log.warning(
                "%s %s: the database is unavailable (%s)", request.method, request.path, type(exception).__name__
            )
            return error_response(database_unavailable())  # a 503 to retry, not a bug
        ref = secrets.token_hex(4)
        log.error("%s %s failed (ref %s)", request.method, request.path, ref, exc_info=exception)
        return error_response(
            ServiceError(ErrorCode.INTERNAL_ERROR, f"An internal error occurred (ref {ref}).", ref=ref)
        )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponseBase:
    """`CSRF_FAILURE_VIEW`: JSON `csrf_failed` under the API prefixes, Django's page elsewhere."""
    if not is_api_path(request.path_info):
        return csrf.csrf_failure(request, reason)
    return error_response(
        ServiceError(ErrorCode.CSRF_FAILED, "CSRF token missing or incorrect; send it in the X-CSRFToken header.")
    )
