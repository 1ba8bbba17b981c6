"""Roles, mutes, archives and settings in groups and channels: each rule, its audit row and its system line."""

from datetime import timedelta

import pytest
from django.utils import timezone

from chat import services
from chat.models import Conversation, Membership, Message
from chatterbox.errors import Forbidden, Invalid
from moderation.models import AuditEntry
from tests.chat.conftest import db, make_channel, make_direct, make_group, send

pytestmark = pytest.mark.django_db


def patch(client, path, body):
    return client.patch(path, body, content_type="application/json")


def role_of(conversation, user) -> str:
    return Membership.objects.get(conversation=conversation, user=user).role


# The lines every conversation starts with (who created it, who was added or joined).
MEMBERSHIP_EVENTS = {"created", "member.added", "member.joined"}


def system_lines(conversation) -> list[str]:
    """Return the system lines that moderation actions left, oldest first."""
    lines = Message.objects.filter(conversation=conversation, kind="system").order_by("id")
    return [line.body for line in lines if line.system.get("event") not in MEMBERSHIP_EVENTS]


def later(**delta):
    return timezone.now() + timedelta(**delta)


@pytest.fixture
def team(alice, bob, carol, make_user):
    """alice owns the group, bob is an admin, carol and dave are members."""
    dave = make_user("dave")
    group = make_group(alice, bob, carol, dave)
    services.membership_set_role(actor=alice, conversation_id=group.pk, username="bob", role="admin")
    AuditEntry.objects.all().delete()
    Message.objects.filter(conversation=group).delete()
    return group


def test_a_member_cannot_remove_mute_or_promote(team, carol):
    with pytest.raises(Forbidden, match="Only the owner and admins can remove"):
        services.membership_remove(actor=carol, conversation_id=team.pk, username="dave")
    with pytest.raises(Forbidden, match="Only the owner and admins can mute"):
        services.membership_mute_until(
            actor=carol, conversation_id=team.pk, username="dave", muted_until=later(hours=1)
        )
    with pytest.raises(Forbidden, match="Only the owner and admins can change roles"):
        services.membership_set_role(actor=carol, conversation_id=team.pk, username="dave", role="admin")
    assert not AuditEntry.objects.exists()


def test_an_admin_cannot_remove_mute_or_demote_the_owner(team, bob):
    with pytest.raises(Forbidden, match="Nobody can remove the owner"):
        services.membership_remove(actor=bob, conversation_id=team.pk, username="alice")
    with pytest.raises(Forbidden, match="Nobody can mute the owner"):
        services.membership_mute_until(actor=bob, conversation_id=team.pk, username="alice", muted_until=later(hours=1))
    with pytest.raises(Forbidden, match="The owner's role cannot change"):
        services.membership_set_role(actor=bob, conversation_id=team.pk, username="alice", role="member")
    with pytest.raises(Forbidden, match="Only the owner can hand over ownership"):
        services.membership_set_role(actor=bob, conversation_id=team.pk, username="bob", role="owner")


def test_an_admin_promotes_members_and_steps_down_but_does_not_demote_other_admins(team, alice, bob, carol):
    services.membership_set_role(actor=bob, conversation_id=team.pk, username="carol", role="admin")
    with pytest.raises(Forbidden, match="Only the owner can demote an admin"):
        services.membership_set_role(actor=bob, conversation_id=team.pk, username="carol", role="member")
    services.membership_set_role(actor=bob, conversation_id=team.pk, username="bob", role="member")
    assert (role_of(team, bob), role_of(team, carol)) == ("member", "admin")
    assert system_lines(team) == ["Bob Builder made Carol Danvers an admin", "Bob Builder is now a member"]


def test_the_owner_transfers_ownership(team, alice, carol):
    services.membership_set_role(actor=alice, conversation_id=team.pk, username="carol", role="owner")
    assert (role_of(team, alice), role_of(team, carol)) == ("admin", "owner")
    assert system_lines(team) == ["Alice Liddell made Carol Danvers the owner"]
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.target_user.username, entry.detail) == (
        alice,
        "role.changed",
        "carol",
        {"role": "owner"},
    )
    # The new owner now rules; the old one is an admin.
    with pytest.raises(Forbidden):
        services.membership_set_role(actor=alice, conversation_id=team.pk, username="carol", role="member")


