"""A channel layer that drops events (capacity 1): clients still end with every message, once, in order."""

import asyncio

import pytest

from chat.models import Message
from tests.chat.conftest import LiveSocket, db, make_group, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

BURST = 25


class Reader:
    """What a well-behaved client keeps: a timeline that grows by ids above the last one seen.

    After a reconnect it syncs from that id and holds live messages back until the sync is done,
    as static/chat/js/socket.js does.
    """

    def __init__(self):
        self.timeline: list[int] = []
        self.duplicates = 0

    @property
    def last_seen(self) -> int:
        return self.timeline[-1] if self.timeline else 0

    def take(self, message: dict) -> None:
        if message["id"] > self.last_seen:
            self.timeline.append(message["id"])
        else:
            self.duplicates += 1

    async def resync(self, socket: LiveSocket, conversation_id: int) -> None:
        held = []
        has_more = True
        while has_more:
            await socket.send({"type": "sync", "conversation": conversation_id, "after": self.last_seen})
            while (frame := await socket.receive())["type"] != "sync.result":
                if frame["type"] == "message.new":
                    held.append(frame["message"])
            for message in frame["messages"]:
                self.take(message)
            has_more = frame["has_more"]
        for message in held:
            self.take(message)

    async def follow(self, socket: LiveSocket, until) -> None:
        while not until():
            frame = await socket.receive()
            if frame["type"] == "message.new":
                self.take(frame["message"])


async def burst(socket: LiveSocket, reader: Reader, conversation_id: int, prefix: str) -> list[int]:
    """Send BURST messages without waiting, then collect their acks, keeping what else arrives."""
    for i in range(BURST):
        frame = {"type": "message.send", "conversation": conversation_id, "client_id": f"{prefix}{i}", "body": prefix}
        await socket.send(frame)
    acks = []
    while len(acks) < BURST:
        frame = await socket.receive()
        assert frame["type"] != "error", frame
        if frame["type"] == "message.ack":
            acks.append(frame["id"])
        elif frame["type"] == "message.new":
            reader.take(frame["message"])
    return acks


async def test_reconnect_and_sync_after_dropped_events(server_factory, alice, bob, carol):
    server = server_factory("lossy", CHANNEL_LAYER_CAPACITY="1", CHANNEL_LAYER_PREFIX="lossy")
    group = await db(make_group)(alice, bob, carol)
    cookies = [await db(session_cookie)(user) for user in (alice, bob, carol)]
    sockets = [await LiveSocket.open(server, cookie) for cookie in cookies]
    readers = [Reader() for _ in sockets]
    sent: list[int] = []
    all_sent = asyncio.Barrier(len(sockets))

    async def participant(index: int, name: str):
        # Everyone sends while receiving: busy sockets are the ones whose events overflow.
        sent.extend(await burst(sockets[index], readers[index], group.pk, f"{name}-a"))
        if name == "bob":
            await sockets[index].close()  # the network drops; the others go on without bob
            sockets[index] = await LiveSocket.open(server, cookies[index])
            await readers[index].resync(sockets[index], group.pk)
        sent.extend(await burst(sockets[index], readers[index], group.pk, f"{name}-b"))
        await all_sent.wait()
        await readers[index].follow(sockets[index], until=lambda: readers[index].last_seen >= max(sent))

    await asyncio.wait_for(
        asyncio.gather(*(participant(i, name) for i, name in enumerate(["alice", "bob", "carol"]))), timeout=120
    )
    stored = await db(
        lambda: list(
            Message.objects.filter(conversation=group, kind="text").order_by("id").values_list("id", flat=True)
        )
    )()
    assert len(stored) == 6 * BURST and sorted(sent) == stored
    for reader in readers:
        assert reader.timeline == stored
    for socket in sockets:
        await socket.close()
