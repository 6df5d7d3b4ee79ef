"""Every bad client message gets an error frame; the socket stays open and
nothing else on it is disturbed."""

from __future__ import annotations

import pytest

from streaming.runtime.orchestrator import orchestrator
from tests.streaming.test_consumer import Socket, alice, bob, names, seqs, settle, start_elsewhere  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


async def expect_error(ws: Socket, code: str, request_id=None) -> dict:
    frame = await ws.recv()
    assert frame["type"] == "error", frame
    assert frame["code"] == code, frame
    assert frame["message"]
    if request_id is None:
        assert "request_id" not in frame
    else:
        assert frame["request_id"] == request_id
    return frame


async def still_usable(ws: Socket) -> None:
    await ws.send(type="ping", request_id="alive")
    assert await ws.recv() == {"type": "pong", "request_id": "alive"}


@pytest.mark.parametrize(
    "text, code, request_id",
    [
        ("{", "invalid_json", None),
        ("[1, 2]", "invalid_json", None),
        ('"query"', "invalid_json", None),
        ("{}", "missing_field", None),
        ('{"request_id": "r", "query": "hi"}', "missing_field", "r"),
        ('{"type": "launch", "request_id": 5}', "unknown_type", 5),
        ('{"type": 3}', "unknown_type", None),
        ('{"type": "query", "request_id": "r"}', "missing_field", "r"),
        ('{"type": "query", "query": 42, "request_id": "r"}', "invalid_field", "r"),
        ('{"type": "query", "query": "hi", "colour": "red"}', "unknown_field", None),
        ('{"type": "query", "query": "hi", "agent_name": "' + "a" * 101 + '"}', "invalid_field", None),
        ('{"type": "query", "query": "hi", "request_id": {"x": 1}}', "invalid_field", None),
        ('{"type": "subscribe"}', "missing_field", None),
        ('{"type": "subscribe", "conversation_id": "c", "after": -1}', "invalid_field", None),
        ('{"type": "subscribe", "conversation_id": "c", "after": "3"}', "invalid_field", None),
        ('{"type": "subscribe", "conversation_id": "c", "after": 2.5}', "invalid_field", None),
        ('{"type": "unsubscribe"}', "missing_field", None),
        ('{"type": "cancel", "conversation_id": 7}', "invalid_field", None),
        ('{"type": "pong"}', "missing_field", None),
        ('{"type": "query", "query": "   ", "request_id": 1}', "empty_query", 1),
        ('{"type": "query", "query": "hi", "agent_name": "nobody"}', "unknown_agent", None),
        ('{"type": "pong", "id": "never-sent", "request_id": "p"}', "unexpected_pong", "p"),
        ('{"type": "unsubscribe", "conversation_id": "conv-x"}', "not_subscribed", None),
    ],
)
async def test_bad_message_gets_an_error_frame_and_the_socket_stays_open(alice, text, code, request_id):
    async with Socket(alice[1]) as ws:
        await ws.send_text(text)
        await expect_error(ws, code, request_id)
        await still_usable(ws)


async def test_binary_frames_are_refused(alice):
    async with Socket(alice[1]) as ws:
        await ws.comm.send_to(bytes_data=b'{"type": "ping"}')
        await expect_error(ws, "binary_frame")
        await still_usable(ws)


async def test_oversize_frame_is_refused(alice, settings):
    settings.VALUECELL_WS_MAX_FRAME_BYTES = 1000
    async with Socket(alice[1]) as ws:
        await ws.send(type="query", query="x" * 1000)
        await expect_error(ws, "frame_too_large")
        await ws.send(type="query", query="é" * 490)  # under 1000 characters, over 1000 bytes
        await expect_error(ws, "frame_too_large")
        await still_usable(ws)


async def test_oversize_query_is_refused_like_over_http(alice, settings):
    settings.VALUECELL_MAX_QUERY_BYTES = 10
    async with Socket(alice[1]) as ws:
        await ws.send(type="query", query="k=1000 delay_ms=0", agent_name="bench", request_id="big")
        await expect_error(ws, "query_too_large", "big")
        await still_usable(ws)


async def test_foreign_conversations_are_not_found_for_every_message(alice, bob):
    conversation_id = await start_elsewhere(alice[0], "k=2 delay_ms=0")
    await orchestrator.wait_idle()
    async with Socket(bob[1]) as ws:
        await ws.send(type="subscribe", conversation_id=conversation_id, request_id=1)
        await expect_error(ws, "conversation_not_found", 1)
        await ws.send(type="cancel", conversation_id=conversation_id, request_id=2)
        await expect_error(ws, "conversation_not_found", 2)
        await ws.send(type="query", query="k=1", agent_name="bench", conversation_id=conversation_id, request_id=3)
        await expect_error(ws, "conversation_not_found", 3)
        await ws.send(type="subscribe", conversation_id="conv-does-not-exist")
        await expect_error(ws, "conversation_not_found")
        await still_usable(ws)


