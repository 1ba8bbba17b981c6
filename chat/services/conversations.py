"""Creating, joining and deleting conversations."""

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from chat import events
from chat.models import FROZEN_DETAIL, FROZEN_FIELDS, Conversation, Membership
from chat.services.lookups import (
    _active_users,
    _announce_added,
    _announce_members,
    _conversation_get,
    _membership_require,
)
from chat.services.memberships import _archived_check, _member_add
from chat.services.system import system_message_post
from chatterbox.errors import Forbidden, Invalid
from moderation.audit import audit_record
from moderation.restrictions import direct_block_check

Kind = Conversation.Kind
Role = Membership.Role

NAME_MAX = 80
TOPIC_MAX = 250


def conversation_create(
    *,
    creator: User,
    kind: str,
    name: str = "",
    topic: str = "",
    members: list[str] | None = None,
    encrypted: bool | None = None,
) -> tuple[Conversation, bool]:
    """Create a conversation and return it with True; a direct one that exists comes back with False."""
    members = members or []
    if kind == Kind.DIRECT:
        return _direct_get_or_create(creator=creator, members=members, encrypted=encrypted)
    if kind == Kind.GROUP:
        return _group_create(creator=creator, name=name, topic=topic, members=members, encrypted=encrypted), True
    if kind == Kind.CHANNEL:
        if encrypted:
            raise Invalid("Channels are public and never encrypted.")
        if members:
            raise Invalid("Channels are joined, not invited to: leave out members.")
        return _channel_create(creator=creator, name=name, topic=topic), True
    raise Invalid("kind must be one of: direct, group, channel.")


def _direct_get_or_create(*, creator: User, members: list[str], encrypted: bool | None) -> tuple[Conversation, bool]:
    if encrypted is False:
        raise Invalid("Direct messages are always end-to-end encrypted.")
    if len(members) != 1:
        raise Invalid("A direct conversation has one other member: send members: [username].")
    (other,) = _active_users(members)
    if other.pk == creator.pk:
        raise Invalid("You cannot start a direct conversation with yourself.")
    direct_block_check(sender=creator, other_id=other.pk)
    low, high = sorted([creator.pk, other.pk])
    direct_key = f"{low}:{high}"
    existing = Conversation.objects.filter(direct_key=direct_key).first()
    if existing:
        return existing, False
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                kind=Kind.DIRECT, encrypted=True, created_by=creator, direct_key=direct_key
            )
            _members_create(conversation, [(creator, Role.MEMBER), (other, Role.MEMBER)])
            system_message_post(conversation, event="created", actor=creator, user=other, broadcast=False)
    except IntegrityError:
        # Both asked at the same moment; the other request made it.
        return Conversation.objects.get(direct_key=direct_key), False
    return conversation, True


@transaction.atomic
def _group_create(*, creator: User, name: str, topic: str, members: list[str], encrypted: bool | None) -> Conversation:
    others = _active_users([username for username in members if username.lower() != creator.username.lower()])
    if len(others) + 1 > settings.CHAT_GROUP_MAX_MEMBERS:
        raise Invalid(f"A group has at most {settings.CHAT_GROUP_MAX_MEMBERS} members.")
    conversation = Conversation.objects.create(
        kind=Kind.GROUP,
        name=_name_check(name),
        topic=_topic_check(topic),
        encrypted=True if encrypted is None else encrypted,
        created_by=creator,
    )
    _members_create(conversation, [(creator, Role.OWNER)] + [(user, Role.MEMBER) for user in others])
    # Every member's arrival is on record from the first line on (docs/e2e.md).
    system_message_post(conversation, event="created", actor=creator, broadcast=False)
    for user in others:
        system_message_post(conversation, event="member.added", actor=creator, user=user, broadcast=False)
    return conversation


def _channel_create(*, creator: User, name: str, topic: str) -> Conversation:
    name = _name_check(name)
    _channel_name_free(name)
    try:
        return _channel_store(creator=creator, name=name, topic=topic)
    except IntegrityError:
        # Another request took the name since the check (the database refuses the second).
        raise Invalid(f"There is already a channel named {name}.", field="name") from None


@transaction.atomic
def _channel_store(*, creator: User, name: str, topic: str) -> Conversation:
    conversation = Conversation.objects.create(
        kind=Kind.CHANNEL, name=name, topic=_topic_check(topic), encrypted=False, created_by=creator
    )
    _members_create(conversation, [(creator, Role.OWNER)])
    system_message_post(conversation, event="created", actor=creator, broadcast=False)
    return conversation


def _name_check(name: str) -> str:
    name = name.strip()
    if not name:
        raise Invalid("Give the conversation a name.", field="name")
    if len(name) > NAME_MAX:
        raise Invalid(f"A name has at most {NAME_MAX} characters.", field="name")
    return name


