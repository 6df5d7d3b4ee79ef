"""A small, strict SSE parser for tests (multi-line data, comments, ids, retry)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class SseEvent:
    id: str | None
    data: str
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> dict:
        return json.loads(self.data)


class SseParser:
    """Feed text as it arrives; iterate complete events."""

    def __init__(self) -> None:
        self._buffer = ""
        self.retry: int | None = None
        self.comments: list[str] = []

    def feed(self, text: str) -> Iterator[SseEvent]:
        self._buffer += text
        while "\n\n" in self._buffer:
            block, self._buffer = self._buffer.split("\n\n", 1)
            event_id, data = None, []
            for line in block.split("\n"):
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "id":
                    event_id = value
                elif name == "data":
                    data.append(value)
                elif name == "retry":
                    self.retry = int(value)
            if data:
                yield SseEvent(event_id, "\n".join(data))
