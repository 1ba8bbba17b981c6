"""System messages: who created, joined, left and renamed, stored in history like any message."""

import pytest

from chat import services
from chat.models import Conversation, Message
from chatterbox.errors import Forbidden
from tests.chat.conftest import db, make_channel, make_group, send

pytestmark = pytest.mark.django_db


def lines(user, conversation) -> list[tuple]:
    page, _ = services.history_page(user=user, conversation_id=conversation.pk)
    return [
        (m["system"]["event"], m["system"]["actor"], m["system"]["user"], m["body"])
        for m in page
        if m["kind"] == "system"
    ]


def test_every_membership_change_of_an_encrypted_group_is_a_plaintext_line(alice, bob, carol, make_user):
    dave = make_user("dave", display_name="")
    group = make_group(alice, bob, encrypted=True)
    services.membership_add(actor=alice, conversation_id=group.pk, username="carol")
    services.membership_add(actor=alice, conversation_id=group.pk, username="dave")
    services.membership_set_role(actor=alice, conversation_id=group.pk, username="carol", role="admin")
    services.membership_remove(actor=carol, conversation_id=group.pk, username="dave")
    services.membership_remove(actor=bob, conversation_id=group.pk, username="bob")
    services.conversation_update(actor=alice, conversation_id=group.pk, changes={"name": "Plans"})
    services.membership_remove(actor=alice, conversation_id=group.pk, username="alice")
    expected = [
        ("created", alice.pk, None, "Alice Liddell created this group"),
        ("member.added", alice.pk, bob.pk, "Bob Builder was added by Alice Liddell"),
        ("member.added", alice.pk, carol.pk, "Carol Danvers was added by Alice Liddell"),
        ("member.added", alice.pk, dave.pk, "dave was added by Alice Liddell"),
        ("role.changed", alice.pk, carol.pk, "Alice Liddell made Carol Danvers an admin"),
        ("member.removed", carol.pk, dave.pk, "dave was removed by Carol Danvers"),
        ("member.left", bob.pk, bob.pk, "Bob Builder left"),
        ("renamed", alice.pk, None, "Alice Liddell renamed the group to Plans"),
        ("member.left", alice.pk, alice.pk, "Alice Liddell left"),
        # The owner left: the admin takes over, and nobody in particular did it.
        ("role.changed", None, carol.pk, "Carol Danvers is now the owner"),
    ]
    # Carol, added after the group was made, sees every line, from before she joined too.
    assert lines(carol, group) == expected
    page, _ = services.history_page(user=carol, conversation_id=group.pk)
    renamed = next(m for m in page if m["kind"] == "system" and m["system"]["event"] == "renamed")
    assert renamed["system"]["name"] == "Plans"
    assert renamed["system"]["names"] == {str(alice.pk): "Alice Liddell"}
    for message in page:
        # Plaintext, written by the server: no ciphertext, no key, no sender.
        assert set(message) >= {"body", "system"} and not {"ciphertext", "nonce", "key"} & set(message)
        assert message["sender"] is None
    assert Message.objects.filter(kind="system").exclude(keys=None).count() == 0


def test_channel_lines_and_they_do_not_count_as_unread(alice, bob):
    channel = make_channel(alice, name="news")
    services.channel_join(user=bob, conversation_id=channel.pk)
    services.channel_join(user=bob, conversation_id=channel.pk)  # already in: no second line
    assert [line[0] for line in lines(alice, channel)] == ["created", "member.joined"]
    (row,) = Conversation.objects.for_user(alice)
    assert row.unread == 0
    send(bob, channel, "hello")
    (row,) = Conversation.objects.for_user(alice)
    assert row.unread == 1


def test_a_direct_conversation_starts_with_one_line(alice, bob):
    direct, _ = services.conversation_create(creator=alice, kind="direct", members=["bob"])
    assert lines(bob, direct) == [("created", alice.pk, bob.pk, "Alice Liddell created this conversation")]


