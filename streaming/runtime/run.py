"""One run: a user input carried through its whole lifecycle in the background.

Order: (`conversation_started`), `thread_started`, `task_started`, the agent's
events, `task_completed` | `task_failed` | `task_cancelled`, `done`. An error
outside the agent gives `system_failed` then `done`. The run never depends on
a client: cancel and answers reach it through the process's run control
(`control.py`), which also renews its lease.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from conversations import services
from streaming.agents.base import Agent, AgentContext, AgentError
from streaming.eventlog.groups import ANSWER_MESSAGE, CANCEL_MESSAGE
from streaming.eventlog.numbering import ConversationLog
from streaming.events import new_task_id, new_thread_id
from streaming.factory import EventDraft, ResponseFactory, TaskContext
from streaming.router import ResponseRouter
from streaming.runtime.control import run_control
from streaming.runtime.retry import while_unavailable
from streaming.states import ConversationStatus, TaskStatus
from streaming.stored import NewConversation, NewTask, NewThread, TaskStatusChange

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ending:
    """How a task ended: its final status and, unless it completed, why.

    `system` marks a failure outside the agent (`system_failed`, not `task_failed`).
    """

    status: TaskStatus
    message: str = ""
    system: bool = False


COMPLETED = Ending(TaskStatus.COMPLETED)


def error_ref() -> str:
    """A short id that ties what a user sees to the log line with the details."""
    return secrets.token_hex(4)


def system_error_message(ref: str) -> str:
    # Never the exception's text: it may hold database errors, paths or data.
    return f"System error (ref {ref}); the run could not continue."


class Run:
    def __init__(
        self,
        *,
        conversation_id: str,
        query: str,
        agent: Agent,
        agent_name: str,
        is_new: bool,
        last_seq: int,
        holder: str,
        on_finished: Callable[[Run], None] | None = None,
        created: NewConversation | None = None,
    ) -> None:
        self.conversation_id = conversation_id
        self.query = query
        self.agent = agent
        self.agent_name = agent_name
        self.is_new = is_new
        # A new conversation's row, written with its first event (not on the request's path).
        self.created = created
        self.holder = holder  # this run's lease on the conversation
        self.log = ConversationLog(conversation_id, last_seq, holder=holder)
        self.factory = ResponseFactory(conversation_id)
        self.thread_id = new_thread_id()
        self.task_id = new_task_id()
        self.router: ResponseRouter | None = None
        self._on_finished = on_finished
        self._agent_task: asyncio.Task[None] | None = None
        self._stop: Ending | None = None  # why the agent task was cancelled (cancel, abort, no answer)
        self.ending: Ending | None = None  # set once the task has ended
        self._lease_lost = False
        self._released = False  # the final `done` carried the conversation back to idle
        self._answer_wakeup: asyncio.Event | None = None  # while a question waits
        self._first_ticket: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def recorded(self) -> None:
        """Wait until the run's first event (and the conversation it may create) is stored."""
        ticket = await asyncio.shield(self._first_ticket)
        await self.log.writer.stored(ticket)

    # --- lifecycle -------------------------------------------------------------
    async def main(self) -> None:
        control = run_control()
        await control.attach(self)  # cancel, answers and the lease, with every run of the process
        try:
            await self._lifecycle()
        except asyncio.CancelledError:
            if not self._lease_lost:
                raise
            log.warning("run of %s stopped: its lease was taken over", self.conversation_id)
        except Exception:  # outside the agent: the system failed
            ref = error_ref()
            log.exception("run of %s failed (ref %s)", self.conversation_id, ref)
            try:
                await self._end(Ending(TaskStatus.FAILED, system_error_message(ref), system=True))
            except Exception:
                log.exception("could not record the failure of %s", self.conversation_id)
        finally:
            await control.detach(self)
            if not self._first_ticket.done():
                self._first_ticket.set_result(0)  # nothing was emitted: nothing to wait for
            try:
                await self.log.flush()
            finally:
                # Only after the final `done` is stored may another input start a run.
                if not self._lease_lost and not self._released:
                    await while_unavailable(services.release, self.conversation_id, self.holder)
                self.log.writer.forget(self.conversation_id)
                if self._on_finished:
                    self._on_finished(self)

    async def _lifecycle(self) -> None:
        # The rows of the conversation, the thread and the task go in with the
        # events that announce them: the writer's batch, not round trips here.
        if self.is_new:
            created = (self.created,) if self.created is not None else ()
            self._first_ticket.set_result(await self.log.emit(self.factory.conversation_started(), records=created))
        thread = NewThread(self.thread_id, self.query)
        ticket = await self.log.emit(self.factory.thread_started(self.thread_id, self.query), records=(thread,))
        if not self._first_ticket.done():
            self._first_ticket.set_result(ticket)
        ctx = TaskContext(self.conversation_id, self.thread_id, self.task_id, self.agent_name)
        self.router = ResponseRouter(self.factory, ctx)
        task = NewTask(self.task_id, self.thread_id, self.agent_name)
        await self.log.emit(self.factory.task_started(ctx), records=(task,))
        await self._end(await self._run_agent())

    async def _run_agent(self) -> Ending:
        """Run the agent to its end: completed, failed (it raised), or stopped (`_stop`)."""
        self._agent_task = asyncio.create_task(self._consume_agent(), name=f"agent-{self.task_id}")
        if self._stop is not None:
            self._agent_task.cancel()  # a cancel (or shutdown) arrived before the agent started
        try:
            await self._agent_task
        except asyncio.CancelledError:
            if self._lease_lost or self._stop is None:
                raise  # another worker ended this run, or the run itself is being cancelled
            return self._stop
        except AgentError as exc:  # the agent's own words for the user
            message = str(exc) or type(exc).__name__
            log.info("agent %s failed in %s: %s", self.agent_name, self.task_id, message)
            return Ending(TaskStatus.FAILED, message)
        except Exception:
            ref = error_ref()
            log.exception("agent %s failed in %s (ref %s)", self.agent_name, self.task_id, ref)
            return Ending(TaskStatus.FAILED, f"The agent failed (ref {ref}); the task could not finish.")
        return COMPLETED

    async def _end(self, ending: Ending) -> None:
        """The one way a task ends: its last events, its status, then `done`."""
        thread_id = self.router.ctx.thread_id if self.router is not None else self.thread_id
        status = (TaskStatusChange(self.task_id, ending.status, ending.message),)
        if ending.system or self.router is None:
            await self.log.emit(self.factory.system_failed(thread_id, ending.message), records=status)
        else:
            await self.log.emit_all(self.router.close())
            await self.log.emit(self._task_event(ending), records=status)
        self.ending = ending
        await self._emit_final_done(thread_id)

    def _task_event(self, ending: Ending) -> EventDraft:
        assert self.router is not None
        if ending.status == TaskStatus.COMPLETED:
            return self.factory.task_completed(self.router.ctx)
        if ending.status == TaskStatus.CANCELLED:
            return self.factory.task_cancelled(self.router.ctx, ending.message)
        return self.factory.task_failed(self.router.ctx, ending.message)

    async def _emit_final_done(self, thread_id: str | None) -> None:
        """`done`, stored in one transaction with the conversation going idle.

        Whoever receives it may send the next input at once: a `done` that
        arrived before the conversation was free would get a 409.
        """
        await self.log.emit(self.factory.done(thread_id), then_status=ConversationStatus.IDLE)
        self._released = True

    async def _consume_agent(self) -> None:
        assert self.router is not None
        context = AgentContext(
            conversation_id=self.conversation_id,
            thread_id=self.thread_id,
            task_id=self.task_id,
            agent_name=self.agent_name,
            _ask=self.ask,
        )
        async for response in self.agent.stream(self.query, context):
            await self.log.emit_all(self.router.route(response))

    async def _wait_for_answer(self) -> str:
        """The stored answer: looked for on each wake-up message, and between them
        every VALUECELL_ANSWER_RECHECK_SECONDS, doubling up to
        VALUECELL_FOLLOW_MAX_RECHECK_SECONDS (a message can be lost with a Redis
        connection; the database has the answer; many waiting runs stay cheap)."""
        assert self._answer_wakeup is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.VALUECELL_INPUT_TIMEOUT_SECONDS
        recheck = settings.VALUECELL_ANSWER_RECHECK_SECONDS
        longest = max(recheck, settings.VALUECELL_FOLLOW_MAX_RECHECK_SECONDS)
        while (remaining := deadline - loop.time()) > 0:
            try:
                async with asyncio.timeout(min(recheck, remaining)):
                    await self._answer_wakeup.wait()
            except TimeoutError:
                recheck = min(recheck * 2, longest)
            self._answer_wakeup.clear()
            answer = await self._take_answer()
            if answer is not None:
                return answer
        if await while_unavailable(services.claim_answer, self.conversation_id):
            # Nobody answered: take the conversation back and end the task.
            self._stop = Ending(TaskStatus.CANCELLED, "No answer to the question in time.")
            raise asyncio.CancelledError
        # An answer claimed the conversation just now, and it is stored with the claim.
        while (answer := await self._take_answer()) is None:
            await asyncio.sleep(settings.VALUECELL_ANSWER_RECHECK_SECONDS)  # only while the database is unreachable
        return answer

    async def _take_answer(self) -> str | None:
        try:
            return await services.take_answer(self.conversation_id)
        except Exception:
            log.warning("could not read the answer of %s; retrying", self.conversation_id, exc_info=True)
            return None

    # --- control (streaming/runtime/control.py) ------------------------------------
    def on_control(self, message: dict) -> None:
        kind = message.get("type")
        if kind == CANCEL_MESSAGE:
            self.cancel(message.get("reason") or "Cancelled by the user.")
        elif kind == ANSWER_MESSAGE and self._answer_wakeup is not None:
            self._answer_wakeup.set()

    def is_recorded(self) -> bool:
        """Whether the conversation's row (with its lease) is stored: only then is it renewed."""
        return self._first_ticket.done() and self.log.writer.is_stored(self._first_ticket.result())

    def lease_lost(self) -> None:
        """Another worker took the conversation over (this one was thought dead): stop."""
        self._lease_lost = True
        if self._agent_task is not None and not self._agent_task.done():
            self._agent_task.cancel()

    def cancel(self, reason: str) -> None:
        """End the task as cancelled (the user asked)."""
        self._stop_agent(Ending(TaskStatus.CANCELLED, reason))

    def abort(self, message: str) -> None:
        """End the task as failed (the server is shutting down)."""
        self._stop_agent(Ending(TaskStatus.FAILED, message))

    def _stop_agent(self, ending: Ending) -> None:
        if self._stop is not None or (self._agent_task is not None and self._agent_task.done()):
            return  # already stopping, or the agent has finished: the task ends as it does
        self._stop = ending
        if self._agent_task is not None:
            self._agent_task.cancel()
        # Not started yet: `_run_agent` sees `_stop` and stops the agent at once.

    async def ask(self, question: str) -> str:
        """Human in the loop: emit the question and `done`, wait, resume with the answer."""
        assert self.router is not None
        ctx = self.router.ctx
        await self.log.emit_all(self.router.close())
        waiting = (TaskStatusChange(self.task_id, TaskStatus.WAITING_INPUT),)
        await self.log.emit(self.factory.plan_require_user_input(ctx, question), records=waiting)
        # Ready for the answer before anyone can see the question's `done`,
        # which is stored together with the conversation's new status.
        self._answer_wakeup = asyncio.Event()
        await self.log.emit(self.factory.done(ctx.thread_id), then_status=ConversationStatus.REQUIRE_USER_INPUT)
        await self.log.flush()
        try:
            answer = await self._wait_for_answer()
        finally:
            self._answer_wakeup = None
        thread_id = new_thread_id()
        self.router.ctx = dataclasses.replace(ctx, thread_id=thread_id)
        resumed = (NewThread(thread_id, answer), TaskStatusChange(self.task_id, TaskStatus.RUNNING))
        await self.log.emit(self.factory.thread_started(thread_id, answer), records=resumed)
        return answer
