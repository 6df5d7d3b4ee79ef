"""The AG-UI door over a real Daphne, read as raw SSE and checked against the
protocol's own types and the client's ordering rules: runs, threads per owner,
interrupts and their answers, refusals, and the resume AG-UI itself lacks.
(tests/node/ drives the same door with the real `@ag-ui/client`.)"""

from __future__ import annotations

import uuid

import httpx
import pytest
from ag_ui.core import Event, EventType
from pydantic import TypeAdapter

from tests.e2e.client import read_events, resume
from tests.streaming.dialect_runs import Messages, verify

pytestmark = pytest.mark.e2e

EVENT = TypeAdapter(Event)


@pytest.fixture
def alice(daphne_server, alice_token):
    headers = {"Authorization": f"Bearer {alice_token}"}
    with httpx.Client(base_url=daphne_server.url, timeout=30, headers=headers) as client:
        yield client


@pytest.fixture
def bob(daphne_server, bob_token):
    headers = {"Authorization": f"Bearer {bob_token}"}
    with httpx.Client(base_url=daphne_server.url, timeout=30, headers=headers) as client:
        yield client


def run_input(thread_id: str, *messages: tuple[str, str], resume_entries=None) -> dict:
    """What HttpAgent sends: the whole history every time."""
    body = {
        "threadId": thread_id,
        "runId": f"run-{uuid.uuid4().hex[:8]}",
        "state": {},
        "messages": [{"id": mid, "role": "user", "content": text} for mid, text in messages],
        "tools": [],
        "context": [],
        "forwardedProps": {},
    }
    if resume_entries is not None:
        body["resume"] = resume_entries
    return body


def agui_run(client: httpx.Client, body: dict, agent: str = "demo", limit=None):
    with client.stream("POST", f"/ag-ui/{agent}", json=body) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = read_events(response, limit)
        conversation_id = response.headers["X-Conversation-Id"]
    return conversation_id, raw


def events_of(raw) -> list:
    return [EVENT.validate_python(e.json) for e in raw]


def stored_seqs(client: httpx.Client, conversation_id: str) -> list[int]:
    return [e["seq"] for e in resume(client, conversation_id, 0)]


def test_a_run_starts_with_the_requests_ids_and_every_frame_has_the_id_of_its_stored_event(alice):
    body = run_input(f"t-{uuid.uuid4().hex}", ("u1", "Compare AAPL and MSFT"))
    cid, raw = agui_run(alice, body)
    events = verify(events_of(raw))
    assert (events[0].type, events[0].thread_id, events[0].run_id) == (
        EventType.RUN_STARTED,
        body["threadId"],
        body["runId"],
    )
    assert events[-1].type == EventType.RUN_FINISHED and events[-1].run_id == body["runId"]
    assert raw[0].id is None  # RUN_STARTED is the door's, from no stored event; every other frame has an id
    last = 10**6  # N sorts after N.0, N.1, …
    ids = [(int(seq), int(k) if k else last) for seq, _, k in (e.id.partition(".") for e in raw[1:])]
    assert ids == sorted(set(ids))  # N.0, N.1, …, N, then the next event's
    assert [seq for seq, k in ids if k == last] == stored_seqs(alice, cid)  # each stored event's last frame: N
    assert len(ids) > len(stored_seqs(alice, cid)) and raw[-1].id == str(stored_seqs(alice, cid)[-1])
    kinds = [e.type for e in events]
    assert kinds.count(EventType.TOOL_CALL_START) == kinds.count(EventType.TOOL_CALL_RESULT) == 8
    assert kinds.count(EventType.ACTIVITY_SNAPSHOT) == 2 and EventType.REASONING_MESSAGE_CONTENT in kinds
    activities = {e.activity_type for e in events if e.type == EventType.ACTIVITY_SNAPSHOT}
    assert activities == {"filtered_line_chart", "report"}


