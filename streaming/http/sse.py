"""The SSE transport: a streaming response over a conversation follower.

Frames come from `encoders`; the resume point is parsed here, in one place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from django.conf import settings
from django.http import StreamingHttpResponse

from streaming import metrics
from streaming.encoders import SSE_PING, sse_frames, sse_retry
from streaming.errors import ErrorCode, ServiceError
from streaming.eventlog.follow import follow_run
from streaming.eventlog.subscription import Subscription

log = logging.getLogger(__name__)
SSE_PING_BYTES = SSE_PING.encode()

MAX_SEQ_DIGITS = 18


def parse_resume_point(request) -> int:
    """`Last-Event-ID` header, else `?after=`, else 0; 400 when malformed."""
    raw = request.headers.get("Last-Event-ID")
    source = "Last-Event-ID"
    if raw is None:
        raw = request.GET.get("after")
        source = "after"
    if raw is None or raw.strip() == "":
        return 0
    raw = raw.strip()
    if not raw.isdigit() or not raw.isascii() or len(raw) > MAX_SEQ_DIGITS:
        raise ServiceError(
            ErrorCode.INVALID_RESUME_POINT, f"{source} must be a non-negative integer seq, got {raw[:40]!r}."
        )
    return int(raw)


async def _frames(conversation_id: str, after: int, subscription: Subscription | None) -> AsyncIterator[bytes]:
    heartbeat = settings.VALUECELL_SSE_HEARTBEAT_SECONDS
    idle = min(settings.VALUECELL_FOLLOW_RECHECK_SECONDS, heartbeat)
    # The response's headers (X-Conversation-Id) go out with its first bytes. A
    # stream that starts a run holds them until the run's first event: a new
    # conversation's row is stored with it, so nobody learns an id that a
    # request could not find yet. (It is one write instead of two, too.)
    opening = sse_retry(settings.VALUECELL_SSE_RETRY_MS).encode()
    if subscription is None:
        yield opening
        opening = b""
    last_write = time.monotonic()
    metrics.stream_opened(metrics.SSE)
    try:
        async for rows in follow_run(conversation_id, after, subscription=subscription, idle_seconds=idle):
            now = time.monotonic()
            if rows is None:
                if now - last_write >= heartbeat:
                    last_write = now
                    yield opening + SSE_PING_BYTES
                    opening = b""
                continue
            last_write = now
            # A batch this process stored is encoded once for every stream sending it.
            yield opening + sse_frames(rows) if opening else sse_frames(rows)
            opening = b""
        if opening:
            yield opening
    except Exception:
        # End the response cleanly (the store stayed unreachable): the client
        # reconnects with Last-Event-ID and misses nothing. A stream that died
        # with an exception would leave it waiting on an open connection.
        log.exception("stream of %s ended early", conversation_id)
        yield b": the server could not continue this stream; reconnect to resume\n\n"
    finally:
        metrics.stream_closed(metrics.SSE)


async def sse_response(
    conversation_id: str, after: int, subscription: Subscription | None = None
) -> StreamingHttpResponse:
    """Stream a conversation's events after `after` until its run's `done`.

    The request's database connections are given back before the first byte
    (`valuecell_site.middleware.ReleaseConnectionsForStreamsMiddleware`)."""
    response = StreamingHttpResponse(_frames(conversation_id, after, subscription), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    response["X-Conversation-Id"] = conversation_id
    return response
