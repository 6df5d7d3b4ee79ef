"""The `llm` agent: a model behind any OpenAI-compatible endpoint, streamed token by token.

It sends the conversation's earlier turns and the query, streams the answer as it
arrives, runs the tools the model asks for and feeds their results back, round
after round, until the model answers (or the round limit is hit).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai

from conversations.memory import prior_messages
from streaming.agents.base import Agent, AgentContext
from streaming.agents.llm.client import LlmError, describe, held_open, make_client, open_stream
from streaming.agents.llm.config import LlmConfig
from streaming.agents.llm.tools import ToolRegistry, market_tools
from streaming.agents.llm.turn import Turn, read_turn
from streaming.responses import AgentResponse, streaming


def _no_answer(finish_reason: str | None) -> str:
    if finish_reason == "length":
        return "The model ran out of tokens before it answered (finish_reason 'length')."
    return f"The model finished without an answer (finish_reason {finish_reason!r})."


class LlmAgent(Agent):
    name = "llm"
    description = "A language model behind an OpenAI-compatible endpoint, with market-data tools."

    def __init__(self, config: LlmConfig | None = None, tools: ToolRegistry | None = None) -> None:
        self.config = config or LlmConfig.from_settings()
        self.tools = tools if tools is not None else market_tools()
        self.description = (
            f"The model {self.config.model} behind an OpenAI-compatible endpoint, with market-data tools "
            f"({', '.join(self.tools.names())})."
        )

    async def _messages(self, query: str, ctx: AgentContext) -> list[dict[str, Any]]:
        history = await prior_messages(
            ctx.conversation_id, ctx.thread_id, self.config.memory_max_chars, self.config.memory_max_messages
        )
        return [{"role": "system", "content": self.config.system_prompt}, *history, {"role": "user", "content": query}]

    def _request(self, messages: list[dict[str, Any]], last_round: bool) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.config.model, "messages": messages}
        if self.config.temperature is not None:
            request["temperature"] = self.config.temperature
        if self.tools.names():
            request["tools"] = self.tools.schemas()
            # The last round must answer: the model may no longer call tools.
            request["tool_choice"] = "none" if last_round else "auto"
        return request

    async def stream(self, query: str, ctx: AgentContext) -> AsyncIterator[AgentResponse]:
        config = self.config
        messages = await self._messages(query, ctx)
        async with make_client(config) as client:
            for round_number in range(config.max_tool_rounds + 1):
                last_round = round_number == config.max_tool_rounds
                turn = Turn()
                stream = await open_stream(client, config, self._request(messages, last_round))
                # Leaving this block for any reason (done, failed, cancelled) closes the upstream request.
                async with held_open(stream):
                    try:
                        async for response in read_turn(stream, turn):
                            yield response
                    except (openai.APIError, ValueError) as exc:  # ValueError: JSON that does not parse
                        raise describe(exc, config, midway=True) from exc
                if not turn.tool_calls:
                    if not turn.content.strip():
                        raise LlmError(_no_answer(turn.finish_reason))
                    return
                if last_round:
                    raise LlmError(
                        f"The model still asked for tools after {config.max_tool_rounds} rounds of tool calls; stopped."
                    )
                if not all(call.name for call in turn.tool_calls):
                    raise LlmError("The model asked for a tool call without naming the tool.")
                call_ids = [call.id or f"{ctx.task_id}-r{round_number}-{i}" for i, call in enumerate(turn.tool_calls)]
                messages.append(turn.assistant_message(call_ids))
                for call_id, call in zip(call_ids, turn.tool_calls):
                    yield streaming.tool_call_started(call_id, call.name)
                    output = await self.tools.call(call.name, call.arguments)
                    yield streaming.tool_call_completed(output.text, call_id, call.name)
                    for component in output.components:
                        yield component
                    messages.append({"role": "tool", "tool_call_id": call_id, "content": output.text})
