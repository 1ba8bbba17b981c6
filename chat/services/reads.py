"""Reads shared by the HTTP API and the socket."""

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Exists, OuterRef

from accounts.models import User
from chat import events
from chat.models import Attachment, Conversation, Membership, Message, MessageKey
from chat.services.lookups import _newest_ids_query, _newest_sql, _quote, _rows, _table
from chat.services.reactions import reactions_attach
from chatterbox.errors import Invalid, NotFound, NotMember
from chatterbox.sql import ModelColumns, id_in

HISTORY_PAGE_MAX = 100
ID_MAX = 2**63 - 1


def member_check(*, user: User, conversation_id: int) -> None:
    """Raise NotFound or NotMember unless the user belongs to the conversation (one query)."""
    mine = Membership.objects.filter(conversation=OuterRef("pk"), user=user)
    found = Conversation.objects.filter(pk=conversation_id).values_list(Exists(mine), flat=True).first()
    if found is None:
        raise NotFound("No such conversation.")
    if not found:
        raise NotMember()


def history_page(
    *,
    user: User | None,
    conversation_id: int,
    after: int | None = None,
    before: int | None = None,
    limit: int = 50,
    member_known: bool = False,
    plaintext: bool = False,
) -> tuple[list[dict], bool]:
    """Return up to limit messages, oldest first, and whether there are more.

    With `after`, the page starts just after it (catching up); otherwise it ends just before
    `before`, or at the newest message (scrolling back). `member_known`: the caller checked the
    membership already (a socket, from its own state), so the page costs no query to say why it
    would be refused; it is empty for someone who is no member (the query reads only what the
    user may see). `plaintext` as well: the caller knows the conversation is not encrypted (which
    never changes), so every message is the member's to see and the query is a plain one: the page
    is then the same for every member, and `user` may be None.
    """
    if not 1 <= limit <= HISTORY_PAGE_MAX:
        raise Invalid(f"limit must be 1 to {HISTORY_PAGE_MAX}.", field="limit")
    if not member_known:
        member_check(user=user, conversation_id=conversation_id)
    page = _page_messages(user, conversation_id, after, before, limit + 1, plaintext=member_known and plaintext)
    has_more = len(page) > limit
    page = page[:limit] if after is not None else page[:limit][::-1]
    reactions_attach(page)
    return [events.message_json_for(message) for message in page], has_more


# A history page's rows: each message with its conversation, sender and attachment, as
# Message.objects.visible_to(user).select_related(...) reads them, in SQL written once: building
# that query in the ORM cost a millisecond, five times running it, on every sync of every socket.
# Of the conversation and the sender, only what a message object shows (the rest is deferred).
_MESSAGE, _ATTACHMENT = ModelColumns(Message, "m"), ModelColumns(Attachment, "a")
_CONVERSATION = ModelColumns(Conversation, "c", only=("kind", "encrypted"))
_SENDER = ModelColumns(User, "u", only=("username", "display_name", "avatar_version"))


def _page_messages(user, conversation_id: int, after, before, count: int, *, plaintext: bool) -> list[Message]:
    """Up to `count` messages of the conversation that the user may read, from `after` up (oldest
    first) or from `before` (or the newest) down (newest first).

    `plaintext`: the caller knows that the user is a member and that the conversation is not
    encrypted, so every message is theirs to read. Otherwise only a member reads anything, and
    in an encrypted conversation only the messages that carry a key for them, and system lines.
    """
    params: list = []
    columns = f"{_MESSAGE.sql}, {_CONVERSATION.sql}, {_SENDER.sql}, {_ATTACHMENT.sql}"
    joins = (
        f"JOIN {_table(Conversation)} c ON c.id = m.conversation_id "
        f"LEFT JOIN {_table(User)} u ON u.id = m.sender_id "
        f"LEFT JOIN {_table(Attachment)} a ON a.message_id = m.id"
    )
    where = "m.conversation_id = %s"
    if not plaintext:
        columns += f", k.{_quote('key')}"
        joins += f" LEFT JOIN {_table(MessageKey)} k ON k.message_id = m.id AND k.user_id = %s"
        params.append(user.pk)
    params.append(conversation_id)
    if not plaintext:
        where += (
            f" AND EXISTS (SELECT 1 FROM {_table(Membership)} s WHERE s.conversation_id = m.conversation_id"  # noqa: S608
            " AND s.user_id = %s) AND (NOT c.encrypted OR k.id IS NOT NULL OR m.kind = %s)"
        )
        params += [user.pk, Message.Kind.SYSTEM]
    if after is not None:
        where += " AND m.id > %s"
        params.append(after)
    if before is not None:
        where += " AND m.id < %s"
        params.append(before)
    order = "ASC" if after is not None else "DESC"
    rows = _rows(
        f"SELECT {columns} FROM {_table(Message)} m {joins} WHERE {where} ORDER BY m.id {order} LIMIT %s",  # noqa: S608
        [*params, count],
    )
    db = connections[DEFAULT_DB_ALIAS]
    messages, conversation, senders = [], None, {}
    at_conversation = _MESSAGE.width
    at_sender = at_conversation + _CONVERSATION.width
    at_attachment = at_sender + _SENDER.width
    for row in rows:
        message = _MESSAGE.make(row, 0, db)
        conversation = conversation or _CONVERSATION.make(row, at_conversation, db)
        Message.conversation.field.set_cached_value(message, conversation)
        sender = senders.get(message.sender_id)
        if sender is None and message.sender_id is not None:
            sender = senders[message.sender_id] = _SENDER.make(row, at_sender, db)
        Message.sender.field.set_cached_value(message, sender)
        attachment = _ATTACHMENT.make(row, at_attachment, db) if row[at_attachment] is not None else None
        Message.attachment.related.set_cached_value(message, attachment)
        message.recipient_key = None if plaintext else row[-1]
        messages.append(message)
    return messages


