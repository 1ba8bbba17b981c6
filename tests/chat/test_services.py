"""The chat services' rules, called directly (every door goes through them)."""

import base64
import time

import pytest
from django.core.exceptions import ImproperlyConfigured

from accounts.services import user_ban
from chat import services
from chat.models import Conversation, Message, MessageKey
from chatterbox.errors import Forbidden, Invalid, NotFound, NotMember, RateLimited, TooLarge
from tests.chat.conftest import make_channel, make_direct, make_group, send, user_messages

pytestmark = pytest.mark.django_db


def b64(size: int) -> str:
    return base64.b64encode(b"\x01" * size).decode()


def encrypted_send(sender, conversation, *members, client_id="e", **overrides):
    fields = {"ciphertext": b64(40), "nonce": b64(24), "keys": {str(m.pk): b64(104) for m in members}}
    return services.message_send(
        sender=sender, conversation_id=conversation.pk, client_id=client_id, **{**fields, **overrides}
    )


def test_ids_grow_within_a_conversation(alice, bob):
    group = make_group(alice, bob)
    other = make_group(bob, alice, name="other")
    ids = [send(alice if i % 2 else bob, group if i % 3 else other, f"m{i}").pk for i in range(9)]
    assert ids == sorted(ids)
    history, _ = services.history_page(user=alice, conversation_id=group.pk)
    assert [m["id"] for m in history] == sorted(m["id"] for m in history)


def test_a_page_whose_membership_the_caller_knows_shows_a_stranger_nothing(alice, bob, carol):
    """member_known skips the query that says why; the page itself still reads only what the user may see."""
    group = make_group(alice, bob)
    send(alice, group, "for members")
    page, _ = services.history_page(user=bob, conversation_id=group.pk, after=0, member_known=True)
    assert [m["body"] for m in page if m["kind"] == "text"] == ["for members"]
    assert services.history_page(user=carol, conversation_id=group.pk, after=0, member_known=True) == ([], False)
    with pytest.raises(NotMember):
        services.history_page(user=carol, conversation_id=group.pk, after=0)
    # Known to be plaintext too: the plain query gives the same page as the one that joins keys.
    full = services.history_page(user=bob, conversation_id=group.pk, after=0, limit=2)
    assert (
        services.history_page(user=bob, conversation_id=group.pk, after=0, limit=2, member_known=True, plaintext=True)
        == full
    )


def test_duplicate_client_id_stores_nothing(alice, bob):
    group = make_group(alice, bob)
    first, created = services.message_send(sender=alice, conversation_id=group.pk, client_id="x", body="one")
    again, created_again = services.message_send(sender=alice, conversation_id=group.pk, client_id="x", body="two")
    assert (created, created_again, again.pk, again.body) == (True, False, first.pk, "one")
    # Another sender may use the same client id.
    assert services.message_send(sender=bob, conversation_id=group.pk, client_id="x", body="bob's")[1]
    # A resend aimed at another conversation is still the first message.
    channel = make_channel(alice)
    assert services.message_send(sender=alice, conversation_id=channel.pk, client_id="x", body="3")[0].pk == first.pk
    assert Message.objects.exclude(kind="system").count() == 2


@pytest.mark.parametrize(
    ("client_id", "body", "error"),
    [
        ("", "hi", Invalid),
        ("c" * 65, "hi", Invalid),
        ("c", "   ", Invalid),
        ("c", None, Invalid),
        ("c", "x" * 4001, TooLarge),
    ],
)
def test_plaintext_body_checks(alice, client_id, body, error):
    group = make_group(alice)
    with pytest.raises(error):
        services.message_send(sender=alice, conversation_id=group.pk, client_id=client_id, body=body)
    assert Message.objects.exclude(kind="system").count() == 0


def test_body_limit_follows_settings(alice, settings):
    settings.CHAT_MESSAGE_MAX_CHARS = 10
    group = make_group(alice)
    with pytest.raises(TooLarge):
        send(alice, group, "x" * 11)
    assert send(alice, group, "x" * 10).body == "x" * 10


def test_rate_limit_default_and_off(alice, settings):
    group = make_group(alice)
    for i in range(20):
        send(alice, group, f"m{i}")
    with pytest.raises(RateLimited) as refused:
        send(alice, group, "one too many")
    assert refused.value.extra["retry_after"] >= 1
    assert Message.objects.exclude(kind="system").count() == 20
    settings.CHAT_RATE_LIMIT = "off"
    send(alice, group, "unlimited")
    settings.CHAT_RATE_LIMIT = "twenty"
    with pytest.raises(ImproperlyConfigured):
        send(alice, group, "misconfigured")


