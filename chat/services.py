"""Writes to chat, and the reads that the HTTP API and the socket share.

Every door (API, consumer, admin) calls these, so one set of rules governs them all. Each
write checks permission, writes in one transaction and schedules its broadcast on commit.
"""

import base64
import binascii
import json
import time
from math import ceil

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from accounts.models import User
from chat import events
from chat.models import Conversation, Membership, Message, MessageKey
from chat.presence import users_online
from chatterbox.errors import Forbidden, Invalid, NotFound, NotMember, RateLimited, TooLarge

Kind = Conversation.Kind
Role = Membership.Role

HISTORY_PAGE_MAX = 100
ID_MAX = 2**63 - 1
CLIENT_ID_MAX = 64
NAME_MAX = 80
TOPIC_MAX = 250
NONCE_BYTES = 24
MAC_BYTES = 16
WRAPPED_KEY_MAX_BYTES = 256


# Conversations and memberships


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


def _active_users(usernames: list[str]) -> list[User]:
    """Return the active users with these usernames, or raise NotFound naming the missing ones."""
    wanted = list(dict.fromkeys(usernames))
    found = {user.username: user for user in User.objects.filter(username__in=wanted, is_active=True)}
    missing = [username for username in wanted if username not in found]
    if missing:
        raise NotFound(f"No such user: {', '.join(missing)}.", usernames=missing)
    return [found[username] for username in wanted]


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
    return conversation, _member_add(conversation, user)


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
    target = mine if username == actor.username else _member_named(conversation, username)
    if target != mine:
        if not mine.is_moderator:
            raise Forbidden("Only the owner and admins can remove members.")
        if target.role == Role.OWNER:
            raise Forbidden("Nobody can remove the owner.")
        if target.role == Role.ADMIN and mine.role != Role.OWNER:
            raise Forbidden("Only the owner can remove an admin.")
    target.delete()
    members = list(Membership.objects.with_users().filter(conversation=conversation))
    if target.role == Role.OWNER and members:
        _owner_succeed(members)
    events.broadcast_on_commit(
        events.user_group(target.user_id), {"type": "chat.conversation.removed", "id": conversation.pk}
    )
    _announce_members(conversation, members)


def _owner_succeed(members: list[Membership]) -> None:
    """Hand a group whose owner left to the longest-standing admin, else member."""
    heir = next((m for m in members if m.role == Role.ADMIN), members[0])
    heir.role = Role.OWNER
    heir.save(update_fields=["role"])


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
        _announce_members(conversation, list(Membership.objects.with_users().filter(conversation=conversation)))
    return conversation


def membership_mute(*, user: User, conversation_id: int, muted: bool) -> None:
    """Mute or unmute a conversation for this user only."""
    membership = _membership_require(_conversation_get(conversation_id), user)
    membership.muted = muted
    membership.save(update_fields=["muted"])


@transaction.atomic
def conversation_delete(*, conversation: Conversation) -> None:
    """Delete a conversation with its messages (the admin's door); members' clients drop it."""
    for user_id in conversation.memberships.values_list("user_id", flat=True):
        events.broadcast_on_commit(
            events.user_group(user_id), {"type": "chat.conversation.removed", "id": conversation.pk}
        )
    conversation.delete()


def _conversation_get(conversation_id: int, *, lock: bool = False) -> Conversation:
    """Return the conversation; locked, membership changes and sends to it go one at a time."""
    conversations = Conversation.objects.select_for_update() if lock else Conversation.objects
    conversation = conversations.filter(pk=conversation_id).first()
    if conversation is None:
        raise NotFound("No such conversation.")
    return conversation


def _membership_require(conversation: Conversation, user: User) -> Membership:
    membership = Membership.objects.filter(conversation=conversation, user=user).first()
    if membership is None:
        raise NotMember()
    return membership


