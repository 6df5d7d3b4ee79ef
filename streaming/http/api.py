"""The JSON API's plumbing: errors as `{"error": {"code", "message"}}`, method
checks, authentication, CSRF and request-body parsing, in one decorator."""

from __future__ import annotations

import json
from functools import wraps
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ValidationError


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JsonResponse:
    response = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def parse_body(request, model: type[BaseModel]) -> Any:
    """Validate a JSON body against a pydantic model; 4xx with a clear message otherwise."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ApiError(413, "request_too_large", "The request body is too large.") from None
    try:
        data = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        if first["type"] == "extra_forbidden":
            raise ApiError(400, "unknown_field", f"Unknown field {where!r}.") from None
        if first["type"] == "missing":
            raise ApiError(400, "missing_field", f"Field {where!r} is required.") from None
        raise ApiError(400, "invalid_field", f"Field {where!r}: {first['msg']}.") from None


def api_view(*methods: str):
    """An async JSON view: `view(request, principal, **kwargs)`; errors become JSON."""

    def decorate(view):
        @csrf_exempt
        @wraps(view)
        async def wrapper(request, *args, **kwargs):
            from streaming.http.auth import check_csrf, resolve_principal
            from streaming.runtime.orchestrator import OrchestratorError

            try:
                if request.method not in methods:
                    raise ApiError(
                        405,
                        "method_not_allowed",
                        f"{request.method} is not allowed here; use {', '.join(methods)}.",
                        {"Allow": ", ".join(methods)},
                    )
                principal = await resolve_principal(request)
                check_csrf(request, principal)
                return await view(request, principal, *args, **kwargs)
            except ApiError as exc:
                return error_response(exc.status, exc.code, exc.message, exc.headers)
            except OrchestratorError as exc:
                return error_response(exc.status, exc.code, exc.message)

        return wrapper

    return decorate


def not_found(request, exception=None):
    return error_response(404, "not_found", f"No such resource: {request.path}")


def server_error(request):
    return error_response(500, "internal_error", "An internal error occurred.")
