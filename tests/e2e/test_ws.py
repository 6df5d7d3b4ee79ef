"""End to end over a real Daphne with the `websockets` client: the WebSocket
transport delivers what SSE delivers, resumes exactly, refuses what it must,
and a slow or silent socket costs only itself."""

from __future__ import annotations

import asyncio
import json
import re
from contextlib import asynccontextmanager

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.e2e.client import names, resume, run
from tests.e2e.test_sse_runs import wait_for
from tests.live import LiveServer

pytestmark = pytest.mark.e2e
TIMEOUT = 30


class Ws:
    """A `websockets` connection speaking the protocol; answers server pings by default."""

    def __init__(self, connection) -> None:
        self.connection = connection
        self.answer_pings = True
        self.pings = 0

    async def send(self, **message) -> None:
        await self.connection.send(json.dumps(message))

    async def recv_text(self, timeout: float = TIMEOUT) -> str:
        while True:
            text = await asyncio.wait_for(self.connection.recv(), timeout)
            if text.startswith('{"type":"ping"'):
                self.pings += 1
                if self.answer_pings:
                    await self.send(type="pong", id=json.loads(text)["id"])
                continue
            return text

    async def recv(self, timeout: float = TIMEOUT) -> dict:
        return json.loads(await self.recv_text(timeout))

    async def until_done(self) -> list[str]:
        """Frames (as sent) up to and including the next `done` event."""
        frames = [await self.recv_text()]
        while not frames[-1].startswith('{"event":"done"'):
            frames.append(await self.recv_text())
        return frames


@asynccontextmanager
async def connect(server: LiveServer, token: str | None = None, **options):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with websockets.connect(server.ws_url + "/ws/agents/", additional_headers=headers, **options) as connection:
        yield Ws(connection)


def events(frames: list[str]) -> list[dict]:
    return [json.loads(f) for f in frames if f.startswith('{"event"')]


def seqs(items: list[dict]) -> list[int]:
    return [e["seq"] for e in items]


ID = re.compile(r"\b(?:conv|th|task|item)-[0-9a-f]{32}")


def normalized(items: list[dict]) -> list[dict]:
    """Ids replaced by their order of appearance, emit times dropped: what two equal runs share."""
    seen: dict[str, str] = {}
    text = ID.sub(lambda m: seen.setdefault(m.group(0), f"<{len(seen)}>"), json.dumps(items))
    result = json.loads(text)
    for event in result:
        (event["data"].get("metadata") or {}).pop("ts", None)
    return result


@pytest.fixture
def http(daphne_server, alice_token):
    headers = {"Authorization": f"Bearer {alice_token}"}
    with httpx.Client(base_url=daphne_server.url, timeout=TIMEOUT, headers=headers) as client:
        yield client


def idle(http: httpx.Client, conversation_id: str) -> bool:
    return http.get(f"/conversations/{conversation_id}").json()["conversation"]["status"] == "idle"


# --- the same events as SSE -------------------------------------------------------------
@pytest.mark.parametrize("query, agent", [("k=20 delay_ms=0", "bench"), ("How did NVDA and AAPL do this year?", "demo")])
async def test_a_run_over_ws_is_the_same_sequence_as_over_sse(daphne_server, alice_token, http, query, agent):
    async with connect(daphne_server, alice_token) as ws:
        await ws.send(type="query", query=query, agent_name=agent, request_id="q")
        accepted = await ws.recv()
        assert accepted["type"] == "accepted" and accepted["request_id"] == "q"
        frames = await ws.until_done()
    conversation_id = accepted["conversation_id"]
    assert all(f.startswith('{"event"') for f in frames), "no control frame inside a run's delivery"
    # The same conversation over SSE: the very same JSON texts.
    sse = await asyncio.to_thread(resume, http, conversation_id, 0)
    assert [json.dumps(e) for e in sse] == [json.dumps(e) for e in events(frames)]
    assert frames == [json.dumps(e, separators=(",", ":"), ensure_ascii=False) for e in sse]
    # The same kind of run started over SSE: same names, order, payloads and seq.
    response, over_sse = await asyncio.to_thread(run, http, query, agent_name=agent)
    assert response.status_code == 200
    assert names(over_sse) == names(events(frames))
    assert seqs(over_sse) == list(range(1, len(frames) + 1))
    assert normalized(over_sse) == normalized(events(frames))