def _member_named(conversation: Conversation, username: str) -> Membership:
    membership = Membership.objects.filter(conversation=conversation, user__username=username).first()
    if membership is None:
        raise NotFound(f"{username} is not a member of this conversation.")
    return membership


def _latest_message_id(conversation_id: int) -> int:
    latest = Message.objects.filter(conversation_id=conversation_id).order_by("-id").values_list("id", flat=True)
    return latest.first() or 0


def _announce_added(conversation, members, newcomers, *, last_message_id: int | None) -> None:
    """Tell each newcomer's sockets about the conversation (they join its group on receipt)."""
    shared = {
        **events.conversation_json(conversation, members),
        "unread": 0,
        "last_message_id": last_message_id,
        "muted": False,
    }
    for membership in newcomers:
        events.broadcast_on_commit(
            events.user_group(membership.user_id), {"type": "chat.conversation.added", "conversation": shared}
        )


def _announce_members(conversation, members) -> None:
    """Tell the members who belongs now: encrypting clients must wrap keys for exactly them."""
    event = {"type": "chat.conversation.updated", "conversation": events.conversation_json(conversation, members)}
    events.broadcast_on_commit(events.conversation_group(conversation.pk), event)


# Messages


def message_send(
    *,
    sender: User,
    conversation_id: int,
    client_id: str,
    body: str | None = None,
    ciphertext: str | None = None,
    nonce: str | None = None,
    keys: dict[str, str] | None = None,
    reply_to: int | None = None,
) -> tuple[Message, bool]:
    """Store a message and broadcast it on commit; return it and False if client_id was seen before."""
    if not client_id or len(client_id) > CLIENT_ID_MAX:
        raise Invalid(f"client_id must be 1 to {CLIENT_ID_MAX} characters.", field="client_id")
    content = {"body": body, "ciphertext": ciphertext, "nonce": nonce, "keys": keys}
    try:
        with transaction.atomic():
            return _message_store(
                sender=sender, conversation_id=conversation_id, client_id=client_id, content=content, reply_to=reply_to
            )
    except IntegrityError:
        # The same client_id raced in through another conversation's lock: the first one won.
        existing = Message.objects.filter(sender=sender, client_id=client_id).select_related("sender").first()
        if existing is None:
            raise
        return existing, False


def _message_store(*, sender, conversation_id, client_id, content, reply_to) -> tuple[Message, bool]:
    # The lock makes ids and broadcasts follow one order per conversation.
    conversation = _conversation_get(conversation_id, lock=True)
    member_ids = _sender_check(conversation, sender)
    existing = Message.objects.filter(sender=sender, client_id=client_id).select_related("sender").first()
    if existing:
        return existing, False
    fields, keys = _content_check(conversation, member_ids, **content)
    if reply_to is not None and not Message.objects.filter(pk=reply_to, conversation=conversation).exists():
        raise Invalid("reply_to must be a message of this conversation.", field="reply_to")
    _rate_limit_check(sender.pk)
    previous_id = _latest_message_id(conversation.pk)
    message = Message.objects.create(
        conversation=conversation, sender=sender, client_id=client_id, reply_to_id=reply_to, **fields
    )
    if keys:
        MessageKey.objects.bulk_create([MessageKey(message=message, user_id=uid, key=key) for uid, key in keys.items()])
    event = _message_event(message, conversation, member_ids, keys, event_type="chat.message")
    # The previous id lets each socket notice a message the channel layer dropped.
    event["prev_id"] = previous_id
    events.broadcast_on_commit(events.conversation_group(conversation.pk), event)
    return message, True


def _message_event(message, conversation, member_ids, keys, *, event_type: str) -> dict:
    """Build and encode the message once; each socket adds only its own key and checks it is a recipient."""
    shared = events.message_json(message, encrypted=conversation.encrypted)
    return {
        "type": event_type,
        "message": shared,
        # JSON text made here once, so that no socket encodes the message again.
        "text": json.dumps(shared),
        "keys": {str(uid): key for uid, key in keys.items()} if keys else None,
        # A private conversation names its audience, so a removed member's socket that has
        # not yet heard of the removal still drops the message.
        "audience": sorted(member_ids) if member_ids is not None else None,
    }


