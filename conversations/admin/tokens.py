"""API tokens in the admin: create one (its raw key is shown once, in a message,
and only its SHA-256 is stored, by `tokens.create_token`), list, revoke."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from conversations import token_cache
from conversations.models import ApiToken
from conversations.tokens import create_token

CREATED_FIELDS = ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]


class ActiveFilter(admin.SimpleListFilter):
    title = "active"
    parameter_name = "active"

    def lookups(self, request, model_admin):
        return [("yes", "active"), ("no", "revoked")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["token", "name", "user", "created_at", "last_used_at", "revoked_at", "active"]
    list_filter = [ActiveFilter, "created_at"]
    search_fields = ["prefix", "name", "user__username"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]
    ordering = ["-created_at"]
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[str]:  # type: ignore[override]
        return ["user", "name"] if obj is None else CREATED_FIELDS

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[str]:
        # Only the label can change; a token is revoked with the action, never un-revoked.
        return [] if obj is None else [f for f in CREATED_FIELDS if f != "name"]

    def save_model(self, request: HttpRequest, obj: ApiToken, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        raw, token = create_token(obj.user, obj.name)
        # The admin goes on with `obj` (log entry, redirect): make it the stored row.
        for field in ("pk", "prefix", "key_hash", "created_at"):
            setattr(obj, field, getattr(token, field))
        obj._state.adding, obj._state.db = False, token._state.db
        messages.warning(
            request,
            format_html(
                'The new token for {} is <code class="api-token">{}</code>. Copy it now: it is shown only '
                "this once and only its hash is stored.",
                obj.user,
                raw,
            ),
        )

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        token_cache.forget_all()  # update() sends no signal; other workers follow within the cache's lifetime
        already = queryset.count() - revoked
        messages.success(
            request, f"Revoked {revoked} token(s)." + (f" {already} were already revoked." if already else "")
        )

    @admin.display(description="token", ordering="prefix")
    def token(self, obj: ApiToken) -> str:
        return f"{obj.prefix}…"

    @admin.display(description="active", boolean=True, ordering="revoked_at")
    def active(self, obj: ApiToken) -> bool:
        return obj.is_active
