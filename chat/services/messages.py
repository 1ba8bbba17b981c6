"""Sending, editing and deleting messages, and read markers."""

import base64
import binascii
import json
from math import ceil

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import User
from chat import events
from chat.models import Conversation, Membership, Message, MessageKey
from chat.services.attachments import attachment_claim, attachment_discard
from chat.services.lookups import (
    _conversation_get,
    _latest_message_id,
    _marks,
    _membership_require,
    _newest_ids_query,
    _quote,
    _rows_many,
    _table,
)
from chat.services.mentions import mentions_check, mentions_rows
from chatterbox.errors import DomainError, Forbidden, Invalid, NotFound, NotMember, RateLimited, TooLarge
from chatterbox.ratelimit import window_count
from moderation.audit import audit_record
from moderation.models import Block
from moderation.restrictions import direct_block_check

Kind = Conversation.Kind

CLIENT_ID_MAX = 64
NONCE_BYTES = 24
MAC_BYTES = 16
WRAPPED_KEY_MAX_BYTES = 256


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
    attachment: int | None = None,
    kind: str | None = None,
) -> tuple[Message, bool]:
    """Store a message and broadcast it on commit; return it and False if client_id was seen before.

    The socket reaches the same rules through chat.message_path, which stores several senders'
    messages in one transaction.
    """
    client_id_check(client_id)
    content = {"body": body, "ciphertext": ciphertext, "nonce": nonce, "keys": keys}
    content.update(attachment=attachment, kind=kind)
    try:
        with transaction.atomic():
            message, created, event = _message_store(
                sender=sender, conversation_id=conversation_id, client_id=client_id, content=content, reply_to=reply_to
            )
            if event is not None:
                events.conversation_broadcast_on_commit(conversation_id, event)
            return message, created
    except IntegrityError:
        return _message_existing(sender, client_id), False


def client_id_check(client_id) -> None:
    if not client_id or len(client_id) > CLIENT_ID_MAX:
        raise Invalid(f"client_id must be 1 to {CLIENT_ID_MAX} characters.", field="client_id")


def _message_existing(sender, client_id) -> Message:
    """After an IntegrityError: the same client_id raced in through another conversation's lock."""
    existing = Message.objects.filter(sender=sender, client_id=client_id).select_related("sender").first()
    if existing is None:
        raise IntegrityError("message insert failed")
    return existing


