"""Who is asking: a user (session or bearer token) or an anonymous session."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q


@dataclass(frozen=True)
class Principal:
    user_id: int | None = None
    session_key: str | None = None
    via_token: bool = False

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None

    def key(self) -> str:
        """A stable name for this principal (what it sent is remembered under it)."""
        if self.user_id is not None:
            return f"user:{self.user_id}"
        return f"session:{self.session_key or ''}"

    def owns(self) -> Q:
        """A filter for the conversations this principal owns."""
        if self.user_id is not None:
            return Q(owner_id=self.user_id)
        if self.session_key:
            return Q(owner__isnull=True, session_key=self.session_key)
        return Q(pk__in=[])
