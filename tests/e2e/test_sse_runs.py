"""End to end over a real Daphne: the demo flow, human in the loop, cancel."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from streaming.agents import market
from tests.e2e.client import names, read_events, resume, resume_if_any, run
from tests.live import LiveServer


@pytest.fixture
def client(daphne_server, alice_token):
    headers = {"Authorization": f"Bearer {alice_token}"}
    with httpx.Client(base_url=daphne_server.url, timeout=30, headers=headers) as c:
        yield c


def wait_for(predicate, timeout=15.0, interval=0.02):
    """Poll a server-side condition until it holds (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def tool_results(events):
    return {
        e["data"]["payload"]["tool_name"] + ":" + e["data"]["payload"]["tool_call_id"].rsplit("-", 1)[-1]:
        json.loads(e["data"]["payload"]["tool_result"])[0]["content"]
        for e in events
        if e["event"] == "tool_call_completed"
    }


def test_demo_query_streams_reasoning_tools_chart_report_and_summary(client):
    response, events = run(client, "How did NVDA do this year?")
    assert response.status_code == 200
    seq = [e["seq"] for e in events]
    assert seq == list(range(1, len(events) + 1))
    order = names(events)
    assert order[:4] == ["conversation_started", "thread_started", "task_started", "reasoning_started"]
    assert order[-2:] == ["task_completed", "done"]
    assert events[1]["data"]["payload"]["content"] == "How did NVDA do this year?"
    assert events[1]["data"]["role"] == "user"

    series = market.load_prices("NVDA")
    ret = market.total_return(series)
    vol = market.annualized_volatility(series)
    mdd, _, _ = market.max_drawdown(series)
    results = tool_results(events)
    assert f"{ret * 100:+.2f}%" in results["compute_return:return"]
    assert f"{vol * 100:.2f}%" in results["compute_volatility:vol"]
    assert f"{mdd * 100:+.2f}%" in results["compute_max_drawdown:mdd"]
    assert "252 daily closes" in results["load_prices:load"] or f"{len(series.closes)} daily closes" in results["load_prices:load"]

    components = [e["data"]["payload"] for e in events if e["event"] == "component_generator"]
    assert [c["component_type"] for c in components] == ["filtered_line_chart", "report"]
    chart = json.loads(components[0]["content"])
    assert chart["data"][0] == ["Date", "NVDA"]
    assert [row[1] for row in chart["data"][1:]] == list(series.closes)

    chunks = [e for e in events if e["event"] == "message_chunk"]
    assert len({c["data"]["item_id"] for c in chunks}) == 1, "one paragraph, one item"
    summary = "".join(c["data"]["payload"]["content"] for c in chunks)
    assert f"{ret * 100:+.2f}%" in summary and f"{vol * 100:.2f}%" in summary

    reasoning = [e for e in events if e["event"].startswith("reasoning")]
    assert len({e["data"]["item_id"] for e in reasoning}) == 1
    assert reasoning[-1]["event"] == "reasoning_completed"

    conversation_id = events[0]["data"]["conversation_id"]
    detail = client.get(f"/conversations/{conversation_id}").json()
    assert detail["conversation"]["status"] == "idle"
    assert [t["status"] for t in detail["tasks"]] == ["completed"]
    assert resume(client, conversation_id, 0) == events, "the store holds exactly what was delivered"
    items = client.get(f"/conversations/{conversation_id}/items").json()
    assert items["last_seq"] == len(events)
    assert [i["event"] for i in items["items"]][:2] == ["thread_started", "reasoning_completed"]
    assert items["items"][-1]["payload"]["content"] == summary


def test_question_waits_for_the_answer_and_resumes_the_same_task(client):
    _, first = run(client, "Tell me about the market")
    assert names(first)[-2:] == ["plan_require_user_input", "done"]
    question = first[-2]["data"]["payload"]["content"]
    assert "Which ticker" in question and "Tell me about the market" in question
    conversation_id = first[0]["data"]["conversation_id"]
    task_id = first[-2]["data"]["task_id"]
    detail = client.get(f"/conversations/{conversation_id}").json()
    assert detail["conversation"]["status"] == "require_user_input"
    assert detail["tasks"][0]["status"] == "waiting_input"

    _, second = run(client, "MSFT please", conversation_id=conversation_id)
    assert names(second)[0] == "thread_started"
    assert second[0]["data"]["payload"]["content"] == "MSFT please"
    assert second[0]["seq"] == first[-1]["seq"] + 1
    assert names(second)[-2:] == ["task_completed", "done"]
    assert {e["data"]["task_id"] for e in second if e["data"].get("task_id")} == {task_id}
    detail = client.get(f"/conversations/{conversation_id}").json()
    assert [t["status"] for t in detail["tasks"]] == ["completed"]
    assert len(detail["threads"]) == 2


def test_second_input_while_running_is_409_and_the_run_goes_on(client):
    with client.stream("POST", "/agents/stream", json={"query": "k=60 delay_ms=10", "agent_name": "bench"}) as response:
        events = read_events(response, limit=3)
        conversation_id = events[0].json["data"]["conversation_id"]
        busy = client.post("/agents/stream", json={"query": "again", "conversation_id": conversation_id})
        assert busy.status_code == 409
        assert busy.json()["error"]["code"] == "conversation_busy"
        rest = read_events(response)
    assert [e.json["event"] for e in rest][-2:] == ["task_completed", "done"]


def test_cancel_ends_the_task_with_task_cancelled_then_done(client):
    with client.stream("POST", "/agents/stream", json={"query": "k=5000 delay_ms=5", "agent_name": "bench"}) as response:
        head = read_events(response, limit=5)
        conversation_id = head[0].json["data"]["conversation_id"]
        cancel = client.post(f"/conversations/{conversation_id}/cancel")
        assert cancel.status_code == 202
        tail = [e.json for e in read_events(response)]
    assert names(tail)[-2:] == ["task_cancelled", "done"]
    assert len([e for e in tail if e["event"] == "message_chunk"]) < 5000
    detail = client.get(f"/conversations/{conversation_id}").json()
    assert detail["tasks"][0]["status"] == "cancelled"
    assert detail["conversation"]["status"] == "idle"
    again = client.post(f"/conversations/{conversation_id}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_running"


def test_cancel_while_waiting_for_an_answer(client):
    _, first = run(client, "no ticker here")
    conversation_id = first[0]["data"]["conversation_id"]
    assert client.post(f"/conversations/{conversation_id}/cancel").status_code == 202
    # The cancel is accepted (202) before it lands; until then the resume has nothing to send (204).
    events = wait_for(lambda: resume_if_any(client, conversation_id, first[-1]["seq"]))
    assert names(events) == ["task_cancelled", "done"]
    assert client.get(f"/conversations/{conversation_id}").json()["tasks"][0]["status"] == "cancelled"


def test_agent_failure_gives_task_failed_then_done(client):
    _, events = run(client, "not a bench query", agent_name="bench")
    assert names(events)[-2:] == ["task_failed", "done"]
    assert "k=N delay_ms=D" in events[-2]["data"]["payload"]["content"]
    conversation_id = events[0]["data"]["conversation_id"]
    task = client.get(f"/conversations/{conversation_id}").json()["tasks"][0]
    assert task["status"] == "failed" and "k=N" in task["error"]


def test_a_conversation_takes_a_new_run_after_the_previous_one(client):
    _, first = run(client, "k=2 delay_ms=0", agent_name="bench")
    conversation_id = first[0]["data"]["conversation_id"]
    _, second = run(client, "k=3 delay_ms=0", agent_name="bench", conversation_id=conversation_id)
    assert names(second)[0] == "thread_started", "no second conversation_started"
    assert [e["seq"] for e in second] == list(range(first[-1]["seq"] + 1, first[-1]["seq"] + 1 + len(second)))


@pytest.fixture(scope="module")
def impatient_server():
    server = LiveServer(env={"VALUECELL_INPUT_TIMEOUT_SECONDS": "0.5"}).start()
    yield server
    server.close()


def test_unanswered_question_cancels_the_task_after_the_timeout(impatient_server):
    headers = {"Authorization": f"Bearer {impatient_server.token('carol')}"}
    with httpx.Client(base_url=impatient_server.url, timeout=30, headers=headers) as client:
        _, first = run(client, "hello there")
        conversation_id = first[0]["data"]["conversation_id"]
        wait_for(lambda: client.get(f"/conversations/{conversation_id}").json()["conversation"]["status"] == "idle")
        later = resume(client, conversation_id, first[-1]["seq"])
        assert names(later) == ["task_cancelled", "done"]
        assert client.get(f"/conversations/{conversation_id}").json()["tasks"][0]["status"] == "cancelled"
        # The conversation takes new input afterwards.
        _, again = run(client, "AAPL", conversation_id=conversation_id)
        assert names(again)[-2:] == ["task_completed", "done"]


def test_the_next_input_is_accepted_the_moment_done_arrives(client):
    """`done` is stored together with the conversation going idle: no 409 race."""
    _, events = run(client, "k=1 delay_ms=0", agent_name="bench")
    conversation_id = events[0]["data"]["conversation_id"]
    for round_ in range(8):
        response, events = run(client, "k=1 delay_ms=0", agent_name="bench", conversation_id=conversation_id)
        assert response.status_code == 200, f"round {round_}: {response.status_code}"
        assert names(events)[-1] == "done"
    # And an answer sent the moment a question's `done` arrives is taken as the answer.
    for round_ in range(4):
        _, asked = run(client, "no ticker, round %d" % round_, conversation_id=conversation_id)
        assert names(asked)[-2:] == ["plan_require_user_input", "done"]
        response, answered = run(client, "NVDA", conversation_id=conversation_id)
        assert response.status_code == 200 and names(answered)[0] == "thread_started"
        assert names(answered)[-2:] == ["task_completed", "done"]
