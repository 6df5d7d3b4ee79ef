"""What agents yield: un-numbered responses built with `streaming.*` and `notify.*`.

An agent knows nothing of conversations, seq numbers or transports; the router
and the response factory turn these into envelopes.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from streaming.events import (
    CommonResponseEvent,
    ComponentPayload,
    EventNameField,
    NotifyResponseEvent,
    StreamResponseEvent,
    TextPayload,
    ToolCallPayload,
)


class AgentResponse(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event: EventNameField
    payload: TextPayload | ToolCallPayload | ComponentPayload | None = None
    metadata: dict[str, Any] | None = None


def wrap_tool_result(result: Any) -> str:
    """A completed tool call's result is the JSON string `[{"content": "..."}]`.

    A string that already has that form is kept; anything else is wrapped.
    """
    if isinstance(result, str):
        try:
            parsed = json.loads(result)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(p, dict) and "content" in p for p in parsed):
            return result
        return json.dumps([{"content": result}], ensure_ascii=False)
    if isinstance(result, list) and all(isinstance(p, dict) and "content" in p for p in result):
        return json.dumps(result, ensure_ascii=False)
    text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)
    return json.dumps([{"content": text}], ensure_ascii=False)


class _Streaming:
    """Helpers for stream events: `streaming.message_chunk("...")` and friends."""

    @staticmethod
    def message_chunk(content: str, metadata: dict[str, Any] | None = None) -> AgentResponse:
        return AgentResponse(
            event=StreamResponseEvent.MESSAGE_CHUNK, payload=TextPayload(content=content), metadata=metadata
        )

    @staticmethod
    def tool_call_started(tool_call_id: str, tool_name: str) -> AgentResponse:
        return AgentResponse(
            event=StreamResponseEvent.TOOL_CALL_STARTED,
            payload=ToolCallPayload(tool_call_id=tool_call_id, tool_name=tool_name),
        )

    @staticmethod
    def tool_call_completed(tool_result: Any, tool_call_id: str, tool_name: str) -> AgentResponse:
        return AgentResponse(
            event=StreamResponseEvent.TOOL_CALL_COMPLETED,
            payload=ToolCallPayload(
                tool_call_id=tool_call_id, tool_name=tool_name, tool_result=wrap_tool_result(tool_result)
            ),
        )

    @staticmethod
    def reasoning_started() -> AgentResponse:
        return AgentResponse(event=StreamResponseEvent.REASONING_STARTED)

    @staticmethod
    def reasoning(content: str) -> AgentResponse:
        return AgentResponse(event=StreamResponseEvent.REASONING, payload=TextPayload(content=content))

    @staticmethod
    def reasoning_completed() -> AgentResponse:
        return AgentResponse(event=StreamResponseEvent.REASONING_COMPLETED)

    @staticmethod
    def component_generator(
        content: str | dict | list, component_type: str, component_id: str | None = None
    ) -> AgentResponse:
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        return AgentResponse(
            event=CommonResponseEvent.COMPONENT_GENERATOR,
            payload=ComponentPayload(
                content=text, component_type=str(getattr(component_type, "value", component_type))
            ),
            metadata={"component_id": component_id} if component_id else None,
        )


class _Notify:
    @staticmethod
    def message(content: str) -> AgentResponse:
        return AgentResponse(event=NotifyResponseEvent.MESSAGE, payload=TextPayload(content=content))


streaming = _Streaming()
notify = _Notify()
