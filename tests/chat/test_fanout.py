"""The fan-out hub: one layer subscription per process and conversation, events handed to its sockets.

Run on whichever channel layer the suite uses (in memory, or Redis with DATABASE_URL/REDIS_URL).
"""

import asyncio
import os

import pytest
from channels.layers import get_channel_layer

from chat import events, fanout

pytestmark = pytest.mark.django_db(transaction=True)


class Listener:
    """Stands in for a ChatConsumer: what the hub hands over, in order."""

    def __init__(self):
        self.delivered: dict[int, int] = {}
        self.events: list[dict] = []

    async def hub_event(self, handler: str, event: dict) -> None:
        self.events.append({"handler": handler, **event})


async def group_members(group: str) -> set[str]:
    layer = get_channel_layer()
    if hasattr(layer, "groups"):  # in memory
        return set(layer.groups.get(group, {}))
    names = await layer.connection(0).zrange(layer._group_key(group), 0, -1)
    return {name.decode() for name in names}


async def received(listener: Listener, count: int) -> list[dict]:
    async with asyncio.timeout(5):
        while len(listener.events) < count:
            await asyncio.sleep(0.01)
    return listener.events


async def test_one_subscription_serves_every_local_socket_in_order():
    hub = fanout.hub()
    first, second, elsewhere = Listener(), Listener(), Listener()
    await hub.join(7, first)
    await hub.join(7, second)
    await hub.join(8, elsewhere)
    assert hub.subscribed == {7, 8}
    for number in range(3):
        await events.conversation_send(7, {"type": "chat.typing", "conversation": 7, "user": number})
    for listener in (first, second):
        got = await received(listener, 3)
        assert [(event["handler"], event["user"]) for event in got] == [("chat_typing", n) for n in range(3)]
        assert all(event["conversation_id"] == 7 for event in got)
    assert elsewhere.events == []


async def test_the_subscription_outlives_the_last_socket_then_goes(monkeypatch):
    hub = fanout.hub()
    listener = Listener()
    await hub.join(9, listener)
    hub.leave(9, listener)
    await hub._unsubscribe_idle()
    assert hub.subscribed == {9}, "a socket that reconnects at once finds the subscription there"

    monkeypatch.setattr(fanout, "IDLE_UNSUBSCRIBE", 0.0)
    await hub._unsubscribe_idle()
    assert hub.subscribed == set()
    assert hub.channel not in await group_members(events.conversation_group(9))

    # Back again: subscribed anew, and events flow.
    await hub.join(9, listener)
    assert hub.subscribed == {9}
    assert hub.channel in await group_members(events.conversation_group(9))
    await events.conversation_send(9, {"type": "chat.typing", "conversation": 9, "user": 2})
    assert [event["user"] for event in await received(listener, 1)] == [2]


async def test_a_socket_back_before_the_idle_time_keeps_the_subscription(monkeypatch):
    hub = fanout.hub()
    listener = Listener()
    await hub.join(11, listener)
    hub.leave(11, listener)
    await hub.join(11, listener)
    monkeypatch.setattr(fanout, "IDLE_UNSUBSCRIBE", 0.0)
    await hub._unsubscribe_idle()
    assert hub.subscribed == {11}


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="only Redis can lose a group (restarted or flushed)")
async def test_a_personal_subscription_that_redis_lost_is_made_again_and_remembered_sessions_forgotten(monkeypatch):
    monkeypatch.setattr(fanout, "PERSONAL_CHECK_INTERVAL", 0.5)
    hub = fanout.Hub()
    listener = Listener()
    await hub.join(events.user_group(7), listener)
    hub.signed_in.entries["tag"] = (object(), float("inf"))
    try:
        assert hub.channel in await group_members(events.PERSONAL_GROUP)
        layer = get_channel_layer()
        await layer.connection(0).delete(layer._group_key(events.PERSONAL_GROUP))  # as a Redis restart would

        async with asyncio.timeout(5):
            while hub.channel not in await group_members(events.PERSONAL_GROUP):
                await asyncio.sleep(0.1)
        assert hub.signed_in.entries == {}
        await layer.group_send(events.PERSONAL_GROUP, {"type": "chat.signed.out", "group": events.user_group(7)})
        (event,) = await received(listener, 1)
        assert event["handler"] == "chat_signed_out"
    finally:
        for task in hub.tasks:
            task.cancel()


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="the group expiry is Redis's")
async def test_subscriptions_expire_within_minutes_unless_renewed_all_in_one_go(settings):
    """A process killed without unsubscribing leaves its channel in its groups: for ten minutes, not a day."""
    hub = fanout.Hub()
    listener = Listener()
    layer = get_channel_layer()
    redis = layer.connection(0)
    try:
        for key in (21, 22, events.user_group(7)):
            await hub.join(key, listener)
        groups = [events.conversation_group(21), events.conversation_group(22), events.PERSONAL_GROUP]
        for group in groups:
            assert 0 < await redis.ttl(layer._group_key(group)) <= settings.CHANNEL_LAYER_GROUP_EXPIRY == 600
            await redis.expire(layer._group_key(group), 5)  # as if renewals had stopped 595 s ago
        await hub._renew()
        for group in groups:
            assert await redis.ttl(layer._group_key(group)) > 590
            assert hub.channel in await group_members(group)
        # A subscription being changed right now is left to that change.
        async with hub.locks[21]:
            await redis.expire(layer._group_key(groups[0]), 5)
            await hub._renew()
            assert await redis.ttl(layer._group_key(groups[0])) <= 5
    finally:
        for task in hub.tasks:
            task.cancel()
