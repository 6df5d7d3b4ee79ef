"""One run control per process: the leases of all its runs renewed together, a
run whose lease was taken over stopped, messages handed to a run directly."""

import asyncio

import pytest

from conversations import services
from conversations.models import Conversation
from conversations.ownership import Principal
from streaming.eventlog.groups import CANCEL_MESSAGE
from streaming.runtime.control import run_control
from streaming.runtime.orchestrator import orchestrator

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = Principal(session_key="alice-session")


async def _until(condition, seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_all_leases_are_renewed_together_and_a_run_taken_over_stops(monkeypatch, settings):
    settings.VALUECELL_RUN_LEASE_SECONDS = 0.3  # renewed every 0.1 s
    renewals: list[list[str]] = []
    real = services.renew_leases

    async def counted(holders):
        renewals.append(sorted(holders))
        return await real(holders)

    monkeypatch.setattr(services, "renew_leases", counted)
    kept = await orchestrator.submit(ALICE, "k=2000 delay_ms=5", "bench")
    taken = await orchestrator.submit(ALICE, "k=2000 delay_ms=5", "bench")
    holders = sorted(orchestrator._runs[c.conversation_id].holder for c in (kept, taken))

    async def both_renewed() -> bool:
        return any(call == holders for call in renewals)

    await _until(both_renewed)  # one call for both runs
    taken_run = orchestrator._runs[taken.conversation_id]
    await Conversation.objects.filter(pk=taken.conversation_id).aupdate(worker="another-worker")

    async def stopped() -> bool:
        return taken.conversation_id not in orchestrator._runs

    await _until(stopped)
    assert taken_run._lease_lost and taken_run.ending is None  # no `done` of its own: the other worker's
    assert kept.conversation_id in orchestrator._runs
    await orchestrator.cancel(ALICE, kept.conversation_id)
    await orchestrator.wait_idle()
    assert (await Conversation.objects.aget(pk=kept.conversation_id)).status == "idle"


async def test_a_message_for_a_run_of_this_process_is_handed_to_it_directly():
    submission = await orchestrator.submit(ALICE, "k=2000 delay_ms=5", "bench")
    run = orchestrator._runs[submission.conversation_id]
    assert run_control().deliver(submission.conversation_id, {"type": CANCEL_MESSAGE, "reason": "enough"})
    await orchestrator.wait_idle()
    assert run.ending is not None and run.ending.message == "enough"
    assert not run_control().deliver(submission.conversation_id, {"type": CANCEL_MESSAGE})  # gone
