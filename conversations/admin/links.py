"""Helpers shared by the admin modules: links to admin pages and to the chat page,
short ids and durations, a per-conversation count subquery, a read-only base admin."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db.models import Count, IntegerField, Model, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString


def chat_url(conversation_id: str) -> str:
    """The chat page opened on this conversation (the agreed `?conversation=` parameter)."""
    return "/?" + urlencode({"conversation": conversation_id})


def change_url(model: type[Model], pk: int | str) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(pk)])


def changelist_url(model: type[Model], **params: object) -> str:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def link(url: str, label: object, title: str = "") -> SafeString:
    return format_html('<a href="{}" title="{}">{}</a>', url, title, label)


def short_id(value: str, keep: int = 8) -> str:
    """`task-1234abcd…` for a long prefixed id; the full id goes in a title attribute."""
    prefix, _, rest = value.partition("-")
    if not rest or len(rest) <= keep:
        return value
    return f"{prefix}-{rest[:keep]}…"


def format_duration(value: timedelta | None) -> str:
    if value is None:
        return "—"
    seconds = value.total_seconds()
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{int(seconds):02d}" if hours else f"{minutes}:{int(seconds):02d} min"


def run_time(started_at: datetime | None, finished_at: datetime | None) -> str:
    """A task's duration, or how long it has been running so far."""
    if started_at is None:
        return "—"
    if finished_at is None:
        return format_duration(timezone.now() - started_at) + " so far"
    return format_duration(finished_at - started_at)


def count_per_conversation(model: type[Model]) -> Coalesce:
    """`COUNT(*)` of `model` rows of each conversation, as a correlated subquery.

    On 100,000 events this is about ten times faster than joining the three
    tables with `Count(..., distinct=True)` (see docs/admin.md for the figures).
    """
    rows = (
        model._default_manager.filter(conversation=OuterRef("pk"))
        .order_by()
        .values("conversation")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), 0)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the streaming core: viewable, never added, edited or deleted here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # deleted with their conversation
