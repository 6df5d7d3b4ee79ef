"""What an AG-UI client holds open after the events it has read, and how a resume
starts it again: read from the wire events themselves, so a cursor between two
frames of one stored event re-opens exactly what those frames left open.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ag_ui.core import (
    BaseEvent,
    ReasoningEndEvent,
    ReasoningMessageEndEvent,
    ReasoningMessageStartEvent,
    ReasoningStartEvent,
    RunErrorEvent,
    RunFinishedEvent,
    StepFinishedEvent,
    StepStartedEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    ToolCallEndEvent,
    ToolCallStartEvent,
)


@dataclass
class OpenSet:
    """The steps, reasoning blocks (span and message apart), text messages and tool
    calls started and not yet ended, in the order they were started."""

    steps: dict[str, None] = field(default_factory=dict)
    reasoning: dict[str, None] = field(default_factory=dict)
    reasoning_messages: dict[str, None] = field(default_factory=dict)
    text: dict[str, None] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)  # tool call id -> name

    def apply(self, events: Iterable[BaseEvent]) -> None:
        for event in events:
            self._apply(event)

    def _apply(self, event: BaseEvent) -> None:
        if isinstance(event, RunFinishedEvent | RunErrorEvent):  # the run ended: nothing is open
            for opened in (self.steps, self.reasoning, self.reasoning_messages, self.text, self.tools):
                opened.clear()
        elif isinstance(event, StepStartedEvent):
            self.steps[event.step_name] = None
        elif isinstance(event, StepFinishedEvent):
            self.steps.pop(event.step_name, None)
        elif isinstance(event, ReasoningStartEvent):
            self.reasoning[event.message_id] = None
        elif isinstance(event, ReasoningEndEvent):
            self.reasoning.pop(event.message_id, None)
        elif isinstance(event, ReasoningMessageStartEvent):
            self.reasoning_messages[event.message_id] = None
        elif isinstance(event, ReasoningMessageEndEvent):
            self.reasoning_messages.pop(event.message_id, None)
        elif isinstance(event, TextMessageStartEvent):
            self.text[event.message_id] = None
        elif isinstance(event, TextMessageEndEvent):
            self.text.pop(event.message_id, None)
        elif isinstance(event, ToolCallStartEvent):
            self.tools[event.tool_call_id] = event.tool_call_name
        elif isinstance(event, ToolCallEndEvent):
            self.tools.pop(event.tool_call_id, None)

    def reopen(self) -> list[BaseEvent]:
        """Everything open, started again with the same ids (a client appends to what it kept)."""
        return [
            *(StepStartedEvent(step_name=step) for step in self.steps),
            *(ReasoningStartEvent(message_id=block) for block in self.reasoning),
            *(ReasoningMessageStartEvent(message_id=block) for block in self.reasoning_messages),
            *(TextMessageStartEvent(message_id=message, role="assistant") for message in self.text),
            *(ToolCallStartEvent(tool_call_id=call, tool_call_name=name) for call, name in self.tools.items()),
        ]
