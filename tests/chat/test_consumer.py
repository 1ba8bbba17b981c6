"""The WebSocket consumer on the real ASGI stack and the configured channel layer (Redis on the PG path)."""

import asyncio
import base64
import json
import os
import threading

import pytest
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.db import connection
from django.test import Client

from accounts import services as accounts_services
from accounts.models import User
from chat import consumers, events, services
from chat.consumers import ChatConsumer
from chat.models import Message
from chat.presence import presence_clear, users_online
from tests.chat.conftest import (
    FRAME_TIMEOUT,
    Socket,
    communicator,
    db,
    make_channel,
    make_direct,
    make_group,
    send,
    user_messages,
)

pytestmark = pytest.mark.django_db(transaction=True)


def b64(size: int, fill: int = 7) -> str:
    return base64.b64encode(bytes([fill % 256]) * size).decode()


def sealed(*users, size=48) -> dict:
    """Return the encrypted fields of a message for these members (opaque bytes: the server cannot tell)."""
    return {"ciphertext": b64(size), "nonce": b64(24), "keys": {str(u.pk): b64(104, u.pk) for u in users}}


async def test_anonymous_socket_closed_with_4401():
    socket = Socket(communicator())
    connected, _ = await socket.communicator.connect()
    assert connected
    assert await socket.closed_with() == 4401


async def test_foreign_origin_refused(alice):
    from tests.chat.conftest import session_cookie

    cookie = await db(session_cookie)(alice)
    connected, _ = await communicator(cookie=cookie, origin=b"http://evil.example").connect()
    assert not connected


async def test_inactive_user_refused(alice):
    from tests.chat.conftest import session_cookie

    cookie = await db(session_cookie)(alice)
    await db(User.objects.filter(pk=alice.pk).update)(is_active=False)
    socket = Socket(communicator(cookie=cookie))
    await socket.communicator.connect()
    # Django's auth finds no active user behind the session: the anonymous case.
    assert await socket.closed_with() == 4401


async def test_a_socket_gone_while_its_open_read_runs_is_counted_out(alice, monkeypatch):
    """The client vanished while the batch read it in: its user must not stay online until the entry expires."""
    from tests.chat.conftest import session_cookie

    cookie = await db(session_cookie)(alice)
    reading, release, counted_in = threading.Event(), threading.Event(), threading.Event()
    real = consumers.sockets_open

    def held(openings):
        reading.set()
        release.wait(FRAME_TIMEOUT)
        try:
            return real(openings)
        finally:
            counted_in.set()

    monkeypatch.setattr(consumers, "sockets_open", held)
    socket = Socket(communicator(cookie=cookie))
    connecting = asyncio.ensure_future(socket.communicator.connect(timeout=FRAME_TIMEOUT))
    assert await asyncio.get_running_loop().run_in_executor(None, reading.wait, FRAME_TIMEOUT)
    socket.communicator.future.cancel()  # the connection's handler goes with the client
    release.set()
    assert await asyncio.get_running_loop().run_in_executor(None, counted_in.wait, FRAME_TIMEOUT)
    for _ in range(100):
        if not await db(users_online)([alice.pk]):
            break
        await asyncio.sleep(0.05)
    assert await db(users_online)([alice.pk]) == set()
    connecting.cancel()
    await asyncio.gather(connecting, return_exceptions=True)


def calls_of(monkeypatch, module, name: str) -> list:
    """Record the first argument of every call to module.name, which still runs as it is."""
    calls = []
    real = getattr(module, name)

    def recorded(first, *args, **kwargs):
        calls.append(list(first))
        return real(first, *args, **kwargs)

    monkeypatch.setattr(module, name, recorded)
    return calls


async def test_sockets_opening_at_once_read_together_and_each_gets_its_own_answer(alice, bob, carol, monkeypatch):
    """In a storm, sockets that open at the same moment share a trip to a read thread, its queries
    and its presence round trip; each still gets its own hello, or its own refusal."""
    from tests.chat.conftest import session_cookie

    group = await db(make_group)(alice, bob)
    cookies = [await db(session_cookie)(user) for user in [alice, bob] * 6]
    deactivated = await db(session_cookie)(carol)
    await db(User.objects.filter(pk=carol.pk).update)(is_active=False)
    batches = calls_of(monkeypatch, consumers, "sockets_open")
    sockets = [Socket(communicator(cookie=cookie)) for cookie in [*cookies[:6], deactivated, *cookies[6:]]]
    await asyncio.gather(*(socket.communicator.connect(timeout=FRAME_TIMEOUT) for socket in sockets))
    refused = sockets.pop(6)
    assert await refused.closed_with() == 4401
    hellos = await asyncio.gather(*(socket.receive_type("hello") for socket in sockets))
    assert sum(map(len, batches)) == 13 and len(batches) < 13, batches
    other = {alice.pk: bob.pk, bob.pk: alice.pk}
    for hello, user in zip(hellos, [alice, bob] * 6, strict=True):
        assert hello["user"]["id"] == user.pk and hello["conversations"] == [group.pk]
        assert hello["online"] in ([], [other[user.pk]])
    # Whoever opened last saw the other online.
    assert hellos[-1]["online"] == [alice.pk]
    assert await db(users_online)([alice.pk, bob.pk, carol.pk]) == {alice.pk, bob.pk}
    # Each socket is live: a message reaches all twelve.
    sockets[0].skip = {*sockets[0].skip, "message.ack"}
    await sockets[0].send({"type": "message.send", "conversation": group.pk, "client_id": "all", "body": "all"})
    for socket in sockets:
        assert (await socket.receive_type("message.new"))["message"]["body"] == "all"
    for socket in sockets:
        await socket.close()


