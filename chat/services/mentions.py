"""Mentions in plaintext conversations: who a message names, and who may name everyone.

`@username` names a member; `@channel` and `@here` name every member and are for the owner and
admins of a channel or group only. The server records a mention per named member so that
unread mentions count apart from unread messages (Conversation.objects.for_user). In encrypted
conversations the mention list travels inside the ciphertext and the browser decides.
"""

from django.db.models import Q

from accounts.models import User
from chat.models import Conversation, Membership, Message, MessageMention
from chatterbox.errors import Forbidden
from client.markdown import mentions_of

EVERYONE = {"channel", "here"}


def mentions_check(*, conversation: Conversation, sender: User, body: str) -> set[int]:
    """Return the ids of the members a plaintext message mentions; refuse @channel/@here from non-admins."""
    if conversation.encrypted or not body or "@" not in body:
        return set()
    names = set(mentions_of(body))
    if not names:
        return set()
    members = Membership.objects.filter(conversation=conversation)
    if names & EVERYONE:
        role = members.filter(user=sender).values_list("role", flat=True).first()
        if conversation.kind == Conversation.Kind.DIRECT or role not in {Membership.Role.OWNER, Membership.Role.ADMIN}:
            raise Forbidden("Only the owner and admins can mention @channel or @here.", field="body")
        return set(members.exclude(user=sender).values_list("user_id", flat=True))
    named = Q()
    for name in names - EVERYONE:
        named |= Q(user__username__iexact=name)
    return set(members.filter(named).exclude(user=sender).values_list("user_id", flat=True))


def mentions_rows(*, message: Message, user_ids: set[int]) -> list[MessageMention]:
    """Return the mention rows to insert with the message."""
    return [MessageMention(message=message, user_id=uid) for uid in user_ids]
