"""Conversation memory for the `llm` agent: earlier turns from stored items, within a budget."""

from __future__ import annotations

import pytest
from django.utils import timezone

from conversations.memory import Exchange, as_messages, fit_budget, prior_exchanges, prior_messages
from conversations.models import Conversation, Item


def exchanges(count: int, size: int = 10) -> list[Exchange]:
    return [Exchange(f"q{i}".ljust(size // 2, "."), f"a{i}".ljust(size // 2, ".")) for i in range(count)]


def test_the_message_budget_keeps_the_newest_whole_exchanges():
    kept = fit_budget(exchanges(5), max_chars=10_000, max_messages=5)
    assert [e.query[:2] for e in kept] == ["q3", "q4"]


def test_the_character_budget_drops_the_oldest_first():
    kept = fit_budget(exchanges(5, size=10), max_chars=35, max_messages=100)
    assert [e.query[:2] for e in kept] == ["q2", "q3", "q4"]


def test_an_exchange_larger_than_the_budget_ends_the_walk():
    history = [Exchange("old", "short"), Exchange("new", "x" * 100)]
    assert fit_budget(history, max_chars=50, max_messages=10) == []


def test_exchanges_become_alternating_messages():
    assert as_messages([Exchange("hi", "hello")]) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
    ]


seq = iter(range(1, 10_000))


async def add_item(conversation_id: str, thread_id: str, event: str, content: str, role: str = "agent") -> None:
    now = timezone.now()
    number = next(seq)
    await Item.objects.acreate(
        conversation_id=conversation_id, item_id=f"item-{number}", event=event, role=role, thread_id=thread_id,
        payload={"content": content}, first_seq=number, last_seq=number, created_at=now, updated_at=now,
    )


@pytest.mark.django_db(transaction=True)
async def test_prior_exchanges_are_read_from_the_stored_items():
    await Conversation.objects.acreate(id="conv-m", session_key="s")
    await add_item("conv-m", "th-1", "thread_started", "How did NVDA do?", role="user")
    await add_item("conv-m", "th-1", "reasoning_completed", "thinking, not an answer")
    await add_item("conv-m", "th-1", "tool_call_completed", "")
    await add_item("conv-m", "th-1", "message_chunk", "NVDA rose.")
    await add_item("conv-m", "th-1", "message_chunk", "Synthetic data.")
    await add_item("conv-m", "th-2", "thread_started", "This one failed", role="user")
    await add_item("conv-m", "th-2", "task_failed", "The model endpoint answered HTTP 500.", role="system")
    await add_item("conv-m", "th-3", "thread_started", "Analyse something", role="user")
    await add_item("conv-m", "th-3", "plan_require_user_input", "Which ticker?", role="system")
    await add_item("conv-m", "th-4", "thread_started", "MSFT", role="user")
    await add_item("conv-m", "th-4", "message_chunk", "MSFT fell.")
    await add_item("conv-m", "th-5", "thread_started", "The current query", role="user")

    assert await prior_exchanges("conv-m", "th-5") == [
        Exchange("How did NVDA do?", "NVDA rose.\n\nSynthetic data."),
        Exchange("Analyse something", "Which ticker?"),
        Exchange("MSFT", "MSFT fell."),
    ]
    assert await prior_messages("conv-m", "th-5", max_chars=1000, max_messages=2) == [
        {"role": "user", "content": "MSFT"},
        {"role": "assistant", "content": "MSFT fell."},
    ]
    assert await prior_messages("conv-m", "th-5", max_chars=0, max_messages=20) == []
    assert await prior_exchanges("conv-other", "th-1") == []
