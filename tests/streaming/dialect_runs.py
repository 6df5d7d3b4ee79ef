"""Stored runs for dialect tests, built with the project's own factory and encoder,
and a Python mirror of the ordering rules `@ag-ui/client`'s verifier enforces."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ag_ui.core import BaseEvent, EventType

from streaming.encoders import encode_envelope
from streaming.events import (
    CommonResponseEvent,
    ComponentPayload,
    NotifyResponseEvent,
    StreamResponseEvent,
    TextPayload,
    ToolCallPayload,
)
from streaming.factory import EventDraft, ResponseFactory, TaskContext

Row = tuple[int, str, str]
CID = "conv-" + "a" * 32


class RunBuilder:
    """Drafts of one conversation, numbered as the event log numbers them."""

    def __init__(self, conversation_id: str = CID) -> None:
        self.factory = ResponseFactory(conversation_id)
        self.rows: list[Row] = []
        self.ctx = TaskContext(conversation_id, "th-1", "task-1", "demo")

    def add(self, *drafts: EventDraft) -> RunBuilder:
        for draft in drafts:
            seq = len(self.rows) + 1
            _, text = encode_envelope(draft.event, draft.data, seq)
            self.rows.append((seq, draft.event.value, text))
        return self

    def agent(self, event, payload=None, item_id: str = "item-x", metadata=None) -> RunBuilder:
        return self.add(self.factory.agent_event(self.ctx, event, payload, item_id, metadata))

    # --- whole runs -------------------------------------------------------------
    def start(self, query: str = "Compare AAPL and MSFT", new: bool = True, thread: str = "th-1") -> RunBuilder:
        if new:
            self.add(self.factory.conversation_started())
        self.ctx = TaskContext(self.ctx.conversation_id, thread, self.ctx.task_id, "demo")
        return self.add(self.factory.thread_started(thread, query), self.factory.task_started(self.ctx))

    def reasoning(self, item: str = "item-r", parts: Iterable[str] = ("Let me ", "look.")) -> RunBuilder:
        self.agent(StreamResponseEvent.REASONING_STARTED, item_id=item)
        for part in parts:
            self.agent(StreamResponseEvent.REASONING, TextPayload(content=part), item)
        return self.agent(StreamResponseEvent.REASONING_COMPLETED, item_id=item)

    def tool(self, call: str, item: str, result: str = '[{"content": "42"}]') -> RunBuilder:
        self.agent(StreamResponseEvent.TOOL_CALL_STARTED, ToolCallPayload(tool_call_id=call, tool_name="load"), item)
        payload = ToolCallPayload(tool_call_id=call, tool_name="load", tool_result=result)
        return self.agent(StreamResponseEvent.TOOL_CALL_COMPLETED, payload, item)

    def paragraph(self, item: str, parts: Iterable[str]) -> RunBuilder:
        for part in parts:
            self.agent(StreamResponseEvent.MESSAGE_CHUNK, TextPayload(content=part), item)
        return self

    def component(self, item: str, kind: str = "report", content: str = '{"title": "T", "data": "# T"}') -> RunBuilder:
        payload = ComponentPayload(content=content, component_type=kind)
        return self.agent(CommonResponseEvent.COMPONENT_GENERATOR, payload, item)

    def notify(self, item: str, text: str) -> RunBuilder:
        return self.agent(NotifyResponseEvent.MESSAGE, TextPayload(content=text), item)

    def completed(self) -> RunBuilder:
        return self.add(self.factory.task_completed(self.ctx), self.factory.done(self.ctx.thread_id))

    def question(self, text: str = "Which ticker?") -> RunBuilder:
        return self.add(self.factory.plan_require_user_input(self.ctx, text), self.factory.done(self.ctx.thread_id))

    def failed(self, message: str = "boom") -> RunBuilder:
        return self.add(self.factory.task_failed(self.ctx, message), self.factory.done(self.ctx.thread_id))

    def cancelled(self) -> RunBuilder:
        return self.add(self.factory.task_cancelled(self.ctx, "Cancelled by the user."), self.factory.done(self.ctx.thread_id))


def full_run() -> RunBuilder:
    """A run with every kind of agent output, paragraphs around tool calls."""
    return (
        RunBuilder()
        .start()
        .reasoning()
        .paragraph("item-p1", ["Loading ", "prices."])
        .tool("call-1", "item-t1")
        .tool("call-2", "item-t2")
        .component("item-c1")
        .notify("item-n1", "Heads up.")
        .paragraph("item-p2", ["AAPL ", "rose ", "12%."])
        .completed()
    )


# --- the client's rules, in Python ---------------------------------------------
@dataclass
class Verifier:
    """The ordering rules of @ag-ui/client 1.0's `verifyEvents`, for one stream."""

    first: bool = True
    active: bool = False
    ended: str | None = None
    text: set[str] = field(default_factory=set)
    tools: set[str] = field(default_factory=set)
    reasoning_spans: set[str] = field(default_factory=set)
    reasoning_messages: set[str] = field(default_factory=set)
    steps: set[str] = field(default_factory=set)

    def check(self, event: BaseEvent) -> None:
        kind = event.type
        if self.ended == "error":
            assert kind == EventType.RUN_STARTED, f"{kind} after RUN_ERROR"
        if self.ended == "finished":
            assert kind in (EventType.RUN_STARTED, EventType.RUN_ERROR), f"{kind} after RUN_FINISHED"
        if self.first:
            assert kind in (EventType.RUN_STARTED, EventType.RUN_ERROR), f"first event {kind}"
            self.first = False
        if kind == EventType.RUN_STARTED:
            assert not self.active, "RUN_STARTED while a run is active"
            self.__init__(first=False, active=True)  # type: ignore[misc]
        elif kind == EventType.RUN_ERROR:
            self.ended, self.active = "error", False
        elif kind == EventType.RUN_FINISHED:
            open_things = self.text | self.tools | self.reasoning_spans | self.reasoning_messages | self.steps
            assert not open_things, f"RUN_FINISHED with {open_things} open"
            self.ended, self.active = "finished", False
        else:
            self._inside(event)

    def _inside(self, event: BaseEvent) -> None:
        kind, ident = event.type, getattr(event, "message_id", None) or getattr(event, "tool_call_id", None)
        opens = {
            EventType.TEXT_MESSAGE_START: self.text,
            EventType.TOOL_CALL_START: self.tools,
            EventType.REASONING_START: self.reasoning_spans,
            EventType.REASONING_MESSAGE_START: self.reasoning_messages,
        }
        inside = {
            EventType.TEXT_MESSAGE_CONTENT: self.text,
            EventType.TOOL_CALL_ARGS: self.tools,
            EventType.REASONING_MESSAGE_CONTENT: self.reasoning_messages,
        }
        closes = {
            EventType.TEXT_MESSAGE_END: self.text,
            EventType.TOOL_CALL_END: self.tools,
            EventType.REASONING_END: self.reasoning_spans,
            EventType.REASONING_MESSAGE_END: self.reasoning_messages,
        }
        if kind in opens:
            assert ident not in opens[kind], f"{kind} {ident} already open"
            opens[kind].add(ident)
        elif kind in inside:
            assert ident in inside[kind], f"{kind} {ident} not open"
        elif kind in closes:
            assert ident in closes[kind], f"{kind} {ident} not open"
            closes[kind].discard(ident)
        elif kind == EventType.STEP_STARTED:
            assert event.step_name not in self.steps
            self.steps.add(event.step_name)
        elif kind == EventType.STEP_FINISHED:
            assert event.step_name in self.steps, f"step {event.step_name} not open"
            self.steps.discard(event.step_name)