async def open_with(cookie: str) -> Socket:
    socket = Socket(communicator(cookie=cookie))
    connected, _ = await socket.communicator.connect(timeout=FRAME_TIMEOUT)
    assert connected
    socket.hello = await socket.receive_type("hello")
    return socket


async def test_user_banned_while_connecting_gets_4403(alice, monkeypatch):
    """A ban that lands right after the connect read the user: the socket listened for it first."""
    from chat import services
    from tests.chat.conftest import session_cookie

    cookie = await db(session_cookie)(alice)
    read = services.socket_sessions

    def read_then_ban(user_ids):
        found = read(user_ids)
        accounts_services.user_ban(user=User.objects.get(pk=alice.pk))
        return found

    monkeypatch.setattr(services, "socket_sessions", read_then_ban)
    socket = Socket(communicator(cookie=cookie))
    await socket.communicator.connect()
    # hello is always the first frame; the ban that arrived meanwhile follows it.
    assert (await socket.receive())["type"] == "hello"
    assert await socket.closed_with() == 4403


async def test_a_process_remembers_a_signed_in_session_until_it_ends(alice, bob, monkeypatch):
    """Another socket of a session this process read lately opens without reading the session again;
    once the session ends (logout), it is read again, and refused."""
    from accounts import sessions
    from chat import consumers
    from tests.chat.conftest import session_cookie

    reads = []

    def counted(**credentials):
        reads.append(credentials["session_key"])
        return sessions.socket_signin(**credentials)

    monkeypatch.setattr(consumers, "socket_signin", counted)
    cookie, other = await db(session_cookie)(alice), await db(session_cookie)(bob)
    first = await open_with(cookie)
    second = await open_with(cookie)
    assert second.hello["user"]["id"] == alice.pk
    bobs = await open_with(other)
    assert bobs.hello["user"]["id"] == bob.pk
    assert reads == [cookie, other]

    await db(sessions.session_store(cookie).delete)()
    await db(events.relay_signed_out)(sender=None, session_keys=[cookie])
    assert await first.closed_with() == 4401
    assert await second.closed_with() == 4401
    socket = Socket(communicator(cookie=cookie))
    await socket.communicator.connect()
    assert await socket.closed_with() == 4401
    assert reads == [cookie, other, cookie]
    await bobs.close()


async def test_a_remembered_session_still_needs_the_users_current_password(alice):
    from tests.chat.conftest import session_cookie

    cookie = await db(session_cookie)(alice)
    first = await open_with(cookie)

    def change_password_quietly():
        # No sign-out event: only the password hash in the row says the session is over.
        user = User.objects.get(pk=alice.pk)
        user.set_password("a brand new secret 42")
        User.objects.filter(pk=alice.pk).update(password=user.password)

    await db(change_password_quietly)()
    socket = Socket(communicator(cookie=cookie))
    await socket.communicator.connect()
    assert await socket.closed_with() == 4401
    await first.close()


async def test_hello_then_presence_on_first_open_and_last_close(alice, bob, carol, connect):
    group = await db(make_group)(alice, bob)
    bob_socket = await connect(bob)
    bob_socket.skip = set()
    assert bob_socket.hello["user"]["username"] == "bob"
    assert bob_socket.hello["conversations"] == [group.pk]
    assert bob_socket.hello["online"] == []

    alice_tab1 = await connect(alice)
    assert alice_tab1.hello["online"] == [bob.pk]
    assert await bob_socket.receive() == {"type": "presence", "user": alice.pk, "online": True}
    alice_tab2 = await connect(alice)
    await alice_tab1.close()
    # Alice's second tab keeps her online; carol shares nothing with bob and is not announced.
    await connect(carol)
    assert (await db(User.objects.get)(pk=alice.pk)).last_seen_at is None
    await alice_tab2.close()
    assert await bob_socket.receive() == {"type": "presence", "user": alice.pk, "online": False}
    # Her last socket closed: that is when she was last seen.
    assert (await db(User.objects.get)(pk=alice.pk)).last_seen_at is not None


