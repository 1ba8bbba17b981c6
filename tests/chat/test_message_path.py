"""The batching writer: several senders' messages in one transaction, each kept to the same rules."""

import asyncio
import sqlite3

import pytest
from django.conf import settings
from django.db import connection

from chat.message_path import Send, _batch_store
from chat.models import Message
from chatterbox.errors import Invalid, NotMember
from tests.chat.conftest import db, make_group, send

pytestmark = pytest.mark.django_db(transaction=True)


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
    stored = list(Message.objects.filter(conversation=group).order_by("id").values_list("body", flat=True))
    assert stored == ["before", "one", "four"]


def test_the_rate_limit_counts_each_message_of_a_batch(alice, bob, settings):
    settings.CHAT_RATE_LIMIT = "2/60"
    group = make_group(alice, bob)
    results = batch(*[(alice, group.pk, f"r{i}", body(f"m{i}"), None) for i in range(3)])
    assert [type(result).__name__ for result in results] == ["tuple", "tuple", "RateLimited"]
    assert Message.objects.filter(conversation=group).count() == 2


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
    stored = await db(lambda: list(Message.objects.filter(conversation=group).values_list("id", flat=True)))()
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
    assert await db(Message.objects.count)() == 0
    # Nothing was stored, so the same frame goes through once the database is back.
    await socket.send(frame)
    ack = await socket.receive_type("message.ack")
    assert ack["client_id"] == "locked"
    assert await db(Message.objects.count)() == 1
