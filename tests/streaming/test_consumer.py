"""The WebSocket consumer through Channels' communicator: every message type.

Runs are background tasks in the test's event loop; `settle` waits for them.
Error frames have their own module (test_consumer_errors.py).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from conversations.models import Event
from conversations.ownership import Principal
from conversations.tokens import create_token
from streaming.runtime.orchestrator import orchestrator
from streaming.ws.routing import websocket_urlpatterns
from streaming.ws.auth import WsAuthMiddleware
from streaming.ws.origin import BrowserOriginValidator

pytestmark = pytest.mark.django_db(transaction=True)

# The same stack as `valuecell_site.asgi` serves for "websocket".
WS_APP = BrowserOriginValidator(WsAuthMiddleware(URLRouter(websocket_urlpatterns)))
PATH = "/ws/agents/"
TIMEOUT = 20


class Socket:
    """A test client over `WebsocketCommunicator` that answers the server's pings."""

    def __init__(self, headers: list[tuple[bytes, bytes]] | None = None, path: str = PATH) -> None:
        self.comm = WebsocketCommunicator(WS_APP, path, headers=headers or [])
        self.pings: list[dict] = []
        self.answer_pings = True

    async def __aenter__(self) -> "Socket":
        connected, code = await self.comm.connect(timeout=TIMEOUT)
        assert connected, f"refused with {code}"
        return self

    async def __aexit__(self, *exc) -> None:
        await self.comm.disconnect(timeout=TIMEOUT)

    async def send(self, **message) -> None:
        await self.comm.send_to(text_data=json.dumps(message))

    async def send_text(self, text: str) -> None:
        await self.comm.send_to(text_data=text)

    async def recv_text(self, timeout: float = TIMEOUT) -> str:
        while True:
            output = await self.comm.receive_output(timeout)
            assert output["type"] == "websocket.send", f"expected a frame, got {output}"
            frame = json.loads(output["text"])
            if frame.get("type") == "ping" and "id" in frame:
                self.pings.append(frame)
                if self.answer_pings:
                    await self.send(type="pong", id=frame["id"])
                continue
            return output["text"]

    async def recv(self, timeout: float = TIMEOUT) -> dict:
        return json.loads(await self.recv_text(timeout))

    async def events_until_done(self, count: int = 1) -> list[dict]:
        """Event frames (control frames skipped) up to the `count`-th `done`."""
        events: list[dict] = []
        while count:
            frame = await self.recv()
            if "event" in frame:
                events.append(frame)
                count -= frame["event"] == "done"
        return events

    async def nothing(self, timeout: float = 0.3) -> bool:
        if await self.comm.receive_nothing(timeout):
            return True
        print("unexpected output:", await self.comm.receive_output(1))
        return False


@pytest.fixture
def alice(django_user_model):
    user = django_user_model.objects.create_user("alice")
    raw, _ = create_token(user)
    return user, [(b"authorization", f"Bearer {raw}".encode())]


@pytest.fixture
def bob(django_user_model):
    user = django_user_model.objects.create_user("bob")
    raw, _ = create_token(user)
    return user, [(b"authorization", f"Bearer {raw}".encode())]


@pytest.fixture(autouse=True)
async def settle():
    """Runs started by a test finish inside it (they live in its event loop)."""
    yield
    await asyncio.wait_for(orchestrator.wait_idle(), 30)


async def stored(conversation_id: str) -> list[str]:
    return [
        body
        async for body in Event.objects.filter(conversation_id=conversation_id).order_by("seq").values_list("body", flat=True)
    ]


async def start_elsewhere(user, query: str, conversation_id: str | None = None) -> str:
    """A run started by another client (another socket, SSE): straight through the orchestrator."""
    submission = await orchestrator.submit(Principal(user_id=user.pk), query, "bench", conversation_id)
    return submission.conversation_id


def names(events: list[dict]) -> list[str]:
    return [e["event"] for e in events]


def seqs(events: list[dict]) -> list[int]:
    return [e["seq"] for e in events]


BENCH_3 = ["conversation_started", "thread_started", "task_started"] + ["message_chunk"] * 3 + ["task_completed", "done"]


# --- query -------------------------------------------------------------------------
async def test_query_is_accepted_then_delivers_its_run_as_the_stored_envelopes(alice):
    user, headers = alice
    async with Socket(headers) as ws:
        await ws.send(type="query", query="k=3 delay_ms=0", agent_name="bench", request_id="q1")
        accepted = await ws.recv()
        assert accepted["type"] == "accepted" and accepted["request_id"] == "q1"
        assert accepted["after"] == 0 and accepted["answer"] is False
        conversation_id = accepted["conversation_id"]
        texts = []
        while not texts or json.loads(texts[-1])["event"] != "done":
            texts.append(await ws.recv_text())
        events = [json.loads(t) for t in texts]
        assert names(events) == BENCH_3
        assert seqs(events) == list(range(1, 9))
        await orchestrator.wait_idle()
        assert texts == await stored(conversation_id), "frames must be the stored envelope JSON, byte for byte"