# --- several readers at once ------------------------------------------------------------
async def test_a_second_socket_and_an_sse_client_join_mid_run(daphne_server, alice_token, http):
    async with connect(daphne_server, alice_token) as first, connect(daphne_server, alice_token) as second:
        await first.send(type="query", query="k=150 delay_ms=10", agent_name="bench")
        conversation_id = (await first.recv())["conversation_id"]
        head = [await first.recv_text() for _ in range(10)]
        await second.send(type="subscribe", conversation_id=conversation_id, request_id="join")
        sse = asyncio.create_task(asyncio.to_thread(resume, http, conversation_id, 0))
        subscribed = await second.recv()
        assert subscribed["type"] == "subscribed" and subscribed["request_id"] == "join"
        assert 10 <= subscribed["last_seq"] < 155, "joined while the run was going on"
        first_frames, second_frames = await asyncio.gather(first.until_done(), second.until_done())
        first_frames = head + first_frames
        over_sse = await sse
    assert seqs(events(first_frames)) == list(range(1, 156))
    assert second_frames == first_frames
    assert over_sse == events(first_frames)


# --- disconnect and resume ---------------------------------------------------------------
@pytest.mark.parametrize("cut_after", [1, 37, 204])
async def test_disconnect_mid_run_then_resubscribe_with_after(daphne_server, alice_token, http, cut_after):
    async with connect(daphne_server, alice_token) as ws:
        await ws.send(type="query", query="k=200 delay_ms=3", agent_name="bench")
        conversation_id = (await ws.recv())["conversation_id"]
        before = [await ws.recv() for _ in range(cut_after)]
    assert seqs(before) == list(range(1, cut_after + 1))
    async with connect(daphne_server, alice_token) as ws:
        await ws.send(type="subscribe", conversation_id=conversation_id, after=before[-1]["seq"])
        subscribed = await ws.recv()
        assert subscribed["type"] == "subscribed" and subscribed["after"] == cut_after
        after = events(await ws.until_done())
    assert seqs(before + after) == list(range(1, 206))
    wait_for(lambda: idle(http, conversation_id))
    assert await asyncio.to_thread(resume, http, conversation_id, 0) == before + after


async def test_closing_the_socket_leaves_the_run_going(daphne_server, alice_token, http):
    async with connect(daphne_server, alice_token) as ws:
        await ws.send(type="query", query="k=100 delay_ms=5", agent_name="bench")
        conversation_id = (await ws.recv())["conversation_id"]
    wait_for(lambda: idle(http, conversation_id))
    stored = await asyncio.to_thread(resume, http, conversation_id, 0)
    assert seqs(stored) == list(range(1, 106)) and names(stored)[-1] == "done"


# --- answers and cancel over the socket ------------------------------------------------------
async def test_answer_a_question_and_cancel_over_the_socket(daphne_server, alice_token):
    async with connect(daphne_server, alice_token) as ws:
        await ws.send(type="query", query="What should I buy?")
        conversation_id = (await ws.recv())["conversation_id"]
        asked = events(await ws.until_done())
        assert names(asked)[-2:] == ["plan_require_user_input", "done"]
        await ws.send(type="query", query="MSFT", conversation_id=conversation_id)
        assert (await ws.recv())["answer"] is True
        answered = events(await ws.until_done())
        assert names(answered)[-2:] == ["task_completed", "done"]
        await ws.send(type="query", query="k=5000 delay_ms=10", agent_name="bench", conversation_id=conversation_id)
        assert (await ws.recv())["answer"] is False
        assert (await ws.recv())["event"] == "thread_started"
        await ws.send(type="cancel", conversation_id=conversation_id)
        frames = await ws.until_done()
        assert '{"type":"cancelling","conversation_id":"%s"}' % conversation_id in frames
        assert names(events(frames))[-2:] == ["task_cancelled", "done"]
        assert seqs(asked + answered + events(frames))[-1] == len(asked) + len(answered) + len(events(frames)) + 1


# --- ownership and bad input ----------------------------------------------------------------
async def test_subscribing_to_another_owners_conversation_is_an_error(daphne_server, alice_token, bob_token, http):
    _, started = await asyncio.to_thread(run, http, "k=3 delay_ms=0", agent_name="bench")
    conversation_id = started[0]["data"]["conversation_id"]
    for token in (bob_token, None):
        async with connect(daphne_server, token) as ws:
            await ws.send(type="subscribe", conversation_id=conversation_id, request_id="x")
            assert await ws.recv() == {
                "type": "error",
                "code": "conversation_not_found",
                "message": f"No conversation {conversation_id!r}.",
                "request_id": "x",
            }
            await ws.send(type="cancel", conversation_id=conversation_id)
            assert (await ws.recv())["code"] == "conversation_not_found"
            await ws.send(type="ping")
            assert await ws.recv() == {"type": "pong"}


