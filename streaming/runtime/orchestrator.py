"""The orchestrator: accepts a user input, starts or resumes a run, cancels.

It decides what an input means (a new conversation, a new run in an idle one,
the answer a waiting run asked for, or a conflict) and starts runs as
background tasks that no client owns. It knows nothing of HTTP or sockets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from django.conf import settings

from conversations import services
from conversations.ownership import Principal
from conversations.selectors import owned_conversation_or_error
from streaming import logs
from streaming.addresses import Address
from streaming.agents.base import Agent
from streaming.agents.registry import UnknownAgent, get_agent
from streaming.errors import ErrorCode, ServiceError
from streaming.eventlog.backend import event_store
from streaming.eventlog.groups import ANSWER_MESSAGE, CANCEL_MESSAGE
from streaming.eventlog.layer_outage import layer_outage
from streaming.events import new_conversation_id
from streaming.runtime import observe
from streaming.runtime.admission import admit
from streaming.runtime.control import run_control
from streaming.runtime.inputs import validate_query
from streaming.runtime.run import Run
from streaming.runtime.worker import new_holder
from streaming.states import ConversationStatus
from streaming.stored import NewConversation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submission:
    conversation_id: str
    after_seq: int  # follow the conversation after this seq to see this input's events
    is_answer: bool


@dataclass(frozen=True)
class _Input:
    """One accepted input, whichever way it goes."""

    principal: Principal
    query: str
    agent_name: str
    agent: Agent
    before_start: Callable[[str], Awaitable[None]] | None
    client: Address | None
    on_finished: Callable[[Run], None]

    def run(
        self, conversation_id: str, *, is_new: bool, last_seq: int, holder: str, created: NewConversation | None = None
    ) -> Run:
        return Run(
            conversation_id=conversation_id,
            query=self.query,
            agent=self.agent,
            agent_name=self.agent_name,
            is_new=is_new,
            last_seq=last_seq,
            holder=holder,
            on_finished=self.on_finished,
            created=created,
        )


class Orchestrator:
    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def _agent(self, agent_name: str | None) -> tuple[str, Agent]:
        name = agent_name or settings.VALUECELL_DEFAULT_AGENT
        try:
            return name, get_agent(name)
        except UnknownAgent:
            raise ServiceError(ErrorCode.UNKNOWN_AGENT, f"No agent named {name[:100]!r}.") from None

    async def submit(
        self,
        principal: Principal,
        query: str,
        agent_name: str | None = None,
        conversation_id: str | None = None,
        before_start: Callable[[str], Awaitable[None]] | None = None,
        client: Address | None = None,
        wait_recorded: bool = True,
    ) -> Submission:
        """Start a run (or deliver the answer a run waits for).

        `before_start(conversation_id)` runs once the input is accepted and
        before the run can produce anything (a transport joins the
        conversation's group there). The run starts whatever it does. A new run
        must first pass admission control (`client`: the address it came from).

        A new conversation's row is written with its first event. With
        `wait_recorded` (the default) this returns once it is stored, so the
        caller may hand out its id at once; without, the caller must not reveal
        the id before the conversation's first event (the SSE door sends
        nothing before it). Admission control that counts runs in progress
        waits for the row either way: the next check must see it.
        """
        validate_query(query)
        name, agent = self._agent(agent_name)
        given = _Input(principal, query, name, agent, before_start, client, self._finished)
        if conversation_id is None:
            return await self._start_conversation(given, wait_recorded)
        conversation = await owned_conversation_or_error(principal, conversation_id)
        if conversation.status == ConversationStatus.REQUIRE_USER_INPUT and await services.claim_answer(
            conversation_id, query
        ):
            return await self._answer(given, conversation_id)
        return await self._start_next_run(given, conversation_id)

    async def _start_conversation(self, given: _Input, wait_recorded: bool) -> Submission:
        conversation_id = new_conversation_id()
        # The conversation's row goes in with its first event, in the
        # writer's batch: nothing waits for the database here.
        created = NewConversation(
            owner_id=given.principal.user_id,
            session_key=given.principal.session_key or "",
            title=services.title_from_query(given.query),
            agent_name=given.agent_name,
            lease_seconds=settings.VALUECELL_RUN_LEASE_SECONDS,
        )
        async with admit(given.principal, given.client) as counts_runs:
            await self._before_start(given.before_start, conversation_id)
            run = given.run(conversation_id, is_new=True, last_seq=0, holder=new_holder(), created=created)
            self._start(run)
            if wait_recorded or counts_runs:
                await run.recorded()
        return Submission(conversation_id, 0, False)

    async def _answer(self, given: _Input, conversation_id: str) -> Submission:
        """The input is the answer a waiting run asked for (already claimed and stored)."""
        after = await event_store().last_seq(conversation_id)
        await self._before_start(given.before_start, conversation_id)
        try:  # a wake-up only: the answer is stored, and the run also looks for it
            await run_control().send(conversation_id, {"type": ANSWER_MESSAGE})
        except Exception as exc:
            layer_outage.failed(f"announcing the answer to {conversation_id}", exc)  # its run will find it
        return Submission(conversation_id, after, True)

    async def _start_next_run(self, given: _Input, conversation_id: str) -> Submission:
        """A new run in an idle conversation, or a conflict if one is in progress."""
        holder = new_holder()
        async with admit(given.principal, given.client):
            if not await services.claim_for_run(conversation_id, given.agent_name, holder):
                raise ServiceError(ErrorCode.CONVERSATION_BUSY, "This conversation has a run in progress.")
        after = await event_store().last_seq(conversation_id)
        await self._before_start(given.before_start, conversation_id)
        self._start(given.run(conversation_id, is_new=False, last_seq=after, holder=holder))
        return Submission(conversation_id, after, False)

    async def cancel(
        self, principal: Principal | None, conversation_id: str, reason: str = "Cancelled by the user."
    ) -> None:
        """Ask the conversation's run, wherever it runs, to cancel its task."""
        conversation = await owned_conversation_or_error(principal, conversation_id)
        if conversation.status not in (ConversationStatus.RUNNING, ConversationStatus.REQUIRE_USER_INPUT):
            raise ServiceError(ErrorCode.NOT_RUNNING, "This conversation has no running task to cancel.")
        try:
            await run_control().send(conversation_id, {"type": CANCEL_MESSAGE, "reason": reason})
        except Exception as exc:
            log.warning("could not send the cancel of %s to its worker", conversation_id, exc_info=True)
            raise ServiceError(
                ErrorCode.LAYER_UNAVAILABLE,
                "The worker running this task cannot be reached just now; try again in a few seconds.",
                headers={"Retry-After": "5"},
            ) from exc

    @staticmethod
    async def _before_start(hook: Callable[[str], Awaitable[None]] | None, conversation_id: str) -> None:
        if hook is None:
            return
        try:
            await hook(conversation_id)
        except Exception:
            # The input is accepted: its run must start even if a watcher failed.
            log.exception("before_start hook failed for %s", conversation_id)

    def _start(self, run: Run) -> None:
        self._runs[run.conversation_id] = run
        observe.run_started(run)
        # A fresh context: the run must not inherit the request's thread-sensitive
        # executor or anything else that ends with the request. Its logs name its conversation.
        task = asyncio.get_running_loop().create_task(
            run.main(), name=f"run-{run.conversation_id}", context=logs.in_conversation(run.conversation_id)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _finished(self, run: Run) -> None:
        if self._runs.get(run.conversation_id) is run:
            del self._runs[run.conversation_id]
        observe.run_finished(run)

    async def shutdown(self, grace: float) -> None:
        """Let runs finish for `grace` seconds, then end the rest as failed."""
        pending = list(self._tasks)
        if not pending:
            return
        _, still = await asyncio.wait(pending, timeout=grace)
        for run in list(self._runs.values()):
            run.abort("The server shut down before this task finished.")
        if still:
            await asyncio.wait(still, timeout=max(grace, 5.0))

    async def wait_idle(self) -> None:
        """Wait for every run of this process to finish (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


orchestrator = Orchestrator()
