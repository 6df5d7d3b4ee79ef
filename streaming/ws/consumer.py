"""The WebSocket transport (`ws/agents/`): a thin consumer over the orchestrator.

Messages are parsed in `ws_protocol`, events reach the socket through
`ws_delivery` (followers) and `ws_outbox` (bounded queue, pings); the protocol
is documented in docs/protocol.md. Closing the socket stops delivery only.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from conversations import token_cache
from conversations.ownership import Principal
from conversations.selectors import owned_conversation_or_error
from conversations.tokens import ais_active
from streaming import metrics
from streaming.addresses import Address, client_address, scope_peer
from streaming.errors import ErrorCode, ServiceError, resume_point_beyond
from streaming.eventlog.backend import event_store
from streaming.runtime.orchestrator import orchestrator
from streaming.ws.delivery import Deliveries
from streaming.ws.outbox import Outbox
from streaming.ws.protocol import (
    CLOSE_REVOKED,
    CancelMessage,
    Message,
    PingMessage,
    PongMessage,
    QueryMessage,
    RequestId,
    SubscribeMessage,
    UnsubscribeMessage,
    control_frame,
    error_frame,
    parse_message,
)

log = logging.getLogger(__name__)


class AgentConsumer(AsyncWebsocketConsumer):
    principal: Principal
    outbox: Outbox
    deliveries: Deliveries
    sender: asyncio.Task | None = None
    token_watch: asyncio.Task | None = None
    client: Address | None = None

    async def connect(self) -> None:
        principal = self.scope.get("principal")
        if principal is None:  # only reachable without `ws_auth` in front
            await self.close()
            return
        self.principal = principal
        self.client = client_address(*scope_peer(self.scope))
        self.outbox = Outbox(
            self._send_text,
            self._close_with,
            max_frames=settings.VALUECELL_WS_OUTBOX_FRAMES,
            window_bytes=settings.VALUECELL_WS_SEND_WINDOW_BYTES,
            ping_interval=settings.VALUECELL_WS_PING_INTERVAL_SECONDS,
            pong_timeout=settings.VALUECELL_WS_PONG_TIMEOUT_SECONDS,
            send_timeout=settings.VALUECELL_WS_SEND_TIMEOUT_SECONDS,
        )
        self.deliveries = Deliveries(self.outbox, settings.VALUECELL_WS_MAX_SUBSCRIPTIONS)
        await self.accept()
        metrics.WEBSOCKETS_OPEN.inc()
        self.sender = asyncio.create_task(self.outbox.run(), name="ws-sender")
        token_hash = self.scope.get("token_hash")
        if token_hash:
            self.token_watch = asyncio.create_task(self._watch_token(token_hash), name="ws-token-watch")

    async def _watch_token(self, key_hash: str) -> None:
        """Close the socket once its API token is revoked (checked every VALUECELL_WS_REAUTH_SECONDS)."""
        while True:
            await asyncio.sleep(settings.VALUECELL_WS_REAUTH_SECONDS)
            try:
                active = await ais_active(key_hash)
            except Exception:
                log.warning("could not re-check a socket's token; keeping it open until the next check", exc_info=True)
                continue
            if not active:
                token_cache.forget(key_hash)  # this worker's HTTP requests refuse it at once too
                self.outbox.fail(CLOSE_REVOKED, "its API token was revoked")
                return

    async def disconnect(self, code: int) -> None:
        if self.token_watch is not None:
            self.token_watch.cancel()
        if self.sender is None:
            return
        metrics.WEBSOCKETS_OPEN.dec()
        self.sender.cancel()
        await self.deliveries.close()
        await asyncio.gather(self.sender, return_exceptions=True)

    async def _send_text(self, frame: str) -> None:
        await self.send(text_data=frame)

    async def _close_with(self, code: int) -> None:
        await self.close(code=code)

    # --- client messages -------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.outbox.heard()
        request_id = None
        try:
            message = parse_message(text_data, bytes_data, settings.VALUECELL_WS_MAX_FRAME_BYTES)
            request_id = message.request_id
            await self._handlers[message.type](self, message)
        except ServiceError as exc:
            self.reply_error(exc, request_id)
        except Exception:
            ref = secrets.token_hex(4)
            log.exception("handling a WebSocket message failed (ref %s)", ref)
            error = ServiceError(ErrorCode.INTERNAL_ERROR, f"An internal error occurred (ref {ref}).", ref=ref)
            self.reply_error(error, request_id)

    def reply(self, kind: str, message: Message, **fields) -> None:
        self.outbox.put_control(control_frame(kind, message.request_id, **fields))

    def reply_error(self, error: ServiceError, request_id: RequestId | None) -> None:
        self.outbox.put_control(error_frame(error, request_id))

    async def on_query(self, message: QueryMessage) -> None:
        self.deliveries.check_room(message.conversation_id)
        submission = await orchestrator.submit(
            self.principal, message.query, message.agent_name, message.conversation_id, client=self.client
        )
        self.reply(
            "accepted",
            message,
            conversation_id=submission.conversation_id,
            after=submission.after_seq,
            answer=submission.is_answer,
        )
        self.deliveries.deliver_run(submission.conversation_id, submission.after_seq)

    async def on_subscribe(self, message: SubscribeMessage) -> None:
        conversation_id = message.conversation_id
        await owned_conversation_or_error(self.principal, conversation_id)
        last_seq = await event_store().last_seq(conversation_id)
        if message.after > last_seq:
            raise resume_point_beyond(message.after, last_seq)
        after = self.deliveries.subscribe(conversation_id, message.after)
        metrics.resumed(metrics.WS)
        self.reply("subscribed", message, conversation_id=conversation_id, after=after, last_seq=last_seq)

    async def on_unsubscribe(self, message: UnsubscribeMessage) -> None:
        if not self.deliveries.unsubscribe(message.conversation_id):
            raise ServiceError(ErrorCode.NOT_SUBSCRIBED, f"This socket does not receive {message.conversation_id!r}.")
        self.reply("unsubscribed", message, conversation_id=message.conversation_id)

    async def on_cancel(self, message: CancelMessage) -> None:
        await orchestrator.cancel(self.principal, message.conversation_id)
        self.reply("cancelling", message, conversation_id=message.conversation_id)

    async def on_ping(self, message: PingMessage) -> None:
        self.reply("pong", message)

    async def on_pong(self, message: PongMessage) -> None:
        if not self.outbox.pong(message.id):
            raise ServiceError(ErrorCode.UNEXPECTED_PONG, "No ping with this id is waiting for an answer.")

    # By message type; each handler takes the message model of its type.
    _handlers: dict[str, Callable[[AgentConsumer, Any], Awaitable[None]]] = {
        "query": on_query,
        "subscribe": on_subscribe,
        "unsubscribe": on_unsubscribe,
        "cancel": on_cancel,
        "ping": on_ping,
        "pong": on_pong,
    }
