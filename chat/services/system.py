"""System messages: the lines that say who created, joined, left or renamed a conversation.

They are plaintext even in encrypted conversations (no ciphertext, no keys), visible to every
member, and take their id in the conversation's order like any message, so history and sync
return them. Membership changes in an encrypted conversation show this way, and the browser
flags a member who appears without one (docs/e2e.md).
"""

import uuid

from accounts.models import User
from chat import events
from chat.models import Conversation, Membership, Message
from chat.services.lookups import _latest_message_id

Kind = Conversation.Kind

EVENTS = {
    "created",
    "member.added",
    "member.removed",
    "member.left",
    "member.joined",
    "role.changed",
    "member.muted",
    "renamed",
    "topic.changed",
    "archived",
}


ROLE_WORDS = {"owner": "the owner", "admin": "an admin", "member": "a member"}


def _name(user: User | None) -> str:
    return (user.display_name or user.username) if user else "Someone"


def system_text(conversation: Conversation, event: str, actor: User | None, user: User | None, extra: dict) -> str:
    """Return the line in English, for clients that do not render `system` themselves."""
    what = {Kind.DIRECT: "conversation", Kind.GROUP: "group", Kind.CHANNEL: "channel"}[conversation.kind]
    texts = {
        "created": f"{_name(actor)} created this {what}",
        "member.added": f"{_name(user)} was added by {_name(actor)}",
        "member.removed": f"{_name(user)} was removed by {_name(actor)}",
        "member.left": f"{_name(user)} left",
        "member.joined": f"{_name(user)} joined",
        "role.changed": f"{_name(actor)} made {_name(user)} {ROLE_WORDS[extra.get('role', 'member')]}"
        if actor and actor != user
        else f"{_name(user)} is now {ROLE_WORDS[extra.get('role', 'member')]}",
        "member.muted": f"{_name(user)} was muted by {_name(actor)} until {extra.get('until')}"
        if extra.get("until")
        else f"{_name(actor)} lifted the mute on {_name(user)}",
        "renamed": f"{_name(actor)} renamed the {what} to {extra.get('name', '')}",
        "topic.changed": f"{_name(actor)} changed the topic to: {extra['topic']}"
        if extra.get("topic")
        else f"{_name(actor)} cleared the topic",
        "archived": f"{_name(actor)} {'archived' if extra.get('archived', True) else 'unarchived'} the {what}",
    }
    return texts[event]


def system_message_post(
    conversation: Conversation,
    *,
    event: str,
    actor: User | None = None,
    user: User | None = None,
    broadcast: bool = True,
    **extra,
) -> Message:
    """Store a system message and, unless told not to, broadcast it on commit like any message.

    Call it inside the transaction that made the change, with the conversation locked, so the
    line takes its place in the conversation's order. `extra` adds fields to `system` (the new
    `name` of a rename, the `role` of a role change). Pass broadcast=False while nobody can be
    listening yet (a conversation being created: its members fetch it whole).
    """
    if event not in EVENTS:
        raise ValueError(f"Unknown system event {event!r}.")
    system = {
        "event": event,
        "actor": actor.pk if actor else None,
        "user": user.pk if user else None,
        # Names as they were then, for members who no longer share a conversation with them.
        "names": {str(person.pk): _name(person) for person in (actor, user) if person},
        **extra,
    }
    previous_id = _latest_message_id(conversation.pk) if broadcast else 0
    message = Message.objects.create(
        conversation=conversation,
        sender=None,
        client_id=f"system-{uuid.uuid4().hex}",
        kind=Message.Kind.SYSTEM,
        body=system_text(conversation, event, actor, user, extra),
        system=system,
    )
    if broadcast:
        shared = events.message_json(message, encrypted=conversation.encrypted)
        member_ids = None
        if conversation.kind != Kind.CHANNEL:
            member_ids = sorted(Membership.objects.filter(conversation=conversation).values_list("user_id", flat=True))
        event_ = {
            "type": "chat.message",
            "message": shared,
            "text": events.json_text(shared),
            "keys": None,
            "audience": member_ids,
            "prev_id": previous_id,
        }
        events.conversation_broadcast_on_commit(conversation.pk, event_)
    return message
