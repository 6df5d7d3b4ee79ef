"""Seeded data for the admin tests, built the way a run builds it (factory, router,
event store), plus unit tests of the timeline's folding on such data."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.admin.timeline import build_rows, timeline_page
from conversations.models import Conversation, ConversationStatus, Event, Task, TaskStatus, Thread
from conversations.store import StoredEvent, append_events, last_seq
from streaming.encoders import envelope_json
from streaming.events import Envelope, new_conversation_id, new_task_id, new_thread_id
from streaming.factory import EventDraft, ResponseFactory, TaskContext
from streaming.responses import AgentResponse, notify, streaming
from streaming.router import ResponseRouter


def make_conversation(
    owner=None,
    title: str = "A conversation",
    status: str = ConversationStatus.IDLE,
    agent_name: str = "demo",
    session_key: str = "",
) -> Conversation:
    return Conversation.objects.create(
        id=new_conversation_id(),
        owner=owner,
        session_key=session_key,
        title=title,
        status=status,
        agent_name=agent_name,
    )


def store_drafts(conversation_id: str, drafts: list[EventDraft]) -> None:
    seq = last_seq(conversation_id)
    now = timezone.now()
    batch = []
    for offset, draft in enumerate(drafts, start=1):
        envelope = Envelope(event=draft.event, data=draft.data, seq=seq + offset)
        batch.append(
            StoredEvent(
                conversation_id=conversation_id,
                seq=seq + offset,
                event=draft.event.value,
                envelope=envelope.model_dump(mode="json", exclude_none=True),
                json=envelope_json(envelope),
                created_at=now + timedelta(milliseconds=offset),
            )
        )
    append_events(batch)


def add_run(
    conversation: Conversation,
    query: str,
    responses: list[AgentResponse],
    agent_name: str = "demo",
    outcome: str = TaskStatus.COMPLETED,
    error: str = "",
) -> Task:
    """A thread, its task and every event of the run, as `streaming.run.Run` orders them."""
    thread_id, task_id = new_thread_id(), new_task_id()
    started = timezone.now()
    finished = outcome in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)
    Thread.objects.create(id=thread_id, conversation=conversation, query=query)
    task = Task.objects.create(
        id=task_id,
        conversation=conversation,
        thread_id=thread_id,
        agent_name=agent_name,
        status=outcome,
        error=error,
        started_at=started,
        finished_at=started + timedelta(seconds=1.5) if finished else None,
    )
    factory = ResponseFactory(conversation.id)
    ctx = TaskContext(conversation.id, thread_id, task_id, agent_name)
    router = ResponseRouter(factory, ctx)
    drafts = [factory.conversation_started()] if last_seq(conversation.id) == 0 else []
    drafts += [factory.thread_started(thread_id, query), factory.task_started(ctx)]
    for response in responses:
        drafts += router.route(response)
    drafts += router.close()
    if outcome == TaskStatus.COMPLETED:
        drafts.append(factory.task_completed(ctx))
    elif outcome == TaskStatus.FAILED:
        drafts.append(factory.task_failed(ctx, error))
    elif outcome == TaskStatus.CANCELLED:
        drafts.append(factory.task_cancelled(ctx, error))
    if finished:
        drafts.append(factory.done(thread_id))
    store_drafts(conversation.id, drafts)
    return task


def chunks(count: int, text: str = "word") -> list[AgentResponse]:
    return [streaming.message_chunk(f"{text}{i} ") for i in range(count)]


def research_responses() -> list[AgentResponse]:
    """Reasoning, a tool call, a component, a paragraph and a notification."""
    return [
        streaming.reasoning_started(),
        streaming.reasoning("Load the prices, "),
        streaming.reasoning("then compute the return."),
        streaming.reasoning_completed(),
        streaming.tool_call_started("call-1", "load_prices"),
        streaming.tool_call_completed("Loaded 250 closes", "call-1", "load_prices"),
        streaming.component_generator({"title": "Report", "data": "| a |"}, "report"),
        *chunks(12, "para"),
        notify.message("All done."),
    ]


# --- the timeline's folding on seeded runs --------------------------------------


@pytest.mark.django_db
def test_a_paragraph_of_chunks_is_one_row_that_keeps_its_raw_events():
    conversation = make_conversation()
    add_run(conversation, "k=40", chunks(40), agent_name="bench")
    rows = timeline_page(conversation.id).rows
    assert [r.event for r in rows] == [
        "conversation_started",
        "thread_started",
        "task_started",
        "message_chunk",
        "task_completed",
        "done",
    ]
    paragraph = rows[3]
    assert paragraph.folded and paragraph.count == 40
    assert (paragraph.seq, paragraph.last_seq) == (4, 43)
    assert [raw.seq for raw in paragraph.raw] == list(range(4, 44))
    assert paragraph.preview.startswith("word0 word1 word2")
    assert [raw.delta_label for raw in paragraph.raw[:2]] == ['"word0 "', '"word1 "']
    assert paragraph.agent_name == "bench" and paragraph.task_id


@pytest.mark.django_db
def test_reasoning_block_folds_but_tool_calls_and_components_stay_single_rows():
    conversation = make_conversation()
    add_run(conversation, "How did NVDA do?", research_responses())
    rows = timeline_page(conversation.id).rows
    names = [(r.event, r.count) for r in rows]
    assert names == [
        ("conversation_started", 1),
        ("thread_started", 1),
        ("task_started", 1),
        ("reasoning", 4),
        ("tool_call_started", 1),
        ("tool_call_completed", 1),
        ("component_generator", 1),
        ("message_chunk", 12),
        ("message", 1),
        ("task_completed", 1),
        ("done", 1),
    ]
    by_event = {r.event: r for r in rows}
    assert by_event["reasoning"].preview == "Load the prices, then compute the return."
    assert by_event["thread_started"].preview == "How did NVDA do?"
    assert by_event["tool_call_completed"].preview == "load_prices [call-1] → Loaded 250 closes"
    assert by_event["component_generator"].preview.startswith('report: {"title": "Report"')


@pytest.mark.django_db
def test_two_paragraphs_split_by_a_tool_call_are_two_rows():
    conversation = make_conversation()
    responses = [*chunks(3, "a"), streaming.tool_call_started("c", "t"), *chunks(2, "b")]
    add_run(conversation, "q", responses)
    folded = [(r.event, r.count) for r in timeline_page(conversation.id).rows if r.event == "message_chunk"]
    assert folded == [("message_chunk", 3), ("message_chunk", 2)]


def test_rows_from_unparseable_bodies_still_render():
    now = timezone.now()
    rows = build_rows([(1, 1, "message", "", "item-1", "", now, "not json"), (2, 2, "done", "", "", "", now, "[]")])
    assert [(r.event, r.preview) for r in rows] == [("message", ""), ("done", "")]


@pytest.mark.django_db
def test_timeline_pages_are_fixed_seq_windows_clamped_to_the_conversation():
    conversation = make_conversation()
    add_run(conversation, "k=1195", chunks(1195), agent_name="bench")  # 1200 events
    assert Event.objects.filter(conversation=conversation).count() == 1200
    first, second, last = (timeline_page(conversation.id, page, size=500) for page in (1, 2, 3))
    assert (first.pages, first.first_seq, first.up_to_seq, first.event_count) == (3, 1, 500, 500)
    assert (second.first_seq, second.up_to_seq, second.event_count) == (501, 1000, 500)
    assert (last.first_seq, last.up_to_seq, last.event_count, last.has_next) == (1001, 1200, 200, False)
    # The paragraph crosses both page edges: one folded row per page.
    assert [r.count for r in second.rows] == [500]
    assert timeline_page(conversation.id, 99, size=500).number == 3
    assert timeline_page(conversation.id, 0, size=500).number == 1
