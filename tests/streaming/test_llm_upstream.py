"""The `llm` agent in-process against the scripted server: the upstream request's lifetime."""

from __future__ import annotations

import asyncio

import pytest

from streaming.agents.base import AgentContext
from streaming.agents.llm.agent import LlmAgent
from streaming.agents.llm.client import LlmError
from streaming.agents.llm.config import LlmConfig
from streaming.events import StreamResponseEvent
from tests.fake_openai import FakeOpenAI, Pause, Reply, Stall, chunk, text_reply


@pytest.fixture(scope="module")
def fake():
    server = FakeOpenAI(api_key="test").start()
    yield server
    server.close()


@pytest.fixture
def agent(fake):
    fake.reset()
    # No memory budget: the agent reads no history, so no database is needed here.
    config = LlmConfig(base_url=fake.base_url, api_key="test", model="fake", read_timeout=30, memory_max_messages=0)
    return LlmAgent(config)


def context() -> AgentContext:
    return AgentContext(conversation_id="conv-t", thread_id="th-t", task_id="task-t", agent_name="llm")


async def test_a_consumer_cancelled_while_the_agent_waits_at_a_yield_closes_the_upstream(agent, fake):
    """A run blocked elsewhere (say, on backpressure) when cancelled never resumes the
    generator; the upstream request must still be dropped, without waiting for the GC."""
    fake.enqueue(Reply(steps=[chunk({"content": "Hi"}), Stall()]))
    responses = agent.stream("Go", context())
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in responses:
            first.set()
            await asyncio.Event().wait()  # busy elsewhere until cancelled

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 10)
    assert not fake.disconnected
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(fake.wait_until, lambda f: 0 in f.disconnected, 5.0)
    await responses.aclose()  # the generator was alive all along: it was not the GC


async def test_a_finished_answer_leaves_no_request_open(agent, fake):
    fake.enqueue(text_reply("Hi", "!"))
    responses = [r async for r in agent.stream("Go", context())]
    assert [r.event for r in responses] == [StreamResponseEvent.MESSAGE_CHUNK] * 2
    assert [r.payload.content for r in responses] == ["Hi", "!"]
    assert fake.disconnected == set()  # read to the end, not cut off


async def test_a_configured_temperature_is_sent(fake):
    fake.reset()
    config = LlmConfig(base_url=fake.base_url, api_key="test", model="fake", temperature=0.2, memory_max_messages=0)
    fake.enqueue(text_reply("Hi"))
    [response] = [r async for r in LlmAgent(config).stream("Go", context())]
    assert response.payload.content == "Hi"
    assert fake.requests[0]["body"]["temperature"] == 0.2


async def test_a_generator_driven_one_task_per_step_keeps_its_upstream(agent, fake):
    """`wait_for(anext(...))` runs each step in a task of its own (Python 3.11); a step
    that ends with a result must not close the stream the next step reads."""
    fake.enqueue(Reply(steps=[
        chunk({"content": "a"}), Pause(0.1), chunk({"content": "b"}), Pause(0.1), chunk({}, finish_reason="stop")
    ]))
    responses = agent.stream("Go", context())
    chunks = []
    while True:
        try:
            response = await asyncio.create_task(anext(responses))
        except StopAsyncIteration:
            break
        chunks.append(response.payload.content)
    assert chunks == ["a", "b"]
    assert fake.disconnected == set()


@pytest.mark.parametrize(
    ("reasoning", "finish_reason", "message"),
    [
        ((), "stop", "The model finished without an answer (finish_reason 'stop')."),
        (
            ("Hmm, let me think about",),
            "length",
            "The model ran out of tokens before it answered (finish_reason 'length').",
        ),
    ],
)
async def test_a_turn_without_text_or_tool_calls_is_a_failure(agent, fake, reasoning, finish_reason, message):
    steps = [chunk({"role": "assistant", "content": ""})]
    steps += [chunk({"reasoning_content": piece}) for piece in reasoning]
    fake.enqueue(Reply(steps=[*steps, chunk({}, finish_reason=finish_reason)]))
    seen = []
    with pytest.raises(LlmError) as failed:
        async for response in agent.stream("Go", context()):
            seen.append(response.event.value)
    assert str(failed.value) == message
    assert seen == (["reasoning_started", "reasoning", "reasoning_completed"] if reasoning else [])


async def test_a_tool_call_without_a_name_is_a_failure_before_any_tool_runs(agent, fake):
    fake.enqueue(Reply(steps=[
        chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "list_tickers", "arguments": "{}"}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "c2", "function": {"arguments": "{}"}}]}),
        chunk({}, finish_reason="tool_calls"),
    ]))
    seen = []
    with pytest.raises(LlmError, match="without naming the tool"):
        async for response in agent.stream("Go", context()):
            seen.append(response.event.value)
    assert seen == []


async def test_an_inline_think_block_is_streamed_as_reasoning(agent, fake):
    fake.enqueue(text_reply("<think>Two plus", " two.</thi", "nk>It is", " 4."))
    responses = [r async for r in agent.stream("2+2?", context())]
    assert [(r.event.value, r.payload.content if r.payload else None) for r in responses] == [
        ("reasoning_started", None),
        ("reasoning", "Two plus"),
        ("reasoning", " two."),
        ("reasoning_completed", None),
        ("message_chunk", "It is"),
        ("message_chunk", " 4."),
    ]