class StoreContext:
    """What one transaction already knows, so that a batch of sends asks the database once.

    A conversation is locked and its newest id read once per transaction; the sender's right to
    post is checked once per sender and conversation. `prefetch` reads all of that for a whole
    batch in a few queries (the message path's writer); without it each is read when first asked.
    `rate_check` counts a message against its sender's limit (by default the shared counter).
    """

    def __init__(self, rate_check=None):
        self.conversations: dict[int, Conversation] = {}
        self.newest: dict[int, int] = {}
        self.members: dict[tuple[int, int], set[int] | Exception | None] = {}
        # Known (sender id, client id) -> message; absent: not looked up (prefetched: None if new).
        self.existing: dict[tuple[int, str], Message | None] = {}
        self.replies: dict[int, int | None] = {}
        self.rate_check = rate_check or _rate_limit_check

    def prefetch(self, sends) -> None:
        """Lock and read what the sends need; a send is (sender, conversation id, client id, reply_to).

        The queries do not depend on each other's answers, so they go out together: on PostgreSQL
        in one round trip (`_rows_many`). Written in SQL, not built by the ORM: building the queries
        cost more than running them.
        """
        conversation, membership, message = _table(Conversation), _table(Membership), _table(Message)
        queries: dict[str, tuple[str, list]] = {}
        wanted = sorted({conversation_id for _, conversation_id, _, _ in sends} - set(self.conversations))
        if wanted:
            # Locked in id order, so that two processes' batches never wait for each other in a circle.
            lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
            columns = ", ".join(_quote(field.column) for field in Conversation._meta.concrete_fields)
            queries["conversations"] = (
                f"SELECT {columns} FROM {conversation} WHERE id IN ({_marks(wanted)}) ORDER BY id{lock}",  # noqa: S608
                wanted,
            )
            queries["newest"] = _newest_ids_query(wanted)
        pairs = {(conversation_id, sender.pk) for sender, conversation_id, _, _ in sends} - set(self.members)
        if pairs:
            senders = sorted({sender_id for _, sender_id in pairs})
            conversation_ids = sorted({conversation_id for conversation_id, _ in pairs})
            # A private conversation's members (its audience), a channel's senders only.
            queries["members"] = (
                "SELECT m.conversation_id, m.user_id, u.is_active, m.muted_until IS NOT NULL AND m.muted_until > %s "  # noqa: S608
                f"FROM {membership} m JOIN {_table(User)} u ON u.id = m.user_id "
                f"JOIN {conversation} c ON c.id = m.conversation_id "
                f"WHERE m.conversation_id IN ({_marks(conversation_ids)}) "
                f"AND (c.kind <> %s OR m.user_id IN ({_marks(senders)}))",
                [connection.ops.adapt_datetimefield_value(timezone.now()), *conversation_ids, Kind.CHANNEL, *senders],
            )
            queries["blocks"] = (
                f"SELECT id FROM {_table(Block)} WHERE blocker_id IN ({_marks(senders)}) "  # noqa: S608
                f"OR blocked_id IN ({_marks(senders)})",
                [*senders, *senders],
            )
        keys = {(sender.pk, client_id) for sender, _, client_id, _ in sends} - set(self.existing)
        if keys:
            senders, client_ids = sorted({s for s, _ in keys}), sorted({c for _, c in keys})
            queries["known"] = (
                f"SELECT id, sender_id, client_id FROM {message} "  # noqa: S608
                f"WHERE sender_id IN ({_marks(senders)}) AND client_id IN ({_marks(client_ids)})",
                [*senders, *client_ids],
            )
        replies = sorted({reply_to for _, _, _, reply_to in sends if reply_to is not None} - set(self.replies))
        if replies:
            queries["replies"] = (f"SELECT id, conversation_id FROM {message} WHERE id IN ({_marks(replies)})", replies)  # noqa: S608
        found = dict(zip(queries, _rows_many(list(queries.values())), strict=True))

        if wanted:
            names = [field.attname for field in Conversation._meta.concrete_fields]
            for row in found["conversations"]:
                self.conversations[row[0]] = Conversation.from_db(connection.alias, names, row)
            self.newest.update((cid, latest or 0) for cid, latest in found["newest"] if cid in self.conversations)
        pairs = {pair for pair in pairs if pair[0] in self.conversations}
        if pairs:
            self._senders_check(
                pairs, {sender.pk: sender for sender, _, _, _ in sends}, found["members"], found["blocks"]
            )
        if keys:
            self.existing.update(dict.fromkeys(keys))
            hits = [pk for pk, sender_id, client_id in found["known"] if (sender_id, client_id) in keys]
            for message in Message.objects.filter(pk__in=hits).select_related("sender") if hits else ():
                self.existing[(message.sender_id, message.client_id)] = message
        if replies:
            self.replies.update(dict.fromkeys(replies))
            self.replies.update(found["replies"])

    def _senders_check(self, pairs: set[tuple[int, int]], users: dict[int, User], members: list, blocks: list) -> None:
        """Decide for each (conversation, sender) whether the sender may post there now.

        `members` are the rows of prefetch's membership query, `blocks` the ids of the blocks
        that involve a sender (used for direct conversations only).
        """
        now = timezone.now()
        active: dict[int, dict[int, bool]] = {}
        muted = set()
        for conversation_id, user_id, is_active, is_muted in members:
            active.setdefault(conversation_id, {})[user_id] = bool(is_active)
            if is_muted:
                muted.add((conversation_id, user_id))
        between: dict[frozenset, Block] = {}
        if blocks and any(self.conversations[cid].kind == Kind.DIRECT for cid, _ in pairs):
            found = Block.objects.filter(pk__in=[pk for (pk,) in blocks]).select_related("blocker", "blocked")
            between = {frozenset((block.blocker_id, block.blocked_id)): block for block in found}
        for conversation_id, sender_id in pairs:
            conversation = self.conversations[conversation_id]
            muted_until = None
            if (conversation_id, sender_id) in muted:
                muted_until = (
                    Membership.objects.filter(conversation_id=conversation_id, user_id=sender_id)
                    .values_list("muted_until", flat=True)
                    .first()
                )
            try:
                self.members[(conversation_id, sender_id)] = _sender_rules(
                    conversation,
                    users[sender_id],
                    active.get(conversation_id, {}),
                    muted_until=muted_until,
                    now=now,
                    blocks=between,
                )
            except DomainError as error:
                self.members[(conversation_id, sender_id)] = error

    def conversation(self, conversation_id: int) -> Conversation:
        if conversation_id not in self.conversations:
            # The lock makes ids and broadcasts follow one order per conversation.
            self.conversations[conversation_id] = _conversation_get(conversation_id, lock=True)
            self.newest[conversation_id] = _latest_message_id(conversation_id)
        return self.conversations[conversation_id]

    def mark(self) -> tuple[dict, dict, dict]:
        return dict(self.conversations), dict(self.newest), dict(self.existing)

    def rollback(self, mark: tuple[dict, dict, dict]) -> None:
        """Forget what a send rolled back to its savepoint: its new ids, the locks and the rows it made there."""
        self.conversations, self.newest, self.existing = dict(mark[0]), dict(mark[1]), dict(mark[2])

    def member_ids(self, conversation: Conversation, sender: User) -> set[int] | None:
        key = (conversation.pk, sender.pk)
        if key not in self.members:
            self.members[key] = _sender_check(conversation, sender)
        verdict = self.members[key]
        if isinstance(verdict, Exception):
            raise verdict
        return verdict

    def message_existing(self, sender: User, client_id: str) -> Message | None:
        key = (sender.pk, client_id)
        if key not in self.existing:
            self.existing[key] = (
                Message.objects.filter(sender=sender, client_id=client_id).select_related("sender").first()
            )
        return self.existing[key]

    def reply_conversation(self, reply_to: int) -> int | None:
        if reply_to not in self.replies:
            self.replies[reply_to] = (
                Message.objects.filter(pk=reply_to).values_list("conversation_id", flat=True).first()
            )
        return self.replies[reply_to]


