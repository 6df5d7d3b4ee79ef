"""The real `@ag-ui/client` (Node, tests/node/) against a real Daphne: a run with
tool calls, an interrupt and its answer, a resume from a cursor inside a message
and from a frame inside one stored event's frames (an `N.k` id).

`make test` installs the client (`npm ci` in tests/node). Without Node or the
installed client these tests FAIL under CI=true and skip elsewhere.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from ag_ui.core import Event
from pydantic import TypeAdapter

from tests.conftest import IN_CI
from tests.e2e.client import read_events
from tests.live import LiveServer
from tests.streaming.dialect_runs import Messages

pytestmark = pytest.mark.e2e

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
SCRIPT = NODE_DIR / "agui_scenarios.mjs"
EVENT = TypeAdapter(Event)


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (`make test` runs `npm ci` in tests/node; Node 20 and npm are required in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if not path:
        unavailable("node is not installed")
    if not (NODE_DIR / "node_modules" / "@ag-ui" / "client").is_dir():
        unavailable("@ag-ui/client is not installed (cd tests/node && npm ci)")
    return path


@pytest.fixture(scope="module")
def server():
    # Chunks 25 ms apart: a resumed stream catches the run still going.
    server = LiveServer(env={"VALUECELL_DEMO_CHUNK_DELAY_MS": "25", "VALUECELL_SHUTDOWN_GRACE_SECONDS": "0.5"}).start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def token(server) -> str:
    return server.token("node-client")


def scenario(node: str, server: LiveServer, token: str, name: str, **options) -> dict:
    args = {"scenario": name, "url": server.url, "token": token, "threadId": f"thread-{uuid.uuid4().hex}", **options}
    done = subprocess.run([node, str(SCRIPT), json.dumps(args)], cwd=NODE_DIR, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"node failed:\n{done.stderr}\n{server.log()[-3000:]}"
    result = json.loads(done.stdout)
    result["threadId"] = args["threadId"]
    return result


def clean(run: dict) -> None:
    """The client's verifier, schema checks and transport found nothing wrong."""
    assert run["failed"] is None and "rejected" not in run, run.get("failed") or run.get("rejected")


def types(run: dict) -> list[str]:
    return [event["type"] for event in run["events"]]


