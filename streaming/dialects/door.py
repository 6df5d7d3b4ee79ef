"""The dialect doors' plumbing: allowed methods, the JSON content type that
guards unsafe requests, who is asking, and refusals in the dialect's words.

Who is asking follows the HTTP door's rules (`streaming.http.auth`: a bearer
token, the session's user, or the anonymous session). Unsafe requests carry
no CSRF token (ValueCell's frontend and `HttpAgent` send none); they must be
`Content-Type: application/json` instead, which a cross-site form cannot send
and a cross-site script can only send after a CORS preflight that is never
granted. The site's middleware (its Origin / Sec-Fetch-Site checks included)
sees every request here, as everywhere.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from conversations.ownership import Principal
from streaming.errors import ErrorCode, ServiceError
from streaming.http.api import allowed_methods, require_method, without_body
from streaming.http.auth import resolve_principal

SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")
JSON = "application/json"

View = Callable[..., Coroutine[Any, Any, HttpResponseBase]]
Refusal = Callable[[ServiceError], HttpResponseBase]


def require_json(request: HttpRequest) -> None:
    if request.method not in SAFE_METHODS and request.content_type != JSON:
        raise ServiceError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, f"Send this request with 'Content-Type: {JSON}'.")


def dialect_view(*methods: str, refusal: Refusal, identify: bool = True) -> Callable[[View], View]:
    """An async view `view(request, principal, **kwargs)`; a `ServiceError` becomes `refusal(error)`.

    `identify=False`: a public view, given a principal that owns nothing.
    Where GET is allowed HEAD is too: the view runs as for GET, its body is
    dropped (a stream is never started).
    """
    allowed = allowed_methods(methods)

    def decorate(view: View) -> View:
        # CSRF tokens give way to the JSON content type (see the module's docstring).
        @csrf_exempt
        @functools.wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            try:
                require_method(request, allowed)
                require_json(request)
                principal = await resolve_principal(request) if identify else Principal()
                response = await view(request, principal, *args, **kwargs)
            except ServiceError as exc:
                response = refusal(exc)
            return without_body(response) if request.method == "HEAD" else response

        return wrapper

    return decorate