def _message_store(
    *, sender, conversation_id, client_id, content, reply_to, context: StoreContext | None = None
) -> tuple[Message, bool, dict | None]:
    """Store one message in the current transaction; return it, whether it is new, and its event."""
    context = context or StoreContext()
    draft = _message_draft(
        sender=sender,
        conversation_id=conversation_id,
        client_id=client_id,
        content=content,
        reply_to=reply_to,
        context=context,
    )
    if isinstance(draft, Message):
        return draft, False, None
    draft.message.save(force_insert=True)
    return draft.message, True, _message_stored(draft, context)


class Draft:
    """A checked message not yet inserted, with what storing it brings along."""

    __slots__ = ("attachment_id", "conversation", "keys", "member_ids", "mentioned", "message")

    def __init__(self, message, conversation, member_ids, keys, mentioned, attachment_id):
        self.message, self.conversation, self.member_ids = message, conversation, member_ids
        self.keys, self.mentioned, self.attachment_id = keys, mentioned, attachment_id


def _message_draft(*, sender, conversation_id, client_id, content, reply_to, context: StoreContext) -> Draft | Message:
    """Check a send against every rule; return its draft, or the message its client_id already names."""
    conversation = context.conversation(conversation_id)
    member_ids = context.member_ids(conversation, sender)
    existing = context.message_existing(sender, client_id)
    if existing:
        return existing
    # Read, never pop: the message path may store the same content again after a failed batch.
    content = dict(content)
    kind = content.pop("kind", None) or Message.Kind.TEXT
    attachment_id = content.pop("attachment", None)
    _kind_check(kind, conversation, attachment_id)
    fields, keys = _content_check(conversation, member_ids, **content, with_attachment=attachment_id is not None)
    if reply_to is not None and context.reply_conversation(reply_to) != conversation.pk:
        raise Invalid("reply_to must be a message of this conversation.", field="reply_to")
    mentioned = mentions_check(conversation=conversation, sender=sender, body=fields.get("body"))
    context.rate_check(sender.pk)
    message = Message(
        conversation=conversation, sender=sender, client_id=client_id, reply_to_id=reply_to, kind=kind, **fields
    )
    return Draft(message, conversation, member_ids, keys, mentioned, attachment_id)


