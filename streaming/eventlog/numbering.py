"""Numbering one run's events: each gets the next seq of its conversation and
is encoded once, then handed to the event writer (which stores, then publishes).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from streaming.encoders import encode_envelope
from streaming.eventlog.writer import EventWriter, get_writer
from streaming.factory import EventDraft
from streaming.stored import Record, StoredEvent


class ConversationLog:
    """Numbers one run's events: seq continues from the last stored one."""

    YIELD_EVERY = 32

    def __init__(
        self, conversation_id: str, last_seq: int, writer: EventWriter | None = None, holder: str | None = None
    ) -> None:
        self.conversation_id = conversation_id
        self.holder = holder
        self.seq = last_seq
        self.writer = writer or get_writer()
        self._since_yield = 0

    async def emit(self, draft: EventDraft, then_status: str | None = None, records: tuple[Record, ...] = ()) -> int:
        """Number, encode and queue one event; `then_status` is set with it (lease
        holder only) and `records` written with it. Returns its writer ticket."""
        self.seq += 1
        envelope, text = encode_envelope(draft.event, draft.data, self.seq)
        stored = StoredEvent(
            conversation_id=self.conversation_id,
            seq=self.seq,
            event=envelope["event"],
            envelope=envelope,
            json=text,
            created_at=datetime.now(UTC),
            then_status=then_status,
            holder=self.holder,
            records=records,
            new_item=draft.new_item,
        )
        ticket = self.writer.submit(stored)
        await self.writer.wait_for_room()
        self._since_yield += 1
        if self._since_yield >= self.YIELD_EVERY:
            # Let the writer start on what is pending even if the agent never awaits.
            self._since_yield = 0
            await asyncio.sleep(0)
        return ticket

    async def emit_all(self, drafts: list[EventDraft]) -> None:
        for draft in drafts:
            await self.emit(draft)

    async def flush(self) -> None:
        await self.writer.flush()
