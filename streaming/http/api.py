"""The JSON API's plumbing: `ServiceError` as `{"error": {"code", "message"}}`
with its HTTP status, method checks, authentication, CSRF and request-body
parsing, in one decorator."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any, TypeVar

from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ValidationError

from conversations.ownership import Principal
from streaming.errors import ErrorCode, ServiceError, database_unavailable, from_validation_error
from streaming.http.auth import check_csrf, resolve_principal

M = TypeVar("M", bound=BaseModel)
View = Callable[..., Coroutine[Any, Any, HttpResponseBase]]


def error_response(error: ServiceError) -> JsonResponse:
    body = {"error": {"code": str(error.code), "message": error.message, **error.fields}}
    response = JsonResponse(body, status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def parse_body(request: HttpRequest, model: type[M]) -> M:
    """Validate a JSON body against a pydantic model; 4xx with a clear message otherwise."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ServiceError(ErrorCode.REQUEST_TOO_LARGE, "The request body is too large.") from None
    try:
        data = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested ~1,000 deep
        raise ServiceError(ErrorCode.INVALID_JSON, "The request body must be a JSON object.") from None
    if not isinstance(data, dict):
        raise ServiceError(ErrorCode.INVALID_JSON, "The request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(exc, "body") from None


def without_body(response: HttpResponseBase) -> HttpResponseBase:
    """The answer to HEAD: GET's status and headers, no body (a stream is never started)."""
    if isinstance(response, HttpResponse):
        if not response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))
        response.content = b""
        return response
    head = HttpResponse(status=response.status_code)
    for name, value in response.items():
        head[name] = value
    response.close()
    return head


def allowed_methods(methods: tuple[str, ...]) -> tuple[str, ...]:
    """The methods a view answers: where GET is allowed, HEAD is too (see `without_body`)."""
    return (*methods, "HEAD") if "GET" in methods and "HEAD" not in methods else methods


def require_method(request: HttpRequest, allowed: tuple[str, ...]) -> None:
    """405 `method_not_allowed`, with the `Allow` header, for any other method."""
    if request.method not in allowed:
        raise ServiceError(
            ErrorCode.METHOD_NOT_ALLOWED,
            f"{request.method} is not allowed here; use {', '.join(allowed)}.",
            headers={"Allow": ", ".join(allowed)},
        )


def api_view(*methods: str) -> Callable[[View], View]:
    """An async JSON view: `view(request, principal, **kwargs)`; errors become JSON.

    Where GET is allowed HEAD is too: the view runs as for GET, its body is dropped.
    """
    allowed = allowed_methods(methods)

    def decorate(view: View) -> View:
        @csrf_exempt
        @wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            try:
                require_method(request, allowed)
                principal: Principal = await resolve_principal(request)
                check_csrf(request, principal)
                response = await view(request, principal, *args, **kwargs)
            except ServiceError as exc:
                response = error_response(exc)
            return without_body(response) if request.method == "HEAD" else response

        return wrapper

    return decorate


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(ServiceError(ErrorCode.NOT_FOUND, f"No such resource: {request.path}"))


def server_error(request: HttpRequest) -> JsonResponse:
    # Django calls this while handling the exception. Outside the API's views (the
    # admin, a session saved after a view) a database that cannot be reached is
    # still a 503 to retry, not a 500.
    if isinstance(sys.exc_info()[1], (OperationalError, InterfaceError)):
        return error_response(database_unavailable())
    return error_response(ServiceError(ErrorCode.INTERNAL_ERROR, "An internal error occurred."))
