"""The response factory: the one place that builds event drafts with their ids.

A draft is an event name plus its `data`; the conversation log numbers it.
Drafts are internal and built from values that are already checked (an agent's
`AgentResponse` is validated when the agent makes it), so `data` is a plain
JSON-ready dict in the wire's field order (`EventData`'s), `None` fields left
out: no pydantic model is validated or dumped per event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streaming.events import (
    BasePayload,
    ComponentPayload,
    EventData,
    EventName,
    Role,
    SystemResponseEvent,
    TaskStatusEvent,
    TextPayload,
    ToolCallPayload,
    new_item_id,
)

DATA_FIELDS = tuple(EventData.model_fields)  # the wire's order: conversation_id, thread_id, ..., item_id


def payload_data(payload: BasePayload) -> dict[str, Any]:
    """A payload model as the envelope carries it (`None` fields left out)."""
    return {name: value for name, value in payload.__dict__.items() if value is not None}


@dataclass(frozen=True, slots=True)
class EventDraft:
    event: EventName
    data: dict[str, Any]  # an envelope's `data`, exactly as `EventData` dumps it; never changed once built
    # Its item_id was minted for it: no earlier event (stored or not) has it,
    # so the event store need not look for that item.
    new_item: bool = False


@dataclass(frozen=True, slots=True)
class TaskContext:
    """Who an agent event belongs to."""

    conversation_id: str
    thread_id: str
    task_id: str
    agent_name: str


class ResponseFactory:
    """Builds every event of the vocabulary for one conversation."""

    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id

    def _draft(self, event: EventName, new_item: bool = False, **fields: Any) -> EventDraft:
        data: dict[str, Any] = {"conversation_id": self.conversation_id}
        for name in DATA_FIELDS:
            value = fields.get(name)
            if value is not None:
                if name == "payload" and not isinstance(value, dict):
                    value = payload_data(value)
                elif name == "role":
                    value = value.value
                data[name] = value
        return EventDraft(event=event, data=data, new_item=new_item)

    # --- system -------------------------------------------------------------
    def conversation_started(self) -> EventDraft:
        return self._draft(SystemResponseEvent.CONVERSATION_STARTED, role=Role.SYSTEM)

    def thread_started(self, thread_id: str, query: str) -> EventDraft:
        return self._draft(
            SystemResponseEvent.THREAD_STARTED,
            thread_id=thread_id,
            payload={"content": query},
            role=Role.USER,
            item_id=new_item_id(),
            new_item=True,
        )

    def plan_require_user_input(self, ctx: TaskContext, question: str) -> EventDraft:
        return self._draft(
            SystemResponseEvent.PLAN_REQUIRE_USER_INPUT,
            thread_id=ctx.thread_id,
            task_id=ctx.task_id,
            agent_name=ctx.agent_name,
            payload={"content": question},
            role=Role.SYSTEM,
            item_id=new_item_id(),
            new_item=True,
        )

    def plan_failed(self, thread_id: str | None, message: str) -> EventDraft:
        return self._draft(
            SystemResponseEvent.PLAN_FAILED,
            thread_id=thread_id,
            payload={"content": message},
            role=Role.SYSTEM,
            item_id=new_item_id(),
            new_item=True,
        )

    def system_failed(self, thread_id: str | None, message: str) -> EventDraft:
        return self._draft(
            SystemResponseEvent.SYSTEM_FAILED,
            thread_id=thread_id,
            payload={"content": message},
            role=Role.SYSTEM,
            item_id=new_item_id(),
            new_item=True,
        )

    def done(self, thread_id: str | None) -> EventDraft:
        return self._draft(SystemResponseEvent.DONE, thread_id=thread_id, role=Role.SYSTEM)

    # --- task status ----------------------------------------------------------
    def _task_status(self, event: TaskStatusEvent, ctx: TaskContext, **fields: Any) -> EventDraft:
        return self._draft(
            event,
            thread_id=ctx.thread_id,
            task_id=ctx.task_id,
            agent_name=ctx.agent_name,
            role=Role.SYSTEM,
            **fields,
        )

    def task_started(self, ctx: TaskContext) -> EventDraft:
        return self._task_status(TaskStatusEvent.TASK_STARTED, ctx)

    def task_completed(self, ctx: TaskContext) -> EventDraft:
        return self._task_status(TaskStatusEvent.TASK_COMPLETED, ctx)

    def task_failed(self, ctx: TaskContext, message: str) -> EventDraft:
        return self._task_status(
            TaskStatusEvent.TASK_FAILED, ctx, payload={"content": message}, item_id=new_item_id(), new_item=True
        )

    def task_cancelled(self, ctx: TaskContext, reason: str) -> EventDraft:
        return self._task_status(TaskStatusEvent.TASK_CANCELLED, ctx, payload={"content": reason})

    # --- agent output ---------------------------------------------------------
    def agent_event(
        self,
        ctx: TaskContext,
        event: EventName,
        payload: TextPayload | ToolCallPayload | ComponentPayload | None,
        item_id: str,
        metadata: dict[str, Any] | None = None,
        new_item: bool = False,
    ) -> EventDraft:
        return self._draft(
            event,
            new_item,
            thread_id=ctx.thread_id,
            task_id=ctx.task_id,
            agent_name=ctx.agent_name,
            payload=payload,
            metadata=metadata,
            role=Role.AGENT,
            item_id=item_id,
        )
