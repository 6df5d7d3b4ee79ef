"""One streamed model turn: deltas become responses as they arrive, and the turn is kept.

Content deltas are message chunks, reasoning deltas (`reasoning_content`,
`reasoning` or a leading `<think>` block) a reasoning block; tool calls are assembled by index.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from streaming.agents.llm.think import ThinkSplitter
from streaming.responses import AgentResponse, streaming

# Servers name the model's thinking differently: DeepSeek and vLLM say
# `reasoning_content`, Ollama and OpenRouter say `reasoning`.
REASONING_FIELDS = ("reasoning_content", "reasoning")


class MalformedStream(ValueError):
    """The endpoint's stream does not have the shape of a chat completion."""


@dataclass
class ToolCallDraft:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class Turn:
    """What the model said in one turn, assembled from its deltas."""

    content: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCallDraft] = field(default_factory=list)
    finish_reason: str | None = None
    _by_index: dict[int, ToolCallDraft] = field(default_factory=dict, repr=False)

    def add_tool_delta(self, delta: Any) -> None:
        index = getattr(delta, "index", None)
        if not isinstance(index, int):
            index = len(self._by_index)
        draft = self._by_index.get(index)
        if draft is None:
            draft = self._by_index[index] = ToolCallDraft()
            self.tool_calls.append(draft)
        if getattr(delta, "id", None):
            draft.id = delta.id
        function = getattr(delta, "function", None)
        name = getattr(function, "name", None)
        if isinstance(name, str) and name and name != draft.name:
            draft.name += name
        arguments = getattr(function, "arguments", None)
        if isinstance(arguments, str):
            draft.arguments += arguments

    def assistant_message(self, call_ids: list[str]) -> dict[str, Any]:
        """The turn as the assistant message fed back with the tool results."""
        return {
            "role": "assistant",
            "content": self.content or None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments or "{}"},
                }
                for call_id, call in zip(call_ids, self.tool_calls)
            ],
        }


def _reasoning_text(delta: Any) -> str:
    for name in REASONING_FIELDS:
        value = getattr(delta, name, None)
        if isinstance(value, str) and value:
            return value
    return ""


class _Blocks:
    """Opens and closes the reasoning block around thoughts; text closes it."""

    def __init__(self, turn: Turn) -> None:
        self.turn = turn
        self.thinking = False

    def thought(self, text: str) -> list[AgentResponse]:
        responses = [] if self.thinking else [streaming.reasoning_started()]
        self.thinking = True
        self.turn.reasoning += text
        return [*responses, streaming.reasoning(text)]

    def end_thought(self) -> list[AgentResponse]:
        if not self.thinking:
            return []
        self.thinking = False
        return [streaming.reasoning_completed()]

    def text(self, text: str) -> list[AgentResponse]:
        self.turn.content += text
        return [*self.end_thought(), streaming.message_chunk(text)]

    def piece(self, kind: str, text: str) -> list[AgentResponse]:
        return self.thought(text) if kind == "reasoning" else self.text(text)


async def read_turn(stream: AsyncIterator[Any], turn: Turn) -> AsyncIterator[AgentResponse]:
    """Yield responses for each delta of `stream` as it arrives, filling `turn`."""
    blocks = _Blocks(turn)
    inline = ThinkSplitter()
    seen_chunk = False
    async for chunk in stream:
        seen_chunk = True
        choices = getattr(chunk, "choices", None)
        if not isinstance(choices, list):
            raise MalformedStream(f"a chunk without choices: {str(chunk)[:200]}")
        if not choices:
            continue  # a usage-only chunk
        choice = choices[0]
        delta = getattr(choice, "delta", None)
        thought = _reasoning_text(delta)
        if thought:
            for response in blocks.thought(thought):
                yield response
        content = getattr(delta, "content", None)
        if isinstance(content, str) and content:
            for kind, piece in inline.feed(content):
                for response in blocks.piece(kind, piece):
                    yield response
        tool_deltas = getattr(delta, "tool_calls", None) or []
        if tool_deltas:
            for response in blocks.end_thought():
                yield response
        for tool_delta in tool_deltas:
            turn.add_tool_delta(tool_delta)
        finish = getattr(choice, "finish_reason", None)
        if finish:
            turn.finish_reason = finish
    for kind, piece in inline.finish():
        for response in blocks.piece(kind, piece):
            yield response
    for response in blocks.end_thought():
        yield response
    if not seen_chunk:
        raise MalformedStream("the stream ended before the model said anything")
    if turn.finish_reason is None:
        raise MalformedStream("the stream ended before the model finished its answer")
