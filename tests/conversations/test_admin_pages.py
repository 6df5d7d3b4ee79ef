"""The admin's pages through the Django test client: who may see them, that each
renders with seeded data, the conversation filters and search, and query counts."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conversations.models import ApiToken, ConversationStatus, Event, TaskStatus
from conversations.tokens import create_token
from tests.conversations.test_admin_seed import add_run, chunks, make_conversation, research_responses

pytestmark = pytest.mark.django_db

CHANGELISTS = ["conversation", "task", "thread", "event", "apitoken"]


def changelist(model: str, **params) -> str:
    return reverse(f"admin:conversations_{model}_changelist")


def change(model: str, pk) -> str:
    return reverse(f"admin:conversations_{model}_change", args=[pk])


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def seeded(django_user_model):
    alice = django_user_model.objects.create_user("alice", password="pw-alice-123")
    bob = django_user_model.objects.create_user("bob", password="pw-bob-123")
    research = make_conversation(owner=alice, title="NVDA research")
    research_task = add_run(research, "How did NVDA do this year?", research_responses())
    add_run(research, "And MSFT compared with it?", chunks(5))
    bench = make_conversation(owner=bob, title="Bench load", agent_name="bench")
    bench_task = add_run(
        bench,
        "k=30 delay_ms=5",
        chunks(30),
        agent_name="bench",
        outcome=TaskStatus.CANCELLED,
        error="Cancelled by an operator.",
    )
    anonymous = make_conversation(session_key="s3ss10nkey", title="Anonymous question")
    failed = add_run(anonymous, "What about the weather?", chunks(2), outcome=TaskStatus.FAILED, error="Boom: no data")
    raw, token = create_token(alice, "laptop")
    return {
        "alice": alice,
        "bob": bob,
        "research": research,
        "bench": bench,
        "anonymous": anonymous,
        "research_task": research_task,
        "bench_task": bench_task,
        "failed_task": failed,
        "token": token,
        "event": Event.objects.filter(conversation=research, event="tool_call_completed").get(),
    }


def object_pages(seeded) -> list[str]:
    return [
        change("conversation", seeded["research"].pk),
        change("task", seeded["research_task"].pk),
        change("thread", seeded["research_task"].thread_id),
        change("event", seeded["event"].pk),
        change("apitoken", seeded["token"].pk),
    ]


# --- who may see the admin ------------------------------------------------------


def test_every_changelist_and_change_page_renders_for_a_superuser(admin_client, seeded):
    for model in CHANGELISTS:
        response = admin_client.get(changelist(model))
        assert response.status_code == 200, model
    for url in object_pages(seeded):
        response = admin_client.get(url)
        assert response.status_code == 200, url


def test_a_non_staff_user_is_sent_to_the_login_page(client, seeded):
    client.login(username="alice", password="pw-alice-123")
    for url in [changelist(m) for m in CHANGELISTS] + object_pages(seeded):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url


def test_staff_without_permissions_is_refused_and_with_view_permission_may_look(client, seeded, django_user_model):
    staff = django_user_model.objects.create_user("operator", password="pw-op-123", is_staff=True)
    client.login(username="operator", password="pw-op-123")
    assert client.get(changelist("conversation")).status_code == 403
    assert client.get(change("event", seeded["event"].pk)).status_code == 403
    staff.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="conversations",
            codename__in=["view_conversation", "view_thread", "view_task", "view_event"],
        )
    )
    assert client.get(changelist("conversation")).status_code == 200
    response = client.get(changelist("task"))
    assert response.status_code == 200
    assert b"Cancel selected running tasks" not in response.content  # needs change_task
    assert client.get(change("conversation", seeded["research"].pk)).status_code == 200


# --- the conversation changelist ------------------------------------------------


def listed(response) -> set[str]:
    return {c.pk for c in response.context["cl"].result_list}


def test_changelist_shows_owner_status_agents_and_counts(admin_client, seeded):
    response = admin_client.get(changelist("conversation"))
    rows = {c.pk: c for c in response.context["cl"].result_list}
    research = rows[seeded["research"].pk]
    assert (research.thread_count, research.task_count) == (2, 2)
    assert research.event_count == Event.objects.filter(conversation=seeded["research"]).count() > 0
    assert rows[seeded["bench"].pk].agent_names == ["bench"]
    html = response.content.decode()
    assert "NVDA research" in html and "alice" in html and "anonymous (s3ss10nk…)" in html
    assert f'href="/?conversation={seeded["research"].pk}"' in html


def test_changelist_is_newest_first(admin_client, seeded):
    pks = [c.pk for c in admin_client.get(changelist("conversation")).context["cl"].result_list]
    assert pks == [seeded["anonymous"].pk, seeded["bench"].pk, seeded["research"].pk]


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"status__exact": "running"}, {"running"}),
        ({"agent": "bench"}, {"bench", "running"}),
        ({"agent": "demo"}, {"research", "anonymous"}),
        ({"owner__id__exact": "ALICE"}, {"research"}),
        ({"owner__isnull": "True"}, {"anonymous", "running"}),
        ({"created_at__gte": "2000-01-01"}, {"research", "bench", "anonymous", "running"}),
    ],
)
def test_changelist_filters(admin_client, seeded, params, expected):
    running = make_conversation(title="Still running", status=ConversationStatus.RUNNING, agent_name="bench")
    add_run(running, "k=2000 delay_ms=5", chunks(3), agent_name="bench", outcome=TaskStatus.RUNNING)
    seeded = {**seeded, "running": running}
    params = {k: (seeded["alice"].pk if v == "ALICE" else v) for k, v in params.items()}
    response = admin_client.get(changelist("conversation"), params)
    assert response.status_code == 200
    assert listed(response) == {seeded[name].pk for name in expected}


@pytest.mark.parametrize(
    "term, expected",
    [
        ("nvda research", {"research"}),  # title, any case
        ("bob", {"bench"}),  # owner's username
        ("MSFT compared", {"research"}),  # the text of a later user query
        ("weather", {"anonymous"}),
        ('"delay_ms=5"', {"bench"}),  # a quoted phrase
        ("nothing-like-this", set()),
    ],
)
def test_changelist_search(admin_client, seeded, term, expected):
    response = admin_client.get(changelist("conversation"), {"q": term})
    assert listed(response) == {seeded[name].pk for name in expected}


def test_search_by_id_and_by_text_in_several_threads_lists_a_conversation_once(admin_client, seeded):
    research = seeded["research"]
    assert listed(admin_client.get(changelist("conversation"), {"q": research.pk})) == {research.pk}
    add_run(research, "NVDA again, please", chunks(1))
    add_run(research, "and NVDA once more", chunks(1))
    response = admin_client.get(changelist("conversation"), {"q": "nvda"})
    pks = [c.pk for c in response.context["cl"].result_list]
    assert pks == [research.pk]
    assert response.context["cl"].result_count == 1


def test_changelist_query_count_does_not_grow_with_rows(admin_client, seeded, django_assert_max_num_queries):
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(changelist("conversation")).status_code == 200
    for index in range(40):
        conversation = make_conversation(owner=seeded["bob"] if index % 2 else None, title=f"c{index}")
        add_run(conversation, f"question {index}", chunks(3), agent_name="bench" if index % 3 else "demo")
    with django_assert_max_num_queries(len(few)):
        response = admin_client.get(changelist("conversation"))
    assert len(response.context["cl"].result_list) == 43


# --- the conversation page ------------------------------------------------------


def test_conversation_page_shows_inlines_timeline_and_chat_link(admin_client, seeded):
    research = seeded["research"]
    response = admin_client.get(change("conversation", research.pk))
    html = response.content.decode()
    assert "How did NVDA do this year?" in html and "And MSFT compared with it?" in html  # thread inline
    assert seeded["research_task"].pk[:13] in html  # task inline
    assert f'href="/?conversation={research.pk}"' in html
    assert 'id="timeline"' in html
    assert "<details>" in html and "× 12" in html  # the folded paragraph
    assert "load_prices [call-1] → Loaded 250 closes" in html
    assert 'name="_save"' not in html  # nothing to save: the page is read-only
    rows = response.context["timeline"].rows
    assert [r.seq for r in rows] == sorted(r.seq for r in rows)


def test_conversation_page_escapes_agent_output(admin_client):
    conversation = make_conversation(title="<b>title</b>")
    add_run(conversation, "<script>alert(1)</script>", chunks(2, "<img src=x onerror=alert(2)>"))
    html = admin_client.get(change("conversation", conversation.pk)).content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html


def test_conversation_page_query_count_does_not_grow_with_events(admin_client, django_assert_max_num_queries):
    small = make_conversation()
    add_run(small, "k=5", chunks(5), agent_name="bench")
    with CaptureQueriesContext(connection) as few:
        admin_client.get(change("conversation", small.pk))
    big = make_conversation()
    add_run(big, "k=1500", chunks(1500), agent_name="bench")
    with django_assert_max_num_queries(len(few)):
        response = admin_client.get(change("conversation", big.pk), {"timeline_page": "2"})
    timeline = response.context["timeline"]
    assert (timeline.number, timeline.pages, timeline.first_seq) == (2, 4, 501)
    assert "page 2 of 4" in response.content.decode()


@pytest.mark.parametrize("page, number", [("abc", 1), ("-3", 1), ("999", 1), ("", 1)])
def test_conversation_page_survives_bad_timeline_pages(admin_client, seeded, page, number):
    response = admin_client.get(change("conversation", seeded["bench"].pk), {"timeline_page": page})
    assert response.status_code == 200
    assert response.context["timeline"].number == number


def test_conversations_cannot_be_added_or_edited(admin_client, seeded):
    research = seeded["research"]
    assert admin_client.get(reverse("admin:conversations_conversation_add")).status_code == 403
    response = admin_client.post(change("conversation", research.pk), {"title": "rewritten", "status": "idle"})
    assert response.status_code == 403
    research.refresh_from_db()
    assert research.title == "NVDA research"


def test_deleting_a_conversation_summarises_and_removes_its_log(admin_client, seeded):
    bench = seeded["bench"]
    url = reverse("admin:conversations_conversation_delete", args=[bench.pk])
    confirm = admin_client.get(url)
    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "35 events" in html and "Event:" not in html  # counted, not listed one by one
    response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not Event.objects.filter(conversation_id=bench.pk).exists()


def test_a_running_conversation_cannot_be_deleted(admin_client):
    running = make_conversation(status=ConversationStatus.RUNNING)
    add_run(running, "k=10", chunks(2), agent_name="bench", outcome=TaskStatus.RUNNING)
    url = reverse("admin:conversations_conversation_delete", args=[running.pk])
    assert "cancel its task before deleting it" in admin_client.get(url).content.decode()
    admin_client.post(url, {"post": "yes"})
    bulk = admin_client.post(
        changelist("conversation"), {"action": "delete_selected", "_selected_action": [running.pk], "post": "yes"}
    )
    assert "cancel its task before deleting it" in bulk.content.decode()
    assert Event.objects.filter(conversation_id=running.pk).exists()


# --- tasks and threads ------------------------------------------------------------


def test_task_changelist_filters_and_shows_duration_and_error(admin_client, seeded):
    response = admin_client.get(changelist("task"), {"status__exact": "failed"})
    assert [t.pk for t in response.context["cl"].result_list] == [seeded["failed_task"].pk]
    assert "Boom: no data" in response.content.decode() and "1.50 s" in response.content.decode()
    response = admin_client.get(changelist("task"), {"agent_name": "bench"})
    assert [t.pk for t in response.context["cl"].result_list] == [seeded["bench_task"].pk]
    response = admin_client.get(changelist("task"), {"q": seeded["research"].pk})
    assert len(response.context["cl"].result_list) == 2


def test_tasks_and_threads_are_read_only(admin_client, seeded):
    task = seeded["research_task"]
    assert admin_client.get(reverse("admin:conversations_task_add")).status_code == 403
    assert admin_client.post(change("task", task.pk), {"status": "completed"}).status_code == 403
    assert admin_client.get(reverse("admin:conversations_task_delete", args=[task.pk])).status_code == 403
    assert admin_client.post(change("thread", task.thread_id), {"query": "x"}).status_code == 403


def test_cancel_action_refuses_finished_tasks_with_a_message(admin_client, seeded):
    finished = [seeded["research_task"].pk, seeded["failed_task"].pk]
    response = admin_client.post(
        changelist("task"), {"action": "cancel_running_tasks", "_selected_action": finished}, follow=True
    )
    text = " ".join(str(m) for m in response.context["messages"])
    assert "Not cancelled, already finished" in text
    assert f"{seeded['failed_task'].pk} (failed)" in text
    assert "Asked" not in text


def test_cancel_action_reports_a_task_whose_run_is_gone(admin_client):
    # The task row says running but its conversation is idle (the worker died).
    stale = make_conversation(status=ConversationStatus.IDLE)
    task = add_run(stale, "k=10", chunks(2), agent_name="bench", outcome=TaskStatus.RUNNING)
    response = admin_client.post(
        changelist("task"), {"action": "cancel_running_tasks", "_selected_action": [task.pk]}, follow=True
    )
    text = " ".join(str(m) for m in response.context["messages"])
    assert f"Not cancelled: {task.pk}: This conversation has no running task to cancel." in text


# --- events ------------------------------------------------------------------------


def test_event_admin_refuses_add_change_and_delete(admin_client, seeded):
    event = seeded["event"]
    body = event.body
    assert admin_client.get(reverse("admin:conversations_event_add")).status_code == 403
    assert admin_client.post(reverse("admin:conversations_event_add"), {"body": "{}"}).status_code == 403
    assert admin_client.post(change("event", event.pk), {"body": "{}", "event": "done"}).status_code == 403
    assert admin_client.get(reverse("admin:conversations_event_delete", args=[event.pk])).status_code == 403
    bulk = admin_client.post(changelist("event"), {"action": "delete_selected", "_selected_action": [event.pk]})
    assert bulk.status_code == 200  # no such action: the list comes back, the event stays
    event.refresh_from_db()
    assert event.body == body


def test_event_page_is_read_only_with_pretty_json(admin_client, seeded):
    event = seeded["event"]
    response = admin_client.get(change("event", event.pk))
    html = response.content.decode()
    assert '<pre class="event-json">{\n  &quot;event&quot;: &quot;tool_call_completed&quot;,' in html
    assert "<textarea" not in html and 'name="_save"' not in html
    assert response.context["has_change_permission"] is False


def test_event_changelist_filters_by_name_and_conversation(admin_client, seeded):
    response = admin_client.get(changelist("event"), {"event": "task_cancelled"})
    events = response.context["cl"].result_list
    assert [e.conversation_id for e in events] == [seeded["bench"].pk]
    response = admin_client.get(changelist("event"), {"conversation__id__exact": seeded["bench"].pk})
    assert {e.conversation_id for e in response.context["cl"].result_list} == {seeded["bench"].pk}
    assert len(response.context["cl"].result_list) == 35
    response = admin_client.get(changelist("event"), {"q": seeded["bench_task"].pk, "event": "message_chunk"})
    assert len(response.context["cl"].result_list) == 30
    actions = response.context["action_form"].fields["action"].choices if response.context["action_form"] else []
    assert not [name for name, _ in actions if name]


# --- API tokens ----------------------------------------------------------------------


def test_creating_a_token_shows_it_once_and_stores_only_its_hash(admin_client, seeded):
    from conversations.tokens import hash_key

    response = admin_client.post(
        reverse("admin:conversations_apitoken_add"), {"user": seeded["bob"].pk, "name": "ci"}, follow=True
    )
    assert response.status_code == 200
    texts = [str(m) for m in response.context["messages"]]
    shown = [t for t in texts if "shown only this once" in t]
    assert len(shown) == 1
    raw = shown[0].split('<code class="api-token">')[1].split("</code>")[0]
    token = ApiToken.objects.get(name="ci")
    assert token.user == seeded["bob"] and token.key_hash == hash_key(raw) and raw.startswith(token.prefix)
    assert not ApiToken.objects.filter(key_hash=raw).exists()
    # Shown once: the token's own page and the list never carry it again.
    for url in (change("apitoken", token.pk), changelist("apitoken")):
        assert raw not in admin_client.get(url).content.decode()


def test_revoking_tokens_sets_revoked_at(admin_client, seeded):
    token = seeded["token"]
    response = admin_client.post(
        changelist("apitoken"), {"action": "revoke", "_selected_action": [token.pk]}, follow=True
    )
    assert "Revoked 1 token(s)." in [str(m) for m in response.context["messages"]]
    token.refresh_from_db()
    assert token.revoked_at is not None and not token.is_active
    revoked_at = token.revoked_at
    response = admin_client.post(
        changelist("apitoken"), {"action": "revoke", "_selected_action": [token.pk]}, follow=True
    )
    assert "Revoked 0 token(s). 1 were already revoked." in [str(m) for m in response.context["messages"]]
    token.refresh_from_db()
    assert token.revoked_at == revoked_at
    assert [t.pk for t in admin_client.get(changelist("apitoken"), {"active": "no"}).context["cl"].result_list] == [
        token.pk
    ]


# --- links and caps ------------------------------------------------------------------


def test_conversation_page_links_to_its_filtered_tasks_threads_and_events(admin_client, seeded):
    research = seeded["research"]
    context = admin_client.get(change("conversation", research.pk)).context
    tasks = admin_client.get(context["tasks_url"]).context["cl"].result_list
    threads = admin_client.get(context["threads_url"]).context["cl"].result_list
    events = admin_client.get(context["events_url"]).context["cl"].result_list
    assert {t.conversation_id for t in tasks} == {research.pk} and len(tasks) == 2
    assert {t.conversation_id for t in threads} == {research.pk} and len(threads) == 2
    assert {e.conversation_id for e in events} == {research.pk}


def test_inlines_show_the_newest_fifty_runs(admin_client):
    conversation = make_conversation()
    tasks = [add_run(conversation, f"question {i}", chunks(1)) for i in range(52)]
    response = admin_client.get(change("conversation", conversation.pk))
    inline_tasks = [form.instance.pk for form in response.context["inline_admin_formsets"][1].formset]
    assert len(inline_tasks) == 50
    assert tasks[-1].pk in inline_tasks and tasks[0].pk not in inline_tasks
    assert (
        "52 tasks" in response.content.decode() and "the inlines above show the newest 50" in response.content.decode()
    )


def test_an_unknown_conversation_page_redirects_with_a_message(admin_client):
    response = admin_client.get(change("conversation", "conv-does-not-exist"), follow=True)
    assert response.status_code == 200
    assert any("doesn’t exist" in str(m) for m in response.context["messages"])
