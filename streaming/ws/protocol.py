"""The WebSocket protocol's vocabulary: client messages (parsed and validated
in one place), server control frames and close codes. See docs/protocol.md.

Event frames are not built here: they are the stored envelope JSON, sent as-is.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, TypeAdapter, ValidationError

# --- close codes ---------------------------------------------------------------
CLOSE_PING_TIMEOUT = 4001
"""A server ping went unanswered: the client is gone or not reading. Resume from your last seq."""
CLOSE_SLOW_CLIENT = 4008
"""Too many frames waited for this socket. Resume from your last seq."""
CLOSE_REVOKED = 4003
"""The socket's API token was revoked (or its user deactivated) since the handshake."""
CLOSE_SERVER_ERROR = 1011
"""The server failed this socket. Resume from your last seq."""

MAX_SEQ = 10**18
RequestId = StrictStr | StrictInt


class WsError(Exception):
    """A refused client message; becomes an `error` frame, the socket stays open."""

    def __init__(self, code: str, message: str, request_id: RequestId | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


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
_request_id = TypeAdapter(_Message.model_fields["request_id"].annotation)


def _echoable_request_id(data: dict[str, Any]) -> RequestId | None:
    try:
        return _request_id.validate_python(data.get("request_id"))
    except ValidationError:
        return None


def parse_message(text: str | None, data: bytes | None, max_bytes: int) -> Message:
    """One client frame as a typed message, or `WsError` with a stable code."""
    if text is None:
        raise WsError("binary_frame", "Send JSON messages as text frames.")
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise WsError("frame_too_large", f"A message may be at most {max_bytes} bytes.")
    try:
        raw = json.loads(text)
    except ValueError:
        raise WsError("invalid_json", "A message must be a JSON object.") from None
    if not isinstance(raw, dict):
        raise WsError("invalid_json", "A message must be a JSON object.")
    request_id = _echoable_request_id(raw)
    kind = raw.get("type")
    if kind is None:
        raise WsError("missing_field", "Field 'type' is required.", request_id)
    model = _MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(_MODELS)
        raise WsError("unknown_type", f"Unknown message type {str(kind)[:40]!r}; use one of {known}.", request_id)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        if first["type"] == "extra_forbidden":
            raise WsError("unknown_field", f"Unknown field {where!r}.", request_id) from None
        if first["type"] == "missing":
            raise WsError("missing_field", f"Field {where!r} is required.", request_id) from None
        raise WsError("invalid_field", f"Field {where!r}: {first['msg']}.", request_id) from None


# --- server control frames -------------------------------------------------------
def control_frame(kind: str, request_id: RequestId | None = None, **fields: Any) -> str:
    """A control frame: `{"type": kind, ...fields, "request_id"?}` as compact JSON."""
    body: dict[str, Any] = {"type": kind, **fields}
    if request_id is not None:
        body["request_id"] = request_id
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def error_frame(code: str, message: str, request_id: RequestId | None = None, **fields: Any) -> str:
    return control_frame("error", request_id, code=code, message=message, **fields)
