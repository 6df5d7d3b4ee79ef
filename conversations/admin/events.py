"""The admin's event log: read-only evidence. Nobody adds, edits or deletes an
event here (they go with their conversation); the JSON body is shown pretty-printed."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from conversations.admin.links import ReadOnlyAdmin, change_url, changelist_url, link, short_id
from conversations.admin.timeline import payload_preview, shorten
from conversations.models import Conversation, Event
from streaming.events import ALL_EVENT_NAMES


def events_of(conversation_id: str) -> str:
    return changelist_url(Event, conversation__id__exact=conversation_id)


def pretty_json(body: str) -> str:
    """The body indented for reading; a body that is not JSON is shown as stored."""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


class EventNameFilter(admin.SimpleListFilter):
    """Every name of the vocabulary, without a DISTINCT scan of the event table."""

    title = "event"
    parameter_name = "event"

    def lookups(self, request, model_admin):
        return [(name, name) for name in ALL_EVENT_NAMES]

    def queryset(self, request, queryset):
        return queryset.filter(event=self.value()) if self.value() else queryset


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["seq", "event", "conversation_link", "task", "agent_name", "created_at", "preview"]
    list_display_links = ["seq", "event"]
    list_filter = [EventNameFilter]
    search_fields = ["=conversation__id", "=task_id", "=thread_id", "=item_id"]
    search_help_text = "An exact conversation, task, thread or item id."
    ordering = ["-pk"]
    list_per_page = 100
    show_full_result_count = False
    fields = [
        "conversation_link",
        "seq",
        "event",
        "thread_id",
        "task_id",
        "item_id",
        "agent_name",
        "created_at",
        "pretty_body",
    ]
    readonly_fields = fields  # type: ignore[assignment]  # every shown field is read-only

    @admin.display(description="conversation")
    def conversation_link(self, obj: Event):
        return link(change_url(Conversation, obj.conversation_id), short_id(obj.conversation_id), obj.conversation_id)

    @admin.display(description="task")
    def task(self, obj: Event) -> str:
        return short_id(obj.task_id) if obj.task_id else ""

    @admin.display(description="payload")
    def preview(self, obj: Event) -> str:
        try:
            data = json.loads(obj.body).get("data") or {}
        except (ValueError, AttributeError):
            return shorten(obj.body, 100)
        return shorten(payload_preview(obj.event, data), 100)

    @admin.display(description="body (JSON as delivered)")
    def pretty_body(self, obj: Event):
        return format_html('<pre class="event-json">{}</pre>', pretty_json(obj.body))
