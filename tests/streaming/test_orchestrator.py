"""The orchestrator in process: lifecycle order, failures outside the agent, claims."""

import asyncio
import json
import re

import pytest
from channels.layers import get_channel_layer

from conversations import services
from conversations.models import Conversation, ConversationStatus, Event, Task, TaskStatus
from conversations.ownership import Principal
from streaming.agents.base import Agent, AgentError
from streaming.eventlog.groups import ANSWER_MESSAGE
from streaming.errors import ServiceError
from streaming.runtime import run as run_module
from streaming.runtime.control import RunControl
from streaming.runtime import control as control_module
from streaming.responses import streaming
from streaming.runtime.orchestrator import orchestrator

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = Principal(session_key="alice-session")


async def stored(conversation_id: str) -> list[dict]:
    return [
        json.loads(b)
        async for b in Event.objects.filter(conversation_id=conversation_id)
        .order_by("seq")
        .values_list("body", flat=True)
    ]


async def test_one_run_in_order():
    submission = await orchestrator.submit(ALICE, "k=3 delay_ms=0", "bench")
    await orchestrator.wait_idle()
    events = await stored(submission.conversation_id)
    assert [e["event"] for e in events] == [
        "conversation_started",
        "thread_started",
        "task_started",
        "message_chunk",
        "message_chunk",
        "message_chunk",
        "task_completed",
        "done",
    ]
    conversation = await Conversation.objects.aget(pk=submission.conversation_id)
    assert conversation.status == ConversationStatus.IDLE and conversation.lease_expires_at is None


