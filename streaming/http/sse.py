"""The SSE transport: a streaming response over a conversation follower.

Frames come from `encoders`; the resume point is parsed here, in one place.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import NamedTuple

from django.conf import settings
from django.http import HttpResponse, HttpResponseBase, StreamingHttpResponse

from conversations import token_cache
from conversations.tokens import ais_active
from streaming import metrics
from streaming.encoders import SSE_PING, sse_frames, sse_retry
from streaming.errors import ErrorCode, ServiceError, resume_point_beyond
from streaming.eventlog.backend import event_store
from streaming.eventlog.follow import follow_run
from streaming.eventlog.subscription import Subscription
from streaming.events import SystemResponseEvent
from streaming.states import ConversationStatus

log = logging.getLogger(__name__)
SSE_PING_BYTES = SSE_PING.encode()

MAX_SEQ_DIGITS = 18
MAX_FRAME_INDEX_DIGITS = 4  # a stored event becomes a handful of frames
FRAME_POINT = re.compile(rf"([0-9]{{1,{MAX_SEQ_DIGITS}}})(?:\.([0-9]{{1,{MAX_FRAME_INDEX_DIGITS}}}))?")
DONE = SystemResponseEvent.DONE.value
REVOKED = b": the API token of this stream was revoked; it ends here\n\n"


class FramePoint(NamedTuple):
    """A resume point: after frame `frame` of stored event `seq` (None: after all of it)."""

    seq: int
    frame: int | None = None


def _resume_text(request) -> tuple[str, str] | None:
    """The resume point as sent, and where: `Last-Event-ID` header, else `?after=`."""
    raw = request.headers.get("Last-Event-ID")
    source = "Last-Event-ID"
    if raw is None:
        raw = request.GET.get("after")
        source = "after"
    if raw is None or raw.strip() == "":
        return None
    return raw.strip(), source


def parse_resume_point(request) -> int:
    """`Last-Event-ID` header, else `?after=`, else 0; 400 when malformed."""
    found = _resume_text(request)
    if found is None:
        return 0
    raw, source = found
    if not raw.isdigit() or not raw.isascii() or len(raw) > MAX_SEQ_DIGITS:
        raise ServiceError(
            ErrorCode.INVALID_RESUME_POINT, f"{source} must be a non-negative integer seq, got {raw[:40]!r}."
        )
    return int(raw)


def parse_frame_resume_point(request) -> FramePoint:
    """Like `parse_resume_point`, for a dialect whose every frame has an id: `N`
    (after all of stored event N) or `N.k` (after frame k of the frames N became)."""
    found = _resume_text(request)
    if found is None:
        return FramePoint(0)
    raw, source = found
    matched = FRAME_POINT.fullmatch(raw)
    if matched is None:
        raise ServiceError(
            ErrorCode.INVALID_RESUME_POINT,
            f"{source} must be a seq or seq.index of non-negative integers, got {raw[:40]!r}.",
        )
    seq, frame = matched.groups()
    return FramePoint(int(seq), None if frame is None else int(frame))


class TokenWatch:
    """Re-checks a stream's API token every VALUECELL_SSE_REAUTH_SECONDS (None: not a token stream)."""

    def __init__(self, token_hash: str | None) -> None:
        self.token_hash = token_hash
        self.interval = settings.VALUECELL_SSE_REAUTH_SECONDS
        self.next_check = time.monotonic() + self.interval

    async def revoked(self) -> bool:
        if self.token_hash is None or time.monotonic() < self.next_check:
            return False
        self.next_check = time.monotonic() + self.interval
        try:
            active = await ais_active(self.token_hash)
        except Exception:
            log.warning("could not re-check a stream's token; keeping it open until the next check", exc_info=True)
            return False
        if not active:
            token_cache.forget(self.token_hash)  # the client's reconnect to this worker is refused at once
        return not active


async def _frames(
    conversation_id: str,
    after: int,
    subscription: Subscription | None,
    token: TokenWatch,
    end_after_done_beyond: int | None,
) -> AsyncIterator[bytes]:
    heartbeat = settings.VALUECELL_SSE_HEARTBEAT_SECONDS
    idle = min(settings.VALUECELL_FOLLOW_RECHECK_SECONDS, heartbeat, token.interval)
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
        async with aclosing(
            follow_run(conversation_id, after, subscription=subscription, idle_seconds=idle)
        ) as batches:
            async for rows in batches:
                if await token.revoked():
                    # The client's reconnect is refused (401): it stops there.
                    log.info("ended a stream of %s: its API token was revoked", conversation_id)
                    yield opening + REVOKED
                    return
                now = time.monotonic()
                if rows is None:
                    if now - last_write >= heartbeat:
                        last_write = now
                        yield opening + SSE_PING_BYTES
                        opening = b""
                    continue
                last_write = now
                ended = False
                if end_after_done_beyond is not None:
                    rows, ended = _cut_at_done(rows, end_after_done_beyond)
                # A batch this process stored is encoded once for every stream sending it.
                yield opening + sse_frames(rows) if opening else sse_frames(rows)
                opening = b""
                if ended:
                    return
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


def _cut_at_done(rows: list[tuple[int, str, str]], beyond: int) -> tuple[list[tuple[int, str, str]], bool]:
    """The rows up to the first `done` after seq `beyond`, and whether there was one."""
    for index, (seq, event, _body) in enumerate(rows):
        if event == DONE and seq > beyond:
            return rows[: index + 1], True
    return rows, False


async def sse_response(
    conversation_id: str,
    after: int,
    subscription: Subscription | None = None,
    *,
    token_hash: str | None = None,
    end_after_done_beyond: int | None = None,
) -> StreamingHttpResponse:
    """Stream a conversation's events after `after` until its run's `done`.

    `token_hash`: the bearer token the request came with, re-checked while the
    stream lasts. `end_after_done_beyond`: end at the first `done` after that
    seq (one run's events, whatever runs follow).

    The request's database connections are given back before the first byte
    (`valuecell_site.middleware.ReleaseConnectionsForStreamsMiddleware`)."""
    frames = _frames(conversation_id, after, subscription, TokenWatch(token_hash), end_after_done_beyond)
    response = StreamingHttpResponse(frames, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    response["X-Conversation-Id"] = conversation_id
    return response


async def resume_response(
    conversation_id: str,
    status: str,
    after: int,
    *,
    token_hash: str | None = None,
    end_after_done_beyond: int | None = None,
) -> HttpResponseBase:
    """Resume after `after`: 400 past the last stored seq, 204 No Content when
    there is nothing after it and no run in progress (`EventSource` stops
    reconnecting on a 204), else the stream. `status`: the conversation's, read
    before its last seq."""
    last_seq = await event_store().last_seq(conversation_id)
    if after > last_seq:
        raise resume_point_beyond(after, last_seq)
    if after == last_seq and status != ConversationStatus.RUNNING:
        response = HttpResponse(status=204)
        response["X-Conversation-Id"] = conversation_id
        return response
    return await sse_response(
        conversation_id, after, token_hash=token_hash, end_after_done_beyond=end_after_done_beyond
    )
