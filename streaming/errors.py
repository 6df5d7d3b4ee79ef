"""The one error vocabulary: every refusal the service gives, with a stable
code, a message for people, and the HTTP status it stands for.

Anything below the doors raises `ServiceError(code, message)`. Each door
translates it for its wire: `streaming.http.api` answers a JSON body
`{"error": {"code", "message"}}` with the code's status, `streaming.ws` sends
an `error` frame and keeps the socket open. docs/protocol.md lists the codes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import ValidationError


class ErrorCode(StrEnum):
    # The request itself
    INVALID_JSON = "invalid_json"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    INVALID_FIELD = "invalid_field"
    EMPTY_QUERY = "empty_query"
    QUERY_TOO_LARGE = "query_too_large"
    REQUEST_TOO_LARGE = "request_too_large"
    INVALID_RESUME_POINT = "invalid_resume_point"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    NO_NEW_INPUT = "no_new_input"
    NOT_FOUND = "not_found"
    # Who is asking
    INVALID_TOKEN = "invalid_token"
    AUTHENTICATION_REQUIRED = "authentication_required"
    CSRF_FAILED = "csrf_failed"
    CROSS_SITE_REQUEST = "cross_site_request"
    FORBIDDEN = "forbidden"
    # What it asks for
    UNKNOWN_AGENT = "unknown_agent"
    CONVERSATION_NOT_FOUND = "conversation_not_found"
    CONVERSATION_BUSY = "conversation_busy"
    NOT_RUNNING = "not_running"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    IDEMPOTENCY_KEY_IN_PROGRESS = "idempotency_key_in_progress"
    # WebSocket messages
    BINARY_FRAME = "binary_frame"
    FRAME_TOO_LARGE = "frame_too_large"
    UNKNOWN_TYPE = "unknown_type"
    ALREADY_SUBSCRIBED = "already_subscribed"
    NOT_SUBSCRIBED = "not_subscribed"
    TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions"
    UNEXPECTED_PONG = "unexpected_pong"
    DELIVERY_FAILED = "delivery_failed"
    # Admission control (docs/deploy.md): a new run beyond a limit
    TOO_MANY_RUNS = "too_many_runs"
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    # The server
    DATABASE_UNAVAILABLE = "database_unavailable"
    LAYER_UNAVAILABLE = "layer_unavailable"
    INTERNAL_ERROR = "internal_error"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_JSON: 400,
    ErrorCode.MISSING_FIELD: 400,
    ErrorCode.UNKNOWN_FIELD: 400,
    ErrorCode.INVALID_FIELD: 400,
    ErrorCode.EMPTY_QUERY: 400,
    ErrorCode.QUERY_TOO_LARGE: 413,
    ErrorCode.REQUEST_TOO_LARGE: 413,
    ErrorCode.INVALID_RESUME_POINT: 400,
    ErrorCode.INVALID_IDEMPOTENCY_KEY: 400,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.NO_NEW_INPUT: 400,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.INVALID_TOKEN: 401,
    ErrorCode.AUTHENTICATION_REQUIRED: 401,
    ErrorCode.CSRF_FAILED: 403,
    ErrorCode.CROSS_SITE_REQUEST: 403,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.UNKNOWN_AGENT: 404,
    ErrorCode.CONVERSATION_NOT_FOUND: 404,
    ErrorCode.CONVERSATION_BUSY: 409,
    ErrorCode.NOT_RUNNING: 409,
    ErrorCode.IDEMPOTENCY_KEY_REUSED: 422,
    ErrorCode.IDEMPOTENCY_KEY_IN_PROGRESS: 409,
    ErrorCode.BINARY_FRAME: 400,
    ErrorCode.FRAME_TOO_LARGE: 413,
    ErrorCode.UNKNOWN_TYPE: 400,
    ErrorCode.ALREADY_SUBSCRIBED: 409,
    ErrorCode.NOT_SUBSCRIBED: 409,
    ErrorCode.TOO_MANY_SUBSCRIPTIONS: 429,
    ErrorCode.UNEXPECTED_PONG: 400,
    ErrorCode.DELIVERY_FAILED: 500,
    ErrorCode.TOO_MANY_RUNS: 429,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.OVERLOADED: 503,
    ErrorCode.DATABASE_UNAVAILABLE: 503,
    ErrorCode.LAYER_UNAVAILABLE: 503,
    ErrorCode.INTERNAL_ERROR: 500,
}

# How soon a client told `database_unavailable` should try again.
DATABASE_RETRY_AFTER_SECONDS = 5


class ServiceError(Exception):
    """A refusal: `code` (stable, for programs), `message` (for people).

    `headers` are for HTTP (`Allow`, `Retry-After`); `fields` travel with the
    error on every wire (an `error` frame's `request_id` or `last_seq`).
    """

    def __init__(self, code: ErrorCode, message: str, *, headers: dict[str, str] | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.fields = fields

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.code]


def conversation_not_found(conversation_id: str) -> ServiceError:
    """The one answer for a conversation that does not exist or is someone else's."""
    return ServiceError(ErrorCode.CONVERSATION_NOT_FOUND, f"No conversation {conversation_id[:80]!r}.")


def resume_point_beyond(after: int, last_seq: int) -> ServiceError:
    """The one answer, on every transport, for a resume point past the last stored event.

    Events are stored before anyone sees them, so no client can have seen a
    later seq: following from there would silently skip events.
    """
    return ServiceError(
        ErrorCode.INVALID_RESUME_POINT,
        f"The resume point {after} is beyond this conversation's last seq ({last_seq}).",
        last_seq=last_seq,
    )


def database_unavailable() -> ServiceError:
    """The one answer while the database cannot be reached (restarting, say): try again shortly."""
    return ServiceError(
        ErrorCode.DATABASE_UNAVAILABLE,
        "The database is unavailable for a moment; try again shortly.",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


def from_validation_error(exc: ValidationError, where_default: str, **fields: Any) -> ServiceError:
    """A pydantic validation failure as the error of its first problem."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or where_default
    if first["type"] == "extra_forbidden":
        return ServiceError(ErrorCode.UNKNOWN_FIELD, f"Unknown field {where!r}.", **fields)
    if first["type"] == "missing":
        return ServiceError(ErrorCode.MISSING_FIELD, f"Field {where!r} is required.", **fields)
    return ServiceError(ErrorCode.INVALID_FIELD, f"Field {where!r}: {first['msg']}.", **fields)