async def test_a_query_delivery_ends_at_its_done(alice):
    user, headers = alice
    async with Socket(headers) as ws:
        await ws.send(type="query", query="k=3 delay_ms=0", agent_name="bench")
        conversation_id = (await ws.recv())["conversation_id"]
        await ws.events_until_done()
        await orchestrator.wait_idle()
        await start_elsewhere(user, "k=2 delay_ms=0", conversation_id)
        await orchestrator.wait_idle()
        assert await ws.nothing(), "a query's delivery must not follow later runs"


async def test_the_answer_to_a_question_is_the_next_query(alice, settings):
    settings.VALUECELL_DEMO_CHUNK_DELAY_MS = 0
    user, headers = alice
    async with Socket(headers) as ws:
        await ws.send(type="query", query="How is the market?")
        conversation_id = (await ws.recv())["conversation_id"]
        asked = await ws.events_until_done()
        assert names(asked)[-2:] == ["plan_require_user_input", "done"]
        await ws.send(type="query", query="NVDA please", conversation_id=conversation_id, request_id=7)
        accepted = await ws.recv()
        assert accepted == {
            "type": "accepted", "conversation_id": conversation_id, "after": asked[-1]["seq"], "answer": True, "request_id": 7
        }
        answered = await ws.events_until_done()
        assert answered[0]["event"] == "thread_started"
        assert answered[0]["data"]["payload"]["content"] == "NVDA please"
        assert names(answered)[-2:] == ["task_completed", "done"]
        assert seqs(asked + answered) == list(range(1, len(asked) + len(answered) + 1))


# --- subscribe / unsubscribe -------------------------------------------------------------
async def test_subscribe_replays_after_then_follows_runs_started_elsewhere(alice):
    user, headers = alice
    conversation_id = await start_elsewhere(user, "k=3 delay_ms=0")
    await orchestrator.wait_idle()
    history = [json.loads(b) for b in await stored(conversation_id)]
    async with Socket(headers) as ws:
        await ws.send(type="subscribe", conversation_id=conversation_id, after=3, request_id="s")
        assert await ws.recv() == {
            "type": "subscribed", "conversation_id": conversation_id, "after": 3, "last_seq": 8, "request_id": "s"
        }
        assert await ws.events_until_done() == history[3:]
        await start_elsewhere(user, "k=2 delay_ms=0", conversation_id)
        later = await ws.events_until_done()
        assert seqs(later) == list(range(9, 15))
        assert names(later)[0] == "thread_started"


async def test_unsubscribe_stops_delivery_and_the_run_goes_on(alice):
    user, headers = alice
    conversation_id = await start_elsewhere(user, "k=400 delay_ms=5")
    async with Socket(headers) as ws:
        await ws.send(type="subscribe", conversation_id=conversation_id)
        assert (await ws.recv())["type"] == "subscribed"
        first = await ws.recv()
        assert first["seq"] == 1
        await ws.send(type="unsubscribe", conversation_id=conversation_id, request_id=2)
        while (frame := await ws.recv()).get("type") != "unsubscribed":
            assert "event" in frame  # events queued before the request may still arrive
        assert frame == {"type": "unsubscribed", "conversation_id": conversation_id, "request_id": 2}
        await orchestrator.wait_idle()
        assert await ws.nothing(), "no event may follow `unsubscribed`"
    assert json.loads((await stored(conversation_id))[-1])["event"] == "done"


async def test_one_socket_follows_several_conversations(alice):
    user, headers = alice
    first = await start_elsewhere(user, "k=20 delay_ms=2")
    second = await start_elsewhere(user, "k=30 delay_ms=1")
    async with Socket(headers) as ws:
        await ws.send(type="subscribe", conversation_id=first)
        await ws.send(type="subscribe", conversation_id=second)
        events = await ws.events_until_done(2)
        by_conversation = {first: [], second: []}
        for event in events:
            by_conversation[event["data"]["conversation_id"]].append(event["seq"])
        assert by_conversation[first] == list(range(1, 26))
        assert by_conversation[second] == list(range(1, 36))


async def test_subscribe_during_a_query_never_repeats_an_event(alice):
    user, headers = alice
    async with Socket(headers) as ws:
        await ws.send(type="query", query="k=60 delay_ms=3", agent_name="bench")
        conversation_id = (await ws.recv())["conversation_id"]
        head = [await ws.recv() for _ in range(5)]
        await ws.send(type="subscribe", conversation_id=conversation_id, after=0)
        events = head
        while events[-1].get("event") != "done":
            events.append(await ws.recv())
        subscribed = [e for e in events if e.get("type") == "subscribed"]
        assert len(subscribed) == 1 and subscribed[0]["after"] >= 5
        events = [e for e in events if "event" in e]
        assert seqs(events) == list(range(1, 66))
        # Now a subscription: it goes on past the `done`.
        await orchestrator.wait_idle()
        await start_elsewhere(user, "k=1 delay_ms=0", conversation_id)
        assert seqs(await ws.events_until_done()) == list(range(66, 71))


