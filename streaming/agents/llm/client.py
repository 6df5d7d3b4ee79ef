"""Talking to an OpenAI-compatible endpoint: the client, retries with backoff, clear errors.

Every failure becomes an `LlmError` whose message says what went wrong in words a
user can act on; the run turns it into `task_failed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import openai
from openai import AsyncOpenAI, AsyncStream
from openai.types.chat import ChatCompletionChunk

from streaming.agents.base import AgentError
from streaming.agents.llm.config import LlmConfig

log = logging.getLogger(__name__)

# Worth another attempt: the endpoint is busy, broken for a moment, or unreachable.
RETRYABLE = (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError)


class LlmError(AgentError):
    """A failure of the model endpoint, with a message fit for the user."""


def make_client(config: LlmConfig) -> AsyncOpenAI:
    return AsyncOpenAI(
        base_url=config.base_url,
        api_key=config.api_key,
        timeout=openai.Timeout(config.read_timeout, connect=config.connect_timeout),
        max_retries=0,  # retries are ours: counted and paced by the settings
    )


def _detail(exc: openai.APIError) -> str:
    """The endpoint's own words, as one sentence."""
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        text = body["message"]
    elif isinstance(body, str) and body.strip():
        text = body.strip()[:300]
    else:
        text = exc.message
    text = text.strip() or "no details given"
    return text if text.endswith((".", "!", "?")) else text + "."


def describe(exc: Exception, config: LlmConfig, attempts: int = 1, midway: bool = False) -> LlmError:
    """The user-facing error for an exception raised while talking to the endpoint.

    `midway`: raised while reading a stream that had started.
    """
    tries = f" (tried {attempts} times)" if attempts > 1 else ""
    where = config.base_url
    if isinstance(exc, openai.APITimeoutError):
        if type(exc.__cause__).__name__ == "ConnectTimeout":
            return LlmError(
                f"The model endpoint at {where} did not accept a connection within {config.connect_timeout:g} s{tries}."
            )
        return LlmError(
            f"The model endpoint at {where} sent nothing for {config.read_timeout:g} s{tries}; gave up waiting."
        )
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        reason = f": {cause}" if cause and str(cause) else ""
        if midway:
            return LlmError(f"The connection to the model endpoint at {where} broke mid-answer{reason}")
        return LlmError(f"Could not reach the model endpoint at {where}{tries}{reason}")
    if isinstance(exc, openai.AuthenticationError):
        return LlmError(f"The model endpoint rejected the API key (HTTP 401): {_detail(exc)} Check LLM_API_KEY.")
    if isinstance(exc, openai.PermissionDeniedError):
        return LlmError(f"The model endpoint refused access (HTTP 403): {_detail(exc)}")
    if isinstance(exc, openai.NotFoundError):
        return LlmError(
            f"The model endpoint answered HTTP 404: {_detail(exc)} "
            f"Check LLM_BASE_URL ({where}) and LLM_MODEL ({config.model})."
        )
    if isinstance(exc, openai.RateLimitError):
        return LlmError(f"The model endpoint is rate limiting requests (HTTP 429){tries}: {_detail(exc)}")
    if isinstance(exc, openai.APIStatusError):
        return LlmError(f"The model endpoint answered HTTP {exc.status_code}{tries}: {_detail(exc)}")
    if isinstance(exc, openai.APIError):
        return LlmError(f"The model endpoint reported an error mid-answer: {_detail(exc)}")
    if isinstance(exc, ValueError):  # JSON that does not parse
        return LlmError(f"The model endpoint sent a malformed stream: {exc}")
    return LlmError(f"The model endpoint failed: {type(exc).__name__}: {exc}")


def _delay(config: LlmConfig, attempt: int, exc: Exception) -> float:
    """Exponential backoff with a little jitter; a `Retry-After` in seconds is honoured up to the cap."""
    delay = config.retry_backoff * (2**attempt) * (1 + random.random() / 4)
    response = getattr(exc, "response", None)
    header = response.headers.get("retry-after") if response is not None else None
    if header:
        try:
            delay = max(delay, float(header))
        except ValueError:
            pass  # an HTTP date: keep our own backoff
    return min(delay, config.retry_max_delay)


async def open_stream(
    client: AsyncOpenAI, config: LlmConfig, request: dict[str, Any]
) -> AsyncStream[ChatCompletionChunk]:
    """Start a streamed chat completion, retrying what is worth retrying.

    Only opening the stream is retried: once tokens flow they have been shown to
    the user, so a later failure ends the task instead of repeating the answer.
    """
    attempt = 0
    while True:
        try:
            return await client.chat.completions.create(**request, stream=True)
        except RETRYABLE as exc:
            if attempt >= config.max_retries:
                raise describe(exc, config, attempt + 1) from exc
            delay = _delay(config, attempt, exc)
            log.info("model endpoint: %s; retrying in %.2f s", type(exc).__name__, delay)
            await asyncio.sleep(delay)
            attempt += 1
        except openai.APIError as exc:
            raise describe(exc, config) from exc


@contextlib.asynccontextmanager
async def held_open(stream: AsyncStream[ChatCompletionChunk]) -> AsyncIterator[AsyncStream[ChatCompletionChunk]]:
    """Keep the upstream stream open for this block, and no longer than the task consuming it.

    Leaving the block closes it. So does a cancelled or failed consuming task: a
    consumer that dies while this agent is paused at a `yield` may drop the
    generator without closing it, and the upstream request must not wait for the
    GC. (A task that ends with a result, say one `wait_for(anext(...))` step, does
    not close it: the generator may go on in another task.)
    """
    task = asyncio.current_task()
    closing: set[asyncio.Future[None]] = set()  # a strong reference until the close ran

    def close_when_done(done: asyncio.Task) -> None:
        if done.cancelled() or done.exception() is not None:
            future = asyncio.ensure_future(stream.close())
            closing.add(future)
            future.add_done_callback(closing.discard)

    if task is not None:
        task.add_done_callback(close_when_done)
    try:
        async with stream:
            yield stream
    finally:
        if task is not None:
            task.remove_done_callback(close_when_done)