async def test_a_socket_back_within_the_grace_is_never_shown_offline(alice, bob, connect, settings):
    """A reload or a reconnect storm: no offline and online again; a user who stays away goes offline after it."""
    settings.PRESENCE_OFFLINE_GRACE = 0.5
    await db(make_group)(alice, bob)
    bob_socket = await connect(bob)
    bob_socket.skip = set()
    alice_socket = await connect(alice)
    assert await bob_socket.receive() == {"type": "presence", "user": alice.pk, "online": True}
    await alice_socket.close()
    alice_socket = await connect(alice)
    assert alice_socket.hello["online"] == [bob.pk]
    await asyncio.sleep(0.8)
    # The first socket's count ran out after its grace, but the second keeps her online: nothing to say.
    await bob_socket.barrier()
    assert (await db(User.objects.get)(pk=alice.pk)).last_seen_at is None

    await alice_socket.close()
    await bob_socket.barrier()  # not at once
    started = asyncio.get_running_loop().time()
    assert await bob_socket.receive() == {"type": "presence", "user": alice.pk, "online": False}
    assert asyncio.get_running_loop().time() - started > 0.2
    assert (await db(User.objects.get)(pk=alice.pk)).last_seen_at is not None


async def test_sockets_closing_at_once_count_out_together(alice, bob, carol, connect, settings, monkeypatch):
    """A network change closes many sockets at once: their graces run out together and count out
    in a few batches, and each user who went offline is announced once, when their last socket went."""
    settings.PRESENCE_OFFLINE_GRACE = 0.3
    await db(make_group)(alice, bob, carol)
    watcher = await connect(carol)
    watcher.skip = set()
    sockets = {alice.pk: [await connect(alice) for _ in range(3)], bob.pk: [await connect(bob) for _ in range(2)]}
    assert [await watcher.receive() for _ in range(2)] == [
        {"type": "presence", "user": alice.pk, "online": True},
        {"type": "presence", "user": bob.pk, "online": True},
    ]
    batches = calls_of(monkeypatch, consumers, "presence_close_many")
    await asyncio.gather(*(socket.close() for socket in sockets[alice.pk] + sockets[bob.pk][:1]))
    assert await watcher.receive() == {"type": "presence", "user": alice.pk, "online": False}
    await watcher.barrier()  # once: Alice's three sockets went in the same moment
    assert sorted(user for batch in batches for user in batch) == sorted([alice.pk] * 3 + [bob.pk])
    assert len(batches) < 4, batches
    seen = await db(lambda: dict(User.objects.filter(pk__in=[alice.pk, bob.pk]).values_list("pk", "last_seen_at")))()
    assert seen[alice.pk] is not None and seen[bob.pk] is None  # Bob's second socket keeps him online
    await sockets[bob.pk][1].close()
    assert await watcher.receive() == {"type": "presence", "user": bob.pk, "online": False}


async def test_a_repair_asked_while_a_socket_connects_waits_for_hello(alice, bob, connect, monkeypatch):
    """The delivery watcher may find a socket behind before its hello: hello still comes first, then the message."""
    group = await db(make_group)(alice, bob)
    announce = ChatConsumer._presence_announce

    async def behind_then_announce(self, *, online):
        if self.user.pk == alice.pk and online:
            # A message stored after this socket read its newest ids; the watcher asks for a repair.
            await db(send)(bob, group, "meanwhile", client_id="meanwhile")
            self.catch_up(group.pk)
            await asyncio.gather(*self.tasks)
        await announce(self, online=online)

    monkeypatch.setattr(ChatConsumer, "_presence_announce", behind_then_announce)
    alice_socket = await connect(alice)  # asserts that the first frame is hello
    assert (await alice_socket.receive_type("message.new"))["message"]["body"] == "meanwhile"
    await alice_socket.barrier()


async def test_send_acks_and_reaches_every_socket(alice, bob, connect):
    group = await db(make_group)(alice, bob)
    tab1, tab2, bob_socket = await connect(alice), await connect(alice), await connect(bob)
    await tab1.send({"type": "message.send", "conversation": group.pk, "client_id": "m1", "body": "Hello"})

    ack = await tab1.receive_type("message.ack")
    stored = await db(Message.objects.get)(client_id="m1")
    assert ack == {
        "type": "message.ack",
        "client_id": "m1",
        "id": stored.pk,
        "created_at": ack["created_at"],
        "conversation": group.pk,
    }
    for socket in (tab1, tab2, bob_socket):
        frame = await socket.receive_type("message.new")
        assert frame["message"]["id"] == stored.pk
        assert frame["message"]["body"] == "Hello"
        assert frame["message"]["sender"]["username"] == "alice"
        assert frame["message"]["created_at"] == ack["created_at"]
        assert "ciphertext" not in frame["message"]


