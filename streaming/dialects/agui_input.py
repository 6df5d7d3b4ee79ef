"""What an AG-UI `RunAgentInput` asks for, given what the thread already holds.

The client sends its whole message history with every run (our own assistant,
tool and reasoning messages included): the input is its last user message,
unless that one was already taken. A thread whose run waits on a question is
answered by a `resume` entry for the question's interrupt id (its payload, or
the new user message) or by a new user message; a `cancelled` entry cancels
the waiting task. With nothing new, the run re-attaches to the thread: the
run in progress, or the end of the last one again (a client that lost its
state learns a pending interrupt that way).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ag_ui.core import ResumeEntry, RunAgentInput, TextPart, UserMessage

from streaming.errors import ErrorCode, ServiceError
from streaming.text import text_problem


class Action(StrEnum):
    START = "start"  # a new run with `query`
    ANSWER = "answer"  # `query` answers the waiting question
    CANCEL = "cancel"  # cancel the waiting task
    ATTACH = "attach"  # nothing new: follow the thread where it is


@dataclass(frozen=True)
class Plan:
    action: Action
    query: str = ""
    message_id: str = ""  # the client message taken as the input ("" for none)


def _text(message: UserMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    return "\n".join(part.text for part in message.content if isinstance(part, TextPart))


def new_user_message(run_input: RunAgentInput, taken: str) -> UserMessage | None:
    """The last user message, unless it is the one taken last time."""
    for message in reversed(run_input.messages):
        if isinstance(message, UserMessage):
            return None if message.id == taken else message
    return None


def answer_in(payload: Any) -> str | None:
    """A resume payload's answer: a string, or `{"answer": <string>}`."""
    if isinstance(payload, str):
        return payload
    if isinstance(payload, dict) and isinstance(payload.get("answer"), str):
        return payload["answer"]
    return None


def _check_ids(run_input: RunAgentInput) -> None:
    """The ids that are stored (the thread's name, the message taken) must be storable text."""
    ids = [("threadId", run_input.thread_id), ("runId", run_input.run_id)]
    ids += [("messages.id", message.id) for message in run_input.messages if isinstance(message, UserMessage)]
    for field, value in ids:
        problem = text_problem(value)
        if problem is not None:
            raise ServiceError(ErrorCode.INVALID_FIELD, f"Field {field!r} {problem}.")


def plan(run_input: RunAgentInput, *, exists: bool, taken: str = "", waiting_for: str | None = None) -> Plan:
    """What to do. `exists`: the thread names a conversation already; `taken`:
    its last client message taken as input; `waiting_for`: the interrupt id
    (the question's item id) its run waits on."""
    _check_ids(run_input)
    user = new_user_message(run_input, taken)
    if waiting_for is not None:
        entry: ResumeEntry | None = next((e for e in run_input.resume or () if e.interrupt_id == waiting_for), None)
        if entry is not None and entry.status == "cancelled":
            return Plan(Action.CANCEL)
        answer = answer_in(entry.payload) if entry is not None else None
        if answer is not None:
            return Plan(Action.ANSWER, answer)
        if user is not None:
            return Plan(Action.ANSWER, _text(user), user.id)
        if entry is not None:
            raise ServiceError(
                ErrorCode.INVALID_FIELD,
                "Field 'resume': the answer goes in the payload as a string or {\"answer\": <string>}, "
                "or in a new user message.",
            )
        return Plan(Action.ATTACH)
    if user is not None:
        return Plan(Action.START, _text(user), user.id)
    if exists:
        return Plan(Action.ATTACH)
    raise ServiceError(ErrorCode.NO_NEW_INPUT, "No new user message in 'messages': nothing to run.")
