"""Mentions in plaintext conversations: who is named, the separate unread count, @channel for admins only."""

import pytest

from chat import services
from chat.models import MessageMention
from chatterbox.errors import Forbidden
from tests.chat.conftest import make_channel, make_direct, make_group, send

pytestmark = pytest.mark.django_db


def listing_of(client):
    return {c["name"] or c["kind"]: c for c in client.get("/api/conversations/").json()}


def test_a_mention_counts_apart_from_unread_until_read(alice, bob, carol, client_of, no_rate_limit):
    channel = make_channel(alice, bob, carol, name="general")
    send(alice, channel, "morning all")
    mention = send(alice, channel, "@Bob can you look at this? (not @nobody)")
    send(alice, channel, "`@bob` in code is not a mention, nor is bob@example.com")
    mine = listing_of(client_of(bob))["general"]
    assert (mine["unread"], mine["mentions"]) == (3, 1)
    assert listing_of(client_of(carol))["general"]["mentions"] == 0
    assert list(MessageMention.objects.values_list("message_id", "user_id")) == [(mention.pk, bob.pk)]
    # Muting does not hide mentions; reading past them clears them.
    services.membership_mute(user=bob, conversation_id=channel.pk, muted=True)
    assert listing_of(client_of(bob))["general"]["mentions"] == 1
    services.read_mark(user=bob, conversation_id=channel.pk, up_to=mention.pk)
    mine = listing_of(client_of(bob))["general"]
    assert (mine["unread"], mine["mentions"]) == (1, 0)


def test_mentioning_yourself_or_outsiders_records_nothing(alice, bob, carol):
    channel = make_channel(alice, bob, name="general")
    send(alice, channel, "note to @alice: ask @carol to join")
    assert not MessageMention.objects.exists()


def test_everyone_mentions_are_for_owners_and_admins(alice, bob, carol, client_of, no_rate_limit):
    channel = make_channel(alice, bob, carol, name="general")
    with pytest.raises(Forbidden) as error:
        send(bob, channel, "hey @channel, pizza!")
    assert error.value.extra["field"] == "body"
    with pytest.raises(Forbidden):
        send(bob, channel, "@here anyone?")
    assert listing_of(client_of(carol))["general"]["unread"] == 0  # nothing was stored
    send(alice, channel, "@here standup in 5")
    assert listing_of(client_of(bob))["general"]["mentions"] == 1
    assert listing_of(client_of(carol))["general"]["mentions"] == 1
    services.membership_set_role(actor=alice, conversation_id=channel.pk, username="bob", role="admin")
    send(bob, channel, "@channel release is out")
    assert listing_of(client_of(carol))["general"]["mentions"] == 2
    assert listing_of(client_of(alice))["general"]["mentions"] == 1

    group = make_group(alice, bob, name="Plain")
    with pytest.raises(Forbidden):
        send(bob, group, "@channel hi")
    direct = make_direct(alice, bob)
    assert direct.encrypted  # the server cannot read it: the browser decides there


def test_an_edit_recounts_the_mentions(alice, bob, carol, client_of, no_rate_limit):
    channel = make_channel(alice, bob, carol, name="general")
    message = send(bob, channel, "can someone look at this?")
    services.message_edit(editor=bob, message_id=message.pk, body="@alice can you look at this?")
    assert listing_of(client_of(alice))["general"]["mentions"] == 1
    services.message_edit(editor=bob, message_id=message.pk, body="@carol can you look at this, or @alice?")
    assert set(message.mentions.values_list("user_id", flat=True)) == {alice.pk, carol.pk}
    services.message_edit(editor=bob, message_id=message.pk, body="@carol can you look at this?")
    assert listing_of(client_of(alice))["general"]["mentions"] == 0
    assert listing_of(client_of(carol))["general"]["mentions"] == 1
    # An edit that may not name everyone is refused whole: the text and the mentions stay.
    with pytest.raises(Forbidden):
        services.message_edit(editor=bob, message_id=message.pk, body="@channel can you look at this?")
    message.refresh_from_db()
    assert message.body == "@carol can you look at this?"
    assert list(message.mentions.values_list("user_id", flat=True)) == [carol.pk]
