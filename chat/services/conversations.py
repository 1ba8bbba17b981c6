"""Creating, joining and deleting conversations."""

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from chat import events
from chat.models import Conversation, Membership
from chat.services.lookups import _active_users, _announce_added, _announce_members, _conversation_get
from chat.services.memberships import _member_add
from chat.services.moderation_notes import moderation_note_post
from chatterbox.errors import Forbidden, Invalid, NotMember
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
    if members[0] == creator.username:
        raise Invalid("You cannot start a direct conversation with yourself.")
    (other,) = _active_users(members)
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
    except IntegrityError:
        # Both asked at the same moment; the other request made it.
        return Conversation.objects.get(direct_key=direct_key), False
    return conversation, True


@transaction.atomic
def _group_create(*, creator: User, name: str, topic: str, members: list[str], encrypted: bool | None) -> Conversation:
    others = _active_users([username for username in members if username != creator.username])
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
    return conversation


@transaction.atomic
def _channel_create(*, creator: User, name: str, topic: str) -> Conversation:
    conversation = Conversation.objects.create(
        kind=Kind.CHANNEL, name=_name_check(name), topic=_topic_check(topic), encrypted=False, created_by=creator
    )
    _members_create(conversation, [(creator, Role.OWNER)])
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
    return conversation, _member_add(conversation, user)


@transaction.atomic
def conversation_delete(*, conversation: Conversation, actor: User | None = None, reason: str = "") -> None:
    """Delete a conversation with its messages (the admin's door); members' clients drop it."""
    audit_record(actor=actor, action="conversation.deleted", conversation=conversation, reason=reason)
    for user_id in conversation.memberships.values_list("user_id", flat=True):
        events.broadcast_on_commit(
            events.user_group(user_id), {"type": "chat.conversation.removed", "id": conversation.pk}
        )
    conversation.delete()


@transaction.atomic
def conversation_update(
    *,
    actor: User,
    conversation_id: int,
    name: str | None = None,
    topic: str | None = None,
    archived: bool | None = None,
) -> Conversation:
    """Rename, change the topic of, or archive a group or channel (owner and admins, or staff).

    An archived conversation stays readable and refuses every send until it is unarchived.
    """
    conversation = _conversation_get(conversation_id, lock=True)
    if conversation.kind == Kind.DIRECT:
        raise Forbidden("A direct conversation has no name, topic or archive.")
    if not actor.is_staff:
        membership = Membership.objects.filter(conversation=conversation, user=actor).first()
        if membership is None:
            raise NotMember()
        if not membership.is_moderator:
            raise Forbidden("Only the owner and admins can change the conversation's settings.")
    changes = []
    if name is not None and _name_check(name) != conversation.name:
        conversation.name = _name_check(name)
        changes.append(("name", "renamed", f"{actor.username} renamed the conversation to {conversation.name}"))
    if topic is not None and _topic_check(topic) != conversation.topic:
        conversation.topic = _topic_check(topic)
        text = f"{actor.username} changed the topic to: {conversation.topic}" if conversation.topic else None
        changes.append(("topic", "topic.changed", text or f"{actor.username} cleared the topic"))
    if archived is not None and archived != conversation.archived:
        conversation.archived_at = timezone.now() if archived else None
        verb = "archived" if archived else "unarchived"
        changes.append(("archived_at", "archived", f"{actor.username} {verb} the conversation"))
    if not changes:
        return conversation
    conversation.save(update_fields=[field for field, _, _ in changes])
    for field, event, text in changes:
        action = {"name": "conversation.renamed", "topic": "conversation.topic_changed"}.get(
            field, "conversation.archived" if conversation.archived else "conversation.unarchived"
        )
        audit_record(actor=actor, action=action, conversation=conversation, change=text)
        moderation_note_post(conversation=conversation, event=event, actor=actor, text=text)
    _announce_members(conversation, list(Membership.objects.with_users().filter(conversation=conversation)))
    return conversation
