"""The agent interface and the context an agent runs in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from streaming.responses import AgentResponse


class AgentError(Exception):
    """A failure the agent explains to the user: its message ends the task as is
    (`task_failed`). Any other exception is logged, and the user sees only a
    reference to the log line: exception text may hold anything."""


@dataclass
class AgentContext:
    """What an agent may know and do beyond yielding responses."""

    conversation_id: str
    thread_id: str
    task_id: str
    agent_name: str
    _ask: Callable[[str], Awaitable[str]] = field(repr=False, default=None)  # type: ignore[assignment]

    async def ask(self, question: str) -> str:
        """Ask the user a question and wait for the answer (human in the loop).

        The stream shows `plan_require_user_input` and `done`; the task waits
        (`waiting_input`) until the user's next input in this conversation,
        which is returned here. Unanswered past the configured time, the task
        is cancelled and this raises `asyncio.CancelledError`.
        """
        return await self._ask(question)


class Agent:
    """Subclass and implement `stream`; set `name` and `description`."""

    name: str = ""
    description: str = ""

    def stream(self, query: str, ctx: AgentContext) -> AsyncIterator[AgentResponse]:
        raise NotImplementedError
