"""The admin's conversation pages: a fast changelist and a read-only change page
with threads and tasks inline and the event timeline. Other models: the other modules of this package."""

from __future__ import annotations

from collections import defaultdict

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.text import smart_split, unescape_string_literal

from conversations.admin import events as admin_events
from conversations.admin import tasks as admin_tasks
from conversations.admin.inlines import TaskInline, ThreadInline
from conversations.admin.links import change_url, chat_url, count_per_conversation, link
from conversations.admin.timeline import parse_page, timeline_page
from conversations.models import Conversation, ConversationStatus, Event, Item, Task, Thread

TIMELINE_PAGE_VAR = "timeline_page"

admin.site.site_header = "valuecell-streaming admin"
admin.site.site_title = "valuecell-streaming admin"


def counted(n: int, model) -> str:
    return f"{n} {model._meta.verbose_name if n == 1 else model._meta.verbose_name_plural}"


class AgentFilter(admin.SimpleListFilter):
    """Conversations in which an agent ran (any of their tasks, or the last agent)."""

    title = "agent"
    parameter_name = "agent"

    def lookups(self, request, model_admin):
        names = set(settings.VALUECELL_AGENTS)
        names.update(Task.objects.order_by().values_list("agent_name", flat=True).distinct())
        return [(name, name) for name in sorted(names) if name]

    def queryset(self, request, queryset):
        name = self.value()
        if not name:
            return queryset
        ran = Task.objects.filter(conversation=OuterRef("pk"), agent_name=name)
        return queryset.filter(Q(agent_name=name) | Exists(ran))


