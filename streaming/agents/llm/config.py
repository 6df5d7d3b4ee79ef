"""The `llm` agent's configuration, read from the `LLM_*` settings.

The agent is offered only when an endpoint and a model are set (`is_configured`).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

DEFAULT_SYSTEM_PROMPT = (
    "You are a market research assistant. For any figure about a stock, call the tools: "
    "they compute returns, volatility and drawdowns from the sample price data. "
    "The sample prices are synthetic, so say so when you quote them. "
    "Answer concisely in Markdown."
)


@dataclass(frozen=True)
class LlmConfig:
    base_url: str
    api_key: str
    model: str
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    temperature: float | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0  # the longest silence tolerated from the endpoint
    max_retries: int = 2  # extra attempts after a 429, a 5xx or a connection failure
    retry_backoff: float = 1.0  # first wait, doubled at each retry
    retry_max_delay: float = 20.0
    max_tool_rounds: int = 5
    memory_max_chars: int = 12_000
    memory_max_messages: int = 20

    @classmethod
    def from_settings(cls) -> LlmConfig:
        return cls(
            base_url=settings.LLM_BASE_URL,
            # Local servers (Ollama, vLLM) accept any key, but the client needs one.
            api_key=settings.LLM_API_KEY or "not-needed",
            model=settings.LLM_MODEL,
            system_prompt=settings.LLM_SYSTEM_PROMPT or DEFAULT_SYSTEM_PROMPT,
            temperature=settings.LLM_TEMPERATURE,
            connect_timeout=settings.LLM_CONNECT_TIMEOUT_SECONDS,
            read_timeout=settings.LLM_READ_TIMEOUT_SECONDS,
            max_retries=settings.LLM_MAX_RETRIES,
            retry_backoff=settings.LLM_RETRY_BACKOFF_SECONDS,
            retry_max_delay=settings.LLM_RETRY_MAX_DELAY_SECONDS,
            max_tool_rounds=settings.LLM_MAX_TOOL_ROUNDS,
            memory_max_chars=settings.LLM_MEMORY_MAX_CHARS,
            memory_max_messages=settings.LLM_MEMORY_MAX_MESSAGES,
        )


def is_configured() -> bool:
    return bool(getattr(settings, "LLM_BASE_URL", "") and getattr(settings, "LLM_MODEL", ""))
