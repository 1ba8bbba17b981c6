"""A reconnect storm: hundreds of sockets dropped at once while messages flow.

Every socket must come back and end with every stored message exactly once, in order (0 lost,
0 stuck, 0 duplicates), and every message acked to the sender must be stored. The Redis pool is
made tiny so that the storm exhausts it: callers must wait for a connection, not fail and leave a
socket open and deaf.
"""

import asyncio
import json

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from accounts.models import User
from chat import services
from chat.models import Membership, Message
from tests.chat.conftest import LiveSocket, db, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

MEMBERS = 200
BEFORE_DROP = 20
DURING_STORM = 60
SEND_INTERVAL = 0.05
# An overloaded 2-core machine may take long to answer during the storm; speed is not under test.
ACK_TIMEOUT = 60
DEADLINE = 120


def storm_channel(owner) -> tuple[int, list[str]]:
    """Make a public channel with MEMBERS members; return its id and one session cookie each."""
    channel, _ = services.conversation_create(creator=owner, kind="channel", name="storm")
    users = User.objects.bulk_create(
        [User(username=f"storm{i}", email=f"storm{i}@example.com") for i in range(MEMBERS)]
    )
    Membership.objects.bulk_create([Membership(conversation=channel, user=user) for user in users])
    return channel.pk, [session_cookie(user) for user in users]


class Member:
    """A client that reconnects with a short backoff and syncs from the last id it holds."""

    def __init__(self, server, cookie: str, conversation_id: int):
        self.server, self.cookie, self.conversation_id = server, cookie, conversation_id
        self.timeline: list[int] = []
        self.duplicates = 0
        self.connects = 0
        self.close_codes: list[int | None] = []
        self.socket: LiveSocket | None = None
        self.synced = asyncio.Event()

    @property
    def last_seen(self) -> int:
        return self.timeline[-1] if self.timeline else 0

    def take(self, message: dict, *, held: bool = False) -> None:
        if message["id"] > self.last_seen:
            self.timeline.append(message["id"])
        elif not held:
            # Live frames after a sync must never repeat what this socket already delivered.
            self.duplicates += 1

    async def run(self, finished) -> None:
        while not finished(self.last_seen):
            try:
                self.socket = await LiveSocket.open(self.server, self.cookie)
                self.connects += 1
                await self._sync()
                self.synced.set()
                while not finished(self.last_seen):
                    try:
                        frame = json.loads(await asyncio.wait_for(self.socket.connection.recv(), 0.5))
                    except TimeoutError:
                        continue
                    if frame["type"] == "message.new":
                        self.take(frame["message"])
                await self.socket.close()
            except ConnectionClosed as closed:
                self.close_codes.append(closed.rcvd.code if closed.rcvd else None)
                await asyncio.sleep(0.05)
            except (OSError, InvalidStatus, TimeoutError):
                await asyncio.sleep(0.2)

    async def _sync(self) -> None:
        held, has_more = [], True
        while has_more:
            await self.socket.send({"type": "sync", "conversation": self.conversation_id, "after": self.last_seen})
            while (frame := json.loads(await asyncio.wait_for(self.socket.connection.recv(), 30)))[
                "type"
            ] != "sync.result":
                if frame["type"] == "message.new":
                    held.append(frame["message"])
            for message in frame["messages"]:
                self.take(message, held=True)
            has_more = frame["has_more"]
        for message in held:
            self.take(message, held=True)

    def drop(self) -> None:
        """Cut the TCP connection without a closing handshake, as a network failure would."""
        if self.socket is not None:
            self.socket.connection.transport.abort()


async def test_reconnect_storm_loses_nothing_and_leaves_no_socket_stuck(server_factory, alice):
    server = server_factory("storm", REDIS_MAX_CONNECTIONS="20", CHANNEL_LAYER_PREFIX="storm")
    conversation_id, cookies = await db(storm_channel)(alice)
    sender = await LiveSocket.open(server, await db(session_cookie)(alice))
    acked: dict[str, int] = {}
    final: list[int] = []

    async def send(client_id: str) -> None:
        """Send until acked: an `unavailable` error means not stored, so the same client_id is retried."""
        frame = {"type": "message.send", "conversation": conversation_id, "client_id": client_id, "body": client_id}
        while True:
            await sender.send(frame)
            while (reply := json.loads(await asyncio.wait_for(sender.connection.recv(), ACK_TIMEOUT)))["type"] not in {
                "message.ack",
                "error",
            }:
                pass
            if reply["type"] == "message.ack":
                acked[client_id] = reply["id"]
                return
            assert reply["code"] == "unavailable", reply
            await asyncio.sleep(reply["retry_after"])

    members = [Member(server, cookie, conversation_id) for cookie in cookies]
    tasks = [asyncio.create_task(member.run(lambda last: bool(final) and last >= final[0])) for member in members]
    await asyncio.wait_for(asyncio.gather(*(member.synced.wait() for member in members)), DEADLINE)
    for i in range(BEFORE_DROP):
        await send(f"before-{i}")
    for member in members:
        member.drop()
    for i in range(DURING_STORM):
        await send(f"storm-{i}")
        await asyncio.sleep(SEND_INTERVAL)
    stored = await db(
        lambda: list(
            Message.objects.filter(conversation_id=conversation_id, kind="text")
            .order_by("id")
            .values_list("id", flat=True)
        )
    )()
    final.append(stored[-1])
    # Time to catch up is counted from the last send: opening the sockets at first is not under test.
    done, pending = await asyncio.wait(tasks, timeout=DEADLINE)
    for task in pending:
        task.cancel()
    await sender.close()

    assert sorted(acked.values()) == stored and len(stored) == BEFORE_DROP + DURING_STORM
    stuck = [i for i, member in enumerate(members) if member.last_seen < stored[-1]]
    assert not stuck, f"{len(stuck)} sockets never caught up, e.g. {[members[i].close_codes for i in stuck[:3]]}"
    for member in members:
        assert member.timeline[-len(stored) :] == stored
        assert member.duplicates == 0
        assert member.connects >= 2
    for task in done:
        task.result()
