"""Reads shared by the HTTP API and the socket."""

from django.db.models import Exists, OuterRef

from accounts.models import User
from chat import events
from chat.models import Conversation, Membership, Message
from chat.services.lookups import _newest_ids_query, _newest_sql, _rows, _table
from chat.services.reactions import reactions_attach
from chatterbox.errors import Invalid, NotFound, NotMember

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
    user: User,
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
    never changes), so every message is the member's to see and the query is a plain one.
    """
    if not 1 <= limit <= HISTORY_PAGE_MAX:
        raise Invalid(f"limit must be 1 to {HISTORY_PAGE_MAX}.", field="limit")
    if not member_known:
        member_check(user=user, conversation_id=conversation_id)
    if member_known and plaintext:
        # A member of a plaintext conversation sees all of it: no key to join, no membership to test.
        messages = Message.objects.filter(conversation_id=conversation_id).select_related(
            "sender", "conversation", "attachment"
        )
    else:
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
    reactions_attach(page)
    return [events.message_json_for(message) for message in page], has_more


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


def socket_session(*, user: User) -> tuple[dict[int, int], set[int], list[int]] | None:
    """Return the user's conversations with their newest message id, the plaintext ones among them,
    and the users sharing one.

    None if the account is no longer active (banned). Two queries written once in SQL: every
    socket that opens asks them.
    """
    membership = _table(Membership)
    rows = _rows(
        f"SELECT u.is_active, m.conversation_id, c.encrypted, {_newest_sql('m.conversation_id')} "  # noqa: S608
        f"FROM {_table(User)} u LEFT JOIN {membership} m ON m.user_id = u.id "
        f"LEFT JOIN {_table(Conversation)} c ON c.id = m.conversation_id WHERE u.id = %s ORDER BY m.conversation_id",
        [user.pk],
    )
    if not rows or not rows[0][0]:
        return None
    mine = [(conversation_id, encrypted, latest) for _, conversation_id, encrypted, latest in rows if conversation_id]
    newest = {conversation_id: latest or 0 for conversation_id, _, latest in mine}
    plaintext = {conversation_id for conversation_id, encrypted, _ in mine if not encrypted}
    if not newest:
        return newest, plaintext, []
    rows = _rows(
        f"SELECT DISTINCT p.user_id FROM {membership} p JOIN {membership} m "  # noqa: S608
        "ON m.conversation_id = p.conversation_id WHERE m.user_id = %s AND p.user_id <> %s",
        [user.pk, user.pk],
    )
    return newest, plaintext, [user_id for (user_id,) in rows]


def is_member(*, user: User, conversation_id: int) -> bool:
    return Membership.objects.filter(conversation_id=conversation_id, user=user).exists()


def newest_message_ids(conversation_ids: list[int]) -> dict[int, int]:
    """Return the newest message id (0 for none) of each conversation, one index probe each."""
    found = {}
    for start in range(0, len(conversation_ids), 500):
        chunk = conversation_ids[start : start + 500]
        found.update((cid, latest or 0) for cid, latest in _rows(*_newest_ids_query(chunk)))
    return found