def test_a_muted_member_cannot_send_until_the_time_passes(team, alice, carol):
    until = later(minutes=30)
    services.membership_mute_until(actor=alice, conversation_id=team.pk, username="carol", muted_until=until)
    with pytest.raises(Forbidden) as refused:
        send(carol, team, "let me speak")
    assert "An admin muted you here until" in refused.value.detail and "30 min left" in refused.value.detail
    assert 1790 <= refused.value.extra["retry_after"] <= 1800
    # The time passes (moved back here rather than waited for).
    Membership.objects.filter(conversation=team, user=carol).update(muted_until=timezone.now() - timedelta(seconds=1))
    assert send(carol, team, "back").body == "back"
    assert system_lines(team)[0].startswith("Carol Danvers was muted by Alice Liddell until ")
    assert AuditEntry.objects.get().action == "member.muted"


def test_a_mute_is_lifted_with_null_and_checked(team, alice, bob, carol):
    services.membership_mute_until(actor=alice, conversation_id=team.pk, username="carol", muted_until=later(days=1))
    services.membership_mute_until(actor=alice, conversation_id=team.pk, username="carol", muted_until=None)
    assert send(carol, team, "free").body == "free"
    with pytest.raises(Invalid, match="in the future"):
        services.membership_mute_until(
            actor=alice, conversation_id=team.pk, username="carol", muted_until=later(hours=-1)
        )
    with pytest.raises(Invalid, match="at most 366 days"):
        services.membership_mute_until(
            actor=alice, conversation_id=team.pk, username="carol", muted_until=later(days=400)
        )
    services.membership_set_role(actor=alice, conversation_id=team.pk, username="dave", role="admin")
    with pytest.raises(Forbidden, match="Only the owner can mute an admin"):
        services.membership_mute_until(actor=bob, conversation_id=team.pk, username="dave", muted_until=later(hours=1))
    with pytest.raises(Forbidden, match="cannot mute yourself"):
        services.membership_mute_until(
            actor=alice, conversation_id=team.pk, username="alice", muted_until=later(hours=1)
        )
    direct = make_direct(alice, carol)
    with pytest.raises(Forbidden, match="block the person instead"):
        services.membership_mute_until(
            actor=alice, conversation_id=direct.pk, username="carol", muted_until=later(hours=1)
        )
    assert [e.action for e in AuditEntry.objects.order_by("id")] == ["member.muted", "member.unmuted", "role.changed"]


def test_mute_through_the_api(team, alice, carol, client_of):
    path = f"/api/conversations/{team.pk}/members/carol/"
    answer = patch(client_of(alice), path, {"muted_until": "2099-01-01T00:00:00Z"})
    assert answer.status_code == 400 and answer.json()["field"] == "muted_until"
    until = later(hours=2).isoformat()
    conversation = patch(client_of(alice), path, {"muted_until": until}).json()
    carol_json = next(member for member in conversation["members"] if member["username"] == "carol")
    assert carol_json["muted_until"] is not None
    for bad in ["tomorrow", "2030-13-01T00:00:00Z", "2030-01-01T00:00:00", 5]:
        answer = patch(client_of(alice), path, {"muted_until": bad})
        assert (answer.status_code, answer.json()["field"]) == (400, "muted_until"), bad
    assert (
        patch(client_of(carol), f"/api/conversations/{team.pk}/members/dave/", {"muted_until": until}).status_code
        == 403
    )
    assert patch(client_of(alice), path, {"muted_until": None}).json()["members"][2]["muted_until"] is None


def test_an_archived_channel_refuses_sends_and_stays_readable(alice, bob, client_of):
    channel = make_channel(alice, bob)
    send(bob, channel, "before")
    answer = patch(client_of(alice), f"/api/conversations/{channel.pk}/", {"archived": True})
    assert answer.status_code == 200 and answer.json()["archived"] is True
    for user in (alice, bob):
        with pytest.raises(Forbidden, match="archived"):
            send(user, channel, "after")
    history = client_of(bob).get(f"/api/conversations/{channel.pk}/messages/").json()["messages"]
    moderated = [m for m in history if (m.get("system") or {}).get("event") not in MEMBERSHIP_EVENTS]
    assert [m["body"] for m in moderated] == ["before", "Alice Liddell archived the channel"]
    assert [m["kind"] for m in moderated] == ["text", "system"]
    assert moderated[-1]["system"]["event"] == "archived"
    patch(client_of(alice), f"/api/conversations/{channel.pk}/", {"archived": False})
    assert send(bob, channel, "again").body == "again"
    assert [e.action for e in AuditEntry.objects.order_by("id")] == ["conversation.archived", "conversation.unarchived"]