def _topic_check(topic: str) -> str:
    topic = topic.strip()
    if len(topic) > TOPIC_MAX:
        raise Invalid(f"A topic has at most {TOPIC_MAX} characters.", field="topic")
    return topic


def _members_create(conversation: Conversation, people: list[tuple[User, str]]) -> None:
    memberships = Membership.objects.bulk_create(
        [Membership(conversation=conversation, user=user, role=role) for user, role in people]
    )
    _announce_added(conversation, memberships, memberships, last_message_id=None)


@transaction.atomic
def channel_join(*, user: User, conversation_id: int) -> tuple[Conversation, bool]:
    """Join a public channel; return it and whether the user was not a member before."""
    conversation = _conversation_get(conversation_id, lock=True)
    if conversation.kind != Kind.CHANNEL:
        raise Forbidden("Only public channels can be joined; ask a member to invite you.")
    _archived_check(conversation, user)
    joined = _member_add(conversation, user)
    if joined:
        system_message_post(conversation, event="member.joined", actor=user, user=user)
    return conversation, joined


@transaction.atomic
def conversation_update(*, actor: User, conversation_id: int, changes: dict) -> Conversation:
    """Rename, change the topic of, or archive a group or channel (owner and admins, or staff).

    Kind and encryption never change. An archived conversation stays readable and refuses
    every send until it is unarchived.
    """
    if frozen := sorted(set(changes) & set(FROZEN_FIELDS)):
        raise Forbidden(FROZEN_DETAIL, fields=frozen)
    unknown = sorted(set(changes) - {"name", "topic", "archived"})
    if unknown:
        raise Invalid(f"These fields cannot be changed here: {', '.join(unknown)}.")
    conversation = _conversation_get(conversation_id, lock=True)
    if not changes:
        return conversation
    if conversation.kind == Kind.DIRECT:
        raise Forbidden("A direct conversation has no name, topic or archive.")
    if not actor.is_staff and not _membership_require(conversation, actor).is_moderator:
        raise Forbidden("Only the owner and admins can change the conversation's settings.")
    fields = {}
    if "name" in changes:
        fields["name"] = _name_check(_string(changes["name"], "name"))
    if "topic" in changes:
        fields["topic"] = _topic_check(_string(changes["topic"], "topic"))
    if "archived" in changes:
        if not isinstance(changes["archived"], bool):
            raise Invalid("archived must be true or false.", field="archived")
        if changes["archived"] != conversation.archived:
            fields["archived_at"] = timezone.now() if changes["archived"] else None
    fields = {field: value for field, value in fields.items() if getattr(conversation, field) != value}
    if not fields:
        return conversation
    if "name" in fields and conversation.kind == Kind.CHANNEL:
        _channel_name_free(fields["name"], exclude=conversation.pk)
    for field, value in fields.items():
        setattr(conversation, field, value)
    try:
        with transaction.atomic():
            conversation.save(update_fields=list(fields))
    except IntegrityError:
        raise Invalid(f"There is already a channel named {fields['name']}.", field="name") from None
    _settings_announce(conversation, actor, fields)
    return conversation


def _settings_announce(conversation: Conversation, actor: User, fields: dict) -> None:
    """Record each changed setting in the audit log and the history, and tell the members."""
    if "name" in fields:
        audit_record(actor=actor, action="conversation.renamed", conversation=conversation, name=fields["name"])
        system_message_post(conversation, event="renamed", actor=actor, name=fields["name"])
    if "topic" in fields:
        audit_record(actor=actor, action="conversation.topic_changed", conversation=conversation, topic=fields["topic"])
        system_message_post(conversation, event="topic.changed", actor=actor, topic=fields["topic"])
    if "archived_at" in fields:
        action = "conversation.archived" if conversation.archived else "conversation.unarchived"
        audit_record(actor=actor, action=action, conversation=conversation)
        system_message_post(conversation, event="archived", actor=actor, archived=conversation.archived)
    _announce_members(conversation, list(Membership.objects.with_users().filter(conversation=conversation)))


def _string(value, field: str) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a string.", field=field)
    return value


def _channel_name_free(name: str, *, exclude: int | None = None) -> None:
    """Refuse a public channel name that another channel has, in any case."""
    taken = Conversation.objects.filter(kind=Kind.CHANNEL, name__iexact=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        raise Invalid(f"There is already a channel named {name}.", field="name")


@transaction.atomic
def conversation_delete(*, conversation: Conversation, actor: User | None = None, reason: str = "") -> None:
    """Delete a conversation with its messages (the admin's door); members' clients drop it."""
    audit_record(actor=actor, action="conversation.deleted", conversation=conversation, reason=reason)
    for user_id in conversation.memberships.values_list("user_id", flat=True):
        events.broadcast_on_commit(
            events.user_group(user_id), {"type": "chat.conversation.removed", "id": conversation.pk}
        )
    conversation.delete()
