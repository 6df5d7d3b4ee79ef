"""What text the service accepts: anything UTF-8 can encode, except NUL.

PostgreSQL refuses a NUL in text and UTF-8 cannot encode an unpaired surrogate
(`"\\ud800"` in JSON): such input is refused at the door on every backend.
"""

from __future__ import annotations


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None when it can."""
    if "\x00" in text:
        return "contains a NUL character"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired surrogate (not valid Unicode text)"
    return None


def is_storable(text: str) -> bool:
    return text_problem(text) is None