async def test_duplicate_client_id_returns_first_ack_and_stores_nothing(alice, bob, connect):
    group = await db(make_group)(alice, bob)
    alice_socket, bob_socket = await connect(alice), await connect(bob)
    frame = {"type": "message.send", "conversation": group.pk, "client_id": "same", "body": "once"}
    await alice_socket.send(frame)
    first = await alice_socket.receive_type("message.ack")
    await alice_socket.receive_type("message.new")
    await alice_socket.send({**frame, "body": "twice"})
    assert await alice_socket.receive_type("message.ack") == first
    await alice_socket.send({**frame, "client_id": "next", "body": "next"})
    await alice_socket.receive_type("message.ack")

    assert (await bob_socket.receive_type("message.new"))["message"]["body"] == "once"
    # The resend produced no delivery: bob's next frame is the following message.
    assert (await bob_socket.receive_type("message.new"))["message"]["body"] == "next"
    assert await db(Message.objects.exclude(kind="system").count)() == 2


async def test_encrypted_message_carries_each_members_own_key(alice, bob, connect):
    direct = await db(make_direct)(alice, bob)
    alice_socket, bob_socket = await connect(alice), await connect(bob)
    content = sealed(alice, bob)
    await alice_socket.send({"type": "message.send", "conversation": direct.pk, "client_id": "e1", **content})
    await alice_socket.receive_type("message.ack")
    mine = (await alice_socket.receive_type("message.new"))["message"]
    theirs = (await bob_socket.receive_type("message.new"))["message"]
    assert mine["key"] == content["keys"][str(alice.pk)]
    assert theirs["key"] == content["keys"][str(bob.pk)]
    assert theirs["ciphertext"] == content["ciphertext"] and theirs["nonce"] == content["nonce"]
    assert "body" not in theirs and "keys" not in theirs

    await alice_socket.send({"type": "message.send", "conversation": direct.pk, "client_id": "e2", "body": "plain"})
    error = await alice_socket.receive_type("error")
    assert (error["code"], error["client_id"]) == ("invalid", "e2")
    await alice_socket.send({"type": "message.send", "conversation": direct.pk, "client_id": "e3", **sealed(alice)})
    error = await alice_socket.receive_type("error")
    assert (error["code"], error["missing"], error["client_id"]) == ("invalid", [bob.pk], "e3")


async def test_plaintext_conversation_refuses_ciphertext(alice, bob, connect):
    group = await db(make_group)(alice, bob)
    socket = await connect(alice)
    await socket.send({"type": "message.send", "conversation": group.pk, "client_id": "p1", **sealed(alice, bob)})
    error = await socket.receive_type("error")
    assert (error["code"], error["client_id"]) == ("invalid", "p1")


async def test_edit_and_delete(alice, bob, connect):
    group = await db(make_group)(alice, bob)
    message = await db(send)(alice, group, "first")
    alice_socket, bob_socket = await connect(alice), await connect(bob)

    await bob_socket.send({"type": "message.edit", "id": message.pk, "body": "hijacked"})
    assert (await bob_socket.receive_type("error"))["code"] == "forbidden"
    await bob_socket.send({"type": "message.delete", "id": message.pk})
    assert (await bob_socket.receive_type("error"))["code"] == "forbidden"

    await alice_socket.send({"type": "message.edit", "id": message.pk, "body": "first, edited"})
    for socket in (alice_socket, bob_socket):
        updated = (await socket.receive_type("message.updated"))["message"]
        assert (updated["id"], updated["body"]) == (message.pk, "first, edited")
        assert updated["edited_at"] is not None

    await alice_socket.send({"type": "message.delete", "id": message.pk})
    for socket in (alice_socket, bob_socket):
        deleted = await socket.receive_type("message.deleted")
        assert deleted == {"type": "message.deleted", "id": message.pk, "conversation": group.pk}
    await alice_socket.send({"type": "message.edit", "id": message.pk, "body": "again"})
    assert (await alice_socket.receive_type("error"))["code"] == "invalid"
    await alice_socket.send({"type": "message.delete", "id": 10**12})
    assert (await alice_socket.receive_type("error"))["code"] == "not_found"