def test_rate_limit_is_per_user(alice, bob, settings):
    settings.CHAT_RATE_LIMIT = "1/60"
    group = make_group(alice, bob)
    send(alice, group, "a")
    send(bob, group, "b")
    with pytest.raises(RateLimited):
        send(alice, group, "a again")


def test_rate_limit_window_cannot_be_straddled(alice, monkeypatch, settings):
    settings.CHAT_RATE_LIMIT = "2/60"
    group = make_group(alice)
    clock = {"now": 6000 - 0.1}
    monkeypatch.setattr(time, "time", lambda: clock["now"])
    send(alice, group, "a")
    send(alice, group, "b")
    # Just past the boundary a fixed window would start again from zero.
    clock["now"] = 6000 + 0.1
    with pytest.raises(RateLimited) as refused:
        send(alice, group, "c")
    assert refused.value.extra["retry_after"] == 30
    # Waiting as told is enough, because the refused message was not counted.
    clock["now"] = 6000 + 31
    send(alice, group, "c")
    assert Message.objects.exclude(kind="system").count() == 3


def test_non_member_and_banned_cannot_send(alice, bob):
    group = make_group(alice, bob)
    channel = make_channel(alice)
    with pytest.raises(NotMember):
        send(bob, channel, "hi")
    with pytest.raises(NotFound):
        services.message_send(sender=bob, conversation_id=999999, client_id="c", body="x")
    user_ban(user=bob)
    with pytest.raises(Forbidden):
        send(bob, group, "still here")


@pytest.mark.parametrize(
    ("overrides", "error", "field"),
    [
        ({"body": "plain"}, Invalid, None),
        ({"ciphertext": None}, Invalid, None),
        ({"ciphertext": "not base64!"}, Invalid, "ciphertext"),
        ({"ciphertext": b64(8)}, Invalid, "ciphertext"),
        ({"ciphertext": b64(64 * 1024 + 1)}, TooLarge, "ciphertext"),
        ({"nonce": b64(12)}, Invalid, "nonce"),
        ({"nonce": 5}, Invalid, "nonce"),
        ({"keys": []}, Invalid, "keys"),
        ({"keys": {"alice": b64(104)}}, Invalid, "keys"),
        ({"keys": {"1": ""}}, Invalid, "keys"),
        ({"keys": {"1": b64(300)}}, TooLarge, "keys"),
    ],
)
def test_encrypted_content_checks(alice, bob, overrides, error, field):
    direct = make_direct(alice, bob)
    with pytest.raises(error) as refused:
        encrypted_send(alice, direct, alice, bob, **overrides)
    assert refused.value.extra.get("field") == field
    assert Message.objects.exclude(kind="system").count() == 0


def test_keys_must_cover_exactly_the_members(alice, bob, carol):
    group = make_group(alice, bob, encrypted=True)
    with pytest.raises(Invalid) as refused:
        encrypted_send(alice, group, alice, carol)
    assert (refused.value.extra["missing"], refused.value.extra["not_members"]) == ([bob.pk], [carol.pk])
    message, _ = encrypted_send(alice, group, alice, bob)
    assert set(MessageKey.objects.filter(message=message).values_list("user_id", flat=True)) == {alice.pk, bob.pk}


def test_plaintext_conversation_refuses_ciphertext(alice):
    group = make_group(alice)
    with pytest.raises(Invalid):
        encrypted_send(alice, group, alice)


def test_reply_to_must_be_in_the_same_conversation(alice, bob):
    group = make_group(alice, bob)
    elsewhere = send(alice, make_channel(alice), "elsewhere")
    original = send(bob, group, "question")
    with pytest.raises(Invalid):
        services.message_send(sender=alice, conversation_id=group.pk, client_id="r1", body="a", reply_to=elsewhere.pk)
    services.message_send(sender=alice, conversation_id=group.pk, client_id="r2", body="answer", reply_to=original.pk)
    history, _ = services.history_page(user=bob, conversation_id=group.pk)
    assert history[-1]["reply_to"] == original.pk


