"""SSE in any dialect: a follower's rows, translated, framed, with heartbeats.

The same follower as the native SSE door (`follow_run`, `follow_conversation`),
the same cursor (seq) and the same guarantees: every wire event comes from an
event already stored; the last frame a stored event becomes carries its `id:`
(a client that saw that id has every frame of it, and resumes after it), and
in a dialect with `ids_per_frame` (AG-UI) the frames before it `<seq>.<index>`;
idle streams get `: ping`; a stream opened with an API token ends, in the
dialect's words, once the token is revoked (`TokenWatch`, as the native door).
Framing is `streaming.encoders`', shared with the native door.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse

from streaming import metrics
from streaming.dialects.base import Translation, Translator
from streaming.encoders import SSE_PING, sse_data, sse_frame, sse_retry
from streaming.errors import ErrorCode
from streaming.eventlog.follow import Batches
from streaming.http.sse import REVOKED, TokenWatch

log = logging.getLogger(__name__)

BROKEN = "The server could not continue this stream; resume it with Last-Event-ID."
TOKEN_REVOKED = "The API token of this stream was revoked; it ends here."


def idle_seconds() -> float:
    """How long a follower waits before re-reading the store: at most one heartbeat,
    and short enough that a stream's token is re-checked within its interval."""
    return min(
        settings.VALUECELL_FOLLOW_RECHECK_SECONDS,
        settings.VALUECELL_SSE_HEARTBEAT_SECONDS,
        settings.VALUECELL_SSE_REAUTH_SECONDS,
    )


def frames(translator: Translator[Any], parts: list[Any], seq: int | None) -> str:
    """SSE frames for the wire events of one stored event (`seq`) or of none (no ids).

    The last frame of stored event N carries `id: N`; the frames before it carry
    `id: N.k` (k: the frame's index among the frames N became) when the
    translator has `ids_per_frame`, else none. A `Translation`'s lead (a resume's
    opening) comes from no stored frame: no id, so a client's id stays its cursor.
    """
    texts = [translator.json(part) for part in parts]
    if seq is None:
        return "".join(sse_data(text) for text in texts)
    lead, first = (parts.lead, parts.first) if isinstance(parts, Translation) else (0, 0)
    out = [sse_data(text) for text in texts[:lead]]
    own = texts[lead:]
    for index, text in enumerate(own[:-1], start=first):
        out.append(sse_frame(f"{seq}.{index}", text) if translator.ids_per_frame else sse_data(text))
    if own:
        out.append(sse_frame(seq, own[-1]))
    return "".join(out)


async def sse_frames(
    translator: Translator[Any], batches: Batches, token: TokenWatch | None = None
) -> AsyncIterator[str]:
    heartbeat = settings.VALUECELL_SSE_HEARTBEAT_SECONDS
    token = token or TokenWatch(None)
    yield sse_retry(settings.VALUECELL_SSE_RETRY_MS) + frames(translator, translator.opening(), None)
    last_write = time.monotonic()
    metrics.stream_opened(metrics.SSE)
    try:
        async for rows in batches:
            if await token.revoked():
                # In the dialect's words (AG-UI: RUN_ERROR `invalid_token`), then the end;
                # the client's reconnect is refused (401, or ValueCell's 403).
                log.info("ended a %s stream: its API token was revoked", type(translator).__name__)
                ended = translator.broken(TOKEN_REVOKED, ErrorCode.INVALID_TOKEN.value)
                yield frames(translator, ended, None) or REVOKED.decode()
                return
            if rows is None:
                if time.monotonic() - last_write >= heartbeat:
                    last_write = time.monotonic()
                    yield SSE_PING
                continue
            out = []
            for seq, event, body in rows:
                out.append(frames(translator, translator.translate(seq, event, body), seq))
                if translator.finished:
                    break
            text = "".join(out)
            if text:  # a resume reads the run from its start: rows before the cursor send nothing
                last_write = time.monotonic()
                yield text
            if translator.finished:
                return
        yield frames(translator, translator.ending(), None)
    except Exception:
        # End the response cleanly, in the dialect's words: the client resumes
        # with Last-Event-ID and misses nothing.
        log.exception("a %s stream ended early", type(translator).__name__)
        yield frames(translator, translator.broken(BROKEN), None) or f": {BROKEN}\n\n"
    finally:
        metrics.stream_closed(metrics.SSE)
        await batches.aclose()


def sse_response(
    translator: Translator[Any],
    batches: Batches,
    conversation_id: str,
    content_type: str = "text/event-stream",
    *,
    token_hash: str | None = None,
) -> StreamingHttpResponse:
    """The streaming response (its database connections are given back before the first
    byte: `valuecell_site.middleware.ReleaseConnectionsForStreamsMiddleware`).

    `token_hash`: the API token the request came with (`streaming.http.auth.stream_token_hash`),
    re-checked every `VALUECELL_SSE_REAUTH_SECONDS` while the stream lasts."""
    stream = sse_frames(translator, batches, TokenWatch(token_hash))
    response = StreamingHttpResponse(stream, content_type=content_type)
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    response["X-Conversation-Id"] = conversation_id
    return response