async def test_admin_deletion_reaches_open_sockets(alice, bob, connect, make_user):
    moderator = await db(make_user)("mod", is_staff=True, is_superuser=True)
    channel = await db(make_channel)(alice, bob)
    message = await db(send)(bob, channel, "spam")
    alice_socket = await connect(alice)

    def admin_delete():
        client = Client()
        client.force_login(moderator, backend="django.contrib.auth.backends.ModelBackend")
        return client.post(f"/admin/chat/message/{message.pk}/delete/", {"post": "yes"})

    response = await db(admin_delete)()
    assert response.status_code == 302
    assert await alice_socket.receive_type("message.deleted") == {
        "type": "message.deleted",
        "id": message.pk,
        "conversation": channel.pk,
    }
    stored = await db(Message.objects.get)(pk=message.pk)
    assert stored.deleted and stored.body == ""


async def test_sync_pages_of_at_most_100(alice, bob, connect, no_rate_limit):
    group = await db(make_group)(alice, bob)

    def fill():
        # 101 sent after the lines that say who created the group and who was added.
        for i in range(101):
            send(alice, group, f"m{i}")
        return list(Message.objects.filter(conversation=group).order_by("id").values_list("id", flat=True))

    ids = await db(fill)()
    socket = await connect(bob)
    await socket.send({"type": "sync", "conversation": group.pk, "after": 0})
    page = await socket.receive_type("sync.result")
    assert (page["conversation"], page["has_more"]) == (group.pk, True)
    assert [m["id"] for m in page["messages"]] == ids[:100]
    await socket.send({"type": "sync", "conversation": group.pk, "after": page["messages"][-1]["id"]})
    page = await socket.receive_type("sync.result")
    assert ([m["id"] for m in page["messages"]], page["has_more"]) == (ids[100:], False)
    await socket.send({"type": "sync", "conversation": group.pk, "after": ids[0], "limit": 2})
    page = await socket.receive_type("sync.result")
    assert ([m["id"] for m in page["messages"]], page["has_more"]) == (ids[1:3], True)


@pytest.mark.skipif(settings.SOCKET_READ_THREADS < 2, reason="holds a read thread while another socket opens")
async def test_plaintext_syncs_from_one_id_share_a_read_that_starts_after_they_opened(alice, bob, connect, monkeypatch):
    """In a storm a channel's members sync from the same id at once: one read and one encoding
    serve them all, but a socket never takes a page read before it opened (it could lack a
    message the socket heard of neither from the page nor live)."""
    channel = await db(make_channel)(alice, bob)
    first = await db(send)(alice, channel, "first")
    history_page = services.history_page
    started, release = threading.Event(), threading.Event()

    reads = []

    def held_history_page(**kwargs):
        # The first read waits, once started, until the test lets it go on.
        reads.append(kwargs["after"])
        if not started.is_set():
            started.set()
            release.wait(FRAME_TIMEOUT)
        return history_page(**kwargs)

    monkeypatch.setattr(consumers.services, "history_page", held_history_page)
    early = [await connect(alice), await connect(bob)]
    try:
        await asyncio.gather(*(s.send({"type": "sync", "conversation": channel.pk, "after": 0}) for s in early))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, FRAME_TIMEOUT)
        second = await db(send)(alice, channel, "second")
        late = await connect(bob)
        await late.send({"type": "sync", "conversation": channel.pk, "after": 0})
    finally:
        release.set()
    for socket in early:
        # The early sockets hear of the second message live.
        socket.skip = {*socket.skip, "message.new"}
    early_pages = [await socket.receive_type("sync.result") for socket in early]
    late_page = await late.receive_type("sync.result")
    assert early_pages[0] == early_pages[1]
    assert [m["id"] for m in user_messages(early_pages[0]["messages"])] in ([first.pk], [first.pk, second.pk])
    assert [m["id"] for m in user_messages(late_page["messages"])] == [first.pk, second.pk]
    assert reads == [0, 0]
    assert consumers.shared_syncs() == {}


async def test_socket_resends_what_the_channel_layer_dropped(alice, bob, connect):
    group = await db(make_group)(alice, bob)
    socket = await connect(bob)
    await socket.send({"type": "sync", "conversation": group.pk, "after": 0})
    assert user_messages((await socket.receive_type("sync.result"))["messages"]) == []

    def lost_then_sent():
        # Stored without a broadcast, as if the layer had dropped its event.
        lost = Message.objects.create(conversation=group, sender=alice, client_id="lost", body="lost")
        return lost.pk, send(alice, group, "after").pk

    lost_id, after_id = await db(lost_then_sent)()
    assert (await socket.receive_type("message.new"))["message"]["id"] == lost_id
    assert (await socket.receive_type("message.new"))["message"]["id"] == after_id