def test_edit_encrypted_replaces_the_keys(alice, bob, carol):
    group = make_group(alice, bob, encrypted=True)
    message, _ = encrypted_send(alice, group, alice, bob)
    services.membership_add(actor=alice, conversation_id=group.pk, username="carol")
    with pytest.raises(Invalid):
        services.message_edit(editor=alice, message_id=message.pk, ciphertext=b64(40), nonce=b64(24), keys={})
    keys = {str(u.pk): b64(104) for u in (alice, bob, carol)}
    services.message_edit(editor=alice, message_id=message.pk, ciphertext=b64(50), nonce=b64(24), keys=keys)
    message.refresh_from_db()
    assert message.edited_at is not None and base64.b64decode(message.ciphertext) == b"\x01" * 50
    assert message.keys.count() == 3


def test_delete_rules(alice, bob, carol, make_user):
    channel = make_channel(alice, bob, carol)
    services.membership_set_role(actor=alice, conversation_id=channel.pk, username="carol", role="admin")
    by_bob = send(bob, channel, "mine")
    by_alice = send(alice, channel, "owner's")
    with pytest.raises(Forbidden):
        services.message_delete(actor=bob, message_id=by_alice.pk)
    # The sender, an admin, and staff who are not even members may delete.
    assert services.message_delete(actor=bob, message_id=by_bob.pk).deleted
    assert services.message_delete(actor=carol, message_id=by_alice.pk).deleted
    staff = make_user("moderator", is_staff=True)
    assert services.message_delete(actor=staff, message_id=send(bob, channel, "spam").pk).deleted
    stranger = make_user("stranger")
    with pytest.raises(NotMember):
        services.message_delete(actor=stranger, message_id=by_bob.pk)
    # Deleting twice is harmless.
    assert services.message_delete(actor=bob, message_id=by_bob.pk).deleted
    assert Message.objects.get(pk=by_bob.pk).body == ""


def test_read_mark_moves_forward_only_up_to_the_newest(alice, bob):
    group = make_group(alice, bob)
    first, second = send(alice, group, "1"), send(alice, group, "2")
    assert services.read_mark(user=bob, conversation_id=group.pk, up_to=first.pk) == first.pk
    assert services.read_mark(user=bob, conversation_id=group.pk, up_to=0) == first.pk
    assert services.read_mark(user=bob, conversation_id=group.pk, up_to=10**12) == second.pk
    with pytest.raises(NotFound):
        services.read_mark(user=bob, conversation_id=10**9, up_to=1)


def test_new_member_starts_with_nothing_unread(alice, bob):
    channel = make_channel(alice)
    for i in range(3):
        send(alice, channel, f"old {i}")
    services.channel_join(user=bob, conversation_id=channel.pk)
    (row,) = Conversation.objects.for_user(bob)
    assert row.unread == 0
    send(alice, channel, "new")
    (row,) = Conversation.objects.for_user(bob)
    assert row.unread == 1
    # A public channel's history is open to members who joined later.
    page = services.history_page(user=bob, conversation_id=channel.pk)[0]
    assert len(user_messages(page)) == 4
    assert [m["system"]["event"] for m in page if m["kind"] == "system"] == ["created", "member.joined"]


def test_group_size_limit(alice, bob, carol, settings):
    settings.CHAT_GROUP_MAX_MEMBERS = 2
    with pytest.raises(Invalid):
        make_group(alice, bob, carol)
    group = make_group(alice, bob)
    with pytest.raises(Invalid):
        services.membership_add(actor=alice, conversation_id=group.pk, username="carol")


def test_admin_pages(alice, bob, make_user, client_of):
    moderator = make_user("mod", is_staff=True, is_superuser=True)
    direct = make_direct(alice, bob)
    encrypted_send(alice, direct, alice, bob)
    channel = make_channel(alice, bob)
    send(bob, channel, "findable words")
    admin = client_of(moderator)
    page = admin.get("/admin/chat/message/").content.decode()
    assert "(end-to-end encrypted)" in page and "findable words" in page
    found = admin.get("/admin/chat/message/?q=findable").content.decode()
    assert "findable words" in found and "(end-to-end encrypted)" not in found
    assert admin.get(f"/admin/chat/conversation/{channel.pk}/change/").status_code == 200
    assert admin.get("/admin/chat/membership/?q=bob").status_code == 200
    assert admin.get("/admin/chat/message/add/").status_code == 403
    response = admin.post(f"/admin/chat/conversation/{channel.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Conversation.objects.filter(pk=channel.pk).exists()