def _sender_check(conversation: Conversation, user: User) -> set[int] | None:
    """Check the user may post here now; return the member ids of a private conversation."""
    rows = Membership.objects.filter(conversation=conversation)
    if conversation.kind == Kind.CHANNEL:
        rows = rows.filter(user=user)
    active = dict(rows.values_list("user_id", "user__is_active"))
    if user.pk not in active:
        raise NotMember()
    if not active[user.pk]:
        raise Forbidden("This account is disabled.")
    return None if conversation.kind == Kind.CHANNEL else set(active)


def _content_check(conversation, member_ids, *, body, ciphertext, nonce, keys) -> tuple[dict, dict[int, str]]:
    """Return the fields to store and the wrapped keys by user id; refuse the wrong kind of content."""
    if not conversation.encrypted:
        if ciphertext is not None or nonce is not None or keys is not None:
            raise Invalid("This conversation is not encrypted: send body, not ciphertext.")
        return {"body": _body_check(body)}, {}
    if body is not None:
        raise Invalid("This conversation is end-to-end encrypted: send ciphertext, nonce and keys, never body.")
    if ciphertext is None or nonce is None or keys is None:
        raise Invalid("An encrypted message needs ciphertext, nonce and keys.")
    size = _base64_size(ciphertext, "ciphertext", settings.CHAT_CIPHERTEXT_MAX_BYTES)
    if size < MAC_BYTES:
        raise Invalid("The ciphertext is too short to be a secretbox.", field="ciphertext")
    if _base64_size(nonce, "nonce", NONCE_BYTES) != NONCE_BYTES:
        raise Invalid(f"The nonce must be {NONCE_BYTES} bytes.", field="nonce")
    return {"ciphertext": ciphertext, "nonce": nonce}, _keys_check(keys, member_ids)


def _body_check(body) -> str:
    if not isinstance(body, str):
        raise Invalid("Send the message text as body.", field="body")
    if len(body) > settings.CHAT_MESSAGE_MAX_CHARS:
        raise TooLarge(f"A message has at most {settings.CHAT_MESSAGE_MAX_CHARS} characters.", field="body")
    if not body.strip():
        raise Invalid("The message is empty.", field="body")
    return body


def _base64_size(value, field: str, limit: int) -> int:
    """Return the decoded size of standard base64 text; TooLarge past limit bytes."""
    if not isinstance(value, str):
        raise Invalid(f"{field} must be base64 text.", field=field)
    # Refuse by length before decoding: base64 is 4 characters for every 3 bytes.
    if len(value) > (limit + 2) // 3 * 4:
        raise TooLarge(f"{field} is larger than {limit} bytes.", field=field)
    try:
        size = len(base64.b64decode(value.encode("ascii"), validate=True))
    except (binascii.Error, UnicodeEncodeError):
        raise Invalid(f"{field} is not standard base64.", field=field) from None
    if size > limit:
        raise TooLarge(f"{field} is larger than {limit} bytes.", field=field)
    return size


def _keys_check(keys, member_ids: set[int]) -> dict[int, str]:
    if not isinstance(keys, dict):
        raise Invalid("keys must be an object {user_id: wrapped_key}.", field="keys")
    wrapped = {}
    for user_id, key in keys.items():
        if not (isinstance(user_id, str) and user_id.isdigit()):
            raise Invalid("keys must be an object {user_id: wrapped_key}.", field="keys")
        if _base64_size(key, "keys", WRAPPED_KEY_MAX_BYTES) == 0:
            raise Invalid("A wrapped key is empty.", field="keys")
        wrapped[int(user_id)] = key
    missing, extra = sorted(member_ids - set(wrapped)), sorted(set(wrapped) - member_ids)
    if missing or extra:
        raise Invalid(
            "keys must hold one wrapped key for every current member, the sender included.",
            field="keys",
            missing=missing,
            not_members=extra,
        )
    return wrapped


