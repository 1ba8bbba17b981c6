"""Checks the chat services make before letting a user write; no imports from chat, so chat can call them."""

from django.db.models import Q

from accounts.models import User
from chatterbox.errors import Forbidden
from moderation.models import Block


def block_between(user_a_id: int, user_b_id: int) -> Block | None:
    """Return a block either way between two users, or None."""
    either = Q(blocker_id=user_a_id, blocked_id=user_b_id) | Q(blocker_id=user_b_id, blocked_id=user_a_id)
    return Block.objects.filter(either).select_related("blocker", "blocked").first()


def blocks_among(user_ids) -> list[Block]:
    """Return every block made by or against these users (the message path's one query per batch)."""
    user_ids = list(user_ids)
    either = Q(blocker_id__in=user_ids) | Q(blocked_id__in=user_ids)
    return list(Block.objects.filter(either).select_related("blocker", "blocked"))


def direct_block_check(*, sender: User, other_id: int, block: Block | bool | None = False) -> None:
    """Refuse a direct conversation, or a message in one, when either of the two blocked the other.

    A caller that looked the block up already passes it (None: there is none).
    """
    if block is False:
        block = block_between(sender.pk, other_id)
    if block is None:
        return
    if block.blocker_id == sender.pk:
        raise Forbidden(f"You blocked {block.blocked.username}; unblock them to write to them.")
    raise Forbidden(f"{block.blocker.username} has blocked you: you cannot write to them.")