def test_an_archived_conversation_takes_no_newcomers(alice, bob, carol, client_of):
    channel = make_channel(alice, bob, name="old-news")
    group = make_group(alice, bob, name="Old team")
    for conversation in (channel, group):
        patch(client_of(alice), f"/api/conversations/{conversation.pk}/", {"archived": True})
    joined = client_of(carol).post(f"/api/conversations/{channel.pk}/join/")
    assert joined.status_code == 403 and "archived" in joined.json()["detail"]
    invited = client_of(alice).post(
        f"/api/conversations/{group.pk}/members/", {"username": "carol"}, "application/json"
    )
    assert invited.status_code == 403 and "archived" in invited.json()["detail"]
    assert not Membership.objects.filter(user=carol).exists()
    # Its members still find it in the directory; nobody else does.
    assert [c["name"] for c in client_of(bob).get("/api/channels/").json()] == ["old-news"]
    assert client_of(carol).get("/api/channels/").json() == []
    # Inviting a member again is no change, archived or not; unarchived, it takes newcomers again.
    assert (
        client_of(alice)
        .post(f"/api/conversations/{group.pk}/members/", {"username": "bob"}, "application/json")
        .status_code
        == 200
    )
    patch(client_of(alice), f"/api/conversations/{channel.pk}/", {"archived": False})
    assert client_of(carol).post(f"/api/conversations/{channel.pk}/join/").status_code == 201


def test_admins_rename_and_change_the_topic_members_cannot(team, bob, carol, client_of):
    path = f"/api/conversations/{team.pk}/"
    assert patch(client_of(carol), path, {"name": "Mine"}).status_code == 403
    answer = patch(client_of(bob), path, {"name": "  Crew ", "topic": "Ship things"}).json()
    assert (answer["name"], answer["topic"]) == ("Crew", "Ship things")
    assert system_lines(team) == [
        "Bob Builder renamed the group to Crew",
        "Bob Builder changed the topic to: Ship things",
    ]
    assert patch(client_of(bob), path, {"name": ""}).json()["field"] == "name"
    assert patch(client_of(bob), path, {"topic": "x" * 251}).json()["field"] == "topic"
    assert patch(client_of(bob), path, {"archived": "yes"}).status_code == 400
    assert [e.action for e in AuditEntry.objects.order_by("id")] == [
        "conversation.renamed",
        "conversation.topic_changed",
    ]


def test_system_lines_reach_every_member_of_an_encrypted_group(alice, bob, client_of):
    group = make_group(alice, bob, encrypted=True)
    patch(client_of(alice), f"/api/conversations/{group.pk}/", {"topic": "secret plans"})
    history = client_of(bob).get(f"/api/conversations/{group.pk}/messages/").json()["messages"]
    assert history[-1]["body"] == "Alice Liddell changed the topic to: secret plans"
    assert history[-1]["system"]["event"] == "topic.changed"
    assert "ciphertext" not in history[-1]


def test_staff_archive_from_the_admin(admin_client, alice, bob):
    channel = make_channel(alice, bob)
    admin_client.post(
        "/admin/chat/conversation/", {"action": "archive_conversations", "_selected_action": [channel.pk]}
    )
    assert Conversation.objects.get(pk=channel.pk).archived
    assert AuditEntry.objects.get().actor.username == "admin"


@pytest.mark.django_db(transaction=True)
async def test_a_mute_and_an_archive_reach_open_sockets_at_once(alice, bob, carol, connect):
    group = await db(make_group)(alice, bob, carol)
    carol_socket = await connect(carol)
    frame = {"type": "message.send", "conversation": group.pk, "body": "hi"}
    await carol_socket.send({**frame, "client_id": "c1"})
    assert (await carol_socket.receive_type("message.ack"))["client_id"] == "c1"
    await carol_socket.receive_type("message.new")

    await db(services.membership_mute_until)(
        actor=alice, conversation_id=group.pk, username="carol", muted_until=later(minutes=10)
    )
    assert (await carol_socket.receive_type("message.new"))["message"]["kind"] == "system"
    updated = await carol_socket.receive_type("conversation.updated")
    assert next(m for m in updated["conversation"]["members"] if m["id"] == carol.pk)["muted_until"]
    await carol_socket.send({**frame, "client_id": "c2"})
    error = await carol_socket.receive_type("error")
    assert (error["code"], error["client_id"]) == ("forbidden", "c2")
    assert "10 min left" in error["detail"] and error["retry_after"] > 500

    await db(services.conversation_update)(actor=alice, conversation_id=group.pk, changes={"archived": True})
    await carol_socket.receive_type("message.new")
    assert (await carol_socket.receive_type("conversation.updated"))["conversation"]["archived"] is True
    await carol_socket.send({**frame, "client_id": "c3"})
    assert "archived" in (await carol_socket.receive_type("error"))["detail"]
