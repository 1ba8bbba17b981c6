"""What the server tells clients: the contract's JSON objects and the channel-layer plumbing.

Services build each object once and hand it to `broadcast_on_commit`; the consumer adds only
what differs per recipient (the wrapped key of an encrypted message, the member's role).
"""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from accounts.api import user_json
from accounts.models import User, UserKey
from chat.models import Membership


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def timestamp(moment) -> str | None:
    """Return an ISO 8601 UTC time with milliseconds, as Django's JSON encoder writes it."""
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def member_json(membership, public_key: str | None) -> dict:
    """Return a `user` object with the member's role and public key (extensions)."""
    return {**user_json(membership.user), "role": membership.role, "public_key": public_key}


def public_keys(members) -> dict[int, str]:
    """Return the members' public keys by user id.

    Membership.objects.with_users() brings them along; members built another way (just
    created) cost one query for all of them, never one each.
    """
    found, unknown = {}, []
    for membership in members:
        if User.encryption_key.related.is_cached(membership.user):
            key = getattr(membership.user, "encryption_key", None)
            if key is not None:
                found[membership.user_id] = key.public_key
        else:
            unknown.append(membership.user_id)
    if unknown:
        found.update(UserKey.objects.filter(user_id__in=unknown).values_list("user_id", "public_key"))
    return found


def conversation_json(conversation, members) -> dict:
    """Return the part of a conversation object that is the same for every member."""
    keys = public_keys(members)
    return {
        "id": conversation.pk,
        "kind": conversation.kind,
        "name": conversation.name,
        "topic": conversation.topic,
        "encrypted": conversation.encrypted,
        "created_at": timestamp(conversation.created_at),
        "members": [member_json(membership, keys.get(membership.user_id)) for membership in members],
    }


def conversation_json_for(conversation) -> dict:
    """Return the full conversation object of a row from Conversation.objects.for_user()."""
    return {
        **conversation_json(conversation, conversation.members),
        "role": conversation.role,
        "unread": conversation.unread,
        # Unread messages that mention the member (plaintext conversations; encrypted: counted by clients).
        "mentions": conversation.mentions,
        "last_message_id": conversation.last_message_id,
        "muted": conversation.muted,
    }


def message_json(message, *, encrypted: bool) -> dict:
    """Return the message object without the recipient's own key (see message_json_for)."""
    shared = {
        "id": message.pk,
        "conversation": message.conversation_id,
        "sender": user_json(message.sender) if message.sender else None,
        "client_id": message.client_id,
        "kind": message.kind,
        "created_at": timestamp(message.created_at),
        "edited_at": timestamp(message.edited_at),
        "deleted": message.deleted,
        "reply_to": message.reply_to_id,
    }
    if encrypted:
        # A deleted message keeps no ciphertext: the fields stay, empty.
        shared["ciphertext"] = message.ciphertext or None
        shared["nonce"] = message.nonce or None
    else:
        shared["body"] = message.body
        # Present where the reader attached them (history, sync, search); a new message has none,
        # and an update leaves them out so that clients keep the ones they have.
        if hasattr(message, "reaction_map"):
            shared["reactions"] = message.reaction_map
    return shared


def message_json_for(message) -> dict:
    """Return the message object for a row from Message.objects.visible_to(user)."""
    shared = message_json(message, encrypted=message.conversation.encrypted)
    if message.conversation.encrypted:
        shared["key"] = message.recipient_key or None
    return shared


def broadcast(group: str, event: dict) -> None:
    async_to_sync(get_channel_layer().group_send)(group, event)


def broadcast_on_commit(group: str, event: dict) -> None:
    """Send the event to a group once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: broadcast(group, event))


def relay_user_banned(sender, *, user_id: int, **kwargs) -> None:
    """Close the banned user's sockets in every process (accounts sends this after the commit)."""
    broadcast(user_group(user_id), {"type": "chat.user.banned"})


def relay_key_changed(sender, *, user_id: int, public_key: str, **kwargs) -> None:
    """Tell the user's encrypted conversations that their key changed, so contacts can warn."""
    memberships = Membership.objects.filter(user_id=user_id, conversation__encrypted=True)
    for conversation_id in memberships.values_list("conversation_id", flat=True):
        event = {"type": "chat.key.changed", "conversation": conversation_id, "user": user_id, "public_key": public_key}
        broadcast(conversation_group(conversation_id), event)
