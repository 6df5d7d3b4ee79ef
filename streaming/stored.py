"""Events as the event log stores them, and the interface of the store.

`EventStore` is all the event log needs of a database: append a batch, read
after a seq, the last seq, a conversation's status. The writer and followers
are given a store (`settings.VALUECELL_EVENT_STORE` names the class); the
Django implementation is `conversations.store.DjangoEventStore`. An event may
carry the records of its run that it announces (`NewConversation`,
`NewThread`, `NewTask`, `TaskStatusChange`): the store writes them in the same
transaction, so they cost the request path nothing and exist as soon as the
event can be seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

Row = tuple[int, str, str]
"""(seq, event name, envelope JSON): one stored event as followers read it."""


class Rows(list[Row]):
    """One stored batch of a conversation's rows, as the writer hands it to every
    follower in the process: shared, never changed, so its wire encoding is made
    once (`streaming.encoders.sse_frames` keeps it in `sse`)."""

    __slots__ = ("sse",)

    def __init__(self, rows: list[Row]) -> None:
        super().__init__(rows)
        self.sse: bytes | None = None


@dataclass(frozen=True, slots=True)
class NewConversation:
    """The conversation a new run creates, running and leased to the event's holder."""

    owner_id: int | None
    session_key: str
    title: str
    agent_name: str
    lease_seconds: float  # the lease runs from the moment the row is written


@dataclass(frozen=True, slots=True)
class NewThread:
    """A user input to the event's conversation."""

    thread_id: str
    query: str


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task of the event's conversation, running from the event on."""

    task_id: str
    thread_id: str
    agent_name: str


@dataclass(frozen=True, slots=True)
class TaskStatusChange:
    task_id: str
    status: str  # a `TaskStatus` value; a finished one also sets `finished_at`
    error: str = ""


Record = NewConversation | NewThread | NewTask | TaskStatusChange


@dataclass(slots=True)
class StoredEvent:
    """A numbered event ready to store and deliver."""

    conversation_id: str
    seq: int
    event: str
    envelope: dict[str, Any]
    json: str
    created_at: datetime
    # Set the conversation's status in the same transaction (the `done` that ends
    # or pauses a run): whoever sees the event may act on the new status at once.
    then_status: str | None = None
    holder: str | None = None  # the lease holder of the run that wrote it
    # Written in the same transaction, before the event (creations first).
    records: tuple[Record, ...] = ()
    new_item: bool = False  # its item_id is new with it: no stored item to read back


class SeqConflict(RuntimeError):
    """Another writer already stored these seq numbers for the conversation."""


class EventStore(Protocol):
    async def append(self, batch: list[StoredEvent]) -> None:
        """Store the batch (events, their records, history items, `then_status`) atomically.

        Raises `SeqConflict` when a seq is already taken; any other exception
        means nothing was stored and the batch may be tried again.
        """
        ...

    async def read_after(self, conversation_id: str, after: int, limit: int) -> list[Row]:
        """Up to `limit` stored events after `after`, in seq order."""
        ...

    async def last_seq(self, conversation_id: str) -> int:
        """The conversation's last stored seq (0 for none)."""
        ...

    async def status(self, conversation_id: str) -> str | None:
        """The conversation's `ConversationStatus` value (None if it does not exist)."""
        ...
