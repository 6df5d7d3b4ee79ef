"""The admin's task and thread pages (read-only) and the "cancel selected running
tasks" action, which goes through the orchestrator like `POST .../cancel` does."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.db.models import F, QuerySet
from django.http import HttpRequest

from conversations.admin.links import ReadOnlyAdmin, change_url, changelist_url, link, run_time, short_id
from conversations.admin.timeline import shorten
from conversations.models import FINISHED_TASK_STATUSES, Conversation, Task, Thread
from streaming.errors import ServiceError
from streaming.runtime.orchestrator import orchestrator

CANCEL_REASON = "Cancelled by an operator."
LISTED = 10  # task ids named in a message before "and N more"


def tasks_of(conversation_id: str) -> str:
    return changelist_url(Task, conversation__id__exact=conversation_id)


def threads_of(conversation_id: str) -> str:
    return changelist_url(Thread, conversation__id__exact=conversation_id)


def _listing(ids: list[str], total: int) -> str:
    more = f" and {total - len(ids)} more" if total > len(ids) else ""
    return ", ".join(ids) + more


def cancel_tasks(tasks: QuerySet) -> tuple[list[str], list[str]]:
    """Ask each unfinished task's run to cancel; (asked ids, refusals as text)."""
    asked: list[str] = []
    refused: list[str] = []
    conversations: set[str] = set()
    for task_id, conversation_id in tasks.exclude(status__in=FINISHED_TASK_STATUSES).values_list(
        "pk", "conversation_id"
    ):
        if conversation_id in conversations:
            asked.append(task_id)  # one run per conversation: already asked
            continue
        try:
            # A sync admin view under Daphne: asgiref runs this on the server's
            # event loop, where the run and its channel layer live.
            async_to_sync(orchestrator.cancel)(None, conversation_id, reason=CANCEL_REASON)
        except ServiceError as exc:
            refused.append(f"{task_id}: {exc.message}")
        else:
            conversations.add(conversation_id)
            asked.append(task_id)
    return asked, refused


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = [
        "task",
        "conversation_link",
        "agent_name",
        "status",
        "duration",
        "error_preview",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "agent_name", "created_at"]
    search_fields = ["=id", "=conversation__id", "=thread__id", "error"]
    search_help_text = "Exact task, conversation or thread id, or words of the error."
    ordering = ["-created_at"]
    list_select_related = ["conversation"]
    list_per_page = 50
    show_full_result_count = False
    fields = [
        "id",
        "conversation_link",
        "thread_id",
        "agent_name",
        "status",
        "error",
        "created_at",
        "started_at",
        "finished_at",
        "duration",
    ]
    readonly_fields = fields  # type: ignore[assignment]  # every shown field is read-only
    actions = ["cancel_running_tasks"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(duration_value=F("finished_at") - F("started_at"))

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("conversations.change_task")

    @admin.action(description="Cancel selected running tasks", permissions=["cancel"])
    def cancel_running_tasks(self, request: HttpRequest, queryset: QuerySet) -> None:
        finished = queryset.filter(status__in=FINISHED_TASK_STATUSES)
        finished_count = finished.count()
        if finished_count:
            shown = [f"{pk} ({status})" for pk, status in finished.values_list("pk", "status")[:LISTED]]
            messages.warning(request, f"Not cancelled, already finished: {_listing(shown, finished_count)}.")
        asked, refused = cancel_tasks(queryset)
        if asked:
            messages.success(
                request,
                f"Asked {len(asked)} running task(s) to cancel: {_listing(asked[:LISTED], len(asked))}. "
                "Their streams end with task_cancelled, then done.",
            )
        for refusal in refused:
            messages.error(request, f"Not cancelled: {refusal}")

    @admin.display(description="task", ordering="created_at")
    def task(self, obj: Task) -> str:
        return short_id(obj.pk)

    @admin.display(description="conversation", ordering="conversation__title")
    def conversation_link(self, obj: Task):
        return link(change_url(Conversation, obj.conversation_id), obj.conversation, obj.conversation_id)

    @admin.display(description="duration", ordering="duration_value")
    def duration(self, obj: Task) -> str:
        return run_time(obj.started_at, obj.finished_at)

    @admin.display(description="error")
    def error_preview(self, obj: Task) -> str:
        return shorten(obj.error, 80) if obj.error else ""


@admin.register(Thread)
class ThreadAdmin(ReadOnlyAdmin):
    list_display = ["thread", "conversation_link", "query_preview", "created_at"]
    search_fields = ["=id", "=conversation__id", "query"]
    search_help_text = "Exact thread or conversation id, or words of the query."
    list_filter = ["created_at"]
    ordering = ["-created_at"]
    list_select_related = ["conversation"]
    list_per_page = 50
    show_full_result_count = False
    fields = ["id", "conversation_link", "query", "created_at"]
    readonly_fields = fields  # type: ignore[assignment]  # every shown field is read-only

    @admin.display(description="thread", ordering="created_at")
    def thread(self, obj: Thread) -> str:
        return short_id(obj.pk)

    @admin.display(description="conversation", ordering="conversation__title")
    def conversation_link(self, obj: Thread):
        return link(change_url(Conversation, obj.conversation_id), obj.conversation, obj.conversation_id)

    @admin.display(description="query")
    def query_preview(self, obj: Thread) -> str:
        return shorten(obj.query, 100)