def test_a_threads_runs_continue_its_conversation_and_two_owners_threads_never_meet(alice, bob):
    thread = f"t-{uuid.uuid4().hex}"
    first_cid, _ = agui_run(alice, run_input(thread, ("u1", "k=2")), agent="bench")
    second_cid, second = agui_run(alice, run_input(thread, ("u1", "k=2"), ("u2", "k=3")), agent="bench")
    assert first_cid == second_cid
    customs = [e.name for e in events_of(second) if e.type == EventType.CUSTOM]
    assert "valuecell.conversation_started" not in customs
    assert list(Messages().apply(events_of(second)).text.values()) == ["chunk 0 chunk 1 chunk 2 "]
    bobs_cid, _ = agui_run(bob, run_input(thread, ("u1", "k=1")), agent="bench")
    assert bobs_cid != first_cid
    assert alice.get(f"/ag-ui/bench/threads/{thread}/stream").status_code == 200
    assert bob.get(f"/conversations/{first_cid}").status_code == 404


def test_the_same_history_again_runs_nothing_new_and_reads_the_last_runs_end(alice):
    thread = f"t-{uuid.uuid4().hex}"
    cid, _ = agui_run(alice, run_input(thread, ("u1", "k=2")), agent="bench")
    before = stored_seqs(alice, cid)
    _, raw = agui_run(alice, run_input(thread, ("u1", "k=2")), agent="bench")
    events = verify(events_of(raw))
    assert [e.type for e in events] == [EventType.RUN_STARTED, EventType.RUN_FINISHED]
    assert stored_seqs(alice, cid) == before


def test_a_question_is_an_interrupt_answered_by_resume_or_by_a_new_message(alice):
    thread = f"t-{uuid.uuid4().hex}"
    _, raw = agui_run(alice, run_input(thread, ("u1", "How is the market?")))
    finished = verify(events_of(raw))[-1]
    (interrupt,) = finished.outcome.interrupts
    assert interrupt.reason == "plan_require_user_input" and "Which ticker" in interrupt.message
    answer = {"interruptId": interrupt.id, "status": "resolved", "payload": {"answer": "NVDA"}}
    _, raw = agui_run(alice, run_input(thread, ("u1", "How is the market?"), resume_entries=[answer]))
    events = verify(events_of(raw))
    assert events[-1].outcome.type == "success"
    answered = next(e for e in events if e.type == EventType.CUSTOM and e.name == "valuecell.thread_started")
    assert answered.value["content"] == "NVDA"

    other = f"t-{uuid.uuid4().hex}"
    agui_run(alice, run_input(other, ("u1", "How is the market?")))
    # A fresh client (no pending interrupt) answers with a new user message.
    _, raw = agui_run(alice, run_input(other, ("u1", "How is the market?"), ("u2", "AAPL please")))
    events = verify(events_of(raw))
    assert events[-1].outcome.type == "success"
    assert any(e.type == EventType.TOOL_CALL_START and e.tool_call_id.endswith("-aapl-load") for e in events)


def test_a_cancelled_resume_cancels_the_waiting_task(alice):
    thread = f"t-{uuid.uuid4().hex}"
    cid, raw = agui_run(alice, run_input(thread, ("u1", "How is the market?")))
    (interrupt,) = events_of(raw)[-1].outcome.interrupts
    cancel = [{"interruptId": interrupt.id, "status": "cancelled"}]
    _, raw = agui_run(alice, run_input(thread, ("u1", "How is the market?"), resume_entries=cancel))
    events = verify(events_of(raw))
    assert events[-1].outcome.type == "cancelled"
    assert alice.get(f"/conversations/{cid}").json()["conversation"]["status"] == "idle"


