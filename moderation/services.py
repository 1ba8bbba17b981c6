"""Writes for moderation: blocks, reports and their handling. Every door calls these."""

from django.db import IntegrityError, transaction
from django.db.models import Q

from accounts.models import User
from chatterbox.errors import Forbidden, Invalid, NotFound
from moderation.models import Block


def _user_named(username: str) -> User:
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        raise NotFound(f"No such user: {username}.", usernames=[username])
    return user


def block_create(*, blocker: User, username: str) -> tuple[Block, bool]:
    """Block a user; return the block and whether it is new."""
    blocked = _user_named(username)
    if blocked.pk == blocker.pk:
        raise Invalid("You cannot block yourself.", field="username")
    try:
        with transaction.atomic():
            return Block.objects.get_or_create(blocker=blocker, blocked=blocked)
    except IntegrityError:  # the same block raced in from another tab
        return Block.objects.get(blocker=blocker, blocked=blocked), False


def block_delete(*, blocker: User, username: str) -> None:
    """Lift a block; NotFound if there was none."""
    deleted, _ = Block.objects.filter(blocker=blocker, blocked__username=username).delete()
    if not deleted:
        raise NotFound(f"You have not blocked {username}.")


def blocks_of(*, user: User) -> list[Block]:
    return list(Block.objects.filter(blocker=user).select_related("blocked").order_by("-created_at", "-id"))


def block_between(user_a_id: int, user_b_id: int) -> Block | None:
    """Return a block either way between two users, or None."""
    either = Q(blocker_id=user_a_id, blocked_id=user_b_id) | Q(blocker_id=user_b_id, blocked_id=user_a_id)
    return Block.objects.filter(either).select_related("blocker", "blocked").first()


def direct_block_check(*, sender: User, other_id: int) -> None:
    """Refuse a direct conversation, or a message in one, when either of the two blocked the other."""
    block = block_between(sender.pk, other_id)
    if block is None:
        return
    if block.blocker_id == sender.pk:
        raise Forbidden(f"You blocked {block.blocked.username}; unblock them to write to them.")
    raise Forbidden(f"{block.blocker.username} has blocked you: you cannot write to them.")


def profile_context(*, user: User) -> dict:
    """Return what the profile page shows of moderation: whom the user blocked."""
    return {"blocks": blocks_of(user=user)}