async def test_resubscribing_on_the_same_socket_skips_what_it_already_sent(alice):
    user, headers = alice
    async with Socket(headers) as ws:
        await ws.send(type="query", query="k=3 delay_ms=0", agent_name="bench")
        conversation_id = (await ws.recv())["conversation_id"]
        await ws.events_until_done()
        await ws.send(type="subscribe", conversation_id=conversation_id)
        assert (await ws.recv())["after"] == 8
        assert await ws.nothing()


# --- cancel, ping, close -----------------------------------------------------------------
async def test_cancel_ends_the_task_with_task_cancelled(alice):
    user, headers = alice
    async with Socket(headers) as ws:
        await ws.send(type="query", query="k=1000 delay_ms=10", agent_name="bench")
        conversation_id = (await ws.recv())["conversation_id"]
        while (await ws.recv())["event"] != "message_chunk":
            pass
        await ws.send(type="cancel", conversation_id=conversation_id, request_id="c")
        frames = []
        while not frames or frames[-1].get("event") != "done":
            frames.append(await ws.recv())
        assert {"type": "cancelling", "conversation_id": conversation_id, "request_id": "c"} in frames
        assert names([f for f in frames if "event" in f])[-2:] == ["task_cancelled", "done"]


async def test_ping_gets_a_pong_echoing_the_request_id(alice):
    async with Socket(alice[1]) as ws:
        await ws.send(type="ping", request_id="p-1")
        assert await ws.recv() == {"type": "pong", "request_id": "p-1"}
        await ws.send(type="ping")
        assert await ws.recv() == {"type": "pong"}


async def test_an_idle_socket_is_pinged_and_closed_when_it_does_not_answer(alice, settings):
    settings.VALUECELL_WS_PING_INTERVAL_SECONDS = 0.2
    settings.VALUECELL_WS_PONG_TIMEOUT_SECONDS = 0.3
    async with Socket(alice[1]) as ws:
        ws.answer_pings = False
        ping = json.loads((await ws.comm.receive_output(5))["text"])
        assert ping["type"] == "ping" and ping["id"]
        closed = await ws.comm.receive_output(5)
        assert closed == {"type": "websocket.close", "code": 4001}


async def test_answered_pings_keep_an_idle_socket_open(alice, settings):
    settings.VALUECELL_WS_PING_INTERVAL_SECONDS = 0.1
    settings.VALUECELL_WS_PONG_TIMEOUT_SECONDS = 0.3
    async with Socket(alice[1]) as ws:
        for _ in range(5):  # five rounds span well beyond the pong timeout
            output = await ws.comm.receive_output(5)
            ping = json.loads(output["text"])
            assert ping["type"] == "ping"
            await ws.send(type="pong", id=ping["id"])
        await ws.send(type="ping")
        assert await ws.recv() == {"type": "pong"}


async def test_closing_the_socket_stops_delivery_only(alice):
    user, headers = alice
    async with Socket(headers) as ws:
        await ws.send(type="query", query="k=100 delay_ms=3", agent_name="bench")
        conversation_id = (await ws.recv())["conversation_id"]
        await ws.recv()
    await orchestrator.wait_idle()
    bodies = [json.loads(b) for b in await stored(conversation_id)]
    assert seqs(bodies) == list(range(1, 106)) and bodies[-1]["event"] == "done"


async def test_a_socket_that_stops_reading_is_closed_and_costs_no_one_else(alice, settings):
    """Small window and queue: the stalled socket gets 4008, the other one every event."""
    settings.VALUECELL_WS_SEND_WINDOW_BYTES = 4000
    settings.VALUECELL_WS_OUTBOX_FRAMES = 20
    settings.VALUECELL_WS_SEND_TIMEOUT_SECONDS = 0.3
    settings.VALUECELL_WS_PONG_TIMEOUT_SECONDS = 60
    user, headers = alice
    conversation_id = await start_elsewhere(user, "k=600 delay_ms=0")
    async with Socket(headers) as slow, Socket(headers) as fast:
        slow.answer_pings = False
        await slow.send(type="subscribe", conversation_id=conversation_id)
        await fast.send(type="subscribe", conversation_id=conversation_id)
        events = await fast.events_until_done()
        assert seqs(events) == list(range(1, 606))
        outputs = []
        while (output := await slow.comm.receive_output(5))["type"] == "websocket.send":
            outputs.append(json.loads(output["text"]))
        assert output == {"type": "websocket.close", "code": 4008}
        delivered = [o["seq"] for o in outputs if "event" in o]
        assert delivered == list(range(1, len(delivered) + 1)) and len(delivered) < 605
        assert any(o.get("type") == "ping" for o in outputs)