async def test_a_failure_outside_the_agent_is_system_failed_then_done(monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("the task table is on fire")

    # Between thread_started and task_started (the task's row is written with
    # task_started now, so the failure is injected where the task is set up).
    monkeypatch.setattr(run_module, "ResponseRouter", broken)
    submission = await orchestrator.submit(ALICE, "k=3 delay_ms=0", "bench")
    await orchestrator.wait_idle()
    events = await stored(submission.conversation_id)
    assert [e["event"] for e in events] == ["conversation_started", "thread_started", "system_failed", "done"]
    # The user sees a reference, never the exception's text; the log has both.
    content = events[2]["data"]["payload"]["content"]
    assert "on fire" not in content
    ref = re.fullmatch(r"System error \(ref ([0-9a-f]{8})\); the run could not continue\.", content).group(1)
    [record] = [r for r in caplog.records if ref in r.getMessage()]
    assert record.exc_info and "the task table is on fire" in str(record.exc_info[1])
    assert (await Conversation.objects.aget(pk=submission.conversation_id)).status == ConversationStatus.IDLE


class LeakyAgent(Agent):
    name = "leaky"
    description = "Fails with an exception whose text must not reach the user."

    async def stream(self, query, ctx):
        yield streaming.message_chunk("about to fail ")
        if query == "deliberate":
            raise AgentError("The agent explains this failure itself.")
        raise KeyError("password=hunter2 in /srv/secret/path")


@pytest.fixture
def leaky_agent(settings):
    settings.VALUECELL_AGENTS = {**settings.VALUECELL_AGENTS, "leaky": "tests.streaming.test_orchestrator.LeakyAgent"}


async def test_an_agent_failure_shows_a_reference_not_the_exception_text(leaky_agent, caplog):
    submission = await orchestrator.submit(ALICE, "anything", "leaky")
    await orchestrator.wait_idle()
    events = await stored(submission.conversation_id)
    assert [e["event"] for e in events][-2:] == ["task_failed", "done"]
    content = events[-2]["data"]["payload"]["content"]
    assert "hunter2" not in content and "/srv" not in content
    ref = re.fullmatch(r"The agent failed \(ref ([0-9a-f]{8})\); the task could not finish\.", content).group(1)
    [record] = [r for r in caplog.records if ref in r.getMessage()]
    assert "hunter2" in str(record.exc_info[1])
    task = await Task.objects.aget(conversation_id=submission.conversation_id)
    assert task.status == TaskStatus.FAILED and "hunter2" not in task.error


async def test_an_agents_own_error_message_reaches_the_user(leaky_agent):
    submission = await orchestrator.submit(ALICE, "deliberate", "leaky")
    await orchestrator.wait_idle()
    events = await stored(submission.conversation_id)
    assert events[-2]["event"] == "task_failed"
    assert events[-2]["data"]["payload"]["content"] == "The agent explains this failure itself."


@pytest.mark.parametrize(
    "query, problem",
    [("a NUL \x00 here", "NUL"), ("a lone \ud800 surrogate", "surrogate"), ("\udfff", "surrogate")],
)
async def test_text_no_database_can_store_is_refused_before_anything_is_stored(query, problem):
    with pytest.raises(ServiceError) as refused:
        await orchestrator.submit(ALICE, query, "bench")
    assert (refused.value.status, refused.value.code) == (400, "invalid_field")
    assert problem in refused.value.message
    assert await Conversation.objects.acount() == 0


async def test_an_answer_with_a_nul_is_refused_and_the_question_still_waits():
    submission = await orchestrator.submit(ALICE, "no ticker here", "demo")
    await wait_for_status(submission.conversation_id, ConversationStatus.REQUIRE_USER_INPUT)
    with pytest.raises(ServiceError) as refused:
        await orchestrator.submit(ALICE, "AAPL\x00", None, submission.conversation_id)
    assert refused.value.code == "invalid_field"
    conversation = await Conversation.objects.aget(pk=submission.conversation_id)
    assert conversation.status == ConversationStatus.REQUIRE_USER_INPUT and conversation.answer == ""
    await orchestrator.cancel(ALICE, submission.conversation_id)
    await orchestrator.wait_idle()


@pytest.mark.parametrize("conversation_id", ["conv-\x00", "\ud800", "conv-abc\x00def"])
async def test_an_id_that_names_no_storable_text_is_not_found(conversation_id):
    for attempt in (
        orchestrator.submit(ALICE, "AAPL", "demo", conversation_id),
        orchestrator.cancel(ALICE, conversation_id),
    ):
        with pytest.raises(ServiceError) as refused:
            await attempt
        assert (refused.value.status, refused.value.code) == (404, "conversation_not_found")


async def test_busy_conversation_is_refused_and_foreign_is_not_found():
    submission = await orchestrator.submit(ALICE, "k=200 delay_ms=5", "bench")
    with pytest.raises(ServiceError) as busy:
        await orchestrator.submit(ALICE, "again", "bench", submission.conversation_id)
    assert (busy.value.status, busy.value.code) == (409, "conversation_busy")
    with pytest.raises(ServiceError) as foreign:
        await orchestrator.cancel(Principal(session_key="mallory"), submission.conversation_id)
    assert (foreign.value.status, foreign.value.code) == (404, "conversation_not_found")
    await orchestrator.cancel(ALICE, submission.conversation_id)
    await orchestrator.wait_idle()
    events = await stored(submission.conversation_id)
    assert [e["event"] for e in events][-2:] == ["task_cancelled", "done"]
    assert (await Task.objects.aget(conversation_id=submission.conversation_id)).status == TaskStatus.CANCELLED


async def test_unknown_agent_is_refused_before_anything_is_stored():
    with pytest.raises(ServiceError) as unknown:
        await orchestrator.submit(ALICE, "hello", "nobody")
    assert (unknown.value.status, unknown.value.code) == (404, "unknown_agent")
    assert await Conversation.objects.acount() == 0


async def wait_for_status(conversation_id: str, status: str, seconds: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (await Conversation.objects.aget(pk=conversation_id)).status != status:
        assert loop.time() < deadline, f"{conversation_id} never became {status}"
        await asyncio.sleep(0.02)


async def test_an_answer_whose_message_is_lost_still_reaches_the_run(monkeypatch, settings):
    """The answer is stored with its claim; the message only wakes the run up."""
    settings.VALUECELL_ANSWER_RECHECK_SECONDS = 0.1
    real_send = RunControl.send
    dropped = []

    async def lossy_send(control, conversation_id, message):
        if message.get("type") == ANSWER_MESSAGE:
            dropped.append(conversation_id)  # as if a Redis connection dropped it
            return
        await real_send(control, conversation_id, message)

    # The wake-up goes to the run directly in process, through the layer across processes.
    monkeypatch.setattr(RunControl, "send", lossy_send)
    submission = await orchestrator.submit(ALICE, "hello there", "demo")
    await wait_for_status(submission.conversation_id, ConversationStatus.REQUIRE_USER_INPUT)
    answer = await orchestrator.submit(ALICE, "AAPL please", "demo", submission.conversation_id)
    assert answer.is_answer and dropped
    async with asyncio.timeout(15):
        await orchestrator.wait_idle()
    events = await stored(submission.conversation_id)
    threads = [e["data"]["payload"]["content"] for e in events if e["event"] == "thread_started"]
    assert threads == ["hello there", "AAPL please"]
    assert [e["event"] for e in events][-2:] == ["task_completed", "done"]
    conversation = await Conversation.objects.aget(pk=submission.conversation_id)
    assert conversation.status == ConversationStatus.IDLE and conversation.answer == ""


async def test_an_answer_is_taken_once():
    conversation = await Conversation.objects.acreate(
        id="conv-ans", session_key="s", status=ConversationStatus.REQUIRE_USER_INPUT
    )
    assert await services.take_answer(conversation.id) is None
    assert await services.claim_answer(conversation.id, "MSFT")
    assert not await services.claim_answer(conversation.id, "a second answer")  # already claimed
    assert await services.take_answer(conversation.id) == "MSFT"
    assert await services.take_answer(conversation.id) is None


async def test_a_waiting_run_looks_for_its_answer_less_and_less_often(monkeypatch, settings):
    settings.VALUECELL_ANSWER_RECHECK_SECONDS = 0.01
    settings.VALUECELL_FOLLOW_MAX_RECHECK_SECONDS = 0.16
    settings.VALUECELL_INPUT_TIMEOUT_SECONDS = 1.0
    looks = []
    real_take_answer = services.take_answer

    async def counted(conversation_id):
        looks.append(conversation_id)
        return await real_take_answer(conversation_id)

    monkeypatch.setattr(services, "take_answer", counted)
    submission = await orchestrator.submit(ALICE, "hello there", "demo")
    async with asyncio.timeout(15):
        await orchestrator.wait_idle()
    events = await stored(submission.conversation_id)
    assert [e["event"] for e in events][-2:] == ["task_cancelled", "done"]  # nobody answered in time
    # Every 10 ms for a second would be ~100 looks; doubling to 160 ms makes about 10.
    assert 3 <= len(looks) <= 20, len(looks)


async def test_a_new_conversation_is_stored_when_submit_returns():
    """Its row goes in with its first event; by default submit waits for that, so a
    door may hand the id out at once (the WebSocket's `accepted`)."""
    submission = await orchestrator.submit(ALICE, "k=200 delay_ms=5", "bench")
    conversation = await Conversation.objects.aget(pk=submission.conversation_id)
    assert conversation.status == ConversationStatus.RUNNING and conversation.session_key == "alice-session"
    await orchestrator.cancel(ALICE, submission.conversation_id)
    await orchestrator.wait_idle()


async def test_a_cancel_for_a_run_elsewhere_that_cannot_be_sent_is_a_503_not_a_500(monkeypatch):
    """Another worker's run (here: a conversation running with no run in this process)
    and a channel layer that fails: the cancel is refused cleanly, nothing pretends it worked."""
    await Conversation.objects.acreate(
        id="conv-elsewhere", session_key=ALICE.session_key, status=ConversationStatus.RUNNING, title="t"
    )
    layer = get_channel_layer()

    async def unreachable(*args, **kwargs):
        raise ConnectionError("Redis is restarting")

    monkeypatch.setattr(layer, "group_send", unreachable)
    monkeypatch.setattr(control_module, "crosses_processes", lambda layer: True)  # as Redis does
    with pytest.raises(ServiceError) as refused:
        await orchestrator.cancel(ALICE, "conv-elsewhere")
    assert (refused.value.code, refused.value.status) == ("layer_unavailable", 503)
    assert refused.value.headers["Retry-After"] == "5"


async def test_a_cancel_for_a_run_in_this_process_needs_no_channel_layer(monkeypatch):
    submission = await orchestrator.submit(ALICE, "k=2000 delay_ms=5", "bench")
    layer = get_channel_layer()

    async def unreachable(*args, **kwargs):
        raise ConnectionError("Redis is restarting")

    async with asyncio.timeout(10):
        while not await Task.objects.filter(conversation_id=submission.conversation_id).aexists():
            await asyncio.sleep(0.01)
    monkeypatch.setattr(layer, "group_send", unreachable)
    await orchestrator.cancel(ALICE, submission.conversation_id)
    monkeypatch.undo()
    await asyncio.wait_for(orchestrator.wait_idle(), 10)
    events = [e["event"] for e in await stored(submission.conversation_id)]
    assert events[-2:] == ["task_cancelled", "done"]


async def test_a_cancel_before_the_agent_starts_is_not_lost(settings):
    # Not waiting for the conversation's row (nor does admission, counting no runs):
    # the run is told to cancel before it has even begun.
    settings.VALUECELL_MAX_RUNS_PER_PRINCIPAL = 0
    submission = await orchestrator.submit(ALICE, "k=2000 delay_ms=5", "bench", wait_recorded=False)
    orchestrator._runs[submission.conversation_id].cancel("Cancelled by the user.")
    await asyncio.wait_for(orchestrator.wait_idle(), 10)
    events = [e["event"] for e in await stored(submission.conversation_id)]
    assert "message_chunk" not in events
    assert events[-3:] == ["task_started", "task_cancelled", "done"]