async def test_busy_conversation_and_cancel_without_a_run(alice):
    user, headers = alice
    async with Socket(headers) as ws:
        await ws.send(type="query", query="k=100 delay_ms=5", agent_name="bench")
        conversation_id = (await ws.recv())["conversation_id"]
        await ws.send(type="query", query="k=1", agent_name="bench", conversation_id=conversation_id, request_id="b")
        frames = []
        while not frames or frames[-1].get("event") != "done":
            frames.append(await ws.recv())
        errors = [f for f in frames if f.get("type") == "error"]
        assert [(e["code"], e["request_id"]) for e in errors] == [("conversation_busy", "b")]
        # The run went on undisturbed and was delivered whole.
        assert seqs([f for f in frames if "event" in f]) == list(range(1, 106))
        await orchestrator.wait_idle()
        await ws.send(type="cancel", conversation_id=conversation_id)
        await expect_error(ws, "not_running")
        await still_usable(ws)


async def test_subscription_errors(alice, settings):
    settings.VALUECELL_WS_MAX_SUBSCRIPTIONS = 1
    user, headers = alice
    first = await start_elsewhere(user, "k=2 delay_ms=0")
    second = await start_elsewhere(user, "k=2 delay_ms=0")
    await orchestrator.wait_idle()
    async with Socket(headers) as ws:
        await ws.send(type="subscribe", conversation_id=first, after=99)
        await expect_error(ws, "invalid_resume_point")
        await ws.send(type="subscribe", conversation_id=first, after=7)
        assert (await ws.recv())["type"] == "subscribed"
        await ws.send(type="subscribe", conversation_id=first, request_id="again")
        await expect_error(ws, "already_subscribed", "again")
        await ws.send(type="subscribe", conversation_id=second)
        await expect_error(ws, "too_many_subscriptions")
        await ws.send(type="query", query="k=1", agent_name="bench")
        await expect_error(ws, "too_many_subscriptions")
        await still_usable(ws)


async def test_a_flood_of_bad_frames_disturbs_no_delivery(alice):
    user, headers = alice
    conversation_id = await start_elsewhere(user, "k=200 delay_ms=2")
    async with Socket(headers) as ws:
        await ws.send(type="subscribe", conversation_id=conversation_id)
        bad = ["{", "[]", '{"type": "nope"}', '{"type": "subscribe"}', '{"type": "query", "query": ""}']
        for index in range(300):
            await ws.send_text(bad[index % len(bad)])
        frames = []
        while not frames or frames[-1].get("event") != "done":
            frames.append(await ws.recv())
        errors = [f for f in frames if f.get("type") == "error"]
        while len(errors) < 300:
            frame = await ws.recv()
            assert frame["type"] == "error"
            errors.append(frame)
        assert [e["code"] for e in errors] == [
            ["invalid_json", "invalid_json", "unknown_type", "missing_field", "empty_query"][i % 5] for i in range(300)
        ]
        events = [f for f in frames if "event" in f]
        assert seqs(events) == list(range(1, 206))
        assert names(events)[-1] == "done"
        await still_usable(ws)


async def test_a_broken_delivery_reports_where_to_resume_and_spares_the_others(alice, monkeypatch):
    import streaming.ws.delivery as delivery_module

    user, headers = alice
    broken = await start_elsewhere(user, "k=3 delay_ms=0")
    healthy = await start_elsewhere(user, "k=3 delay_ms=0")
    await orchestrator.wait_idle()
    real_follow = delivery_module.follow_conversation

    async def failing_follow(conversation_id, after, **options):
        async for rows in real_follow(conversation_id, after, **options):
            if conversation_id == broken:
                yield rows[:2]
                raise OSError("the store went away")
            yield rows

    monkeypatch.setattr(delivery_module, "follow_conversation", failing_follow)
    async with Socket(headers) as ws:
        await ws.send(type="subscribe", conversation_id=broken)
        await ws.send(type="subscribe", conversation_id=healthy)
        frames = []
        while not any(f.get("type") == "error" for f in frames) or not any(f.get("event") == "done" for f in frames):
            frames.append(await ws.recv())
        error = next(f for f in frames if f.get("type") == "error")
        assert error["code"] == "delivery_failed"
        assert (error["conversation_id"], error["last_seq"]) == (broken, 2)
        assert seqs([f for f in frames if f.get("data", {}).get("conversation_id") == healthy]) == list(range(1, 9))
        # The broken conversation can be subscribed to again.
        monkeypatch.setattr(delivery_module, "follow_conversation", real_follow)
        await ws.send(type="subscribe", conversation_id=broken, after=2)
        assert (await ws.recv())["type"] == "subscribed"
        assert seqs(await ws.events_until_done()) == list(range(3, 9))


async def test_an_unexpected_failure_is_an_internal_error_frame(alice, monkeypatch, caplog):
    import streaming.ws.consumer as consumers

    async def exploding(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(consumers, "owned_conversation_or_error", exploding)
    async with Socket(alice[1]) as ws:
        await ws.send(type="subscribe", conversation_id="conv-x", request_id="s")
        frame = await expect_error(ws, "internal_error", "s")
        assert "boom" not in frame["message"]
        # The frame names the log line that has the details.
        assert frame["message"] == f"An internal error occurred (ref {frame['ref']})."
        [record] = [r for r in caplog.records if frame["ref"] in r.getMessage()]
        assert "boom" in str(record.exc_info[1])
        await still_usable(ws)
