"""Logging for operators: the conversation a log line belongs to, and one JSON
object per line when VALUECELL_LOG_FORMAT=json (settings.LOGGING wires both).

A run sets `current_conversation` in its own context (`in_conversation`), so
every line logged while it runs, from any module and any task it starts,
carries its `conversation_id`.
"""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime
from typing import Any

current_conversation: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "valuecell_conversation", default=None
)

# What every LogRecord has; anything else on a record came with `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def in_conversation(conversation_id: str) -> contextvars.Context:
    """A fresh context (nothing of the caller's) in which logs name this conversation."""
    context = contextvars.Context()
    context.run(current_conversation.set, conversation_id)
    return context


class ConversationFilter(logging.Filter):
    """Puts the current conversation on every record (`extra=` may name one itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "conversation_id", None) is None:
            record.conversation_id = current_conversation.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's
    `extra` fields, and the exception (its newlines escaped) if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line and value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The usual text line, with the conversation in brackets when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        conversation_id = getattr(record, "conversation_id", None)
        return f"{text} [{conversation_id}]" if conversation_id else text
