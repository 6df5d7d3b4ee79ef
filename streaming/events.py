"""The event vocabulary: every event name, role, payload and the envelope.

This is the only module that spells event names; everything else imports them.
Names are byte-compatible with the ValueCell system this project descends from.
"""

from __future__ import annotations

import uuid
from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer, PlainValidator


class SystemResponseEvent(str, Enum):
    CONVERSATION_STARTED = "conversation_started"
    THREAD_STARTED = "thread_started"
    PLAN_REQUIRE_USER_INPUT = "plan_require_user_input"
    PLAN_FAILED = "plan_failed"
    SYSTEM_FAILED = "system_failed"
    DONE = "done"


class TaskStatusEvent(str, Enum):
    TASK_STARTED = "task_started"
    TASK_COMPLETED = "task_completed"
    TASK_FAILED = "task_failed"
    TASK_CANCELLED = "task_cancelled"


class StreamResponseEvent(str, Enum):
    MESSAGE_CHUNK = "message_chunk"
    TOOL_CALL_STARTED = "tool_call_started"
    TOOL_CALL_COMPLETED = "tool_call_completed"
    REASONING_STARTED = "reasoning_started"
    REASONING = "reasoning"
    REASONING_COMPLETED = "reasoning_completed"


class NotifyResponseEvent(str, Enum):
    MESSAGE = "message"


class CommonResponseEvent(str, Enum):
    COMPONENT_GENERATOR = "component_generator"


EventName = SystemResponseEvent | TaskStatusEvent | StreamResponseEvent | NotifyResponseEvent | CommonResponseEvent

ALL_EVENT_NAMES: tuple[str, ...] = tuple(
    member.value
    for enum in (SystemResponseEvent, TaskStatusEvent, StreamResponseEvent, NotifyResponseEvent, CommonResponseEvent)
    for member in enum
)

_BY_VALUE: dict[str, EventName] = {
    member.value: member
    for enum in (SystemResponseEvent, TaskStatusEvent, StreamResponseEvent, NotifyResponseEvent, CommonResponseEvent)
    for member in enum
}


def event_from_name(name: str) -> EventName:
    return _BY_VALUE[name]


def _validate_event(value: Any) -> EventName:
    # One dict lookup instead of trying five enums in turn (on every event).
    try:
        event = _BY_VALUE[getattr(value, "value", value)]
    except (KeyError, TypeError):
        raise ValueError(f"unknown event {value!r}") from None
    return event


EventNameField = Annotated[
    EventName, PlainValidator(_validate_event), PlainSerializer(lambda e: e.value, return_type=str)
]


class Role(str, Enum):
    USER = "user"
    AGENT = "agent"
    SYSTEM = "system"


class ComponentType(str, Enum):
    REPORT = "report"
    PROFILE = "profile"
    FILTERED_LINE_CHART = "filtered_line_chart"
    FILTERED_CARD_PUSH_NOTIFICATION = "filtered_card_push_notification"
    SCHEDULED_TASK_CONTROLLER = "scheduled_task_controller"
    SCHEDULED_TASK_RESULT = "scheduled_task_result"
    SUBAGENT_CONVERSATION = "subagent_conversation"


# --- payloads ---------------------------------------------------------------


class BasePayload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPayload(BasePayload):
    content: str


class ToolCallPayload(BasePayload):
    tool_call_id: str
    tool_name: str
    tool_result: str | None = None


class ComponentPayload(BasePayload):
    content: str
    component_type: str


Payload = TextPayload | ToolCallPayload | ComponentPayload


class EventData(BaseModel):
    """The `data` object of an envelope; `None` fields are left out on the wire."""

    model_config = ConfigDict(extra="forbid")

    conversation_id: str
    thread_id: str | None = None
    task_id: str | None = None
    agent_name: str | None = None
    payload: Payload | None = None
    metadata: dict[str, Any] | None = None
    role: Role | None = None
    item_id: str | None = None


class Envelope(BaseModel):
    """One event as it goes on the wire: `{"event", "data", "seq"}`."""

    model_config = ConfigDict(extra="forbid")

    event: EventNameField
    data: EventData
    seq: int


# --- ids ----------------------------------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def new_conversation_id() -> str:
    return new_id("conv")


def new_thread_id() -> str:
    return new_id("th")


def new_task_id() -> str:
    return new_id("task")


def new_item_id() -> str:
    return new_id("item")
