"""The batching writer: several senders' messages in one transaction, each kept to the same rules."""

import asyncio
import sqlite3

import pytest
from django.conf import settings
from django.db import connection

from chat.message_path import Send, _batch_store
from chat.models import Message
from chatterbox.errors import Invalid, NotMember, RateLimited
from chatterbox.ratelimit import LocalWindows
from tests.chat.conftest import db, make_group, send

pytestmark = pytest.mark.django_db(transaction=True)


def texts():
    """Messages people sent: conversations also hold system lines ("created", "member.added")."""
    return Message.objects.exclude(kind=Message.Kind.SYSTEM)


def batch(*sends) -> list:
    return _batch_store([Send(*fields, None) for fields in sends])


def body(text: str) -> dict:
    return {"body": text, "ciphertext": None, "nonce": None, "keys": None}


def test_one_batch_stores_in_order_and_refuses_only_what_is_wrong(alice, bob, carol, no_rate_limit):
    group = make_group(alice, bob)
    first = send(alice, group, "before", client_id="known")
    results = batch(
        (alice, group.pk, "a1", body("one"), None),
        (bob, group.pk, "b1", body("two"), 10**9),  # reply_to elsewhere: refused
        (carol, group.pk, "c1", body("three"), None),  # not a member: refused
        (alice, group.pk, "known", body("again"), None),  # a resend: the first message, nothing new
        (bob, group.pk, "b2", body("four"), first.pk),
        (alice, group.pk, "a2", body("   "), None),  # empty: refused
    )
    assert isinstance(results[1], Invalid) and results[1].extra == {"field": "reply_to"}
    assert isinstance(results[2], NotMember)
    assert isinstance(results[5], Invalid)
    (one, created_one, event_one), (again, created_again, event_again), (four, created_four, event_four) = (
        results[0],
        results[3],
        results[4],
    )
    assert (created_one, created_again, created_four) == (True, False, True)
    assert again.pk == first.pk and event_again is None
    # Ids follow the batch order, and each event names the message before it for gap detection.
    assert first.pk < one.pk < four.pk
    assert (event_one["prev_id"], event_four["prev_id"]) == (first.pk, one.pk)
    assert four.reply_to_id == first.pk
    stored = list(texts().filter(conversation=group).order_by("id").values_list("body", flat=True))
    assert stored == ["before", "one", "four"]


def test_a_client_id_sent_twice_in_one_batch_is_stored_once(alice, bob, carol, no_rate_limit):
    """The bulk insert fails on the duplicate; the batch falls back to one insert each, in savepoints,
    and answers the second send with the first message (on PostgreSQL, inside the pipeline)."""
    first, second = make_group(alice, bob), make_group(alice, carol)
    results = batch(
        (alice, first.pk, "twice", body("one"), None),
        (bob, first.pk, "b1", body("two"), None),
        (alice, second.pk, "twice", body("again"), None),
    )
    (one, created_one, _), (two, created_two, _), (again, created_again, event_again) = results
    assert (created_one, created_two, created_again) == (True, True, False)
    assert again.pk == one.pk and event_again is None
    assert list(texts().order_by("id").values_list("body", flat=True)) == ["one", "two"]
    # The transaction is whole afterwards: the next batch stores as usual.
    ((three, created, _),) = batch((bob, first.pk, "b2", body("three"), None))
    assert created and three.pk > two.pk


def test_the_rate_limit_counts_each_message_of_a_batch(alice, bob, settings):
    settings.CHAT_RATE_LIMIT = "2/60"
    group = make_group(alice, bob)
    results = batch(*[(alice, group.pk, f"r{i}", body(f"m{i}"), None) for i in range(3)])
    assert [type(result).__name__ for result in results] == ["tuple", "tuple", "RateLimited"]
    assert texts().filter(conversation=group).count() == 2


@pytest.mark.skipif(not settings.REDIS_URL, reason="one process: the embedded cache is its own memory")
def test_the_rate_limit_holds_across_processes(alice, bob, settings):
    """Each process's writer has windows of its own; on Redis the limit is still the user's, not the process's."""
    settings.CHAT_RATE_LIMIT = "3/60"
    group = make_group(alice, bob)
    first, second = LocalWindows(), LocalWindows()  # two processes' writers
    sends = [(alice, group.pk, f"r{i}", body(f"m{i}"), None) for i in range(4)]
    results = _batch_store([Send(*fields, None) for fields in sends[:2]], first)
    assert [type(result).__name__ for result in results] == ["tuple", "tuple"]
    results = _batch_store([Send(*fields, None) for fields in sends[2:]], second)
    assert [type(result).__name__ for result in results] == ["tuple", "RateLimited"]
    assert results[1].extra["retry_after"] > 0
    # The API's sends (the shared counter) and the writer's count the same windows.
    with pytest.raises(RateLimited):
        send(alice, group, "over the limit")
    assert texts().filter(conversation=group).count() == 3
    # A refused send counted nothing, and neither did another sender.
    assert [type(r).__name__ for r in _batch_store([Send(bob, group.pk, "b", body("b"), None, None)], first)] == [
        "tuple"
    ]