async def test_live_event_for_a_synced_message_is_not_repeated(alice, bob, connect):
    group = await db(make_group)(alice, bob)
    first = await db(send)(alice, group, "one")
    socket = await connect(bob)
    await socket.barrier()
    await socket.send({"type": "sync", "conversation": group.pk, "after": 0})
    synced = await socket.receive_type("sync.result")
    assert [m["id"] for m in user_messages(synced["messages"])] == [first.pk]
    # The layer delivers the same message late (e.g. an event queued behind the sync).
    message = {"id": first.pk, "conversation": group.pk}
    late = {
        "type": "chat.message",
        "message": message,
        "text": json.dumps(message),
        "keys": None,
        "audience": None,
        "prev_id": 0,
    }
    await events.conversation_send(group.pk, late)
    second = await db(send)(alice, group, "two")
    assert (await socket.receive_type("message.new"))["message"]["id"] == second.pk


async def test_a_frame_renews_an_expired_presence_entry_beside_its_answer(alice, connect, monkeypatch):
    socket = await connect(alice)
    await db(presence_clear)(alice.pk)  # as if the entry had expired
    monkeypatch.setattr(consumers, "PRESENCE_REFRESH_INTERVAL", 0.0)
    await socket.barrier()
    for _ in range(50):
        if await db(users_online)([alice.pk]) == {alice.pk}:
            break
        await asyncio.sleep(0.05)
    assert await db(users_online)([alice.pk]) == {alice.pk}


async def test_typing_relayed_to_others_and_throttled(alice, bob, connect):
    group = await db(make_group)(alice, bob)
    alice_socket, bob_socket = await connect(alice), await connect(bob)
    await alice_socket.send({"type": "typing", "conversation": group.pk})
    await alice_socket.send({"type": "typing", "conversation": group.pk})
    await alice_socket.barrier()
    await alice_socket.send({"type": "message.send", "conversation": group.pk, "client_id": "t", "body": "done"})
    assert await bob_socket.receive() == {"type": "typing", "conversation": group.pk, "user": alice.pk}
    # The second typing frame came within the interval: bob's next frame is the message.
    assert (await bob_socket.receive())["type"] == "message.new"


async def test_read_is_stored_and_relayed(alice, bob, connect):
    group = await db(make_group)(alice, bob)
    message = await db(send)(alice, group, "read me")
    alice_socket, bob_socket = await connect(alice), await connect(bob)
    await bob_socket.send({"type": "read", "conversation": group.pk, "up_to": message.pk})
    expected = {"type": "read", "conversation": group.pk, "user": bob.pk, "up_to": message.pk}
    assert await alice_socket.receive() == expected
    assert await bob_socket.receive() == expected
    membership = await db(bob.memberships.get)(conversation=group)
    assert membership.last_read_message_id == message.pk
    # Going backwards changes nothing and tells nobody.
    await bob_socket.send({"type": "read", "conversation": group.pk, "up_to": 0})
    await bob_socket.barrier()


@pytest.mark.parametrize(
    ("raw", "detail_word"),
    [
        ("not json", "JSON"),
        ("[1, 2]", "object"),
        ('{"type": "message.fly"}', "Unknown"),
        ('{"conversation": 1}', "Unknown"),
        ('{"type": "sync", "conversation": "1", "after": 0}', "conversation"),
        ('{"type": "sync", "conversation": 1, "after": -1}', "after"),
        ('{"type": "sync", "conversation": 1}', "after"),
        ('{"type": "sync", "conversation": 1, "after": 0, "limit": 101}', "limit"),
        ('{"type": "typing", "conversation": true}', "conversation"),
        ('{"type": "message.send", "conversation": 1, "client_id": 5, "body": "x"}', "client_id"),
        ('{"type": "message.send", "conversation": 1, "client_id": "c", "body": ["x"]}', "body"),
        ('{"type": "message.send", "conversation": 1, "client_id": "c", "keys": "k"}', "keys"),
        ('{"type": "message.send", "conversation": 1, "client_id": "c", "body": "x", "attachment": "3"}', "attachment"),
    ],
)
async def test_malformed_frames_get_invalid_and_socket_keeps_working(alice, connect, raw, detail_word):
    socket = await connect(alice)
    await socket.send_raw(text_data=raw)
    error = await socket.receive_type("error")
    assert error["code"] == "invalid"
    assert detail_word in error["detail"]
    await socket.barrier()


async def test_binary_and_oversized_frames(alice, bob, connect):
    group = await db(make_group)(alice, bob)
    socket = await connect(alice)
    await socket.send_raw(bytes_data=b"\x00\x01")
    assert (await socket.receive_type("error"))["code"] == "invalid"
    huge = json.dumps({"type": "message.send", "conversation": group.pk, "client_id": "big", "body": "x" * 300_000})
    assert len(huge) > settings.WS_MAX_FRAME_BYTES
    await socket.send_raw(text_data=huge)
    assert (await socket.receive_type("error"))["code"] == "too_large"
    await socket.send({"type": "message.send", "conversation": group.pk, "client_id": "long", "body": "x" * 4001})
    error = await socket.receive_type("error")
    assert (error["code"], error["client_id"]) == ("too_large", "long")
    await socket.send({"type": "message.send", "conversation": group.pk, "client_id": "ok", "body": "fine"})
    assert (await socket.receive_type("message.ack"))["client_id"] == "ok"