BAD_FRAMES = [
    ("not json", "invalid_json"),
    ("[]", "invalid_json"),
    ("{}", "missing_field"),
    ('{"type": "explode"}', "unknown_type"),
    ('{"type": "query"}', "missing_field"),
    ('{"type": "query", "query": ""}', "empty_query"),
    ('{"type": "query", "query": "x", "agent_name": "ghost"}', "unknown_agent"),
    ('{"type": "subscribe", "conversation_id": "conv-nope"}', "conversation_not_found"),
    ('{"type": "subscribe", "conversation_id": "c", "after": -5}', "invalid_field"),
    ('{"type": "cancel", "conversation_id": "conv-nope"}', "conversation_not_found"),
    ('{"type": "unsubscribe", "conversation_id": "conv-nope"}', "not_subscribed"),
    ('{"type": "pong", "id": "forged"}', "unexpected_pong"),
    ('{"type": "ping", "extra": 1}', "unknown_field"),
    ('{"type": "query", "query": "' + "y" * 70_000 + '"}', "frame_too_large"),
    (b"\x00\x01binary", "binary_frame"),
    # Text no database can store, and JSON too deep to parse: refused alike on every backend.
    ('{"type": "query", "query": "AAPL\\u0000"}', "invalid_field"),
    ('{"type": "query", "query": "\\ud800"}', "invalid_field"),
    ('{"type": "subscribe", "conversation_id": "conv-\\u0000"}', "conversation_not_found"),
    ('{"type": "cancel", "conversation_id": "\\u0000"}', "conversation_not_found"),
    ('{"type": "ping", "request_id": "\\ud800"}', "invalid_field"),
    ('{"type": "ping", "deep": ' + "[" * 5000 + "]" * 5000 + "}", "invalid_json"),
]


async def test_a_flood_of_bad_frames_leaves_the_socket_usable(daphne_server, alice_token):
    rounds = 40
    async with connect(daphne_server, alice_token) as ws:
        await ws.send(type="query", query="k=300 delay_ms=2", agent_name="bench")
        conversation_id = (await ws.recv())["conversation_id"]

        async def flood() -> None:
            for _ in range(rounds):
                for frame, _code in BAD_FRAMES:
                    await ws.connection.send(frame)

        sender = asyncio.create_task(flood())
        errors, frames = [], []
        while len(errors) < rounds * len(BAD_FRAMES) or not frames or not frames[-1].startswith('{"event":"done"'):
            frame = await ws.recv_text()
            (errors if frame.startswith('{"type":"error"') else frames).append(frame)
        await sender
        assert [json.loads(e)["code"] for e in errors] == [code for _, code in BAD_FRAMES] * rounds
        # The run delivered on the same socket was not disturbed.
        assert seqs(events(frames)) == list(range(1, 306))
        # And the socket still does everything.
        await ws.send(type="ping", request_id=1)
        assert await ws.recv() == {"type": "pong", "request_id": 1}
        await ws.send(type="query", query="k=2 delay_ms=0", agent_name="bench", conversation_id=conversation_id)
        assert (await ws.recv())["type"] == "accepted"
        assert names(events(await ws.until_done()))[-2:] == ["task_completed", "done"]


DAPHNE_MAX_MESSAGE = 1024 * 1024  # Daphne's --websocket-max-message-size default


@pytest.mark.parametrize("size", [DAPHNE_MAX_MESSAGE + 1, 8 * DAPHNE_MAX_MESSAGE])
async def test_a_frame_over_daphnes_limit_closes_the_socket_with_1009(daphne_server, alice_token, size):
    """Over VALUECELL_WS_MAX_FRAME_BYTES a frame gets an error; over Daphne's own limit
    the socket is closed with 1009 (message too big), not cut without a close frame."""
    async with connect(daphne_server, alice_token, max_size=None) as ws:
        await ws.send(type="ping", request_id="before")
        assert await ws.recv() == {"type": "pong", "request_id": "before"}
        with pytest.raises(ConnectionClosed) as closed:
            await ws.connection.send("x" * size)
            await ws.recv()
    assert closed.value.rcvd is not None, "the connection was cut without a close frame"
    assert closed.value.rcvd.code == 1009
    async with connect(daphne_server, alice_token) as ws:  # the server goes on
        await ws.send(type="ping")
        assert await ws.recv() == {"type": "pong"}


