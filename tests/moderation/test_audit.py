"""The audit log: one row for every moderation action, from the admin and from group owners alike."""

import pytest
from django.contrib.sessions.models import Session

from accounts import services as account_services
from chat import services
from chat.models import Conversation, Membership
from moderation import services as moderation
from moderation.models import AuditEntry
from tests.chat.conftest import make_channel, make_group, send

pytestmark = pytest.mark.django_db


def rows():
    return list(
        AuditEntry.objects.order_by("id").values_list("actor__username", "action", "target_user__username", "reason")
    )


def test_group_owners_actions_are_audited(alice, bob, carol):
    group = make_group(alice, bob)
    services.membership_add(actor=alice, conversation_id=group.pk, username="carol")
    services.membership_set_role(actor=alice, conversation_id=group.pk, username="carol", role="admin")
    services.message_delete(actor=carol, message_id=send(bob, group, "rude").pk)
    services.membership_remove(actor=alice, conversation_id=group.pk, username="bob", reason="rude")
    assert rows() == [
        ("alice", "member.added", "carol", ""),
        ("alice", "role.changed", "carol", ""),
        ("carol", "message.deleted", "bob", ""),
        ("alice", "member.removed", "bob", "rude"),
    ]
    entry = AuditEntry.objects.get(action="role.changed")
    assert (entry.conversation, entry.conversation_label, entry.detail) == (group, "Team", {"role": "admin"})


def test_own_actions_are_not_moderation(alice, bob):
    group = make_group(alice, bob)
    services.message_delete(actor=bob, message_id=send(bob, group, "oops").pk)
    services.membership_remove(actor=bob, conversation_id=group.pk, username="bob")
    assert rows() == []


def test_site_moderation_is_audited(alice, bob, client_of, make_user):
    moderator = make_user("mod", is_staff=True)
    channel = make_channel(alice, bob)
    message = send(bob, channel, "spam")
    client_of(bob)  # an open session
    services.message_delete(actor=moderator, message_id=message.pk, reason="spam")
    services.membership_remove(actor=moderator, conversation_id=channel.pk, username="alice")
    account_services.user_ban(user=bob, actor=moderator, reason="spammer")
    account_services.user_unban(user=bob, actor=moderator)
    services.conversation_delete(conversation=Conversation.objects.get(pk=channel.pk), actor=moderator)
    report, _ = moderation.report_create(reporter=alice, username="bob", reason="spam")
    moderation.report_resolve(moderator=moderator, report_id=report.pk, action="dismiss", reason="old news")
    assert rows() == [
        ("mod", "message.deleted", "bob", "spam"),
        ("mod", "member.removed", "alice", ""),
        ("mod", "user.banned", "bob", "spammer"),
        ("mod", "user.unbanned", "bob", ""),
        ("mod", "conversation.deleted", None, ""),
        ("mod", "report.dismissed", "bob", "old news"),
    ]
    # The conversation is gone; its entry still names it.
    assert AuditEntry.objects.get(action="conversation.deleted").conversation_label == "general"


def test_a_ban_ends_the_users_sessions_only(alice, bob, client_of):
    bob_client, alice_client = client_of(bob), client_of(alice)
    assert Session.objects.count() == 2
    account_services.user_ban(user=bob)
    assert Session.objects.count() == 1
    assert bob_client.get("/api/me/").status_code == 401
    assert alice_client.get("/api/me/").status_code == 200


def test_staff_remove_members_through_the_admin_action(admin_client, alice, bob):
    group = make_group(alice, bob)
    membership = Membership.objects.get(conversation=group, user=bob)
    response = admin_client.post(
        "/admin/chat/membership/", {"action": "remove_members", "_selected_action": [membership.pk]}, follow=True
    )
    assert "Removed 1 member(s)." in response.content.decode()
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert rows() == [("admin", "member.removed", "bob", "")]


def test_the_ban_action_asks_for_a_reason_first(admin_client, bob):
    page = admin_client.post("/admin/accounts/user/", {"action": "ban_users", "_selected_action": [bob.pk]})
    assert 'name="reason"' in page.content.decode()
    bob.refresh_from_db()
    assert bob.is_active
    admin_client.post(
        "/admin/accounts/user/",
        {"action": "ban_users", "_selected_action": [bob.pk], "confirm_ban": "1", "reason": "threats"},
    )
    assert rows() == [("admin", "user.banned", "bob", "threats")]


def test_the_audit_log_is_read_only_and_filterable(admin_client, alice, bob, carol):
    group = make_group(alice, bob, carol)
    services.membership_remove(actor=alice, conversation_id=group.pk, username="bob")
    services.membership_remove(actor=alice, conversation_id=group.pk, username="carol")
    listing = admin_client.get(f"/admin/moderation/auditentry/?target_user__id__exact={bob.pk}").content.decode()
    assert "member.removed" in listing and "1 audit entry" in listing
    entry = AuditEntry.objects.first()
    page = admin_client.get(f"/admin/moderation/auditentry/{entry.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    assert admin_client.get("/admin/moderation/auditentry/add/").status_code == 403
    assert admin_client.post(f"/admin/moderation/auditentry/{entry.pk}/delete/").status_code == 403


def test_the_user_page_shows_recent_activity(admin_client, alice, bob):
    channel = make_channel(alice, bob)
    send(bob, channel, "hello from bob")
    moderation.report_create(reporter=alice, username="bob", reason="spam")
    page = admin_client.get(f"/admin/accounts/user/{bob.pk}/change/").content.decode()
    assert "hello from bob" in page and "Reports about this user" in page and "general (member)" in page
