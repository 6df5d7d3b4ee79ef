"""The native dialect: the stored envelope itself, byte for byte.

The chat page, the admin, the WebSocket and `/agents/stream` speak it; it is
here so that every dialect can be compared (and tested) side by side.
"""

from __future__ import annotations

from streaming.events import ALL_EVENT_NAMES


class NativeTranslator:
    """Every event goes out as it was stored: `{"event", "data", "seq"}`."""

    table = {name: name for name in ALL_EVENT_NAMES}
    finished = False
    ids_per_frame = False

    def opening(self) -> list[str]:
        return []

    def translate(self, seq: int, event: str, body: str) -> list[str]:
        return [body]

    def ending(self) -> list[str]:
        return []

    def broken(self, message: str, code: str | None = None) -> list[str]:
        return []

    def json(self, part: str) -> str:
        return part
