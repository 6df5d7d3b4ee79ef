"""The WebSocket protocol's vocabulary: client messages (parsed and validated
in one place), server control frames and close codes. See docs/protocol.md.

Event frames are not built here: they are the stored envelope JSON, sent as-is.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, TypeAdapter, ValidationError

from streaming.errors import ErrorCode, ServiceError, from_validation_error
from streaming.text import is_storable

# --- close codes ---------------------------------------------------------------
CLOSE_PING_TIMEOUT = 4001
"""A server ping went unanswered: the client is gone or not reading. Resume from your last seq."""
CLOSE_SLOW_CLIENT = 4008
"""Too many frames waited for this socket. Resume from your last seq."""
CLOSE_REVOKED = 4003
"""The socket's API token was revoked (or its user deactivated) since the handshake."""
CLOSE_SERVER_ERROR = 1011
"""The server failed this socket. Resume from your last seq."""
CLOSE_TRY_AGAIN_LATER = 4013
"""The handshake found the database unavailable (restarting, say): reconnect in a few seconds.
(WebSocket's own 1013 is not one an application may send: autobahn allows 1000 and 3000-4999.)"""

MAX_SEQ = 10**18
RequestId = StrictStr | StrictInt


# --- client messages -----------------------------------------------------------
class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: Annotated[StrictStr, Field(max_length=128)] | StrictInt | None = None


class QueryMessage(_Message):
    """Starts a run exactly as `POST /agents/stream` does (same fields, same limits)."""

    type: Literal["query"]
    query: StrictStr
    agent_name: Annotated[StrictStr, Field(max_length=100)] | None = None
    conversation_id: Annotated[StrictStr, Field(max_length=64)] | None = None


class SubscribeMessage(_Message):
    type: Literal["subscribe"]
    conversation_id: Annotated[StrictStr, Field(max_length=64)]
    after: Annotated[StrictInt, Field(ge=0, le=MAX_SEQ)] = 0


class UnsubscribeMessage(_Message):
    type: Literal["unsubscribe"]
    conversation_id: Annotated[StrictStr, Field(max_length=64)]


class CancelMessage(_Message):
    type: Literal["cancel"]
    conversation_id: Annotated[StrictStr, Field(max_length=64)]


class PingMessage(_Message):
    type: Literal["ping"]


class PongMessage(_Message):
    """The answer to a server ping; `id` echoes the ping's."""

    type: Literal["pong"]
    id: Annotated[StrictStr, Field(max_length=64)]


Message = QueryMessage | SubscribeMessage | UnsubscribeMessage | CancelMessage | PingMessage | PongMessage
_MODELS: dict[str, type[_Message]] = {
    "query": QueryMessage,
    "subscribe": SubscribeMessage,
    "unsubscribe": UnsubscribeMessage,
    "cancel": CancelMessage,
    "ping": PingMessage,
    "pong": PongMessage,
}
_request_id: TypeAdapter[RequestId | None] = TypeAdapter(
    Annotated[StrictStr, Field(max_length=128)] | StrictInt | None  # as `_Message.request_id`
)


def _echoable_request_id(data: dict[str, Any]) -> RequestId | None:
    try:
        return _request_id.validate_python(data.get("request_id"))
    except ValidationError:
        return None


def parse_message(text: str | None, data: bytes | None, max_bytes: int) -> Message:
    """One client frame as a typed message, or `ServiceError` (its `request_id` field
    echoes the frame's when it could be read)."""
    if text is None:
        raise ServiceError(ErrorCode.BINARY_FRAME, "Send JSON messages as text frames.")
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ServiceError(ErrorCode.FRAME_TOO_LARGE, f"A message may be at most {max_bytes} bytes.")
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested ~1,000 deep
        raise ServiceError(ErrorCode.INVALID_JSON, "A message must be a JSON object.") from None
    if not isinstance(raw, dict):
        raise ServiceError(ErrorCode.INVALID_JSON, "A message must be a JSON object.")
    request_id = _echoable_request_id(raw)
    kind = raw.get("type")
    if kind is None:
        raise ServiceError(ErrorCode.MISSING_FIELD, "Field 'type' is required.", request_id=request_id)
    model = _MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(_MODELS)
        raise ServiceError(
            ErrorCode.UNKNOWN_TYPE,
            f"Unknown message type {str(kind)[:40]!r}; use one of {known}.",
            request_id=request_id,
        )
    try:
        message: Message = model.model_validate(raw)  # type: ignore[assignment]  # one of Message's members
        return message
    except ValidationError as exc:
        raise from_validation_error(exc, "message", request_id=request_id) from None


# --- server control frames -------------------------------------------------------
def control_frame(kind: str, request_id: RequestId | None = None, **fields: Any) -> str:
    """A control frame: `{"type": kind, ...fields, "request_id"?}` as compact JSON."""
    body: dict[str, Any] = {"type": kind, **fields}
    if request_id is not None:
        body["request_id"] = request_id
    frame = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    if not frame.isascii() and not is_storable(frame):
        # An echoed request_id with an unpaired surrogate: UTF-8 cannot carry it
        # raw, JSON can as an escape.
        frame = json.dumps(body, separators=(",", ":"))
    return frame


def error_frame(error: ServiceError, request_id: RequestId | None = None) -> str:
    """An `error` frame for a refusal; the error's own `request_id` field, if any, wins."""
    fields = dict(error.fields)
    echoed = fields.pop("request_id", None)
    return control_frame(
        "error", echoed if echoed is not None else request_id, code=str(error.code), message=error.message, **fields
    )
