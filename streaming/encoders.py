"""Wire encoders: the envelope JSON (shared by every transport) and SSE framing.

An envelope is encoded to JSON exactly once, when it is numbered; SSE and
WebSocket deliver those same bytes, and the event log stores them.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import to_json

from streaming.events import Envelope, EventData, EventName
from streaming.stored import Row, Rows


def envelope_json(envelope: Envelope) -> str:
    """Compact JSON with `None` fields left out."""
    return envelope.model_dump_json(exclude_none=True)


def encode_envelope(event: EventName, data: dict[str, Any] | EventData, seq: int) -> tuple[dict[str, Any], str]:
    """The envelope as a dict and as JSON text, byte for byte what
    `envelope_json(Envelope(event=event, data=data, seq=seq))` gives. `data` is a
    draft's (a dict in `EventData`'s field order, `None` left out): one
    serialization, no model."""
    if isinstance(data, EventData):
        data = data.model_dump(mode="json", exclude_none=True)
    envelope = {"event": event.value, "data": data, "seq": seq}
    return envelope, to_json(envelope).decode()


def sse_frame(seq: int | str, json_text: str) -> str:
    """One SSE event: a single `data` line (JSON has no raw newlines), `id`, a blank line.
    (The id is a seq; a dialect's frame inside a stored event has `<seq>.<index>`.)

    `id` comes last: some clients (`@microsoft/fetch-event-source`) record an id
    as soon as they read its line, so an `id` before the data would let a
    connection cut mid-event skip that event on resume.
    """
    return f"data: {json_text}\nid: {seq}\n\n"


def sse_data(json_text: str) -> str:
    """An SSE event without an `id` (a dialect's frame that completes no stored event)."""
    return f"data: {json_text}\n\n"


def sse_frames(rows: list[Row]) -> bytes:
    """The SSE frames of (seq, event, json) rows, as bytes; a shared `Rows` batch
    is encoded once for all the streams that send it."""
    cached = rows.sse if isinstance(rows, Rows) else None
    if cached is not None:
        return cached
    data = "".join([sse_frame(seq, body) for seq, _event, body in rows]).encode()
    if isinstance(rows, Rows):
        rows.sse = data
    return data


def sse_retry(milliseconds: int) -> str:
    return f"retry: {milliseconds}\n\n"


SSE_PING = ": ping\n\n"
