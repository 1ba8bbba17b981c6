"""Who belongs to a conversation: inviting, leaving, removing, roles and muting."""

from django.conf import settings
from django.db import transaction

from accounts.models import User
from chat import events
from chat.models import Conversation, Membership
from chat.services.lookups import (
    _active_users,
    _announce_added,
    _announce_members,
    _conversation_get,
    _latest_message_id,
    _member_named,
    _membership_require,
)
from chat.services.system import system_message_post
from chatterbox.errors import Forbidden, Invalid

Kind = Conversation.Kind
Role = Membership.Role


@transaction.atomic
def membership_add(*, actor: User, conversation_id: int, username: str) -> tuple[Conversation, bool]:
    """Invite a user (group or channel owner and admins); return whether they were new."""
    conversation = _conversation_get(conversation_id, lock=True)
    if conversation.kind == Kind.DIRECT:
        raise Forbidden("A direct conversation has exactly two members.")
    if not _membership_require(conversation, actor).is_moderator:
        raise Forbidden("Only the owner and admins can invite.")
    (user,) = _active_users([username])
    if conversation.kind == Kind.GROUP and conversation.memberships.count() >= settings.CHAT_GROUP_MAX_MEMBERS:
        raise Invalid(f"A group has at most {settings.CHAT_GROUP_MAX_MEMBERS} members.")
    added = _member_add(conversation, user)
    if added:
        system_message_post(conversation, event="member.added", actor=actor, user=user)
    return conversation, added


def _member_add(conversation: Conversation, user: User) -> bool:
    # A newcomer has read everything so far: old history must not show up as unread.
    latest = _latest_message_id(conversation.pk)
    membership, created = Membership.objects.get_or_create(
        conversation=conversation, user=user, defaults={"last_read_message_id": latest}
    )
    if created:
        members = list(Membership.objects.with_users().filter(conversation=conversation))
        _announce_added(conversation, members, [membership], last_message_id=latest or None)
        _announce_members(conversation, members)
    return created


@transaction.atomic
def membership_remove(*, actor: User, conversation_id: int, username: str) -> None:
    """Leave a conversation, or remove someone from it (owner and admins; only the owner removes admins)."""
    conversation = _conversation_get(conversation_id, lock=True)
    if conversation.kind == Kind.DIRECT:
        raise Forbidden("You cannot leave a direct conversation.")
    mine = _membership_require(conversation, actor)
    target = mine if username.lower() == actor.username.lower() else _member_named(conversation, username)
    if target != mine:
        if not mine.is_moderator:
            raise Forbidden("Only the owner and admins can remove members.")
        if target.role == Role.OWNER:
            raise Forbidden("Nobody can remove the owner.")
        if target.role == Role.ADMIN and mine.role != Role.OWNER:
            raise Forbidden("Only the owner can remove an admin.")
    leaving = target == mine
    target.delete()
    members = list(Membership.objects.with_users().filter(conversation=conversation))
    heir = _owner_succeed(members) if target.role == Role.OWNER and members else None
    events.broadcast_on_commit(
        events.user_group(target.user_id), {"type": "chat.conversation.removed", "id": conversation.pk}
    )
    _announce_members(conversation, members)
    # After the new member list, so clients know who is meant before they read the line.
    if leaving:
        system_message_post(conversation, event="member.left", actor=actor, user=actor)
    else:
        system_message_post(conversation, event="member.removed", actor=actor, user=target.user)
    if heir is not None:
        system_message_post(conversation, event="role.changed", user=heir.user, role=Role.OWNER)


def _owner_succeed(members: list[Membership]) -> Membership:
    """Hand a group whose owner left to the longest-standing admin, else member; return the heir."""
    heir = next((m for m in members if m.role == Role.ADMIN), members[0])
    heir.role = Role.OWNER
    heir.save(update_fields=["role"])
    return heir


@transaction.atomic
def membership_set_role(*, actor: User, conversation_id: int, username: str, role: str) -> Conversation:
    """Make a member an admin or a plain member again (the owner only)."""
    if role not in {Role.ADMIN, Role.MEMBER}:
        raise Invalid('role must be "admin" or "member".', field="role")
    conversation = _conversation_get(conversation_id, lock=True)
    if _membership_require(conversation, actor).role != Role.OWNER:
        raise Forbidden("Only the owner can change roles.")
    target = _member_named(conversation, username)
    if target.role == Role.OWNER:
        raise Forbidden("The owner's role cannot change.")
    if target.role != role:
        target.role = role
        target.save(update_fields=["role"])
        system_message_post(conversation, event="role.changed", actor=actor, user=target.user, role=role)
        _announce_members(conversation, list(Membership.objects.with_users().filter(conversation=conversation)))
    return conversation


def membership_mute(*, user: User, conversation_id: int, muted: bool) -> None:
    """Mute or unmute a conversation for this user only."""
    membership = _membership_require(_conversation_get(conversation_id), user)
    membership.muted = muted
    membership.save(update_fields=["muted"])