def test_system_lines_cannot_be_edited_or_deleted_by_members(alice, bob):
    group = make_group(alice, bob)
    line = Message.objects.filter(conversation=group, kind="system").first()
    with pytest.raises(Forbidden):
        services.message_delete(actor=alice, message_id=line.pk)
    with pytest.raises(Forbidden):
        services.message_edit(editor=alice, message_id=line.pk, body="rewritten")
    line.refresh_from_db()
    assert not line.deleted and line.body == "Alice Liddell created this group"


@pytest.mark.django_db(transaction=True)
async def test_lines_go_out_live_and_come_back_in_sync(alice, bob, carol, connect):
    group = await db(make_group)(alice, bob, encrypted=True)
    alice_socket = await connect(alice)
    await db(services.membership_add)(actor=alice, conversation_id=group.pk, username="carol")
    await alice_socket.receive_type("conversation.updated")
    live = (await alice_socket.receive_type("message.new"))["message"]
    assert (live["kind"], live["system"]["event"], live["body"]) == (
        "system",
        "member.added",
        "Carol Danvers was added by Alice Liddell",
    )
    assert "key" not in live and "ciphertext" not in live
    carol_socket = await connect(carol)
    await carol_socket.send({"type": "sync", "conversation": group.pk, "after": 0})
    synced = (await carol_socket.receive_type("sync.result"))["messages"]
    assert [m["system"]["event"] for m in synced] == ["created", "member.added", "member.added"]
    assert synced[-1]["id"] == live["id"]


def test_the_conversation_list_carries_each_members_last_message(
    alice, bob, carol, client_of, django_assert_num_queries
):
    group = make_group(alice, bob, carol, encrypted=True)
    keys = {str(alice.pk): "QUFB", str(bob.pk): "QkJC", str(carol.pk): "Q0ND"}
    sealed, _ = services.message_send(
        sender=alice,
        conversation_id=group.pk,
        client_id="e1",
        ciphertext="Y2lwaGVydGV4dC0xNmJ5dGVz",
        nonce="A" * 32,
        keys=keys,
    )
    channel = make_channel(alice, bob, name="news")
    plain = send(bob, channel, "hello all")
    quiet = make_group(bob, carol, name="quiet")
    for user, key in ((bob, "QkJC"), (carol, "Q0ND")):
        client = client_of(user)
        client.get("/api/me/")
        # Session, user, conversations, members, last messages: none per conversation.
        with django_assert_num_queries(5):
            listing = {c["id"]: c for c in client.get("/api/conversations/").json()}
        last = listing[group.pk]["last_message"]
        assert (last["id"], last["ciphertext"], last["nonce"], last["key"]) == (
            sealed.pk,
            sealed.ciphertext,
            "A" * 32,
            key,
        )
        assert "body" not in last
    assert listing[quiet.pk]["last_message"]["system"]["event"] == "member.added"
    bobs = {c["id"]: c for c in client_of(bob).get("/api/conversations/").json()}
    assert (bobs[channel.pk]["last_message"]["id"], bobs[channel.pk]["last_message"]["body"]) == (plain.pk, "hello all")
    assert client_of(bob).get(f"/api/conversations/{group.pk}/").json()["last_message"]["key"] == "QkJC"


def test_a_member_added_later_gets_no_last_message_they_cannot_read(alice, bob, carol, client_of):
    group = make_group(alice, bob, encrypted=True)
    services.membership_add(actor=alice, conversation_id=group.pk, username="carol")
    keys = {str(alice.pk): "QUFB", str(bob.pk): "QkJC"}
    # Stored quietly with keys for Alice and Bob only, as if sent before Carol joined.
    message = Message.objects.create(
        conversation=group, sender=alice, client_id="old", ciphertext="Y2lw", nonce="A" * 32
    )
    for user_id, key in keys.items():
        message.keys.create(user_id=int(user_id), key=key)
    mine = client_of(carol).get(f"/api/conversations/{group.pk}/").json()
    assert (mine["last_message_id"], mine["last_message"]) == (message.pk, None)
