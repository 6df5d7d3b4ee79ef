"""What a dialect is: a translator from stored envelopes to one wire format.

A translator is fed the rows a follower yields, in seq order, and returns the
wire events each becomes; `streaming.dialects.stream` frames them as SSE.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TypeVar

Part = TypeVar("Part")


class Translation(list[Part]):
    """The wire events `translate` returned for one stored event, when they are not
    simply its frames: `lead` events first that come from no stored frame (a
    resume's opening), then the event's own frames from index `first` on (a
    resume inside the event: the frames before `first` were sent already)."""

    def __init__(self, parts: Iterable[Part] = (), *, lead: int = 0, first: int = 0) -> None:
        super().__init__(parts)
        self.lead = lead
        self.first = first


class Translator(Protocol[Part]):
    """One stream's translator: it may keep state from row to row.

    `table` names, for every native event name, what it becomes in this
    dialect (tests/streaming/test_dialects.py checks that none is missing).
    `ids_per_frame`: every frame of a stored event N carries an id (`N.k`, the
    last `N`), which needs a stored event to become the same frames on every
    stream; else only the last frame does (`N`).
    """

    ids_per_frame: bool

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
        """The wire events one stored event becomes (zero or more; a `Translation`
        says which of them are the event's own frames, and from which index)."""
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