def _rate_limit_check(user_id: int) -> None:
    """Count one message against the user's limit: a sliding window estimated from two fixed ones.

    The previous window's count, weighted by how much of it still overlaps the sliding window,
    stops a burst from slipping through by straddling a window boundary.
    """
    rule = (settings.CHAT_RATE_LIMIT or "").strip().lower()
    if rule in {"", "0", "off"}:
        return
    try:
        limit, seconds = (int(part) for part in rule.split("/"))
    except ValueError:
        raise ImproperlyConfigured('CHAT_RATE_LIMIT must look like "20/10" (messages/seconds) or "off".') from None
    now = time.time()
    window, elapsed = divmod(now, seconds)
    key = f"chat:rate:{user_id}:{int(window)}"
    previous = cache.get(f"chat:rate:{user_id}:{int(window) - 1}", 0)
    cache.add(key, 0, timeout=2 * seconds + 1)
    try:
        sent = cache.incr(key)
    except ValueError:  # expired between add and incr
        sent = 1
        cache.set(key, sent, timeout=2 * seconds + 1)
    overlap = 1 - elapsed / seconds
    if previous * overlap + sent > limit:
        # A refused message does not count, so a client that waits retry_after gets through.
        cache.decr(key)
        wait = seconds - elapsed
        if sent <= limit and previous:
            # Only the previous window is in the way: wait until its weight leaves room.
            wait = (overlap - (limit - sent) / previous) * seconds
        raise RateLimited(f"At most {limit} messages every {seconds} s; wait a moment.", retry_after=max(1, ceil(wait)))


@transaction.atomic
def message_edit(
    *,
    editor: User,
    message_id: int,
    body: str | None = None,
    ciphertext: str | None = None,
    nonce: str | None = None,
    keys: dict[str, str] | None = None,
) -> Message:
    """Replace a message's content (its sender only) and broadcast the new version on commit."""
    message = _message_lock(message_id)
    conversation = message.conversation
    member_ids = _sender_check(conversation, editor)
    if message.sender_id != editor.pk:
        raise Forbidden("Only the sender can edit a message.")
    if message.deleted:
        raise Invalid("A deleted message cannot be edited.")
    fields, wrapped = _content_check(conversation, member_ids, body=body, ciphertext=ciphertext, nonce=nonce, keys=keys)
    _rate_limit_check(editor.pk)
    for field, value in {**fields, "edited_at": timezone.now()}.items():
        setattr(message, field, value)
    message.save(update_fields=[*fields, "edited_at"])
    if wrapped:
        message.keys.all().delete()
        MessageKey.objects.bulk_create(
            [MessageKey(message=message, user_id=uid, key=key) for uid, key in wrapped.items()]
        )
    event = _message_event(message, conversation, member_ids, wrapped, event_type="chat.message.updated")
    events.broadcast_on_commit(events.conversation_group(conversation.pk), event)
    return message


@transaction.atomic
def message_delete(*, actor: User, message_id: int) -> Message:
    """Delete a message's content (sender, conversation owner or admin, or staff), keeping a tombstone."""
    message = _message_lock(message_id)
    if not actor.is_staff:
        membership = _membership_require(message.conversation, actor)
        if message.sender_id != actor.pk and not membership.is_moderator:
            raise Forbidden("Only the sender, or the conversation's owner and admins, can delete a message.")
    if message.deleted:
        return message
    message.deleted_at = timezone.now()
    message.body = message.ciphertext = message.nonce = ""
    message.save(update_fields=["deleted_at", "body", "ciphertext", "nonce"])
    # Blank, not delete, the keys: their rows keep the tombstone in each recipient's history.
    message.keys.update(key="")
    event = {"type": "chat.message.deleted", "id": message.pk, "conversation": message.conversation_id}
    events.broadcast_on_commit(events.conversation_group(message.conversation_id), event)
    return message


