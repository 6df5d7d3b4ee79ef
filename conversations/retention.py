"""Retention: deleting the conversations nobody has touched for a while.

A conversation is stale when its last stored event (or its creation, if it has
none) is older than the cutoff and no run is in progress: it is idle, or its
question has waited that long for an answer. It goes with its threads, tasks,
events and items, a batch at a time, each batch in one transaction that
re-checks (and locks) its conversations, so one claimed by a new input
meanwhile is kept. `python manage.py purge_conversations` is the door.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from conversations.models import Conversation, ConversationStatus, Event, Item, Task, Thread

BATCH = 500
# A question waiting for its answer is idle: no work is going on.
IDLE = (ConversationStatus.IDLE, ConversationStatus.REQUIRE_USER_INPUT)


def stale(cutoff: datetime) -> QuerySet[Conversation]:
    """Idle conversations whose last event (or creation) is before `cutoff`: one query.

    The last event is one index probe per conversation (`event_unique_seq`,
    newest seq first), and only conversations created before the cutoff are looked at.
    """
    last_event = Event.objects.filter(conversation=OuterRef("pk")).order_by("-seq").values("created_at")[:1]
    return (
        Conversation.objects.filter(status__in=IDLE, created_at__lt=cutoff)
        .annotate(last_activity=Coalesce(Subquery(last_event), F("created_at")))
        .filter(last_activity__lt=cutoff)
    )


def cutoff_for(older_than: timedelta) -> datetime:
    return timezone.now() - older_than


def count_stale(older_than: timedelta) -> int:
    return stale(cutoff_for(older_than)).count()


def purge_stale(older_than: timedelta, batch: int = BATCH) -> int:
    """Delete the stale conversations with all they hold; return how many went.

    Pages through the candidates in (created_at, id) order, so conversations
    found not stale are never looked at twice, and memory stays one batch.
    """
    cutoff = cutoff_for(older_than)
    deleted = 0
    after: tuple[datetime, str] | None = None
    while True:
        candidates = stale(cutoff).order_by("created_at", "id")
        if after is not None:
            candidates = candidates.filter(Q(created_at__gt=after[0]) | Q(created_at=after[0], id__gt=after[1]))
        page = list(candidates.values_list("id", "created_at")[:batch])
        if not page:
            return deleted
        deleted += _delete(cutoff, [conversation_id for conversation_id, _ in page])
        after = (page[-1][1], page[-1][0])
        if len(page) < batch:
            return deleted


def _delete(cutoff: datetime, ids: list[str]) -> int:
    """One batch, in one transaction: what is still stale, locked, then deleted
    children first (each a single DELETE: no per-row cascade work)."""
    with transaction.atomic():
        still = list(stale(cutoff).filter(pk__in=ids).select_for_update(of=("self",)).values_list("pk", flat=True))
        if not still:
            return 0
        for model in (Event, Item, Task):
            model.objects.filter(conversation_id__in=still).delete()
        Thread.objects.filter(conversation_id__in=still).delete()
        Conversation.objects.filter(pk__in=still).delete()
    return len(still)
