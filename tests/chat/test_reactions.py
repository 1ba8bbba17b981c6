"""Reactions: the service, the socket frame and history; encrypted reactions stay opaque to the server."""

import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from chat import services
from chat.models import Conversation, Message, Reaction
from chatterbox.errors import Forbidden, Invalid, NotFound
from tests.chat.conftest import db, make_channel, make_group, send, user_messages


def b64(size: int, fill: int = 1) -> str:
    return base64.b64encode(bytes([fill % 256]) * size).decode()


def sealed(*users) -> dict:
    return {"ciphertext": b64(64), "nonce": b64(24), "keys": {str(u.pk): b64(104, u.pk) for u in users}}


@pytest.mark.django_db
def test_add_remove_and_idempotent(alice, bob, client_of):
    channel = make_channel(alice, bob)
    message = send(alice, channel, "ship it?")
    assert services.reaction_set(user=bob, message_id=message.pk, emoji="👍", on=True) is True
    assert services.reaction_set(user=bob, message_id=message.pk, emoji="👍", on=True) is False
    assert services.reaction_set(user=alice, message_id=message.pk, emoji="👍", on=True) is True
    assert services.reaction_set(user=alice, message_id=message.pk, emoji="🎉", on=True) is True
    assert Reaction.objects.count() == 3
    history = user_messages(client_of(bob).get(f"/api/conversations/{channel.pk}/messages/").json()["messages"])
    assert history[0]["reactions"] == {"👍": [bob.pk, alice.pk], "🎉": [alice.pk]}

    assert services.reaction_set(user=bob, message_id=message.pk, emoji="👍", on=False) is True
    assert services.reaction_set(user=bob, message_id=message.pk, emoji="👍", on=False) is False
    history = user_messages(client_of(bob).get(f"/api/conversations/{channel.pk}/messages/").json()["messages"])
    assert history[0]["reactions"] == {"👍": [alice.pk], "🎉": [alice.pk]}


@pytest.mark.django_db
def test_a_muted_member_and_an_archived_channel_take_no_reactions(alice, bob):
    channel = make_channel(alice, bob)
    message = send(alice, channel, "ship it?")
    services.reaction_set(user=bob, message_id=message.pk, emoji="👍", on=True)
    until = timezone.now() + timedelta(hours=1)
    services.membership_mute_until(actor=alice, conversation_id=channel.pk, username="bob", muted_until=until)
    for on in (True, False):
        with pytest.raises(Forbidden) as error:
            services.reaction_set(user=bob, message_id=message.pk, emoji="👍", on=on)
        assert "muted" in error.value.detail and error.value.extra["retry_after"] > 3500
    services.membership_mute_until(actor=alice, conversation_id=channel.pk, username="bob", muted_until=None)
    services.conversation_update(actor=alice, conversation_id=channel.pk, changes={"archived": True})
    with pytest.raises(Forbidden, match="archived"):
        services.reaction_set(user=alice, message_id=message.pk, emoji="🎉", on=True)
    assert list(Reaction.objects.values_list("user_id", "emoji")) == [(bob.pk, "👍")]


@pytest.mark.django_db
def test_non_members_and_bad_emoji_are_refused(alice, bob, carol):
    channel = make_channel(alice, bob)
    message = send(alice, channel, "members only")
    with pytest.raises(NotFound):
        services.reaction_set(user=carol, message_id=message.pk, emoji="👍", on=True)
    with pytest.raises(NotFound):
        services.reaction_set(user=bob, message_id=10**9, emoji="👍", on=True)
    for bad in ["", "a", "👍x", "<script>", "👍" * 17, " ", "1", 5, None]:
        with pytest.raises(Invalid) as error:
            services.reaction_set(user=bob, message_id=message.pk, emoji=bad, on=True)
        assert error.value.extra.get("field") == "emoji", bad
    # Sequences are one emoji: skin tone, family (ZWJ), flag, keycap.
    for good in ["👍🏽", "👨‍👩‍👧", "🇫🇷", "1️⃣", "❤️"]:
        assert services.reaction_set(user=bob, message_id=message.pk, emoji=good, on=True)
    services.message_delete(actor=alice, message_id=message.pk)
    with pytest.raises(Invalid):
        services.reaction_set(user=bob, message_id=message.pk, emoji="👍", on=True)
    assert not Reaction.objects.filter(user=carol).exists()


