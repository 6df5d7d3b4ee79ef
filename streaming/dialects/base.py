"""What a dialect is: a translator from stored envelopes to one wire format.

A translator is fed the rows a follower yields, in seq order, and returns the
wire events each becomes; `streaming.dialects.stream` frames them as SSE.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

Part = TypeVar("Part")


class Translator(Protocol[Part]):
    """One stream's translator: it may keep state from row to row.

    `table` names, for every native event name, what it becomes in this
    dialect (tests/streaming/test_dialects.py checks that none is missing).
    """

    @property
    def table(self) -> Mapping[str, Any]:
        """Native event name -> what it becomes here."""
        ...

    @property
    def finished(self) -> bool:
        """True once the stream has nothing more to say (the follower stops)."""
        ...

    def opening(self) -> list[Part]:
        """Wire events before any stored one (they carry no id)."""
        ...

    def translate(self, seq: int, event: str, body: str) -> list[Part]:
        """The wire events one stored event becomes (zero or more)."""
        ...

    def ending(self) -> list[Part]:
        """Wire events when the follower has ended (nothing more is stored for this stream)."""
        ...

    def broken(self, message: str, code: str | None = None) -> list[Part]:
        """Wire events when the stream cannot go on: the store stayed unreachable
        (no `code`), or `code` says why (`invalid_token`: its API token was revoked)."""
        ...

    def json(self, part: Part) -> str:
        """One wire event as the JSON text of its `data:` line."""
        ...
