"""Wire encoders: the envelope JSON (shared by every transport) and SSE framing.

An envelope is encoded to JSON exactly once, when it is numbered; SSE and
WebSocket deliver those same bytes, and the event log stores them.
"""

from __future__ import annotations

from .events import Envelope


def envelope_json(envelope: Envelope) -> str:
    """Compact JSON with `None` fields left out."""
    return envelope.model_dump_json(exclude_none=True)


def sse_frame(seq: int, json_text: str) -> str:
    """One SSE event: `id`, a single `data` line, a blank line (JSON has no raw newlines)."""
    return f"id: {seq}\ndata: {json_text}\n\n"


def sse_retry(milliseconds: int) -> str:
    return f"retry: {milliseconds}\n\n"


SSE_PING = ": ping\n\n"
