"""The embedded channel layer: the library's behaviour without its per-call sweep."""

import asyncio

import pytest
from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

from streaming.eventlog.local_layer import LocalChannelLayer, copy_message


async def test_group_send_gives_every_member_its_own_copy():
    layer = LocalChannelLayer()
    one, two = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("g", one)
    await layer.group_add("g", two)
    message = {"type": "events", "events": [[1, "message_chunk", "{}"]]}
    await layer.group_send("g", message)
    first, second = await layer.receive(one), await layer.receive(two)
    assert first == second == message
    first["events"].append("changed")
    assert second["events"] == [[1, "message_chunk", "{}"]] and message["events"] == second["events"]


async def test_a_full_member_misses_a_group_message_and_a_direct_send_raises():
    layer = LocalChannelLayer(capacity=1)
    full, other = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("g", full)
    await layer.group_add("g", other)
    await layer.send(full, {"type": "first"})
    await layer.group_send("g", {"type": "second"})
    assert await layer.receive(full) == {"type": "first"}
    assert await layer.receive(other) == {"type": "second"}
    await layer.send(full, {"type": "third"})
    with pytest.raises(ChannelFull):
        await layer.send(full, {"type": "fourth"})


async def test_a_waiting_receiver_gets_what_is_sent_later():
    layer = LocalChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)  # the receiver is now waiting on the channel's queue
    await layer.group_send("g", {"type": "late"})
    assert await asyncio.wait_for(waiting, 1) == {"type": "late"}
    assert channel not in layer.channels  # drained queues are not kept


async def test_the_sweep_runs_once_per_interval_not_once_per_call(monkeypatch):
    sweeps = []
    monkeypatch.setattr(InMemoryChannelLayer, "_clean_expired", lambda self: sweeps.append(1))
    layer = LocalChannelLayer(sweep_interval=3600)
    channels = [await layer.new_channel() for _ in range(50)]
    for channel in channels:
        await layer.group_add("g", channel)
    for _ in range(20):
        await layer.group_send("g", {"type": "x"})
    for channel in channels:
        await layer.receive(channel)
    assert len(sweeps) == 1


async def test_expired_messages_are_still_swept_and_their_channel_leaves_its_groups():
    layer = LocalChannelLayer(expiry=-1, sweep_interval=0)  # every message is already expired
    stale, fresh = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("g", stale)
    await layer.send(stale, {"type": "old"})
    await layer.group_add("g", fresh)
    layer._clean_expired()
    assert stale not in layer.channels and stale not in layer.groups["g"]
    assert fresh in layer.groups["g"]


def test_messages_are_copied_all_the_way_down():
    class Custom:
        def __init__(self):
            self.items = [1]

    original = {"type": "t", "events": [[1, "e", "{}"]], "pair": (1, [2]), "blob": b"x", "obj": Custom(), "n": None}
    copy = copy_message(original)
    assert copy["events"] == original["events"] and copy["pair"] == original["pair"]
    assert copy["events"] is not original["events"] and copy["events"][0] is not original["events"][0]
    assert copy["pair"][1] is not original["pair"][1]
    assert copy["obj"] is not original["obj"] and copy["obj"].items == [1]
    assert copy["blob"] is original["blob"] and copy["n"] is None  # immutable: shared