def items(server: LiveServer, token: str, conversation_id: str) -> list[dict]:
    response = httpx.get(
        f"{server.url}/conversations/{conversation_id}/items", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


def conversation_of(run: dict) -> str:
    return run["events"][0]["metadata"]["valuecell"]["conversation_id"]


def test_a_run_with_tool_calls_reads_as_one_valid_agui_run(node, server, token):
    result = scenario(node, server, token, "tools", query="Compare AAPL and MSFT")
    (run,) = result["runs"]
    clean(run)
    assert result["unhandled"] == []
    kinds = types(run)
    assert kinds[0] == "RUN_STARTED" and kinds[-1] == "RUN_FINISHED"
    assert run["finished"] == [{"outcome": "success", "interrupts": None}]
    assert kinds.count("TOOL_CALL_START") == kinds.count("TOOL_CALL_END") == kinds.count("TOOL_CALL_RESULT") == 8
    messages = result["messages"]
    calls = [call for m in messages if m["role"] == "assistant" for call in m.get("toolCalls", [])]
    assert [c["function"]["name"] for c in calls] == ["load_prices", "compute_return", "compute_volatility",
                                                      "compute_max_drawdown"] * 2  # fmt: skip
    tool_messages = [m for m in messages if m["role"] == "tool"]
    assert {m["toolCallId"] for m in tool_messages} == {c["id"] for c in calls}
    assert all(json.loads(m["content"])[0]["content"] for m in tool_messages)
    reasoning = [m for m in messages if m["role"] == "reasoning"]
    assert len(reasoning) == 1 and "I will load a year of daily closes" in reasoning[0]["content"]
    reports = [m for m in messages if m["role"] == "activity" and m["activityType"] == "report"]
    assert json.loads(reports[0]["content"]["content"])["title"] == "AAPL, MSFT: one year in review"
    # What the client holds is what the server stored, paragraph for paragraph.
    stored = items(server, token, conversation_of(run))
    paragraphs = {i["item_id"]: i["payload"]["content"] for i in stored if i["event"] == "message_chunk"}
    texts = {m["id"]: m["content"] for m in messages if m["role"] == "assistant" and m.get("content")}
    assert texts == paragraphs
    assert int(result["lastEventId"]) == stored[-1]["last_seq"] + 2  # task_completed, done


def test_an_interrupt_and_its_answer(node, server, token):
    result = scenario(node, server, token, "interrupt", query="How is the market today?", answer="NVDA")
    asked, unaddressed, answered = result["runs"]
    clean(asked)
    assert asked["finished"][0]["outcome"] == "interrupt"
    (interrupt,) = result["pending"]
    assert interrupt["reason"] == "plan_require_user_input" and "Which ticker" in interrupt["message"]
    assert interrupt["responseSchema"]["required"] == ["answer"]
    # The client will not run on while the interrupt is unaddressed: nothing was sent.
    assert "pending interrupt" in unaddressed["rejected"] and unaddressed["events"] == []
    clean(answered)
    assert answered["finished"] == [{"outcome": "success", "interrupts": None}]
    assert result["pendingAfter"] == []
    started = [e for e in answered["events"] if e["type"] == "TOOL_CALL_START"]
    assert [e["toolCallName"] for e in started][:1] == ["load_prices"] and all("nvda" in e["toolCallId"] for e in started)
    stored = items(server, token, conversation_of(asked))
    question = next(i for i in stored if i["event"] == "plan_require_user_input")
    assert question["item_id"] == interrupt["id"]
    assert [i["payload"]["content"] for i in stored if i["event"] == "thread_started"] == [
        "How is the market today?", "NVDA"
    ]  # fmt: skip


def test_a_resume_from_a_cursor_inside_a_message_completes_it_exactly(node, server, token):
    result = scenario(node, server, token, "resume", query="How did NVDA do this year?", cutAfterContent=3)
    first, resumed = result["runs"]
    clean(first)
    assert first["finished"] == [] and first["runErrors"] == []  # cut before its end
    # The frame's lines: `data: …` then `id: …` (the id after the data since issue 13).
    [data] = [line for line in result["cut"]["frame"].split("\n") if line.startswith("data: ")]
    cut = json.loads(data.removeprefix("data: "))
    assert cut["type"] == "TEXT_MESSAGE_CONTENT"
    message_id = cut["messageId"]
    kept = next(m for m in result["kept"] if m["id"] == message_id)["content"]

    clean(resumed)
    kinds = types(resumed)
    assert kinds[:3] == ["RUN_STARTED", "STEP_STARTED", "TEXT_MESSAGE_START"]  # re-opened where it was cut
    assert resumed["events"][0]["runId"] == "run-cut" and resumed["events"][0]["threadId"] == result["threadId"]
    assert resumed["events"][2]["messageId"] == message_id
    assert kinds[-1] == "RUN_FINISHED" and result["finished"] is True
    assert result["unhandled"] == []

    stored = items(server, token, conversation_of(first))
    full = next(i for i in stored if i["item_id"] == message_id)["payload"]["content"]
    final = next(m for m in result["messages"] if m["id"] == message_id)["content"]
    assert kept and full.startswith(kept) and kept != full
    assert final == full  # no gap, no duplicate
    assert int(result["cut"]["id"]) < stored[-1]["last_seq"]


@pytest.mark.parametrize("inside", ["TEXT_MESSAGE_START", "REASONING_START", "TOOL_CALL_START"])
def test_a_resume_from_a_frame_inside_one_stored_event_sends_exactly_the_missing_frames(node, server, token, inside):
    result = scenario(node, server, token, "resume", query="How did NVDA do this year?", cutInside=inside)
    first, resumed = result["runs"]
    clean(first)
    assert first["finished"] == [] and first["runErrors"] == []  # cut before its end
    seq, dot, index = result["cut"]["id"].partition(".")
    assert dot and seq.isdigit() and index.isdigit(), result["cut"]  # an `N.k` id: not the event's last frame
    assert f'"type":"{inside}"' in result["cut"]["frame"]

    clean(resumed)  # HttpAgent's verifier took the resumed run
    assert result["finished"] is True and result["unhandled"] == []
    # The whole run as stored, framed as every stream frames it (the same runId, for RUN_FINISHED).
    with httpx.stream(
        "GET",
        f"{server.url}/ag-ui/demo/threads/{result['threadId']}/stream",
        params={"runId": "run-cut"},
        headers={"Authorization": f"Bearer {token}", "Last-Event-ID": "0"},
        timeout=30,
    ) as response:
        assert response.status_code == 200, response.read()
        whole = [(e.id, e.data) for e in read_events(response) if e.id is not None]
    at = [frame_id for frame_id, _ in whole].index(result["cut"]["id"])
    sent = [(f["id"], f["data"]) for f in result["resumedFrames"]]
    lead = [json.loads(data)["type"] for frame_id, data in sent if frame_id is None]
    # RUN_STARTED and the re-opens (no ids: the client's id stays its cursor), then exactly the missing frames.
    assert [frame_id for frame_id, _ in sent[: len(lead)]] == [None] * len(lead)
    assert lead[0] == "RUN_STARTED" and all(kind.endswith("_START") or kind == "STEP_STARTED" for kind in lead[1:])
    assert sent[len(lead) :] == whole[at + 1 :]
    # What the client holds is the whole run, nothing missing, nothing twice.
    held = Messages().apply(EVENT.validate_python(json.loads(data)) for _, data in whole)
    texts = {m["id"]: m["content"] for m in result["messages"] if m["role"] == "assistant" and m.get("content")}
    reasoning = {m["id"]: m["content"] for m in result["messages"] if m["role"] == "reasoning"}
    calls = {c["id"] for m in result["messages"] if m["role"] == "assistant" for c in m.get("toolCalls", [])}
    assert (texts, reasoning, calls) == (held.text, held.reasoning, set(held.tool_calls))