def _message_lock(message_id: int) -> Message:
    message = Message.objects.select_for_update().filter(pk=message_id).first()
    if message is None:
        raise NotFound("No such message.")
    return message


@transaction.atomic
def read_mark(*, user: User, conversation_id: int, up_to: int) -> int:
    """Move the user's read marker forward to up_to (at most the newest message); return it."""
    membership = Membership.objects.select_for_update().filter(conversation_id=conversation_id, user=user).first()
    if membership is None:
        _conversation_get(conversation_id)
        raise NotMember()
    up_to = min(up_to, _latest_message_id(conversation_id))
    if up_to > membership.last_read_message_id:
        membership.last_read_message_id = up_to
        membership.save(update_fields=["last_read_message_id"])
        event = {"type": "chat.read", "conversation": conversation_id, "user": user.pk, "up_to": up_to}
        events.broadcast_on_commit(events.conversation_group(conversation_id), event)
    return membership.last_read_message_id


# Reads shared by the API and the socket


def member_check(*, user: User, conversation_id: int) -> None:
    """Raise NotFound or NotMember unless the user belongs to the conversation (one query)."""
    mine = Membership.objects.filter(conversation=OuterRef("pk"), user=user)
    found = Conversation.objects.filter(pk=conversation_id).values_list(Exists(mine), flat=True).first()
    if found is None:
        raise NotFound("No such conversation.")
    if not found:
        raise NotMember()


def history_page(
    *, user: User, conversation_id: int, after: int | None = None, before: int | None = None, limit: int = 50
) -> tuple[list[dict], bool]:
    """Return up to limit messages, oldest first, and whether there are more.

    With `after`, the page starts just after it (catching up); otherwise it ends just before
    `before`, or at the newest message (scrolling back).
    """
    if not 1 <= limit <= HISTORY_PAGE_MAX:
        raise Invalid(f"limit must be 1 to {HISTORY_PAGE_MAX}.", field="limit")
    member_check(user=user, conversation_id=conversation_id)
    messages = Message.objects.visible_to(user).filter(conversation_id=conversation_id)
    if after is not None:
        messages = messages.after(after)
        if before is not None:
            messages = messages.filter(id__lt=before)
    else:
        messages = messages.before(before) if before is not None else messages.order_by("-id")
    page = list(messages[: limit + 1])
    has_more = len(page) > limit
    page = page[:limit] if after is not None else page[:limit][::-1]
    return [events.message_json_for(message) for message in page], has_more


def conversation_for(*, user: User, conversation_id: int) -> dict:
    """Return one of the user's conversations as the contract's object."""
    conversation = Conversation.objects.for_user(user).filter(pk=conversation_id).first()
    if conversation is None:
        member_check(user=user, conversation_id=conversation_id)
        raise NotMember()
    return events.conversation_json_for(conversation)


def socket_session(*, user: User) -> tuple[dict[int, int], list[int]]:
    """Return the user's conversations with their newest message id, and the online users sharing one."""
    newest = Message.objects.filter(conversation=OuterRef("pk")).order_by("-id").values("id")[:1]
    conversations = dict(
        Conversation.objects.filter(memberships__user=user)
        .annotate(newest=Subquery(newest))
        .order_by("id")
        .values_list("id", "newest")
    )
    peers = (
        Membership.objects.filter(conversation_id__in=list(conversations))
        .exclude(user=user)
        .values_list("user_id", flat=True)
        .distinct()
    )
    return {cid: newest or 0 for cid, newest in conversations.items()}, sorted(users_online(list(peers)))


def is_member(*, user: User, conversation_id: int) -> bool:
    return Membership.objects.filter(conversation_id=conversation_id, user=user).exists()


def is_active(*, user_id: int) -> bool:
    return User.objects.filter(pk=user_id, is_active=True).exists()
