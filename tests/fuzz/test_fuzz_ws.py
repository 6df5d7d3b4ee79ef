"""Property: whatever frame a client sends over the WebSocket, it gets a reply or an
`error` frame, never `internal_error`, and the socket stays open and usable, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
import json
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect

from tests.fuzz.test_fuzz_http import dumps, hostile_text, json_values
from tests.live import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.fuzz]

FUZZ = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
REPLIES = {"error", "accepted", "subscribed", "unsubscribed", "cancelling", "pong"}
TYPES = ["query", "subscribe", "unsubscribe", "cancel", "ping", "pong"]
request_ids = itertools.count(1)


class Socket:
    """One connection for a whole property: it must survive every example."""

    def __init__(self, server: LiveServer, token: str) -> None:
        self.connection: ClientConnection = connect(
            server.ws_url + "/ws/agents/", additional_headers={"Authorization": f"Bearer {token}"}, max_size=None
        ).__enter__()

    def reply_to(self, frame: str, request_id: int | None) -> dict:
        """Send `frame` (as a text frame); the control frame that answers it (events
        and server pings are handled on the way)."""
        self.connection.send(frame)
        deadline = time.monotonic() + 30
        while True:
            reply = json.loads(self.connection.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            kind = reply.get("type")
            if kind == "ping":
                self.connection.send(json.dumps({"type": "pong", "id": reply["id"]}))
                continue
            if kind is None:
                continue  # an event of a run a fuzzed query started
            assert kind in REPLIES, reply
            if request_id is None or reply.get("request_id") == request_id:
                return reply

    def still_works(self) -> None:
        request_id = next(request_ids)
        assert self.reply_to(json.dumps({"type": "ping", "request_id": request_id}), request_id)["type"] == "pong"


@pytest.fixture(scope="module")
def socket(server: LiveServer, token: str):
    socket = Socket(server, token)
    yield socket
    socket.connection.__exit__(None, None, None)


def check(reply: dict) -> None:
    if reply["type"] == "error":
        assert reply["code"] not in ("internal_error", "delivery_failed"), reply
        assert reply["message"]


messages = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES) | hostile_text},
    optional={
        # bench fails at once on anything but "k=N": runs the fuzzer starts end quickly.
        "query": hostile_text | json_values,
        "agent_name": st.just("bench") | hostile_text,
        "conversation_id": hostile_text | json_values,
        "after": st.integers() | json_values,
        "id": hostile_text | json_values,
        "extra": json_values,
    },
)


@FUZZ
@given(message=messages)
@example(message={"type": "query", "query": "AAPL\x00", "agent_name": "bench"})
@example(message={"type": "query", "query": "\ud800", "agent_name": "bench"})
@example(message={"type": "subscribe", "conversation_id": "conv-\x00"})
@example(message={"type": "cancel", "conversation_id": "\x00"})
@example(message={"type": "subscribe", "conversation_id": "\udc80", "after": 10**30})
def test_any_message(socket, message):
    request_id = next(request_ids)
    if message.get("type") == "query" and "agent_name" not in message:
        message = {**message, "agent_name": "bench"}
    check(socket.reply_to(dumps({**message, "request_id": request_id}).decode(), request_id))
    socket.still_works()


@FUZZ
@given(text=st.text(max_size=300) | st.builds(lambda v: dumps(v).decode(), json_values) | hostile_text)
@example(text='{"type": "ping", "x": ' + "[" * 3000 + "]" * 3000 + "}")
@example(text="[" * 60_000)
@example(text='{"type": "ping", "request_id": "\\ud800"}')
def test_any_text_frame(socket, text):
    # No request_id to match: a frame that is not a message gets an error without one.
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        parsed = None
    expects_own_id = isinstance(parsed, dict) and isinstance(parsed.get("request_id"), int | str)
    if expects_own_id:
        return  # covered by test_any_message; a stray id could match an earlier request's
    check(socket.reply_to(text.encode("utf-8", "surrogatepass").decode("utf-8", "replace"), None))
    socket.still_works()