async def test_non_member_refused_on_every_frame(alice, bob, connect):
    channel = await db(make_channel)(alice)
    socket = await connect(bob)
    frames = [
        {"type": "message.send", "conversation": channel.pk, "client_id": "n1", "body": "let me in"},
        {"type": "sync", "conversation": channel.pk, "after": 0},
        {"type": "typing", "conversation": channel.pk},
        {"type": "read", "conversation": channel.pk, "up_to": 1},
    ]
    for frame in frames:
        await socket.send(frame)
        error = await socket.receive_type("error")
        assert error["code"] == "not_member", frame
    assert error.get("client_id") is None
    await socket.send({**frames[0], "conversation": 10**9})
    error = await socket.receive_type("error")
    assert (error["code"], error["client_id"]) == ("not_found", "n1")
    assert await db(Message.objects.exclude(kind="system").count)() == 0


async def test_joining_elsewhere_counts_before_the_event_arrives(alice, bob, connect):
    channel = await db(make_channel)(alice)
    socket = await connect(bob)
    await db(services.channel_join)(user=bob, conversation_id=channel.pk)
    await socket.send({"type": "message.send", "conversation": channel.pk, "client_id": "j", "body": "hi"})
    # The membership update may come too, when this process already follows the channel.
    socket.skip.add("conversation.updated")
    frames = {(await socket.receive())["type"] for _ in range(3)}
    assert frames == {"conversation.added", "message.ack", "message.new"}


async def test_removed_member_stops_receiving_at_once(alice, bob, carol, connect):
    group = await db(make_group)(alice, bob, carol)
    control = await db(make_group)(alice, bob, name="control")
    alice_socket, bob_socket = await connect(alice), await connect(bob)
    await db(services.membership_remove)(actor=alice, conversation_id=group.pk, username="bob")

    assert await bob_socket.receive() == {"type": "conversation.removed", "id": group.pk}
    updated = await alice_socket.receive_type("conversation.updated")
    assert [m["username"] for m in updated["conversation"]["members"]] == ["alice", "carol"]
    assert updated["conversation"]["role"] == "owner"

    await db(send)(alice, group, "secret")
    await db(send)(alice, control, "marker")
    # Messages reach bob in order: the marker next means the secret never came.
    assert (await bob_socket.receive_type("message.new"))["message"]["body"] == "marker"
    await bob_socket.send({"type": "message.send", "conversation": group.pk, "client_id": "r", "body": "still here?"})
    assert (await bob_socket.receive_type("error"))["code"] == "not_member"


async def test_removal_not_yet_heard_still_hides_private_messages(alice, bob, connect):
    """A private conversation's messages name their audience, so a stale socket drops them."""
    group = await db(make_group)(alice, bob)
    control = await db(make_group)(alice, bob, name="control")
    bob_socket = await connect(bob)

    def remove_quietly_then_send():
        bob.memberships.filter(conversation=group).delete()  # no event, as if it were lost
        send(alice, group, "secret")
        send(alice, control, "marker")

    await db(remove_quietly_then_send)()
    assert (await bob_socket.receive_type("message.new"))["message"]["body"] == "marker"


async def test_invited_member_joins_live(alice, bob, carol, connect):
    group = await db(make_group)(alice, bob)
    alice_socket, carol_socket = await connect(alice), await connect(carol)
    await db(services.membership_add)(actor=alice, conversation_id=group.pk, username="carol")

    added = (await carol_socket.receive_type("conversation.added"))["conversation"]
    assert (added["id"], added["role"], added["unread"], added["kind"]) == (group.pk, "member", 0, "group")
    # This process already follows the group (alice): the membership update may reach carol too.
    carol_socket.skip.add("conversation.updated")
    assert [m["username"] for m in added["members"]] == ["alice", "bob", "carol"]
    updated = (await alice_socket.receive_type("conversation.updated"))["conversation"]
    assert [m["username"] for m in updated["members"]] == ["alice", "bob", "carol"]

    line = (await alice_socket.receive_type("message.new"))["message"]
    assert (line["kind"], line["system"]["event"], line["system"]["user"]) == ("system", "member.added", carol.pk)

    await alice_socket.send({"type": "message.send", "conversation": group.pk, "client_id": "w", "body": "welcome"})
    # Carol gets the line that she was added (live, or resent before what follows it), then the message.
    assert (await carol_socket.receive_type("message.new"))["message"]["id"] == line["id"]
    assert (await carol_socket.receive_type("message.new"))["message"]["body"] == "welcome"