@pytest.mark.django_db
def test_encrypted_reactions_are_messages_the_server_cannot_read(alice, bob, client_of):
    group = make_group(alice, bob, encrypted=True)
    target, _ = services.message_send(sender=alice, conversation_id=group.pk, client_id="t", **sealed(alice, bob))
    with pytest.raises(Invalid):
        services.reaction_set(user=bob, message_id=target.pk, emoji="👍", on=True)
    reaction, created = services.message_send(
        sender=bob, conversation_id=group.pk, client_id="r", kind="reaction", **sealed(alice, bob)
    )
    assert created and reaction.kind == "reaction" and reaction.body == ""
    # Nothing outside the ciphertext says which message or which emoji.
    assert reaction.reply_to_id is None and not Reaction.objects.exists()
    history = user_messages(client_of(alice).get(f"/api/conversations/{group.pk}/messages/").json()["messages"])
    assert [m["kind"] for m in history] == ["text", "reaction"]
    assert "reactions" not in history[0] and "body" not in history[1]
    # A reaction does not count as unread.
    listing = client_of(alice).get("/api/conversations/").json()
    assert listing[0]["unread"] == 0

    channel = make_channel(alice, bob)
    with pytest.raises(Invalid) as error:
        services.message_send(sender=bob, conversation_id=channel.pk, client_id="p", body="👍", kind="reaction")
    assert error.value.extra["field"] == "kind"
    with pytest.raises(Invalid):
        services.message_send(sender=bob, conversation_id=channel.pk, client_id="q", body="x", kind="system")


@pytest.mark.django_db(transaction=True)
async def test_reaction_frames_reach_every_member_live(alice, bob, carol, connect):
    channel = await db(make_channel)(alice, bob)
    message = await db(send)(alice, channel, "lunch?")
    alice_socket = await connect(alice)
    bob_socket = await connect(bob)
    carol_socket = await connect(carol)
    await bob_socket.send({"type": "reaction", "message": message.pk, "emoji": "🍕", "on": True})
    expected = {"type": "reaction", "conversation": channel.pk, "message": message.pk, "user": bob.pk, "emoji": "🍕"}
    assert await alice_socket.receive() == {**expected, "on": True}
    assert await bob_socket.receive() == {**expected, "on": True}
    # Adding it again changes nothing and tells nobody; removing it tells everyone.
    await bob_socket.send({"type": "reaction", "message": message.pk, "emoji": "🍕", "on": True})
    await bob_socket.send({"type": "reaction", "message": message.pk, "emoji": "🍕", "on": False})
    assert await alice_socket.receive() == {**expected, "on": False}
    assert await bob_socket.receive() == {**expected, "on": False}
    # Bad frames get clear errors; a non-member cannot react.
    await bob_socket.send({"type": "reaction", "message": message.pk, "emoji": "🍕", "on": "yes"})
    error = await bob_socket.receive_type("error")
    assert error["code"] == "invalid" and error["field"] == "on"
    await bob_socket.send({"type": "reaction", "message": message.pk, "emoji": "ok", "on": True})
    assert (await bob_socket.receive_type("error"))["field"] == "emoji"
    await carol_socket.send({"type": "reaction", "message": message.pk, "emoji": "🍕", "on": True})
    assert (await carol_socket.receive_type("error"))["code"] == "not_found"
    await alice_socket.barrier()
    assert await db(Reaction.objects.count)() == 0


@pytest.mark.django_db(transaction=True)
async def test_an_encrypted_reaction_travels_as_a_message_of_kind_reaction(alice, bob, connect):
    group = await db(make_group)(alice, bob, encrypted=True)
    alice_socket = await connect(alice)
    bob_socket = await connect(bob)
    frame = {"type": "message.send", "conversation": group.pk, "client_id": "r1", "kind": "reaction"}
    await bob_socket.send({**frame, **sealed(alice, bob)})
    new = await alice_socket.receive_type("message.new")
    assert new["message"]["kind"] == "reaction" and new["message"]["ciphertext"]
    assert await db(Message.objects.filter(kind="reaction", conversation=group).count)() == 1
    assert await db(lambda: Conversation.objects.get(pk=group.pk).encrypted)()