def _message_stored(draft: Draft, context: StoreContext, rows: list | None = None) -> dict:
    """Finish an inserted draft: its attachment, wrapped keys and mentions; return its event.

    Given `rows`, the key and mention rows are added there for the caller to insert with others.
    """
    message, conversation = draft.message, draft.conversation
    attachment_claim(
        sender=message.sender, conversation=conversation, attachment_id=draft.attachment_id, message=message
    )
    extra = [MessageKey(message=message, user_id=uid, key=key) for uid, key in draft.keys.items()]
    extra += mentions_rows(message=message, user_ids=draft.mentioned)
    if rows is not None:
        rows.extend(extra)
    else:
        rows_insert(extra)
    event = _message_event(message, conversation, draft.member_ids, draft.keys, event_type="chat.message")
    # The previous id lets each socket notice a message the channel layer dropped.
    event["prev_id"] = context.newest[conversation.pk]
    context.newest[conversation.pk] = message.pk
    context.existing[(message.sender_id, message.client_id)] = message
    return event


def rows_insert(rows: list) -> None:
    """Insert rows of any models, one statement per model."""
    by_model: dict[type, list] = {}
    for row in rows:
        by_model.setdefault(type(row), []).append(row)
    for model, same in by_model.items():
        model.objects.bulk_create(same)


def _kind_check(kind, conversation: Conversation, attachment_id: int | None) -> None:
    """A message is text, or in an encrypted conversation a reaction (which carries no file)."""
    if kind not in {Message.Kind.TEXT, Message.Kind.REACTION}:
        raise Invalid('kind must be "text" or, in an encrypted conversation, "reaction".', field="kind")
    if kind == Message.Kind.REACTION and not conversation.encrypted:
        raise Invalid("In a plaintext conversation, react with the reaction frame.", field="kind")
    if kind == Message.Kind.REACTION and attachment_id is not None:
        raise Invalid("A reaction carries no attachment.", field="attachment")


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
    active = {}
    muted_until = None
    for user_id, is_active, until in rows.values_list("user_id", "user__is_active", "muted_until"):
        active[user_id] = is_active
        if user_id == user.pk:
            muted_until = until
    return _sender_rules(conversation, user, active, muted_until=muted_until, now=timezone.now())


def _sender_rules(conversation, user, active: dict[int, bool], *, muted_until, now, blocks=None) -> set[int] | None:
    """Refuse a sender who is no member, disabled, or held back by moderation (an archive, a mute,
    a block in a direct conversation); return the member ids of a private conversation.

    `active` maps the members (a channel: at least the sender) to whether their account is active;
    `blocks`, if given, holds every block between members of a direct conversation by pair.
    """
    if user.pk not in active:
        raise NotMember()
    if not active[user.pk]:
        raise Forbidden("This account is disabled.")
    if conversation.archived:
        raise Forbidden("This conversation is archived: it can be read but no longer written to.")
    if muted_until is not None and muted_until > now:
        _mute_refuse(muted_until, now)
    if conversation.kind == Kind.DIRECT:
        for other_id in active:
            if other_id != user.pk:
                block = False if blocks is None else blocks.get(frozenset((user.pk, other_id)))
                direct_block_check(sender=user, other_id=other_id, block=block)
    return None if conversation.kind == Kind.CHANNEL else set(active)


def _mute_refuse(muted_until, now) -> None:
    if muted_until is not None:
        left = ceil((muted_until - now).total_seconds())
        raise Forbidden(
            f"An admin muted you here until {muted_until:%Y-%m-%d %H:%M} UTC ({_time_left(left)} left).",
            muted_until=events.timestamp(muted_until),
            retry_after=left,
        )


def _time_left(seconds: int) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 7200:
        return f"{seconds // 3600} h"
    if seconds >= 120:
        return f"{ceil(seconds / 60)} min"
    return f"{seconds} s"


def _content_check(
    conversation, member_ids, *, body, ciphertext, nonce, keys, with_attachment=False
) -> tuple[dict, dict[int, str]]:
    """Return the fields to store and the wrapped keys by user id; refuse the wrong kind of content."""
    if not conversation.encrypted:
        if ciphertext is not None or nonce is not None or keys is not None:
            raise Invalid("This conversation is not encrypted: send body, not ciphertext.")
        if with_attachment and not (body or "").strip():
            # A file on its own is a message; only its caption may be empty.
            return {"body": _body_check(body or "", allow_empty=True)}, {}
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