async def test_joining_shares_presence_both_ways(alice, bob, carol, connect):
    group = await db(make_group)(alice, bob)
    alice_socket, carol_socket = await connect(alice), await connect(carol)
    # Alice and Carol share nothing yet: neither hears of the other.
    alice_socket.skip = carol_socket.skip = set()
    await alice_socket.barrier()
    await carol_socket.barrier()
    await db(services.membership_add)(actor=alice, conversation_id=group.pk, username="carol")

    await carol_socket.receive_type("conversation.added")
    # This process already follows the group (alice): its update and line may reach carol as well.
    carol_socket.skip = {"conversation.updated", "message.new"}
    assert await carol_socket.receive() == {"type": "presence", "user": alice.pk, "online": True}
    await alice_socket.receive_type("conversation.updated")
    assert (await alice_socket.receive_type("message.new"))["message"]["kind"] == "system"
    assert await alice_socket.receive() == {"type": "presence", "user": carol.pk, "online": True}
    # Bob is offline: nobody is told he is online.
    await carol_socket.barrier()


async def test_rate_limit(alice, bob, connect, settings):
    settings.CHAT_RATE_LIMIT = "2/60"
    group = await db(make_group)(alice, bob)
    socket = await connect(alice)
    for client_id in ("r1", "r2", "r3"):
        await socket.send({"type": "message.send", "conversation": group.pk, "client_id": client_id, "body": "hi"})
    frames = [await socket.receive() for _ in range(5)]
    errors = [frame for frame in frames if frame["type"] == "error"]
    assert [(e["code"], e["client_id"]) for e in errors] == [("rate_limited", "r3")]
    assert errors[0]["retry_after"] >= 1
    assert await db(Message.objects.exclude(kind="system").count)() == 2


async def test_ban_closes_open_socket(alice, bob, connect):
    await db(make_group)(alice, bob)
    bob_socket = await connect(bob)
    await db(accounts_services.user_ban)(user=bob)
    assert await bob_socket.closed_with() == 4403


async def test_key_change_is_announced_to_encrypted_conversations(alice, bob, connect):
    from accounts.signals import user_key_changed

    direct = await db(make_direct)(alice, bob)
    bob_socket = await connect(bob)
    await db(user_key_changed.send)(sender=User, user_id=alice.pk, public_key=b64(32), previous_public_key=b64(32, 1))
    frame = await bob_socket.receive_type("key.changed")
    assert frame == {
        "type": "key.changed",
        "conversation": direct.pk,
        "user": alice.pk,
        "public_key": b64(32),
        "first": False,
    }


async def test_first_key_setup_is_announced_and_a_ban_shows_offline_everywhere(alice, bob, client_of, connect):
    from tests.crypto.test_keys_api import backup_body

    direct = await db(make_direct)(alice, bob)
    bob_socket = await connect(bob)
    bob_socket.skip = set()
    alice_socket = await connect(alice)
    assert await bob_socket.receive() == {"type": "presence", "user": alice.pk, "online": True}
    body = backup_body()

    def set_up_key():
        return client_of(alice).put("/api/keys/", json.dumps(body), content_type="application/json").status_code

    assert await db(set_up_key)() == 200
    frame = await bob_socket.receive_type("key.changed")
    assert (frame["user"], frame["public_key"], frame["first"]) == (alice.pk, body["public_key"], True)
    assert frame["conversation"] == direct.pk

    await db(accounts_services.user_ban)(user=alice)
    assert await alice_socket.closed_with() == 4403
    assert await bob_socket.receive() == {"type": "presence", "user": alice.pk, "online": False}
    assert await db(users_online)([alice.pk]) == set()


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs the Redis channel layer")
async def test_redis_layer_in_use():
    assert isinstance(get_channel_layer(), RedisChannelLayer)


async def test_concurrent_senders_are_delivered_in_id_order(alice, bob, carol, make_user, connect, no_rate_limit):
    dave = await db(make_user)("dave")
    group = await db(make_group)(alice, bob, carol, dave)
    socket = await connect(bob)

    def sender(user):
        try:
            for i in range(8):
                send(user, group, f"{user.username}-{i}")
        finally:
            connection.close()

    await asyncio.gather(*(asyncio.to_thread(sender, user) for user in (alice, carol, dave)))
    delivered = [(await socket.receive_type("message.new"))["message"]["id"] for _ in range(24)]
    stored = await db(
        lambda: list(Message.objects.filter(conversation=group, kind="text").values_list("id", flat=True))
    )()
    assert delivered == sorted(stored)
