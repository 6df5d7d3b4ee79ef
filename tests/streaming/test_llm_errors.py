"""The messages a user reads when the model endpoint fails, for the cases the fake server cannot stage."""

from __future__ import annotations

import httpx2
import openai
import pytest

from streaming.agents.llm.client import describe
from streaming.agents.llm.config import LlmConfig

CONFIG = LlmConfig(base_url="http://model.invalid/v1", api_key="k", model="m-1", connect_timeout=4, read_timeout=9)
REQUEST = httpx2.Request("POST", "http://model.invalid/v1/chat/completions")


def status_error(cls: type[openai.APIStatusError], status: int, message: str) -> openai.APIStatusError:
    response = httpx2.Response(status, request=REQUEST)
    return cls(f"Error code: {status}", response=response, body={"message": message})


def timeout(cause: Exception) -> openai.APITimeoutError:
    try:
        raise openai.APITimeoutError(request=REQUEST) from cause
    except openai.APITimeoutError as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "attempts", "message"),
    [
        (timeout(httpx2.ConnectTimeout("slow")), 3,
         "The model endpoint at http://model.invalid/v1 did not accept a connection within 4 s (tried 3 times)."),
        (timeout(httpx2.ReadTimeout("slow")), 1,
         "The model endpoint at http://model.invalid/v1 sent nothing for 9 s; gave up waiting."),
        (status_error(openai.PermissionDeniedError, 403, "Not for you"), 1,
         "The model endpoint refused access (HTTP 403): Not for you."),
        (status_error(openai.NotFoundError, 404, "The model `m-1` does not exist"), 1,
         "The model endpoint answered HTTP 404: The model `m-1` does not exist. "
         "Check LLM_BASE_URL (http://model.invalid/v1) and LLM_MODEL (m-1)."),
        (status_error(openai.BadRequestError, 400, ""), 1, "The model endpoint answered HTTP 400: no details given."),
        (RuntimeError("boom"), 1, "The model endpoint failed: RuntimeError: boom"),
    ],
)
def test_each_failure_has_a_message_that_says_what_to_do(exc, attempts, message):
    assert str(describe(exc, CONFIG, attempts)) == message
