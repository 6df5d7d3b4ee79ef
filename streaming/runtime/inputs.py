"""What the runtime accepts as a user input, whichever door it came through."""

from __future__ import annotations

from django.conf import settings

from streaming.errors import ErrorCode, ServiceError
from streaming.text import text_problem


def validate_query(query: str) -> str:
    """The query as given, or `ServiceError` (empty, not storable text, or over VALUECELL_MAX_QUERY_BYTES)."""
    problem = text_problem(query)
    if problem is not None:
        raise ServiceError(ErrorCode.INVALID_FIELD, f"Field 'query' {problem}.")
    if not query.strip():
        raise ServiceError(ErrorCode.EMPTY_QUERY, "The query must not be empty.")
    limit = settings.VALUECELL_MAX_QUERY_BYTES
    if len(query.encode("utf-8")) > limit:
        raise ServiceError(ErrorCode.QUERY_TOO_LARGE, f"The query is larger than {limit} bytes.")
    return query
