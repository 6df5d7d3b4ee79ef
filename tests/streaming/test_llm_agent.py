"""The `llm` agent end to end: a real Daphne talking to a scripted OpenAI-compatible server.

Each test queues the model's replies on the fake server, runs a query through
`POST /agents/stream` and asserts the exact events, and what the model was sent.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from streaming.agents import market
from tests.e2e.client import names, read_events, run
from tests.fake_openai import FakeOpenAI, Raw, Reply, Stall, chunk, error_reply, text_reply, tool_reply
from tests.live import LiveServer, free_port

pytestmark = pytest.mark.e2e

READ_TIMEOUT = 3.0
SYSTEM_PROMPT = "You are the test model."
START = ["conversation_started", "thread_started", "task_started"]
OK_END = ["task_completed", "done"]
FAIL_END = ["task_failed", "done"]


def llm_env(base_url: str, **extra: str) -> dict[str, str]:
    return {
        "LLM_BASE_URL": base_url,
        "LLM_API_KEY": "test",
        "LLM_MODEL": "fake",
        "LLM_SYSTEM_PROMPT": SYSTEM_PROMPT,
        "LLM_TEMPERATURE": "",
        "LLM_CONNECT_TIMEOUT_SECONDS": "2",
        "LLM_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
        "LLM_MAX_RETRIES": "2",
        "LLM_RETRY_BACKOFF_SECONDS": "0.05",
        "LLM_RETRY_MAX_DELAY_SECONDS": "0.5",
        "LLM_MAX_TOOL_ROUNDS": "2",
        "LLM_MEMORY_MAX_CHARS": "2000",
        "LLM_MEMORY_MAX_MESSAGES": "4",
        **extra,
    }


@pytest.fixture(scope="module")
def fake():
    server = FakeOpenAI(api_key="test").start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def llm_server(fake):
    server = LiveServer(env=llm_env(fake.base_url)).start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def token(llm_server):
    return llm_server.token("alice")


@pytest.fixture
def client(llm_server, token, fake):
    fake.reset()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=llm_server.url, timeout=30, headers=headers) as c:
        yield c
    assert fake.pending() == 0, "a scripted reply was never requested"


def ask(client: httpx.Client, query: str, **fields) -> list[dict]:
    response, events = run(client, query, agent_name="llm", **fields)
    assert response.status_code == 200, response.text
    return events


def ask_again(client: httpx.Client, conversation_id: str, query: str) -> list[dict]:
    """A follow-up, once the previous run has released the conversation (it does so just after `done`)."""
    deadline = time.monotonic() + 10
    while client.get(f"/conversations/{conversation_id}").json()["conversation"]["status"] != "idle":
        assert time.monotonic() < deadline, "the conversation did not become idle"
        time.sleep(0.02)  # polling a server-side condition, bounded by the deadline
    return ask(client, query, conversation_id=conversation_id)


def contents(events: list[dict], event: str) -> list[str]:
    return [e["data"]["payload"]["content"] for e in events if e["event"] == event]


def failure(events: list[dict]) -> str:
    [message] = contents(events, "task_failed")
    return message


def tool_result(event: dict) -> dict:
    return json.loads(json.loads(event["data"]["payload"]["tool_result"])[0]["content"])


def sent(fake: FakeOpenAI, index: int) -> dict:
    return fake.requests[index]["body"]


# --- registration ---------------------------------------------------------------------


def test_agents_lists_llm_when_configured(client):
    agents = {a["name"]: a["description"] for a in client.get("/agents").json()["agents"]}
    assert "llm" in agents
    assert "fake" in agents["llm"]


def test_agents_does_not_list_llm_without_configuration():
    server = LiveServer(env={"LLM_BASE_URL": "", "LLM_MODEL": "", "LLM_API_KEY": ""}).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            listed = [a["name"] for a in client.get("/agents").json()["agents"]]
            assert "demo" in listed and "llm" not in listed
            response, _ = run(client, "hello", agent_name="llm")
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "unknown_agent"
    finally:
        server.close()


# --- streaming ------------------------------------------------------------------------


def test_plain_text_streams_each_delta_as_a_message_chunk(client, fake):
    fake.enqueue(text_reply("Hello", ", ", "world."))
    events = ask(client, "Say hello")
    assert names(events) == START + ["message_chunk"] * 3 + OK_END
    assert contents(events, "message_chunk") == ["Hello", ", ", "world."]
    chunks = [e for e in events if e["event"] == "message_chunk"]
    assert len({e["data"]["item_id"] for e in chunks}) == 1
    assert {e["data"]["agent_name"] for e in chunks} == {"llm"}

    [request] = fake.requests
    assert request["authorization"] == "Bearer test"
    body = request["body"]
    assert body["model"] == "fake" and body["stream"] is True
    assert body["messages"] == [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "Say hello"}]
    assert [t["function"]["name"] for t in body["tools"]] == [
        "list_tickers", "load_prices", "compute_statistics", "chart_prices"
    ]
    assert body["tool_choice"] == "auto"
    assert "temperature" not in body
    assert httpx.get(f"{fake.url}/_requests").json() == {
        "requests": [{"index": 0, "authorization": "Bearer test", "body": body}],
        "disconnected": [],
    }

    conversation_id = events[0]["data"]["conversation_id"]
    items = client.get(f"/conversations/{conversation_id}/items").json()["items"]
    assert [i["payload"].get("content") for i in items if i["event"] == "message_chunk"] == ["Hello, world."]


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_deltas_become_a_reasoning_block_before_the_text(client, fake, field):
    fake.enqueue(text_reply("It is ", "4.", reasoning=("Two plus ", "two."), reasoning_field=field))
    events = ask(client, "What is 2+2?")
    assert names(events) == START + [
        "reasoning_started", "reasoning", "reasoning", "reasoning_completed", "message_chunk", "message_chunk"
    ] + OK_END
    assert contents(events, "reasoning") == ["Two plus ", "two."]
    assert contents(events, "message_chunk") == ["It is ", "4."]
    block = [e["data"]["item_id"] for e in events if e["event"].startswith("reasoning")]
    assert len(set(block)) == 1


# --- tools ----------------------------------------------------------------------------


def test_one_tool_round_runs_the_tool_and_feeds_its_result_back(client, fake):
    fake.enqueue(
        tool_reply(("call_1", "compute_statistics", {"ticker": "NVDA"})),
        text_reply("NVDA did well."),
    )
    events = ask(client, "How did NVDA do?")
    assert names(events) == START + ["tool_call_started", "tool_call_completed", "message_chunk"] + OK_END
    started, completed = events[3], events[4]
    assert started["data"]["payload"] == {"tool_call_id": "call_1", "tool_name": "compute_statistics"}
    assert started["data"]["item_id"] == completed["data"]["item_id"]

    series = market.load_prices("NVDA")
    mdd, peak, trough = market.max_drawdown(series)
    result = tool_result(completed)
    assert result["total_return_pct"] == round(market.total_return(series) * 100, 2)
    assert result["annualized_volatility_pct"] == round(market.annualized_volatility(series) * 100, 2)
    assert (result["max_drawdown_pct"], result["drawdown_peak_date"], result["drawdown_trough_date"]) == (
        round(mdd * 100, 2), peak, trough
    )

    assert len(fake.requests) == 2
    follow_up = sent(fake, 1)["messages"]
    assert follow_up[:2] == sent(fake, 0)["messages"]
    assert follow_up[2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "compute_statistics", "arguments": '{"ticker": "NVDA"}'}}],
    }
    assert follow_up[3]["role"] == "tool" and follow_up[3]["tool_call_id"] == "call_1"
    assert json.loads(follow_up[3]["content"]) == result


def test_two_tool_rounds_with_several_calls_and_a_chart(client, fake):
    fake.enqueue(
        tool_reply(("call_a", "load_prices", {"ticker": "MSFT"}), text=("Let me look.",)),
        tool_reply(
            ("call_b", "compute_statistics", {"ticker": "MSFT"}),
            ("call_c", "chart_prices", {"tickers": ["MSFT", "AAPL"]}),
        ),
        text_reply("Here is MSFT."),
    )
    events = ask(client, "Tell me about MSFT vs AAPL")
    assert names(events) == START + [
        "message_chunk",
        "tool_call_started", "tool_call_completed",
        "tool_call_started", "tool_call_completed",
        "tool_call_started", "tool_call_completed", "component_generator",
        "message_chunk",
    ] + OK_END
    completed = [e for e in events if e["event"] == "tool_call_completed"]
    assert [e["data"]["payload"]["tool_call_id"] for e in completed] == ["call_a", "call_b", "call_c"]

    msft = market.load_prices("MSFT")
    loaded = tool_result(completed[0])
    assert (loaded["days"], loaded["first_close"], loaded["last_close"]) == (
        len(msft.closes), msft.closes[0], msft.closes[-1]
    )
    assert tool_result(completed[1])["total_return_pct"] == round(market.total_return(msft) * 100, 2)
    assert tool_result(completed[2]) == {"charted": ["MSFT", "AAPL"], "days": len(msft.dates)}

    [chart] = [e for e in events if e["event"] == "component_generator"]
    assert chart["data"]["payload"]["component_type"] == "filtered_line_chart"
    data = json.loads(chart["data"]["payload"]["content"])["data"]
    assert data[0] == ["Date", "MSFT", "AAPL"] and len(data) == len(msft.dates) + 1
    assert data[-1] == [msft.dates[-1], msft.closes[-1], market.load_prices("AAPL").closes[-1]]

    # Round 2 carries round 1; the last allowed round may not call tools.
    assert len(fake.requests) == 3
    third = sent(fake, 2)
    assert [m["role"] for m in third["messages"]] == [
        "system", "user", "assistant", "tool", "assistant", "tool", "tool"
    ]
    assert third["messages"][2]["content"] == "Let me look."
    assert [sent(fake, i)["tool_choice"] for i in range(3)] == ["auto", "auto", "none"]


def test_a_model_that_keeps_calling_tools_is_stopped_after_the_round_limit(client, fake):
    fake.enqueue(*(tool_reply((f"call_{i}", "list_tickers", {})) for i in range(3)))
    events = ask(client, "Loop forever")
    assert names(events) == START + ["tool_call_started", "tool_call_completed"] * 2 + FAIL_END
    assert failure(events) == "The model still asked for tools after 2 rounds of tool calls; stopped."


def test_bad_tool_arguments_go_back_to_the_model_as_an_error(client, fake):
    fake.enqueue(
        tool_reply(("call_x", "compute_statistics", {"ticker": "ZZZZ"}), ("call_y", "no_such_tool", {})),
        text_reply("I do not know ZZZZ."),
    )
    events = ask(client, "How did ZZZZ do?")
    assert names(events) == START + ["tool_call_started", "tool_call_completed"] * 2 + ["message_chunk"] + OK_END
    completed = [e for e in events if e["event"] == "tool_call_completed"]
    assert "no sample data for ticker 'ZZZZ'" in tool_result(completed[0])["error"]
    assert "There is no tool named 'no_such_tool'" in tool_result(completed[1])["error"]
    assert json.loads(sent(fake, 1)["messages"][-1]["content"]) == tool_result(completed[1])


# --- failures -------------------------------------------------------------------------


def test_an_error_mid_stream_fails_the_task_after_what_was_said(client, fake):
    fake.enqueue(Reply(steps=[
        chunk({"role": "assistant", "content": "Partial"}),
        {"error": {"message": "upstream exploded", "type": "server_error"}},
    ]))
    events = ask(client, "Go")
    assert names(events) == START + ["message_chunk"] + FAIL_END
    assert failure(events) == "The model endpoint reported an error mid-answer: upstream exploded."


def test_malformed_json_in_the_stream_fails_the_task(client, fake):
    fake.enqueue(Reply(steps=[chunk({"content": "A"}), Raw("data: {not json\n\n")]))
    events = ask(client, "Go")
    assert names(events) == START + ["message_chunk"] + FAIL_END
    assert failure(events).startswith("The model endpoint sent a malformed stream: ")


def test_a_stream_cut_before_the_answer_finished_fails_the_task(client, fake):
    fake.enqueue(Reply(steps=[chunk({"content": "Half an ans"})], done=False))
    events = ask(client, "Go")
    assert names(events) == START + ["message_chunk"] + FAIL_END
    assert failure(events) == (
        "The model endpoint sent a malformed stream: the stream ended before the model finished its answer"
    )


def test_a_429_is_retried_with_backoff_then_succeeds(client, fake):
    fake.enqueue(error_reply(429, "Slow down", "rate_limit_exceeded"), text_reply("Done."))
    events = ask(client, "Go")
    assert names(events) == START + ["message_chunk"] + OK_END
    assert len(fake.requests) == 2
    assert fake.requests[1]["at"] - fake.requests[0]["at"] >= 0.05  # LLM_RETRY_BACKOFF_SECONDS
    assert sent(fake, 1) == sent(fake, 0)


@pytest.mark.parametrize(
    ("reply", "least_gap"),
    [
        (error_reply(429, "Slow down", headers={"Retry-After": "0.3"}), 0.3),  # honoured, under the 0.5 s cap
        (error_reply(503, "Overloaded"), 0.05),
    ],
)
def test_retry_after_and_server_errors_are_retried(client, fake, reply, least_gap):
    fake.enqueue(reply, text_reply("Done."))
    events = ask(client, "Go")
    assert names(events) == START + ["message_chunk"] + OK_END
    assert len(fake.requests) == 2
    assert fake.requests[1]["at"] - fake.requests[0]["at"] >= least_gap


def test_a_429_that_persists_fails_after_the_retries(client, fake):
    fake.enqueue(*(error_reply(429, "Slow down", "rate_limit_exceeded") for _ in range(3)))
    events = ask(client, "Go")
    assert names(events) == START + FAIL_END
    assert failure(events) == "The model endpoint is rate limiting requests (HTTP 429) (tried 3 times): Slow down."
    assert len(fake.requests) == 3  # one attempt and LLM_MAX_RETRIES=2 retries
    gaps = [b["at"] - a["at"] for a, b in zip(fake.requests, fake.requests[1:])]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1  # doubled


def test_a_401_fails_at_once_with_a_clear_message(client, fake):
    fake.enqueue(error_reply(401, "Incorrect API key provided.", "invalid_api_key"))
    events = ask(client, "Go")
    assert names(events) == START + FAIL_END
    assert failure(events) == (
        "The model endpoint rejected the API key (HTTP 401): Incorrect API key provided. Check LLM_API_KEY."
    )
    assert len(fake.requests) == 1  # not retried


def test_a_stall_past_the_timeout_fails_the_task_and_drops_the_request(client, fake):
    fake.enqueue(Reply(steps=[chunk({"content": "Thinking"}), Stall()]))
    events = ask(client, "Go")
    assert names(events) == START + ["message_chunk"] + FAIL_END
    assert failure(events) == (
        f"The model endpoint at {fake.base_url} sent nothing for {READ_TIMEOUT:g} s; gave up waiting."
    )
    assert fake.wait_until(lambda f: 0 in f.disconnected, timeout=5)


def test_cancel_closes_the_upstream_request(client, fake):
    fake.enqueue(Reply(steps=[chunk({"content": "Starting"}), Stall()]))
    with client.stream("POST", "/agents/stream", json={"query": "Go", "agent_name": "llm"}) as response:
        assert response.status_code == 200
        head = read_events(response, limit=4)
        assert [e.json["event"] for e in head] == START + ["message_chunk"]  # streamed while upstream is open
        assert fake.requests and not fake.disconnected
        conversation_id = head[0].json["data"]["conversation_id"]
        assert client.post(f"/conversations/{conversation_id}/cancel").status_code == 202
        tail = [e.json for e in read_events(response)]
    assert names(tail) == ["task_cancelled", "done"]
    assert fake.wait_until(lambda f: 0 in f.disconnected, timeout=READ_TIMEOUT - 0.5)


def test_an_unreachable_endpoint_fails_the_task_after_the_retries():
    dead = f"http://127.0.0.1:{free_port()}/v1"
    server = LiveServer(env=llm_env(dead, LLM_MAX_RETRIES="1", LLM_RETRY_BACKOFF_SECONDS="0.01")).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            events = ask(client, "Anyone there?")
        assert names(events) == START + FAIL_END
        assert failure(events).startswith(f"Could not reach the model endpoint at {dead} (tried 2 times)")
    finally:
        server.close()


# --- memory ---------------------------------------------------------------------------


def test_earlier_turns_are_sent_as_messages_within_the_budget(client, fake):
    fake.enqueue(text_reply("Four."))
    first = ask(client, "What is 2+2?")
    conversation_id = first[0]["data"]["conversation_id"]

    fake.enqueue(text_reply("Six", "."))
    assert names(ask_again(client, conversation_id, "And 3+3?"))[-2:] == OK_END
    assert sent(fake, 1)["messages"] == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "Four."},
        {"role": "user", "content": "And 3+3?"},
    ]

    # A failed turn has no answer and is left out; the budget (4 messages) drops the oldest turn.
    fake.enqueue(error_reply(401, "nope"))
    assert names(ask_again(client, conversation_id, "This one fails"))[-2:] == FAIL_END
    fake.enqueue(text_reply("Eight."))
    ask_again(client, conversation_id, "And 4+4?")
    fake.enqueue(text_reply("Ten."))
    ask_again(client, conversation_id, "And 5+5?")
    assert sent(fake, 4)["messages"] == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "Six."},
        {"role": "user", "content": "And 4+4?"},
        {"role": "assistant", "content": "Eight."},
        {"role": "user", "content": "And 5+5?"},
    ]
