"""The admin with 100,000 stored events: the conversation changelist, the event
changelist and the last timeline page of the biggest conversation stay quick and
use a fixed number of queries. Bounds are ~10x the figures measured on 2 cores."""

from __future__ import annotations

import time
from itertools import islice

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from conversations.models import Conversation, Event, Task, Thread

pytestmark = pytest.mark.django_db

CONVERSATIONS = 1000
EVENTS_EACH = 100  # 100,000 events in all
BIG_EVENTS = 20_000  # one more conversation, much longer than the rest
SECONDS = 2.0  # per page; measured: about 0.1 s


def seed(conversations: int, events_each: int) -> None:
    now = timezone.now()
    Conversation.objects.bulk_create(
        [Conversation(id=f"conv-{i:05d}", title=f"conversation {i}", agent_name="bench") for i in range(conversations)]
    )
    Thread.objects.bulk_create(
        [
            Thread(id=f"th-{i:05d}", conversation_id=f"conv-{i:05d}", query=f"k={events_each}")
            for i in range(conversations)
        ]
    )
    Task.objects.bulk_create(
        [
            Task(id=f"task-{i:05d}", conversation_id=f"conv-{i:05d}", thread_id=f"th-{i:05d}", agent_name="bench")
            for i in range(conversations)
        ]
    )
    rows = (
        Event(
            conversation_id=f"conv-{i:05d}",
            seq=seq,
            event="message_chunk",
            task_id=f"task-{i:05d}",
            item_id=f"item-{i:05d}",
            agent_name="bench",
            body='{"event":"message_chunk","data":{"payload":{"content":"x "}},"seq":%d}' % seq,
            created_at=now,
        )
        for i in range(conversations)
        for seq in range(1, events_each + 1)
    )
    while batch := list(islice(rows, 10_000)):
        Event.objects.bulk_create(batch)


def timed_get(client, url: str, **params) -> tuple[float, int, object]:
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get(url, params)
        elapsed = time.perf_counter() - started
    assert response.status_code == 200, url
    print(f"{url} {params}: {elapsed * 1000:.0f} ms, {len(queries)} queries")
    return elapsed, len(queries), response


def test_admin_pages_stay_fast_with_100k_events(admin_client):
    seed(CONVERSATIONS, EVENTS_EACH)
    big = Conversation.objects.create(id="conv-big", title="big one", agent_name="bench")
    Event.objects.bulk_create(
        Event(conversation=big, seq=s, event="message_chunk", item_id="item-big", body="{}", created_at=timezone.now())
        for s in range(1, BIG_EVENTS + 1)
    )
    assert Event.objects.count() == CONVERSATIONS * EVENTS_EACH + BIG_EVENTS

    elapsed, queries, response = timed_get(admin_client, reverse("admin:conversations_conversation_changelist"))
    first = response.context["cl"].result_list[0]
    assert (first.pk, first.event_count, first.thread_count) == ("conv-big", BIG_EVENTS, 0)
    assert elapsed < SECONDS and queries <= 12, (elapsed, queries)

    elapsed, _, response = timed_get(
        admin_client, reverse("admin:conversations_conversation_changelist"), o="-7", q="conversation 99"
    )  # sorted by event count, searched
    counts = [c.event_count for c in response.context["cl"].result_list]
    assert counts and set(counts) == {EVENTS_EACH}  # conversation 99, 990..999; not the big one
    assert elapsed < SECONDS, elapsed

    elapsed, _, response = timed_get(admin_client, reverse("admin:conversations_conversation_changelist"), o="-7")
    assert response.context["cl"].result_list[0].pk == "conv-big"
    assert elapsed < SECONDS, elapsed

    elapsed, _, response = timed_get(admin_client, reverse("admin:conversations_event_changelist"))
    assert elapsed < SECONDS, elapsed

    url = reverse("admin:conversations_conversation_change", args=["conv-big"])
    elapsed, queries, response = timed_get(admin_client, url, timeline_page="40")
    timeline = response.context["timeline"]
    assert (timeline.number, timeline.pages, timeline.event_count) == (40, 40, 500)
    assert elapsed < SECONDS and queries <= 20, (elapsed, queries)
