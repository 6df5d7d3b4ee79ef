"""Retention: `purge_conversations --older-than DAYS [--dry-run]` deletes idle
conversations whose last event (or creation) is older than DAYS, with all they
hold, and keeps any conversation with a run in progress."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations import retention
from conversations.models import Conversation, ConversationStatus, Event, Item, Task, TaskStatus, Thread
from tests.conversations.test_admin_seed import add_run, chunks, make_conversation

pytestmark = pytest.mark.django_db(transaction=True)


def aged(conversation: Conversation, created_days: float, last_event_days: float | None = None) -> Conversation:
    """Move a conversation's creation (and its events, when given) into the past."""
    now = timezone.now()
    Conversation.objects.filter(pk=conversation.pk).update(created_at=now - timedelta(days=created_days))
    if last_event_days is not None:
        Event.objects.filter(conversation=conversation).update(created_at=now - timedelta(days=last_event_days))
    return conversation


def with_run(status: str = ConversationStatus.IDLE, outcome: str = TaskStatus.COMPLETED) -> Conversation:
    conversation = make_conversation(status=status)
    add_run(conversation, "How did NVDA do?", chunks(5), outcome=outcome)
    return conversation


def purge(*args: str) -> str:
    out = StringIO()
    call_command("purge_conversations", *args, stdout=out)
    return out.getvalue()


def remaining(model) -> set[str]:
    return set(model.objects.values_list("conversation_id", flat=True).distinct())


@pytest.fixture
def world():
    return {
        "old": aged(with_run(), created_days=60, last_event_days=40),
        "old_empty": aged(make_conversation(), created_days=45),
        "old_waiting": aged(
            with_run(ConversationStatus.REQUIRE_USER_INPUT, TaskStatus.WAITING_INPUT), created_days=60, last_event_days=35
        ),
        "running": aged(with_run(ConversationStatus.RUNNING, TaskStatus.RUNNING), created_days=60, last_event_days=40),
        "old_but_active": aged(with_run(), created_days=60, last_event_days=2),
        "recent": with_run(),
    }


def test_dry_run_counts_and_deletes_nothing(world):
    before = Conversation.objects.count()
    assert purge("--older-than", "30", "--dry-run").startswith("3 conversations would be deleted")
    assert Conversation.objects.count() == before
    assert purge("--older-than", "41", "--dry-run").startswith("1 conversations would be deleted")  # old_empty only


def test_purge_deletes_stale_conversations_with_everything_they_hold(world):
    stale = {world["old"].pk, world["old_empty"].pk, world["old_waiting"].pk}
    kept = {world["running"].pk, world["old_but_active"].pk, world["recent"].pk}
    assert purge("--older-than", "30").startswith("3 conversations deleted")
    assert set(Conversation.objects.values_list("pk", flat=True)) == kept
    for model in (Event, Item, Task, Thread):
        assert remaining(model) == kept, model.__name__
    assert not stale & set(Event.objects.values_list("conversation_id", flat=True))
    # Nothing older is left: a second purge finds nothing.
    assert purge("--older-than", "30").startswith("0 conversations deleted")


def test_a_running_conversation_is_kept_however_old(world):
    # The seeded events are stamped a few milliseconds ahead (one per seq): move them all
    # a second back so that "older than 0 days" is true of every idle conversation.
    Event.objects.update(created_at=F("created_at") - timedelta(seconds=1))
    purge("--older-than", "0")
    assert set(Conversation.objects.values_list("pk", flat=True)) == {world["running"].pk}
    assert Event.objects.filter(conversation=world["running"]).count() > 0


def test_purge_works_in_batches_with_a_fixed_number_of_queries():
    def stale_ones(count):
        for _ in range(count):
            aged(with_run(), created_days=90, last_event_days=90)

    stale_ones(3)
    with CaptureQueriesContext(connection) as few:
        assert retention.purge_stale(timedelta(days=30), batch=50) == 3
    stale_ones(30)
    with CaptureQueriesContext(connection) as many:
        assert retention.purge_stale(timedelta(days=30), batch=50) == 30
    assert len(many) == len(few)
    stale_ones(7)
    assert retention.purge_stale(timedelta(days=30), batch=2) == 7
    assert Conversation.objects.count() == 0


def test_older_than_must_be_a_number_of_days():
    with pytest.raises(CommandError):
        purge("--older-than", "soon")
    with pytest.raises(CommandError):
        purge("--older-than", "-1")
    with pytest.raises(CommandError):
        purge("--dry-run")