def conversation_for(*, user: User, conversation_id: int) -> dict:
    """Return one of the user's conversations as the contract's object."""
    conversation = Conversation.objects.for_user(user).filter(pk=conversation_id).first()
    if conversation is None:
        member_check(user=user, conversation_id=conversation_id)
        raise NotMember()
    return _with_last_messages(user, [conversation])[0]


def conversations_for(*, user: User) -> list[dict]:
    """Return the user's conversations, most recent first, each with its last message."""
    return _with_last_messages(user, list(Conversation.objects.for_user(user)))


def _with_last_messages(user: User, conversations: list) -> list[dict]:
    """Build the conversation objects with `last_message` as this member sees it: one query for all."""
    wanted = [conversation.last_message_id for conversation in conversations if conversation.last_message_id]
    last = {message.pk: message for message in Message.objects.visible_to(user).filter(pk__in=wanted)} if wanted else {}
    objects = []
    for conversation in conversations:
        message = last.get(conversation.last_message_id)
        # Not visible (encrypted, from before this member joined): no last message to show.
        last_message = events.message_json_for(message) if message else None
        objects.append({**events.conversation_json_for(conversation), "last_message": last_message})
    return objects


# The user row a socket works with, read again on every connect (see socket_sessions).
_SOCKET_USER = ModelColumns(User, "u")


def socket_sessions(user_ids: list[int]) -> dict[int, tuple[User, dict[int, int], set[int], list[int]]]:
    """For each of the users (sockets that open at the same moment), by user id: the user, their
    conversations with their newest message id, the plaintext ones among them, and the users
    sharing one. A user id with no user is left out.

    Two queries written once in SQL, whatever the number of users (the user rows come with the
    first): every socket that opens asks them.
    """
    membership = _table(Membership)
    users, users_params = id_in("u.id", user_ids)
    rows = _rows(
        f"SELECT {_SOCKET_USER.sql}, m.conversation_id, c.encrypted, {_newest_sql('m.conversation_id')} "  # noqa: S608
        f"FROM {_table(User)} u LEFT JOIN {membership} m ON m.user_id = u.id "
        f"LEFT JOIN {_table(Conversation)} c ON c.id = m.conversation_id WHERE {users} ORDER BY m.conversation_id",
        users_params,
    )
    found = {}
    at = _SOCKET_USER.width
    for row in rows:
        user_id = row[0]
        if user_id not in found:
            found[user_id] = (_SOCKET_USER.make(row), {}, set(), [])
        if row[at] is not None:
            _, newest, plaintext, _ = found[user_id]
            newest[row[at]] = row[at + 2] or 0
            if not row[at + 1]:
                plaintext.add(row[at])
    members, members_params = id_in(
        "m.user_id", [user_id for user_id, (user, newest, *_) in found.items() if newest and user.is_active]
    )
    if members_params:
        peers = _rows(
            f"SELECT DISTINCT m.user_id, p.user_id FROM {membership} p JOIN {membership} m "  # noqa: S608
            f"ON m.conversation_id = p.conversation_id WHERE {members} AND p.user_id <> m.user_id",
            members_params,
        )
        for user_id, peer in peers:
            found[user_id][3].append(peer)
    return found


def is_member(*, user: User, conversation_id: int) -> bool:
    return Membership.objects.filter(conversation_id=conversation_id, user=user).exists()


def newest_message_ids(conversation_ids: list[int]) -> dict[int, int]:
    """Return the newest message id (0 for none) of each conversation, one index probe each."""
    found = {}
    for start in range(0, len(conversation_ids), 500):
        chunk = conversation_ids[start : start + 500]
        found.update((cid, latest or 0) for cid, latest in _rows(*_newest_ids_query(chunk)))
    return found
