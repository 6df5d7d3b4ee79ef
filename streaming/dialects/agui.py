"""The AG-UI dialect: a conversation's stored events as AG-UI 1.0 runs.

One AG-UI run is one native input's events up to its `done`. Built with the
protocol's own types and encoder (`ag-ui-protocol`); every ordering rule of
`@ag-ui/client`'s verifier holds: `RUN_STARTED` first, nothing inside a
message, reasoning block, tool call or step that was not started, everything
closed before the run ends, nothing after `RUN_FINISHED` / `RUN_ERROR`.
Resuming after a seq re-opens what was open there (see `AguiTranslator`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ag_ui.core import (
    PROTOCOL_VERSION,
    ActivitySnapshotEvent,
    BaseEvent,
    CustomEvent,
    Interrupt,
    ReasoningEndEvent,
    ReasoningMessageContentEvent,
    ReasoningMessageEndEvent,
    ReasoningMessageStartEvent,
    ReasoningStartEvent,
    RunErrorEvent,
    RunFinishedCancelledOutcome,
    RunFinishedEvent,
    RunFinishedInterruptOutcome,
    RunFinishedSuccessOutcome,
    RunStartedEvent,
    StepFinishedEvent,
    StepStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)
from ag_ui.encoder import EventEncoder

from streaming.dialects.agui_open import OpenSet
from streaming.dialects.base import Translation
from streaming.events import (
    CommonResponseEvent,
    NotifyResponseEvent,
    StreamResponseEvent,
    SystemResponseEvent,
    TaskStatusEvent,
)

ENCODER = EventEncoder()
CONTENT_TYPE = ENCODER.get_content_type()
INTERRUPT_REASON = SystemResponseEvent.PLAN_REQUIRE_USER_INPUT.value
# What a `resume` entry's payload answers a question with (a bare string works too).
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
}
CUSTOM_PREFIX = "valuecell."
STREAM_INTERRUPTED = "stream_interrupted"


@dataclass
class RunState:
    """What is open in the AG-UI run being translated, and how it will end."""

    run_id: str | None = None
    text: str | None = None  # the open text message (a paragraph's item id)
    last_text: str | None = None  # the task's last paragraph: a tool call's parent message
    reasoning: str | None = None  # the open reasoning block (span and message share its item id)
    tools: dict[str, str] = field(default_factory=dict)  # open tool calls: id -> name
    step: str | None = None  # the open step: `task:<task_id>`
    interrupt: Interrupt | None = None
    cancelled: bool = False
    error: RunErrorEvent | None = None
    done: bool = False


def _content(data: dict[str, Any]) -> str:
    return str((data.get("payload") or {}).get("content", ""))


class AguiTranslator:
    """Stored events → AG-UI events for one stream.

    Without `resume_after` (a `POST /ag-ui/<agent>`), the stream opens with
    `RUN_STARTED` and ends with the run's `RUN_FINISHED` or `RUN_ERROR`.
    With it (a resume after seq N, or `(N, k)`: after frame k of the frames N
    becomes), the frames up to the cursor are not sent; they only rebuild what
    was open. The first frame after it is preceded by `RUN_STARTED` and the
    re-opened step, reasoning block, message and tool calls open at the cursor
    (`OpenSet`, from the frames themselves), so a client that kept what it had
    reads one valid run. A cursor at or after the run's end gets `RUN_STARTED`
    and that end again.

    A stored event becomes the same frames on every stream (they depend only on
    the run's events before it), so every frame has an id (`ids_per_frame`).
    """

    ids_per_frame = True

    def __init__(
        self,
        conversation_id: str,
        thread_id: str,
        run_id: str | None = None,
        *,
        resume_after: int | tuple[int, int | None] | None = None,
    ) -> None:
        self.conversation_id = conversation_id
        self.thread_id = thread_id
        self.run_id = run_id
        self.resume_after = resume_after
        self.run = RunState()
        self.open = OpenSet()  # what the client holds open, until the stream starts
        self.started = False
        self.finished = False
        self._ended_with: list[BaseEvent] = []  # the end of a run that ended at or before the cursor
        self.table: dict[str, Callable[[dict[str, Any]], list[BaseEvent]]] = {
            SystemResponseEvent.CONVERSATION_STARTED.value: self._conversation_started,
            SystemResponseEvent.THREAD_STARTED.value: self._thread_started,
            SystemResponseEvent.PLAN_REQUIRE_USER_INPUT.value: self._question,
            SystemResponseEvent.PLAN_FAILED.value: self._failure(SystemResponseEvent.PLAN_FAILED.value),
            SystemResponseEvent.SYSTEM_FAILED.value: self._failure(SystemResponseEvent.SYSTEM_FAILED.value),
            SystemResponseEvent.DONE.value: self._done,
            TaskStatusEvent.TASK_STARTED.value: self._task_started,
            TaskStatusEvent.TASK_COMPLETED.value: self._task_ended,
            TaskStatusEvent.TASK_FAILED.value: self._failure(TaskStatusEvent.TASK_FAILED.value),
            TaskStatusEvent.TASK_CANCELLED.value: self._task_cancelled,
            StreamResponseEvent.MESSAGE_CHUNK.value: self._message_chunk,
            StreamResponseEvent.TOOL_CALL_STARTED.value: self._tool_call_started,
            StreamResponseEvent.TOOL_CALL_COMPLETED.value: self._tool_call_completed,
            StreamResponseEvent.REASONING_STARTED.value: self._reasoning_started,
            StreamResponseEvent.REASONING.value: self._reasoning,
            StreamResponseEvent.REASONING_COMPLETED.value: self._reasoning_completed,
            NotifyResponseEvent.MESSAGE.value: self._notify,
            CommonResponseEvent.COMPONENT_GENERATOR.value: self._component,
        }

    # --- the stream ---------------------------------------------------------
    def opening(self) -> list[BaseEvent]:
        if self.resume_after is not None:
            return []  # opened by the first event after the cursor
        self.started = True
        return [self._run_started({})]

    def translate(self, seq: int, event: str, body: str) -> list[BaseEvent]:
        if self.finished:
            return []
        data = json.loads(body)["data"]
        if self.run.done:  # the run at the cursor ended before it: the next one begins
            self.run = RunState()
            self._ended_with = []
        handler = self.table.get(event)
        parts = handler(data) if handler is not None else []
        if self.started:
            self.finished = self.run.done
            return parts
        # A resume: the frames up to the cursor were sent; they say what is open.
        sent = self._sent_before(seq, len(parts))
        self.open.apply(parts[:sent])
        if sent == len(parts) and seq <= self._cursor()[0]:  # nothing of it is missing
            if self.run.done:
                self._ended_with = parts[-1:]
            return []
        self.started = True
        self.finished = self.run.done
        opened = [self._run_started(data), *self.open.reopen()]
        return Translation([*opened, *parts[sent:]], lead=len(opened), first=sent)

    def _cursor(self) -> tuple[int, int | None]:
        after = self.resume_after
        assert after is not None  # a stream without a cursor started with `opening`
        return (after, None) if isinstance(after, int) else after

    def _sent_before(self, seq: int, count: int) -> int:
        """How many of stored event `seq`'s `count` frames the client has (an index
        past its frames reads as all of them)."""
        cursor, index = self._cursor()
        if seq > cursor:
            return 0
        if seq < cursor or index is None:
            return count
        return min(index + 1, count)

    def ending(self) -> list[BaseEvent]:
        if self.finished:
            return []
        if not self.started and self._ended_with:
            self.finished = True
            return [self._run_started({}), *self._ended_with]
        return self.broken("The stream ended before its run did; resume it with Last-Event-ID.")

    def broken(self, message: str, code: str | None = None) -> list[BaseEvent]:
        """`RUN_ERROR` (`stream_interrupted` unless `code` says otherwise): a clean end
        without it would read as success to `HttpAgent`."""
        if self.finished:
            return []
        self.finished = True
        opened = [] if self.started else [self._run_started({})]
        return [*opened, RunErrorEvent(message=message, code=code or STREAM_INTERRUPTED)]

    def json(self, part: BaseEvent) -> str:
        # The SDK's own encoding (`data: <json>\n\n`); the SSE framing, with the
        # stored event's id, is the project's (`streaming.encoders`).
        return ENCODER.encode(part).removeprefix("data: ").removesuffix("\n\n")

    # --- runs ----------------------------------------------------------------
    def _run_id(self, data: dict[str, Any]) -> str:
        if self.run.run_id is None:
            # A resume names no run: the native input's thread stands for it.
            self.run.run_id = self.run_id or data.get("thread_id") or self.conversation_id
        return self.run.run_id

    def _run_started(self, data: dict[str, Any]) -> RunStartedEvent:
        return RunStartedEvent(
            thread_id=self.thread_id,
            run_id=self._run_id(data),
            protocol_version=PROTOCOL_VERSION,
            metadata={"valuecell": {"conversation_id": self.conversation_id}},
        )

    # --- opening and closing -------------------------------------------------
    def _close_text(self) -> list[BaseEvent]:
        if self.run.text is None:
            return []
        message, self.run.text = self.run.text, None
        return [TextMessageEndEvent(message_id=message)]

    def _close_reasoning(self) -> list[BaseEvent]:
        if self.run.reasoning is None:
            return []
        block, self.run.reasoning = self.run.reasoning, None
        return [ReasoningMessageEndEvent(message_id=block), ReasoningEndEvent(message_id=block)]

    def _close_content(self) -> list[BaseEvent]:
        """Close the message, the reasoning block and every tool call left open."""
        parts = self._close_text() + self._close_reasoning()
        parts += [ToolCallEndEvent(tool_call_id=call) for call in self.run.tools]
        self.run.tools.clear()
        return parts

    def _close_all(self) -> list[BaseEvent]:
        parts = self._close_content()
        if self.run.step is not None:
            parts.append(StepFinishedEvent(step_name=self.run.step))
            self.run.step = None
        return parts

    def _open_step(self, data: dict[str, Any]) -> list[BaseEvent]:
        """The task's step, started when its first event comes (an answer continues a task)."""
        task_id = data.get("task_id")
        if not task_id or self.run.step == f"task:{task_id}":
            return []
        parts = self._close_all() if self.run.step is not None else []
        self.run.step = f"task:{task_id}"
        self.run.last_text = None
        return [*parts, StepStartedEvent(step_name=self.run.step)]

    def _open_reasoning(self, item_id: str) -> list[BaseEvent]:
        if self.run.reasoning == item_id:
            return []
        parts = self._close_reasoning()
        self.run.reasoning = item_id
        return [*parts, ReasoningStartEvent(message_id=item_id), ReasoningMessageStartEvent(message_id=item_id)]

    def _open_tool(self, data: dict[str, Any]) -> list[BaseEvent]:
        payload = data.get("payload") or {}
        call, name = str(payload.get("tool_call_id", "")), str(payload.get("tool_name", ""))
        if call in self.run.tools:
            return []
        self.run.tools[call] = name
        # Native tool calls carry no arguments: an empty JSON object stands for them.
        return [
            ToolCallStartEvent(tool_call_id=call, tool_call_name=name, parent_message_id=self.run.last_text),
            ToolCallArgsEvent(tool_call_id=call, delta="{}"),
        ]

    def _before_content(self, data: dict[str, Any]) -> list[BaseEvent]:
        return self._close_text() + self._open_step(data)

    # --- one handler per native event ----------------------------------------
    def _conversation_started(self, data: dict[str, Any]) -> list[BaseEvent]:
        return [
            CustomEvent(name=CUSTOM_PREFIX + "conversation_started", value={"conversation_id": self.conversation_id})
        ]

    def _thread_started(self, data: dict[str, Any]) -> list[BaseEvent]:
        self._run_id(data)
        value = {"thread_id": data.get("thread_id"), "item_id": data.get("item_id"), "content": _content(data)}
        return [*self._close_text(), CustomEvent(name=CUSTOM_PREFIX + "thread_started", value=value)]

    def _task_started(self, data: dict[str, Any]) -> list[BaseEvent]:
        return self._before_content(data)

    def _reasoning_started(self, data: dict[str, Any]) -> list[BaseEvent]:
        return self._before_content(data) + self._open_reasoning(data["item_id"])

    def _reasoning(self, data: dict[str, Any]) -> list[BaseEvent]:
        item_id = data["item_id"]
        delta = ReasoningMessageContentEvent(message_id=item_id, delta=_content(data))
        return [*self._before_content(data), *self._open_reasoning(item_id), delta]

    def _reasoning_completed(self, data: dict[str, Any]) -> list[BaseEvent]:
        return self._close_reasoning()

    def _message_chunk(self, data: dict[str, Any]) -> list[BaseEvent]:
        item_id = data["item_id"]
        parts: list[BaseEvent] = []
        if self.run.text != item_id:
            parts = self._before_content(data) + self._close_reasoning()
            parts.append(TextMessageStartEvent(message_id=item_id, role="assistant"))
            self.run.text = self.run.last_text = item_id
        return [*parts, TextMessageContentEvent(message_id=item_id, delta=_content(data))]

    def _notify(self, data: dict[str, Any]) -> list[BaseEvent]:
        item_id = data["item_id"]
        return [
            *self._before_content(data),
            *self._close_reasoning(),
            TextMessageStartEvent(message_id=item_id, role="assistant"),
            TextMessageContentEvent(message_id=item_id, delta=_content(data)),
            TextMessageEndEvent(message_id=item_id),
        ]

    def _tool_call_started(self, data: dict[str, Any]) -> list[BaseEvent]:
        return self._before_content(data) + self._close_reasoning() + self._open_tool(data)

    def _tool_call_completed(self, data: dict[str, Any]) -> list[BaseEvent]:
        parts = self._before_content(data) + self._close_reasoning() + self._open_tool(data)
        payload = data.get("payload") or {}
        call = str(payload.get("tool_call_id", ""))
        self.run.tools.pop(call, None)
        result = ToolCallResultEvent(
            message_id=data["item_id"], tool_call_id=call, content=str(payload.get("tool_result") or ""), role="tool"
        )
        return [*parts, ToolCallEndEvent(tool_call_id=call), result]

    def _component(self, data: dict[str, Any]) -> list[BaseEvent]:
        payload = data.get("payload") or {}
        kind = str(payload.get("component_type", ""))
        # The component's type and its content (the native JSON text) as they were;
        # a later component with the same item id replaces it, as natively.
        content = {"component_type": kind, "content": payload.get("content", "")}
        snapshot = ActivitySnapshotEvent(message_id=data["item_id"], activity_type=kind, content=content)
        return [*self._before_content(data), *self._close_reasoning(), snapshot]

    def _question(self, data: dict[str, Any]) -> list[BaseEvent]:
        ids = {name: data.get(name) for name in ("conversation_id", "thread_id", "task_id")}
        self.run.interrupt = Interrupt(
            id=data["item_id"],
            reason=INTERRUPT_REASON,
            message=_content(data),
            response_schema=ANSWER_SCHEMA,
            metadata={"valuecell": ids},
        )
        return self._close_all()

    def _failure(self, name: str) -> Callable[[dict[str, Any]], list[BaseEvent]]:
        """A failure ends the run with `RUN_ERROR` (its code: the native event's name) at its `done`."""

        def handle(data: dict[str, Any]) -> list[BaseEvent]:
            self.run.error = RunErrorEvent(message=_content(data), code=name)
            return self._close_all()

        return handle

    def _task_ended(self, data: dict[str, Any]) -> list[BaseEvent]:
        return self._close_all()

    def _task_cancelled(self, data: dict[str, Any]) -> list[BaseEvent]:
        self.run.cancelled = True
        return self._close_all()

    def _done(self, data: dict[str, Any]) -> list[BaseEvent]:
        parts = self._close_all()
        self.run.done = True
        if self.run.error is not None:
            return [*parts, self.run.error]
        run_id = self._run_id(data)
        outcome: RunFinishedInterruptOutcome | RunFinishedCancelledOutcome | RunFinishedSuccessOutcome
        if self.run.interrupt is not None:
            outcome = RunFinishedInterruptOutcome(interrupts=[self.run.interrupt])
        elif self.run.cancelled:
            outcome = RunFinishedCancelledOutcome()
        else:
            outcome = RunFinishedSuccessOutcome()
        return [*parts, RunFinishedEvent(thread_id=self.thread_id, run_id=run_id, outcome=outcome)]
