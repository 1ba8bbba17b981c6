"""Lookups and announcements that several chat services share."""

import contextlib

from django.db import connection
from django.db.models.functions import Lower

from accounts.models import User
from chat import events
from chat.models import Conversation, Membership, Message
from chatterbox.errors import NotFound, NotMember


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _marks(values) -> str:
    return ", ".join(["%s"] * len(values))


def _rows(sql: str, params) -> list[tuple]:
    """Run SQL whose names come from the models and whose values are all parameters (hence the noqa: S608).

    The hot paths (the writer's batch, a socket's connect, the delivery watcher) use it: building
    ORM queries there cost more than running them.
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def pipelined():
    """On PostgreSQL, psycopg's pipeline mode: statements go out without waiting for the ones before,
    and a round trip is paid only where a result is read. Elsewhere, nothing."""
    if connection.vendor != "postgresql":
        return contextlib.nullcontext()
    connection.ensure_connection()
    return connection.connection.pipeline()


def _rows_many(queries: list[tuple[str, list]]) -> list[list[tuple]]:
    """Run several queries that do not depend on each other (as `_rows` does each) and return their rows.

    On PostgreSQL they go out together in psycopg's pipeline mode: one round trip for all, where
    one each would wait for the server in turn. Elsewhere they run one after another.
    """
    cursors = []
    try:
        with pipelined():
            for sql, params in queries:
                cursors.append(connection.cursor())
                cursors[-1].execute(sql, params)
            return [cursor.fetchall() for cursor in cursors]
    finally:
        for cursor in cursors:
            cursor.close()


def _newest_sql(conversation_column: str) -> str:
    """SQL for the newest message id of the conversation in `conversation_column` (one index probe)."""
    return (
        f"(SELECT x.id FROM {_table(Message)} x WHERE x.conversation_id = {conversation_column} "  # noqa: S608
        "ORDER BY x.id DESC LIMIT 1)"
    )


def _newest_ids_query(conversation_ids: list[int]) -> tuple[str, list[int]]:
    """The query for (conversation id, newest message id or NULL) of each conversation, and its parameters."""
    return (
        f"SELECT c.id, {_newest_sql('c.id')} FROM {_table(Conversation)} c WHERE c.id IN ({_marks(conversation_ids)})",  # noqa: S608
        conversation_ids,
    )


def _active_users(usernames: list[str]) -> list[User]:
    """Return the active users with these usernames, in any case, or raise NotFound naming the missing ones."""
    wanted = list({username.lower(): username for username in reversed(usernames)}.values())[::-1]
    rows = User.objects.annotate(username_lower=Lower("username")).filter(
        username_lower__in=[username.lower() for username in wanted], is_active=True
    )
    found = {user.username_lower: user for user in rows}
    missing = [username for username in wanted if username.lower() not in found]
    if missing:
        raise NotFound(f"No such user: {', '.join(missing)}.", usernames=missing)
    return [found[username.lower()] for username in wanted]


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
    membership = Membership.objects.filter(conversation=conversation, user__username__iexact=username).first()
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
        # The newcomer's first line ("X was added") follows as a message of its own.
        "last_message": None,
        "muted": False,
    }
    for membership in newcomers:
        events.broadcast_on_commit(
            events.user_group(membership.user_id), {"type": "chat.conversation.added", "conversation": shared}
        )


def _announce_members(conversation, members) -> None:
    """Tell the members who belongs now: encrypting clients must wrap keys for exactly them."""
    event = {"type": "chat.conversation.updated", "conversation": events.conversation_json(conversation, members)}
    events.conversation_broadcast_on_commit(conversation.pk, event)