def verify(events: Iterable[BaseEvent]) -> list[BaseEvent]:
    verifier = Verifier()
    events = list(events)
    for event in events:
        verifier.check(event)
    assert events and events[-1].type in (EventType.RUN_FINISHED, EventType.RUN_ERROR), "the stream must end its run"
    return events


@dataclass
class Messages:
    """What a client builds from events (text, reasoning, tool calls and results, activities)."""

    text: dict[str, str] = field(default_factory=dict)
    reasoning: dict[str, str] = field(default_factory=dict)
    tool_calls: dict[str, str] = field(default_factory=dict)
    results: dict[str, str] = field(default_factory=dict)
    activities: dict[str, dict] = field(default_factory=dict)

    def apply(self, events: Iterable[BaseEvent]) -> Messages:
        for e in events:
            if e.type == EventType.TEXT_MESSAGE_START:
                self.text.setdefault(e.message_id, "")  # a known id is reused, as the client does
            elif e.type == EventType.TEXT_MESSAGE_CONTENT:
                self.text[e.message_id] += e.delta
            elif e.type == EventType.REASONING_MESSAGE_START:
                self.reasoning.setdefault(e.message_id, "")
            elif e.type == EventType.REASONING_MESSAGE_CONTENT:
                self.reasoning[e.message_id] += e.delta
            elif e.type == EventType.TOOL_CALL_START:
                self.tool_calls.setdefault(e.tool_call_id, e.tool_call_name)
            elif e.type == EventType.TOOL_CALL_RESULT:
                self.results[e.message_id] = e.content
            elif e.type == EventType.ACTIVITY_SNAPSHOT:
                self.activities[e.message_id] = e.content
        return self
