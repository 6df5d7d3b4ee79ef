"""The response router: turns what one task's agent yields into event drafts.

It owns the item ids of a task: one per paragraph of message chunks, one per
reasoning block, one per tool call, one per component (or its `component_id`).
It also keeps the stream well formed: a `reasoning` without a start gets one,
and an open reasoning block is completed before anything else is emitted.
"""

from __future__ import annotations

from streaming.events import CommonResponseEvent, NotifyResponseEvent, StreamResponseEvent, ToolCallPayload, new_item_id
from streaming.factory import EventDraft, ResponseFactory, TaskContext
from streaming.responses import AgentResponse


class ResponseRouter:
    def __init__(self, factory: ResponseFactory, ctx: TaskContext) -> None:
        self.factory = factory
        self.ctx = ctx
        self._paragraph_item: str | None = None
        self._reasoning_item: str | None = None
        self._tool_items: dict[str, str] = {}
        self.tool_calls = 0

    def _emit(self, response: AgentResponse, item_id: str, new_item: bool = False) -> EventDraft:
        return self.factory.agent_event(
            self.ctx, response.event, response.payload, item_id, response.metadata, new_item=new_item
        )

    def _close_reasoning(self) -> list[EventDraft]:
        if self._reasoning_item is None:
            return []
        item, self._reasoning_item = self._reasoning_item, None
        return [self.factory.agent_event(self.ctx, StreamResponseEvent.REASONING_COMPLETED, None, item)]

    def route(self, response: AgentResponse) -> list[EventDraft]:
        event = response.event
        drafts: list[EventDraft]
        if event == StreamResponseEvent.MESSAGE_CHUNK:
            drafts = self._close_reasoning()
            new = self._paragraph_item is None
            if self._paragraph_item is None:
                self._paragraph_item = new_item_id()
            return [*drafts, self._emit(response, self._paragraph_item, new)]

        # Anything that is not a message chunk ends the current paragraph.
        self._paragraph_item = None

        if event == StreamResponseEvent.REASONING_STARTED:
            drafts = self._close_reasoning()
            self._reasoning_item = new_item_id()
            return [*drafts, self._emit(response, self._reasoning_item, True)]
        if event == StreamResponseEvent.REASONING:
            drafts = []
            if self._reasoning_item is None:
                self._reasoning_item = new_item_id()
                drafts.append(
                    self.factory.agent_event(
                        self.ctx, StreamResponseEvent.REASONING_STARTED, None, self._reasoning_item, new_item=True
                    )
                )
            return [*drafts, self._emit(response, self._reasoning_item)]
        if event == StreamResponseEvent.REASONING_COMPLETED:
            return self._close_reasoning()

        drafts = self._close_reasoning()
        if event in (StreamResponseEvent.TOOL_CALL_STARTED, StreamResponseEvent.TOOL_CALL_COMPLETED):
            assert isinstance(response.payload, ToolCallPayload)
            call_id = response.payload.tool_call_id
            if event == StreamResponseEvent.TOOL_CALL_STARTED:
                self.tool_calls += 1
                new = call_id not in self._tool_items
                item = self._tool_items.setdefault(call_id, new_item_id())
            else:
                item = self._tool_items.pop(call_id, "")
                new = not item
                item = item or new_item_id()
            return [*drafts, self._emit(response, item, new)]
        if event == CommonResponseEvent.COMPONENT_GENERATOR:
            component_id = (response.metadata or {}).get("component_id")
            if component_id:  # an earlier run's component may be replaced: not new
                return [*drafts, self._emit(response, str(component_id))]
            return [*drafts, self._emit(response, new_item_id(), True)]
        if event == NotifyResponseEvent.MESSAGE:
            return [*drafts, self._emit(response, new_item_id(), True)]
        raise ValueError(f"agents cannot yield {event.value!r}")

    def close(self) -> list[EventDraft]:
        """Drafts that end the task's stream cleanly (an open reasoning block)."""
        self._paragraph_item = None
        return self._close_reasoning()