def _body_check(body, *, allow_empty: bool = False) -> str:
    if not isinstance(body, str):
        raise Invalid("Send the message text as body.", field="body")
    if len(body) > settings.CHAT_MESSAGE_MAX_CHARS:
        raise TooLarge(f"A message has at most {settings.CHAT_MESSAGE_MAX_CHARS} characters.", field="body")
    if not body.strip() and not allow_empty:
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


def rate_rule() -> tuple[int, int] | None:
    """Return the message limit as (messages, seconds), or None when it is off (CHAT_RATE_LIMIT)."""
    rule = (settings.CHAT_RATE_LIMIT or "").strip().lower()
    if rule in {"", "0", "off"}:
        return None
    try:
        limit, seconds = (int(part) for part in rule.split("/"))
    except ValueError:
        raise ImproperlyConfigured('CHAT_RATE_LIMIT must look like "20/10" (messages/seconds) or "off".') from None
    return limit, seconds


def rate_key(user_id: int) -> str:
    return f"chat:rate:{user_id}"


def _rate_limit_check(user_id: int, counter=window_count) -> None:
    """Count one message against the user's limit (a sliding window, chatterbox.ratelimit)."""
    rule = rate_rule()
    if rule is None:
        return
    limit, seconds = rule
    wait = counter(rate_key(user_id), limit, seconds)
    if wait:
        raise RateLimited(f"At most {limit} messages every {seconds} s; wait a moment.", retry_after=wait)


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
    mentioned = mentions_check(conversation=conversation, sender=editor, body=fields.get("body"))
    _rate_limit_check(editor.pk)
    for field, value in {**fields, "edited_at": timezone.now()}.items():
        setattr(message, field, value)
    message.save(update_fields=[*fields, "edited_at"])
    if not conversation.encrypted:
        # The mentions follow the new text: a name added counts for that member, a name removed no longer.
        message.mentions.exclude(user_id__in=mentioned).delete()
        mentioned -= set(message.mentions.values_list("user_id", flat=True))
        rows_insert(mentions_rows(message=message, user_ids=mentioned))
    if wrapped:
        message.keys.all().delete()
        MessageKey.objects.bulk_create(
            [MessageKey(message=message, user_id=uid, key=key) for uid, key in wrapped.items()]
        )
    event = _message_event(message, conversation, member_ids, wrapped, event_type="chat.message.updated")
    events.conversation_broadcast_on_commit(conversation.pk, event)
    return message


@transaction.atomic
def message_delete(*, actor: User, message_id: int, reason: str = "") -> Message:
    """Delete a message's content (sender, conversation owner or admin, or staff), keeping a tombstone."""
    message = _message_lock(message_id)
    if not actor.is_staff:
        membership = _membership_require(message.conversation, actor)
        if message.kind == Message.Kind.SYSTEM:
            # Who joined and who left stays on record for the members (docs/e2e.md).
            raise Forbidden("System messages cannot be deleted.")
        if message.sender_id != actor.pk and not membership.is_moderator:
            raise Forbidden("Only the sender, or the conversation's owner and admins, can delete a message.")
    if message.deleted:
        return message
    if message.sender_id != actor.pk:
        # Deleting someone else's message is moderation.
        audit_record(
            actor=actor,
            action="message.deleted",
            target_user=message.sender,
            conversation=message.conversation,
            message_id=message.pk,
            reason=reason,
        )
    message.deleted_at = timezone.now()
    message.body = message.ciphertext = message.nonce = ""
    message.save(update_fields=["deleted_at", "body", "ciphertext", "nonce"])
    # Blank, not delete, the keys: their rows keep the tombstone in each recipient's history.
    message.keys.update(key="")
    attachment_discard(message=message)
    event = {"type": "chat.message.deleted", "id": message.pk, "conversation": message.conversation_id}
    events.conversation_broadcast_on_commit(message.conversation_id, event)
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
        events.conversation_broadcast_on_commit(conversation_id, event)
    return membership.last_read_message_id
