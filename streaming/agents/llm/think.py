"""Thinking inlined in the content: `<think>…</think>` at the start of an answer is reasoning.

Servers without a reasoning parser (vLLM without `--reasoning-parser`, some
llama.cpp and Ollama setups) send a reasoning model's thoughts this way.
"""

from __future__ import annotations

from typing import Literal

OPEN, CLOSE = "<think>", "</think>"

Kind = Literal["reasoning", "text"]


def _held_back(buffer: str, tag: str) -> int:
    """How many trailing characters of `buffer` could be the start of `tag`."""
    for size in range(min(len(tag) - 1, len(buffer)), 0, -1):
        if tag.startswith(buffer[-size:]):
            return size
    return 0


class ThinkSplitter:
    """Feed content deltas; get (kind, text) pieces as soon as their kind is certain."""

    def __init__(self) -> None:
        # start: undecided; think: inside the tag; after: skipping blank lines after it; text: plain.
        self._state: Literal["start", "think", "after", "text"] = "start"
        self._buffer = ""

    def feed(self, delta: str) -> list[tuple[Kind, str]]:
        if self._state == "text":
            return [("text", delta)] if delta else []
        if self._state == "after":
            return self._after(delta)
        self._buffer += delta
        if self._state == "start":
            head = self._buffer.lstrip()
            if OPEN.startswith(head):
                return []  # still undecided (empty, or a prefix of the tag)
            if not head.startswith(OPEN):
                self._state = "text"
                text, self._buffer = self._buffer, ""
                return [("text", text)]
            self._state = "think"
            self._buffer = head[len(OPEN) :]
        return self._think()

    def _think(self) -> list[tuple[Kind, str]]:
        end = self._buffer.find(CLOSE)
        if end >= 0:
            thought, rest = self._buffer[:end], self._buffer[end + len(CLOSE) :]
            self._state, self._buffer = "after", ""
            head: list[tuple[Kind, str]] = [("reasoning", thought)] if thought else []
            return head + self._after(rest)
        keep = _held_back(self._buffer, CLOSE)
        thought = self._buffer[: len(self._buffer) - keep]
        self._buffer = self._buffer[len(thought) :]
        return [("reasoning", thought)] if thought else []

    def _after(self, delta: str) -> list[tuple[Kind, str]]:
        text = delta.lstrip()
        if not text:
            return []
        self._state = "text"
        return [("text", text)]

    def finish(self) -> list[tuple[Kind, str]]:
        """What is left when the stream ends: an unclosed thought stays a thought."""
        rest, self._buffer = self._buffer, ""
        if not rest:
            return []
        return [("reasoning" if self._state == "think" else "text", rest)]
