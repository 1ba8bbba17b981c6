"""What the server tells clients: the contract's JSON objects and the channel-layer plumbing.

Services build each object once and hand it to `broadcast_on_commit`; the consumer adds only
what differs per recipient (the wrapped key of an encrypted message, the member's role).
"""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.urls import reverse

from accounts.api import user_json
from accounts.models import User, UserKey
from accounts.sessions import session_tag
from chat.models import Attachment, Membership, Message
from chat.presence import presence_clear

# Every user's, session's and token's events cross the channel layer in this one group, tagged with
# the group they are for: they are rare (sign-outs, bans, memberships), and each process's hub
# subscribes to it once, so a socket joins its own groups without a round trip to the layer.
PERSONAL_GROUP = "personal"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def conversation_group(conversation_id: int) -> str:
    """The group a conversation's events go to; each process subscribes to it once (chat.fanout)."""
    return f"conversation.{conversation_id}"


def conversation_event(conversation_id: int, event: dict) -> dict:
    """Tag an event for a conversation's group: each process's hub hands it to its sockets there."""
    return {**event, "conversation_id": conversation_id}


def session_group(tag: str) -> str:
    return f"session.{tag}"


def token_group(token_id: int) -> str:
    return f"token.{token_id}"


def timestamp(moment) -> str | None:
    """Return an ISO 8601 UTC time with milliseconds, as Django's JSON encoder writes it."""
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def member_json(membership, public_key: str | None) -> dict:
    """Return a `user` object with the member's status, role, public key and mute (extensions)."""
    return {
        **user_json(membership.user),
        "status": membership.user.status,
        "role": membership.role,
        "public_key": public_key,
        "muted_until": timestamp(membership.muted_until),
    }


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
        "archived": conversation.archived,
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


def attachment_json(attachment) -> dict:
    """Return the attachment object; in an encrypted conversation name and type stay blank."""
    return {
        "id": attachment.pk,
        "url": reverse("api_attachment_file", kwargs={"attachment_id": attachment.pk}),
        "content_type": attachment.content_type,
        "size": attachment.size,
        "name": attachment.name,
        "thumbnail_url": reverse("api_attachment_thumbnail", kwargs={"attachment_id": attachment.pk})
        if attachment.thumbnail
        else None,
        "width": attachment.width,
        "height": attachment.height,
        "duration": attachment.duration,
    }


def _attachment_of(message):
    try:
        return message.attachment
    except Attachment.DoesNotExist:
        return None


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
    attachment = None if message.deleted else _attachment_of(message)
    shared["attachment"] = attachment_json(attachment) if attachment is not None else None
    if message.kind == Message.Kind.SYSTEM:
        # Plaintext even in an encrypted conversation: the server wrote it, and says so.
        shared["body"] = message.body
        shared["system"] = message.system
    elif encrypted:
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
    if message.conversation.encrypted and message.kind != Message.Kind.SYSTEM:
        shared["key"] = message.recipient_key or None
    return shared


def json_text(shared: dict) -> str:
    """Encode a message object once for all its recipients (the consumer sends it as is)."""
    return json.dumps(shared)


def broadcast(group: str, event: dict) -> None:
    """Send an event to a group in every process, from synchronous code.

    An event without a conversation (a user's, session's or token's) goes to PERSONAL_GROUP,
    tagged with its group, by which each process's hub (chat.fanout) finds the sockets listening there.
    """
    if "conversation_id" not in event:
        event, group = {**event, "group": group}, PERSONAL_GROUP
    send = async_to_sync(get_channel_layer().group_send)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        send(group, event)
        return
    # A synchronous caller on a thread that runs an event loop (a login in a Playwright test,
    # whose sync API keeps a loop in the main thread) cannot block on it: send from a worker.
    with ThreadPoolExecutor(max_workers=1) as worker:
        worker.submit(send, group, event).result()


def conversation_message(conversation_id: int, event: dict) -> tuple[str, dict]:
    """Return the group and tagged event of a conversation's event, for a layer's group_send_many."""
    return conversation_group(conversation_id), conversation_event(conversation_id, event)


async def conversation_send(conversation_id: int, event: dict) -> None:
    """Send an event to every socket in the conversation, in every process (from the event loop)."""
    await get_channel_layer().group_send(*conversation_message(conversation_id, event))


def conversation_broadcast(conversation_id: int, event: dict) -> None:
    broadcast(*conversation_message(conversation_id, event))


def conversation_broadcast_on_commit(conversation_id: int, event: dict) -> None:
    broadcast_on_commit(*conversation_message(conversation_id, event))


def broadcast_on_commit(group: str, event: dict) -> None:
    """Send the event to a group once the current transaction commits (at once outside one).

    A channel layer that fails then is logged, not raised: the write is stored and acknowledged,
    and sockets that missed the event catch up from the database (chat.message_path).
    """
    transaction.on_commit(lambda: broadcast(group, event), robust=True)


def relay_user_banned(sender, *, user_id: int, **kwargs) -> None:
    """Close the banned user's sockets in every process and show them offline everywhere at once.

    (Accounts sends this after the commit.) Their sockets would say so as they close, but not
    if a process holding one died: the presence entry goes now, whatever the sockets do.
    """
    broadcast(user_group(user_id), {"type": "chat.user.banned"})
    presence_clear(user_id)
    offline = {"type": "chat.presence", "user": user_id, "online": False}
    for conversation_id in Membership.objects.filter(user_id=user_id).values_list("conversation_id", flat=True):
        conversation_broadcast(conversation_id, offline)


def relay_signed_out(sender, *, session_keys=(), token_ids=(), user_id=None, keep_session_keys=(), **kwargs) -> None:
    """Close the sockets opened with ended sessions or revoked tokens, in every process (4401)."""
    for session_key in session_keys:
        broadcast(session_group(session_tag(session_key)), {"type": "chat.signed.out"})
    for token_id in token_ids:
        broadcast(token_group(token_id), {"type": "chat.signed.out"})
    if user_id is not None:
        keep = [session_tag(key) for key in keep_session_keys]
        broadcast(user_group(user_id), {"type": "chat.signed.out", "keep": keep})


def relay_session_moved(sender, *, old_key: str, new_key: str, **kwargs) -> None:
    """A signed-in session got a new key (a password change): its sockets follow it."""
    broadcast(session_group(session_tag(old_key)), {"type": "chat.session.moved", "to": session_tag(new_key)})


def relay_key_changed(sender, *, user_id: int, public_key: str, previous_public_key=None, **kwargs) -> None:
    """Tell the user's encrypted conversations about their new key: contacts warn, or, for a
    first key, stop waiting for it (`first: true`)."""
    memberships = Membership.objects.filter(user_id=user_id, conversation__encrypted=True)
    for conversation_id in memberships.values_list("conversation_id", flat=True):
        event = {
            "type": "chat.key.changed",
            "conversation": conversation_id,
            "user": user_id,
            "public_key": public_key,
            "first": previous_public_key is None,
        }
        conversation_broadcast(conversation_id, event)
