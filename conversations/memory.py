"""A conversation's earlier turns as chat messages, read from its stored history items.

A turn is one thread's user query and the agent text that answered it; the newest
turns that fit a character and a message budget are kept, the oldest dropped first.
"""

from __future__ import annotations

from dataclasses import dataclass

from conversations.db import database_sync_to_async
from conversations.models import Item
from streaming.events import StreamResponseEvent, SystemResponseEvent

QUERY_EVENT = SystemResponseEvent.THREAD_STARTED.value
# What the agent said: its paragraphs, and any question it asked the user.
ANSWER_EVENTS = (StreamResponseEvent.MESSAGE_CHUNK.value, SystemResponseEvent.PLAN_REQUIRE_USER_INPUT.value)
SCAN_LIMIT = 2000  # history items read at most, newest first


@dataclass(frozen=True)
class Exchange:
    query: str
    answer: str

    @property
    def size(self) -> int:
        return len(self.query) + len(self.answer)


def fit_budget(exchanges: list[Exchange], max_chars: int, max_messages: int) -> list[Exchange]:
    """The newest exchanges whose text and message count fit; whole exchanges only."""
    kept: list[Exchange] = []
    chars = 0
    for exchange in reversed(exchanges):
        if 2 * (len(kept) + 1) > max_messages or chars + exchange.size > max_chars:
            break
        kept.append(exchange)
        chars += exchange.size
    kept.reverse()
    return kept


def as_messages(exchanges: list[Exchange]) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    for exchange in exchanges:
        messages.append({"role": "user", "content": exchange.query})
        messages.append({"role": "assistant", "content": exchange.answer})
    return messages


def _newest_answered_items(conversation_id: str, current_thread_id: str) -> list[tuple[str, str, dict | None]]:
    return list(
        Item.objects.filter(conversation_id=conversation_id, event__in=(QUERY_EVENT, *ANSWER_EVENTS))
        .exclude(thread_id=current_thread_id)
        .order_by("-first_seq")
        .values_list("thread_id", "event", "payload")[:SCAN_LIMIT]
    )


_anewest_answered_items = database_sync_to_async(_newest_answered_items)


async def prior_exchanges(conversation_id: str, current_thread_id: str) -> list[Exchange]:
    """Answered exchanges of the threads before `current_thread_id`, oldest first."""
    newest_first = await _anewest_answered_items(conversation_id, current_thread_id)
    queries: dict[str, str] = {}
    answers: dict[str, list[str]] = {}
    for thread_id, event, payload in reversed(newest_first):
        content = (payload or {}).get("content") or ""
        if event == QUERY_EVENT:
            queries[thread_id] = content
        elif thread_id in queries and content.strip():
            answers.setdefault(thread_id, []).append(content.strip())
    # An unanswered thread (failed, cancelled) is left out: the messages keep alternating.
    return [
        Exchange(query, "\n\n".join(answers[thread_id])) for thread_id, query in queries.items() if thread_id in answers
    ]


async def prior_messages(
    conversation_id: str, current_thread_id: str, max_chars: int, max_messages: int
) -> list[dict[str, str]]:
    """Earlier turns of the conversation as `user` / `assistant` messages, within the budget."""
    if max_chars <= 0 or max_messages < 2:
        return []
    exchanges = await prior_exchanges(conversation_id, current_thread_id)
    return as_messages(fit_budget(exchanges, max_chars, max_messages))