@pytest.mark.skipif(not settings.REDIS_URL, reason="the shared windows are on Redis")
@pytest.mark.parametrize("failing", ["load", "save"])
def test_a_batch_is_stored_when_the_rate_limit_cache_fails(alice, bob, settings, monkeypatch, failing):
    """Redis out of reach for the counts is no reason to refuse, or to deny, what the database stored."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from chatterbox.ratelimit import BatchWindows

    def unreachable(*args, **kwargs):
        raise RedisConnectionError("Connection refused")

    settings.CHAT_RATE_LIMIT = "2/60"
    monkeypatch.setattr(BatchWindows, failing, unreachable)
    group = make_group(alice, bob)
    results = _batch_store([Send(alice, group.pk, f"f{i}", body(f"m{i}"), None, None) for i in range(3)])
    # Counted in this process alone when the windows cannot be read; stored, uncounted, when they cannot be added to.
    expected = ["tuple", "tuple", "RateLimited"]
    assert [type(result).__name__ for result in results] == expected
    assert texts().filter(conversation=group).count() == 2


async def test_concurrent_socket_sends_share_batches_and_keep_order(alice, bob, carol, connect, no_rate_limit):
    group = await db(make_group)(alice, bob, carol)
    sockets = [await connect(user) for user in (alice, bob, carol)]
    for round_ in range(10):
        for index, socket in enumerate(sockets):
            await socket.send(
                {"type": "message.send", "conversation": group.pk, "client_id": f"{index}-{round_}", "body": "x"}
            )

    async def collect(socket):
        acks, delivered = [], []
        while len(acks) < 10 or len(delivered) < 30:
            frame = await socket.receive()
            (acks if frame["type"] == "message.ack" else delivered).append(frame)
        return acks, delivered

    results = await asyncio.gather(*(collect(socket) for socket in sockets))
    stored = await db(lambda: list(texts().filter(conversation=group).values_list("id", flat=True)))()
    assert len(stored) == 30
    for acks, delivered in results:
        # Each socket's own sends are acked in the order it sent them; everyone sees all, in id order.
        assert [ack["client_id"].split("-")[1] for ack in acks] == [str(i) for i in range(10)]
        assert [frame["message"]["id"] for frame in delivered] == sorted(stored)


@pytest.mark.skipif(
    "sqlite" not in settings.DATABASES["default"]["ENGINE"], reason="locks the SQLite file from another connection"
)
async def test_a_send_that_cannot_be_stored_is_refused_with_unavailable(alice, bob, connect):
    group = await db(make_group)(alice, bob)
    socket = await connect(alice)
    frame = {"type": "message.send", "conversation": group.pk, "client_id": "locked", "body": "hello"}
    # Another process holds the database's write lock past the busy timeout: the store really fails.
    locker = sqlite3.connect(connection.settings_dict["NAME"], timeout=0, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        await socket.send(frame)
        error = await socket.receive_type("error")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert (error["code"], error["client_id"], error["retry_after"]) == ("unavailable", "locked", 1)
    assert await db(lambda: texts().count())() == 0
    # Nothing was stored, so the same frame goes through once the database is back.
    await socket.send(frame)
    ack = await socket.receive_type("message.ack")
    assert ack["client_id"] == "locked"
    assert await db(lambda: texts().count())() == 1


def test_a_batch_holds_each_send_to_the_moderation_rules(alice, bob, carol, no_rate_limit):
    from datetime import timedelta

    from django.utils import timezone

    from chat import services
    from chatterbox.errors import Forbidden
    from moderation.services import block_create
    from tests.chat.conftest import make_direct

    archived = make_group(alice, bob, name="Old")
    services.conversation_update(actor=alice, conversation_id=archived.pk, changes={"archived": True})
    muted = make_group(alice, carol, name="Quiet")
    services.membership_mute_until(
        actor=alice, conversation_id=muted.pk, username=carol.username, muted_until=timezone.now() + timedelta(hours=1)
    )
    direct = make_direct(bob, alice)
    block_create(blocker=alice, username=bob.username)
    results = batch(
        (bob, archived.pk, "archived", body("hello"), None),
        (carol, muted.pk, "muted", body("hello"), None),
        (alice, muted.pk, "owner", body("still allowed"), None),
        (bob, direct.pk, "blocked", body("hello"), None),
    )
    assert all(isinstance(results[index], Forbidden) for index in (0, 1, 3)), results
    assert "archived" in results[0].detail
    assert results[1].extra["retry_after"] > 3500 and "muted_until" in results[1].extra
    assert isinstance(results[2], tuple) and results[2][1] is True
    assert list(texts().values_list("client_id", flat=True)) == ["owner"]


def test_a_batch_claims_each_attachment_inside_its_own_message(alice, bob, carol, client_of, no_rate_limit):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from chat.models import Attachment
    from chatterbox.errors import NotFound

    group = make_group(alice, bob)

    def upload(user) -> int:
        file = SimpleUploadedFile("notes.txt", b"notes", content_type="text/plain")
        response = client_of(user).post("/api/attachments/", {"file": file, "conversation": group.pk})
        assert response.status_code == 201, response.content
        return response.json()["id"]

    mine, bobs = upload(alice), upload(bob)
    with_file = {**body(""), "attachment": mine}
    results = batch(
        (alice, group.pk, "bad-reply", with_file, 10**9),  # refused after nothing was claimed
        (alice, group.pk, "bobs-file", {**body(""), "attachment": bobs}, None),  # not the sender's
        (alice, group.pk, "file", with_file, None),
        (alice, group.pk, "file-again", with_file, None),  # already sent in "file"
        (alice, group.pk, "plain", body("no file"), None),
    )
    assert isinstance(results[0], Invalid) and results[0].extra == {"field": "reply_to"}
    assert isinstance(results[1], NotFound)
    assert isinstance(results[3], Invalid) and "already sent" in results[3].detail
    message, created, event = results[2]
    assert created and event["message"]["attachment"]["id"] == mine and event["message"]["body"] == ""
    assert results[4][2]["message"]["attachment"] is None
    # The refused sends left nothing behind: no message, no claim, and the batch kept the content it was given.
    assert list(texts().order_by("id").values_list("client_id", flat=True)) == ["file", "plain"]
    assert dict(Attachment.objects.values_list("pk", "message_id")) == {mine: message.pk, bobs: None}
    assert with_file["attachment"] == mine
