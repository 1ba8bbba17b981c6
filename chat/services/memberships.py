"""Who belongs to a conversation: inviting, leaving, removing, roles and muting."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

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
from moderation.audit import audit_record

Kind = Conversation.Kind
Role = Membership.Role

MUTE_MAX = timedelta(days=366)


@transaction.atomic
def membership_add(*, actor: User, conversation_id: int, username: str) -> tuple[Conversation, bool]:
    """Invite a user (group or channel owner and admins, or staff); return whether they were new."""
    conversation = _conversation_get(conversation_id, lock=True)
    if conversation.kind == Kind.DIRECT:
        raise Forbidden("A direct conversation has exactly two members.")
    mine = _staff_or_membership(conversation, actor)
    if not actor.is_staff and not mine.is_moderator:
        raise Forbidden("Only the owner and admins can invite.")
    (user,) = _active_users([username])
    _archived_check(conversation, user)
    if conversation.kind == Kind.GROUP and conversation.memberships.count() >= settings.CHAT_GROUP_MAX_MEMBERS:
        raise Invalid(f"A group has at most {settings.CHAT_GROUP_MAX_MEMBERS} members.")
    added = _member_add(conversation, user)
    if added:
        audit_record(actor=actor, action="member.added", target_user=user, conversation=conversation)
        system_message_post(conversation, event="member.added", actor=actor, user=user)
    return conversation, added


def _archived_check(conversation: Conversation, user: User) -> None:
    """Refuse a newcomer to an archived conversation: it is closed until unarchived (a member stays one)."""
    if conversation.archived and not conversation.memberships.filter(user=user).exists():
        raise Forbidden("This conversation is archived: nobody can join it until it is unarchived.")


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
def membership_remove(*, actor: User, conversation_id: int, username: str, reason: str = "") -> None:
    """Leave a conversation, or remove someone from it (owner and admins; only the owner removes admins).

    Staff (the admin site) may remove anyone, members of the conversation or not.
    """
    conversation = _conversation_get(conversation_id, lock=True)
    if conversation.kind == Kind.DIRECT:
        raise Forbidden("You cannot leave a direct conversation.")
    mine = _staff_or_membership(conversation, actor)
    leaving = mine is not None and username.lower() == actor.username.lower()
    target = mine if leaving else _member_named(conversation, username)
    if not leaving:
        # Staff are the site's moderators: they may remove anyone; the owner's successor follows.
        if not actor.is_staff:
            _removal_check(mine, target)
        audit_record(
            actor=actor, action="member.removed", target_user=target.user, conversation=conversation, reason=reason
        )
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


def _removal_check(mine: Membership, target: Membership, verb: str = "remove") -> None:
    """The rule for removing and muting: owner and admins; nobody touches the owner; only the owner, admins."""
    if not mine.is_moderator:
        raise Forbidden(f"Only the owner and admins can {verb} members.")
    if target.role == Role.OWNER:
        raise Forbidden(f"Nobody can {verb} the owner.")
    if target.role == Role.ADMIN and mine.role != Role.OWNER:
        raise Forbidden(f"Only the owner can {verb} an admin.")


def _staff_or_membership(conversation: Conversation, actor: User) -> Membership | None:
    """Return the actor's membership; None for staff who are not members (they act as site moderators)."""
    membership = Membership.objects.filter(conversation=conversation, user=actor).first()
    if membership is None and not actor.is_staff:
        _membership_require(conversation, actor)
    return membership


def _owner_succeed(members: list[Membership]) -> Membership:
    """Hand a group whose owner left to the longest-standing admin, else member; return the heir."""
    heir = next((m for m in members if m.role == Role.ADMIN), members[0])
    heir.role = Role.OWNER
    heir.save(update_fields=["role"])
    return heir


@transaction.atomic
def membership_set_role(*, actor: User, conversation_id: int, username: str, role: str) -> Conversation:
    """Promote or demote a member, or hand over ownership.

    The owner promotes and demotes anyone and may make another member owner (becoming an admin).
    Admins promote members to admin and may step down themselves; nobody changes the owner's role.
    """
    if role not in {Role.OWNER, Role.ADMIN, Role.MEMBER}:
        raise Invalid('role must be "owner", "admin" or "member".', field="role")
    conversation = _conversation_get(conversation_id, lock=True)
    if conversation.kind == Kind.DIRECT:
        raise Forbidden("A direct conversation has no roles.")
    mine = _membership_require(conversation, actor)
    target = _member_named(conversation, username)
    _role_change_check(mine, target, role)
    if target.role == role:
        return conversation
    audit_record(actor=actor, action="role.changed", target_user=target.user, conversation=conversation, role=role)
    if role == Role.OWNER:
        mine.role = Role.ADMIN
        mine.save(update_fields=["role"])
    target.role = role
    target.save(update_fields=["role"])
    system_message_post(conversation, event="role.changed", actor=actor, user=target.user, role=role)
    _announce_members(conversation, list(Membership.objects.with_users().filter(conversation=conversation)))
    return conversation


def _role_change_check(mine: Membership, target: Membership, role: str) -> None:
    if not mine.is_moderator:
        raise Forbidden("Only the owner and admins can change roles.")
    if target.role == Role.OWNER:
        raise Forbidden("The owner's role cannot change; the owner can hand ownership to someone else.")
    if role == Role.OWNER and mine.role != Role.OWNER:
        raise Forbidden("Only the owner can hand over ownership.")
    if mine.role == Role.ADMIN and target.role == Role.ADMIN and target.pk != mine.pk:
        raise Forbidden("Only the owner can demote an admin.")


@transaction.atomic
def membership_mute_until(*, actor: User, conversation_id: int, username: str, muted_until: datetime | None) -> None:
    """Stop a member from writing until a time (owner and admins; only the owner mutes admins); None lifts it."""
    conversation = _conversation_get(conversation_id, lock=True)
    if conversation.kind == Kind.DIRECT:
        raise Forbidden("Nobody can be muted in a direct conversation; block the person instead.")
    mine = _staff_or_membership(conversation, actor)
    target = _member_named(conversation, username)
    if not actor.is_staff:
        if target == mine:
            raise Forbidden("You cannot mute yourself.")
        _removal_check(mine, target, "mute")
    if muted_until is not None:
        if muted_until <= timezone.now():
            raise Invalid("muted_until must be in the future (or null to lift the mute).", field="muted_until")
        if muted_until > timezone.now() + MUTE_MAX:
            raise Invalid(f"A mute lasts at most {MUTE_MAX.days} days.", field="muted_until")
    target.muted_until = muted_until
    target.save(update_fields=["muted_until"])
    action = "member.muted" if muted_until else "member.unmuted"
    audit_record(
        actor=actor,
        action=action,
        target_user=target.user,
        conversation=conversation,
        muted_until=muted_until.isoformat() if muted_until else None,
    )
    until = events.timestamp(muted_until) if muted_until else None
    system_message_post(conversation, event="member.muted", actor=actor, user=target.user, until=until)
    _announce_members(conversation, list(Membership.objects.with_users().filter(conversation=conversation)))


def membership_mute(*, user: User, conversation_id: int, muted: bool) -> None:
    """Mute or unmute a conversation for this user only."""
    membership = _membership_require(_conversation_get(conversation_id), user)
    membership.muted = muted
    membership.save(update_fields=["muted"])