class ConversationChangeList(ChangeList):
    """Adds the distinct agents of the page's conversations in one query."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        page = list(self.result_list)
        agents: dict[str, set[str]] = defaultdict(set)
        rows = (
            Task.objects.filter(conversation_id__in=[c.pk for c in page])
            .order_by()
            .values_list("conversation_id", "agent_name")
            .distinct()
        )
        for conversation_id, agent_name in rows if page else ():
            agents[conversation_id].add(agent_name)
        for conversation in page:
            names = agents[conversation.pk] or ({conversation.agent_name} - {""})
            conversation.agent_names = sorted(names)


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = [
        "title_or_id",
        "owner_display",
        "status",
        "agents",
        "thread_count",
        "task_count",
        "event_count",
        "created_at",
        "updated_at",
        "chat_link",
    ]
    list_filter = ["status", AgentFilter, ("owner", admin.RelatedOnlyFieldListFilter), "created_at"]
    # Searched by `get_search_results` below (thread text through EXISTS, so no duplicates).
    search_fields = ["id", "title", "owner__username", "threads__query"]
    search_help_text = "Conversation id, title, owner's username or the text of a user's query."
    ordering = ["-created_at"]
    list_select_related = ["owner"]
    list_per_page = 50
    show_full_result_count = False
    fields = [
        "id",
        "title",
        "owner",
        "session_key",
        "status",
        "agent_name",
        "worker",
        "lease_expires_at",
        "created_at",
        "updated_at",
        "chat_link",
    ]
    readonly_fields = fields  # type: ignore[assignment]  # every shown field is read-only
    inlines = [ThreadInline, TaskInline]

    # --- permissions: conversations are written by the orchestrator only ------
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Conversation | None = None) -> bool:
        return False

    # --- changelist --------------------------------------------------------------
    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                thread_count=count_per_conversation(Thread),
                task_count=count_per_conversation(Task),
                event_count=count_per_conversation(Event),
            )
        )

    def get_changelist(self, request: HttpRequest, **kwargs):
        return ConversationChangeList

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        for term in smart_split(search_term):
            if term.startswith(('"', "'")) and term[0] == term[-1]:
                term = unescape_string_literal(term)
            asked = Thread.objects.filter(conversation=OuterRef("pk"), query__icontains=term)
            queryset = queryset.filter(
                Q(id__icontains=term) | Q(title__icontains=term) | Q(owner__username__icontains=term) | Exists(asked)
            )
        return queryset, False

    @admin.display(description="conversation", ordering="title")
    def title_or_id(self, obj: Conversation) -> str:
        return obj.title or obj.id

    @admin.display(description="owner", ordering="owner__username")
    def owner_display(self, obj: Conversation) -> str:
        if obj.owner_id is None:
            return f"anonymous ({obj.session_key[:8]}…)" if obj.session_key else "anonymous"
        return obj.owner.get_username() if obj.owner is not None else ""

    @admin.display(description="agent(s)")
    def agents(self, obj: Conversation) -> str:
        names = getattr(obj, "agent_names", None)
        return ", ".join(names) if names is not None else obj.agent_name

    @admin.display(description="threads", ordering="thread_count")
    def thread_count(self, obj: Conversation) -> int:
        return getattr(obj, "thread_count", 0)  # annotated by get_queryset

    @admin.display(description="tasks", ordering="task_count")
    def task_count(self, obj: Conversation) -> int:
        return getattr(obj, "task_count", 0)  # annotated by get_queryset

    @admin.display(description="events", ordering="event_count")
    def event_count(self, obj: Conversation) -> int:
        return getattr(obj, "event_count", 0)  # annotated by get_queryset

    @admin.display(description="chat")
    def chat_link(self, obj: Conversation):
        return link(chat_url(obj.id), "open in chat", "The chat page, opened on this conversation")

    # --- change page: read-only, with the timeline --------------------------------
    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        conversation_id = unquote(object_id)
        context = {
            **(extra_context or {}),
            "timeline": timeline_page(conversation_id, parse_page(request.GET.get(TIMELINE_PAGE_VAR))),
            "timeline_page_var": TIMELINE_PAGE_VAR,
            "chat_url": chat_url(conversation_id),
            "task_count": Task.objects.filter(conversation_id=conversation_id).count(),
            "thread_count": Thread.objects.filter(conversation_id=conversation_id).count(),
            "inline_limit": TaskInline.max_shown,
            "tasks_url": admin_tasks.tasks_of(conversation_id),
            "threads_url": admin_tasks.threads_of(conversation_id),
            "events_url": admin_events.events_of(conversation_id),
        }
        return super().change_view(request, object_id, form_url, context)

    # --- deletion: summarised (events can be 100,000s), refused while a run is live ---
    def get_deleted_objects(self, objs, request: HttpRequest):
        conversations = list(objs)
        ids = [c.pk for c in conversations]
        per_model = {}
        for model in (Thread, Task, Event, Item):
            rows = model.objects.filter(conversation_id__in=ids).values("conversation_id").annotate(n=Count("pk"))
            per_model[model] = {row["conversation_id"]: row["n"] for row in rows.order_by()}
        to_delete: list[object] = []  # an entry, then the list nested under it
        for conversation in conversations:
            counts = [counted(per_model[model].get(conversation.pk, 0), model) for model in (Thread, Task, Event, Item)]
            to_delete.append(
                format_html("Conversation: {}", link(change_url(Conversation, conversation.pk), conversation))
            )
            to_delete.append(counts)
        model_count = {Conversation._meta.verbose_name_plural: len(conversations)}
        model_count.update(
            {model._meta.verbose_name_plural: sum(per_model[model].values()) for model in (Thread, Task, Event, Item)}
        )
        protected = [
            f"Conversation: {c} (status {c.status}: cancel its task before deleting it)"
            for c in conversations
            if c.status != ConversationStatus.IDLE
        ]
        perms_needed = set() if self.has_delete_permission(request) else {Conversation._meta.verbose_name}
        return to_delete, model_count, perms_needed, protected

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        # A run that started after the confirmation page keeps its conversation.
        queryset.filter(status=ConversationStatus.IDLE).delete()

    def delete_model(self, request: HttpRequest, obj: Conversation) -> None:
        Conversation.objects.filter(pk=obj.pk, status=ConversationStatus.IDLE).delete()