# --- the handshake ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def strict_server():
    """Anonymous use off, and quick keep-alive timings."""
    server = LiveServer(
        env={
            "VALUECELL_ALLOW_ANONYMOUS": "false",
            "VALUECELL_WS_PING_INTERVAL_SECONDS": "0.3",
            "VALUECELL_WS_PONG_TIMEOUT_SECONDS": "1",
        }
    ).start()
    yield server
    server.close()


async def test_handshakes_without_valid_credentials_are_refused(strict_server):
    token = strict_server.token("dora")
    for url, headers in [
        ("/ws/agents/", {}),
        ("/ws/agents/", {"Authorization": "Bearer vc_wrong"}),
        ("/ws/agents/", {"Authorization": f"Token {token}"}),
        ("/ws/agents/?token=vc_wrong", {}),
    ]:
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(strict_server.ws_url + url, additional_headers=headers):
                pass
        assert refused.value.response.status_code == 403
    async with websockets.connect(f"{strict_server.ws_url}/ws/agents/?token={token}") as connection:
        await connection.send('{"type": "ping"}')
        # The first frame may be a server ping: this server pings after 0.3 s of silence.
        while (frame := json.loads(await asyncio.wait_for(connection.recv(), TIMEOUT)))["type"] == "ping":
            await connection.send(json.dumps({"type": "pong", "id": frame["id"]}))
        assert frame == {"type": "pong"}


async def test_a_browser_from_a_foreign_origin_is_refused(daphne_server, alice_token):
    with pytest.raises(InvalidStatus) as refused:
        async with connect(daphne_server, alice_token, origin="http://evil.example"):
            pass
    assert refused.value.response.status_code == 403
    async with connect(daphne_server, alice_token, origin=f"http://127.0.0.1:{daphne_server.port}") as ws:
        await ws.send(type="ping")
        assert await ws.recv() == {"type": "pong"}


# --- keep-alive and slow clients ---------------------------------------------------------------
async def test_a_socket_that_answers_no_ping_is_closed_with_4001(strict_server):
    token = strict_server.token("erin")
    async with connect(strict_server, token) as ws:
        ws.answer_pings = False
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
        assert ws.pings == 1
    async with connect(strict_server, token) as ws:
        for _ in range(5):  # answered pings: well past the pong timeout, still open
            ping = json.loads(await asyncio.wait_for(ws.connection.recv(), TIMEOUT))
            assert ping["type"] == "ping"
            await ws.send(type="pong", id=ping["id"])
        await ws.send(type="ping")
        assert await ws.recv() == {"type": "pong"}


@pytest.fixture(scope="module")
def tight_server():
    """A small send window and outbox, so that a stalled reader overflows quickly."""
    server = LiveServer(
        env={
            "VALUECELL_WS_SEND_WINDOW_BYTES": "65536",
            "VALUECELL_WS_OUTBOX_FRAMES": "200",
            # Long enough for a reading client on a loaded machine, short for the test.
            "VALUECELL_WS_SEND_TIMEOUT_SECONDS": "3",
            "VALUECELL_WS_PONG_TIMEOUT_SECONDS": "60",
        }
    ).start()
    yield server
    server.close()


async def test_a_stalled_reader_is_closed_with_4008_and_resumes_exactly(tight_server):
    token = tight_server.token("frank")
    async with connect(tight_server, token) as fast, connect(tight_server, token) as stalled:
        await fast.send(type="query", query="k=20000 delay_ms=0", agent_name="bench")
        conversation_id = (await fast.recv())["conversation_id"]
        await stalled.send(type="subscribe", conversation_id=conversation_id)
        # The stalled socket reads nothing while the whole run is delivered to the other.
        everything = events(await fast.until_done())
        assert seqs(everything) == list(range(1, 20006))
        stalled.answer_pings = False
        received = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                received.append(await stalled.recv_text(timeout=10))
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
    got = events(received)
    assert 0 < len(got) < 20005 and seqs(got) == list(range(1, len(got) + 1))
    # The documented recovery: subscribe after the last seq received.
    async with connect(tight_server, token) as again:
        await again.send(type="subscribe", conversation_id=conversation_id, after=got[-1]["seq"])
        assert (await again.recv())["type"] == "subscribed"
        rest = events(await again.until_done())
    assert got + rest == everything