def test_refusals_come_before_the_stream_as_json(daphne_server, alice):
    thread = f"t-{uuid.uuid4().hex}"
    nothing = alice.post("/ag-ui/demo", json=run_input(thread))
    assert (nothing.status_code, nothing.json()["error"]["code"]) == (400, "no_new_input")
    unknown = alice.post("/ag-ui/nobody", json=run_input(thread, ("u1", "hi")))
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_agent")
    missing = alice.post("/ag-ui/demo", json={"threadId": thread})
    assert (missing.status_code, missing.json()["error"]["code"]) == (400, "missing_field")
    bad = alice.post("/ag-ui/demo", content=b"{oops", headers={"Content-Type": "application/json"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_json")
    form = alice.post("/ag-ui/demo", data={"threadId": thread})
    assert (form.status_code, form.json()["error"]["code"]) == (415, "unsupported_media_type")
    assert alice.get("/ag-ui/demo").status_code == 405
    with httpx.Client(base_url=daphne_server.url) as anonymous:
        unknown_thread = anonymous.get(f"/ag-ui/demo/threads/{thread}/stream")
        assert (unknown_thread.status_code, unknown_thread.json()["error"]["code"]) == (404, "not_found")


def test_resume_after_a_seq_inside_a_message_reopens_it_and_reads_the_rest(alice, bob):
    thread = f"t-{uuid.uuid4().hex}"
    cid, raw = agui_run(alice, run_input(thread, ("u1", "How did NVDA do?")))
    full = events_of(raw)
    contents = [(e, f) for e, f in zip(raw, full) if f.type == EventType.TEXT_MESSAGE_CONTENT and e.id]
    cut_frame, cut_event = contents[len(contents) // 2]
    kept_upto = raw.index(cut_frame)
    kept = Messages().apply(full[: kept_upto + 1])
    for headers, params in (({"Last-Event-ID": cut_frame.id}, {}), ({}, {"after": cut_frame.id, "runId": "r-x"})):
        with alice.stream("GET", f"/ag-ui/demo/threads/{thread}/stream", headers=headers, params=params) as response:
            assert response.status_code == 200, response.read()
            resumed = verify(events_of(read_events(response)))
        assert resumed[0].type == EventType.RUN_STARTED and resumed[0].thread_id == thread
        reopened = next(e for e in resumed if e.type == EventType.TEXT_MESSAGE_START)
        assert reopened.message_id == cut_event.message_id
        whole = Messages().apply(full)
        assert Messages(**{k: dict(v) for k, v in vars(kept).items()}).apply(resumed) == whole
    assert resumed[0].run_id == "r-x"
    last = stored_seqs(alice, cid)[-1]
    for after in (last + 1, f"{last + 1}.0"):
        beyond = alice.get(f"/ag-ui/demo/threads/{thread}/stream", params={"after": after})
        assert (beyond.status_code, beyond.json()["error"]["code"]) == (400, "invalid_resume_point")
    for malformed in ("x", "3.", "3.1.2", "3.x", "3.12345"):
        refused = alice.get(f"/ag-ui/demo/threads/{thread}/stream", headers={"Last-Event-ID": malformed})
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, "invalid_resume_point"), malformed
    assert bob.get(f"/ag-ui/demo/threads/{thread}/stream").status_code == 404


def test_forwarded_props_name_an_existing_conversation_for_a_new_thread(alice, bob):
    with alice.stream("POST", "/agents/stream", json={"query": "k=2", "agent_name": "bench"}) as response:
        native = [e.json for e in read_events(response)]
    cid = native[0]["data"]["conversation_id"]
    thread = f"t-{uuid.uuid4().hex}"
    body = run_input(thread, ("u1", "k=3"))
    body["forwardedProps"] = {"valuecell": {"conversation_id": cid}, "someone.else": {"x": 1}}
    continued, raw = agui_run(alice, body, agent="bench")
    assert continued == cid
    assert list(Messages().apply(verify(events_of(raw))).text.values()) == ["chunk 0 chunk 1 chunk 2 "]
    again = run_input(thread, ("u1", "k=3"), ("u2", "k=1"))  # the thread now names it: no option needed
    assert agui_run(alice, again, agent="bench")[0] == cid

    other = run_input(f"t-{uuid.uuid4().hex}", ("u1", "k=1"))
    other["forwardedProps"] = {"valuecell": {"conversation_id": cid}}
    foreign = bob.post("/ag-ui/bench", json=other)
    assert (foreign.status_code, foreign.json()["error"]["code"]) == (404, "conversation_not_found")
    clash = run_input(thread, ("u1", "k=1"))
    clash["forwardedProps"] = {"valuecell": {"conversation_id": "conv-" + "0" * 32}}
    refused = alice.post("/ag-ui/bench", json=clash)
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "invalid_field")
    unknown = run_input(f"t-{uuid.uuid4().hex}", ("u1", "k=1"))
    unknown["forwardedProps"] = {"valuecell": {"agent": "demo"}}
    refused = alice.post("/ag-ui/bench", json=unknown)
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "unknown_field")
