"""Read-only inlines of a conversation's threads and tasks, newest first and
capped, so a conversation with thousands of runs still opens quickly."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from conversations.admin.links import change_url, link, run_time, short_id
from conversations.models import Task, Thread


class ReadOnlyInline(admin.TabularInline):
    """An inline nobody can add to, change or delete from; shows `max_shown` rows."""

    extra = 0
    can_delete = False
    show_change_link = True
    max_shown = 50
    ordering_fields: tuple[str, ...] = ("-created_at",)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).order_by(*self.ordering_fields)

    def get_formset(self, request: HttpRequest, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        limit = self.max_shown

        class CappedFormSet(formset):  # type: ignore[valid-type, misc]  # a class made at run time
            def get_queryset(self):
                if not hasattr(self, "_capped"):
                    self._capped = super().get_queryset()[:limit]
                    self._queryset = self._capped
                return self._capped

        return CappedFormSet


class ThreadInline(ReadOnlyInline):
    model = Thread
    fields = ["thread_id", "query", "created_at"]
    readonly_fields = fields  # type: ignore[assignment]  # every shown field is read-only
    verbose_name_plural = f"threads (user inputs; newest {ReadOnlyInline.max_shown})"

    @admin.display(description="id")
    def thread_id(self, obj: Thread) -> str:
        return obj.id


class TaskInline(ReadOnlyInline):
    model = Task
    fields = ["task_id", "thread_short", "agent_name", "status", "duration", "error", "started_at", "finished_at"]
    readonly_fields = fields  # type: ignore[assignment]  # every shown field is read-only
    verbose_name_plural = f"tasks (agent runs; newest {ReadOnlyInline.max_shown})"

    @admin.display(description="id")
    def task_id(self, obj: Task):
        return link(change_url(Task, obj.pk), short_id(obj.pk), obj.pk)

    @admin.display(description="thread")
    def thread_short(self, obj: Task) -> str:
        return short_id(obj.thread_id)

    @admin.display(description="duration")
    def duration(self, obj: Task) -> str:
        return run_time(obj.started_at, obj.finished_at)
