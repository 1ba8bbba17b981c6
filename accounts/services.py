"""Writes to accounts: every door (views, API, admin) goes through these."""

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from accounts.avatars import avatar_process
from accounts.models import User
from accounts.signals import user_banned
from moderation.audit import audit_record

# The profile fields a user may change, with the lengths the model allows.
PROFILE_LIMITS = {field: User._meta.get_field(field).max_length for field in ("display_name", "bio", "status")}


class ProfileInvalid(ValueError):
    """A profile field is of the wrong type or too long; `errors` maps field to message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


def profile_update(*, user: User, changes: dict) -> User:
    """Change display name, bio and status; refuse unknown fields and over-long text."""
    errors = {}
    for field, value in changes.items():
        if field not in PROFILE_LIMITS:
            errors[field] = "This field cannot be changed here."
        elif not isinstance(value, str):
            errors[field] = "Must be text."
        elif len(value.strip()) > PROFILE_LIMITS[field]:
            errors[field] = f"At most {PROFILE_LIMITS[field]} characters."
    if errors:
        raise ProfileInvalid(errors)
    for field, value in changes.items():
        setattr(user, field, value.strip())
    if changes:
        user.save(update_fields=list(changes))
    return user


@transaction.atomic
def avatar_set(*, user: User, upload) -> User:
    """Replace the user's picture with a cleaned copy of the upload (InvalidAvatar if unfit)."""
    picture = avatar_process(upload)
    old = user.avatar.name if user.avatar else None
    user.avatar.save(picture.name, picture, save=False)
    user.avatar_version += 1
    user.save(update_fields=["avatar", "avatar_version"])
    if old and old != user.avatar.name:
        storage = user.avatar.storage
        transaction.on_commit(lambda: storage.delete(old))
    return user


def avatar_clear(*, user: User) -> User:
    if user.avatar:
        name, storage = user.avatar.name, user.avatar.storage
        user.avatar = ""
        user.avatar_version += 1
        user.save(update_fields=["avatar", "avatar_version"])
        transaction.on_commit(lambda: storage.delete(name))
    return user


@transaction.atomic
def user_ban(*, user: User, actor: User | None = None, reason: str = "") -> User:
    """Deactivate the account, record why and end its sessions; on commit, cut its sockets everywhere."""
    user.is_active = False
    user.ban_reason = reason.strip()[: User._meta.get_field("ban_reason").max_length]
    user.banned_at = timezone.now()
    user.save(update_fields=["is_active", "ban_reason", "banned_at"])
    user_sessions_end(user=user)
    audit_record(actor=actor, action="user.banned", target_user=user, reason=reason)
    transaction.on_commit(lambda: user_banned.send(sender=User, user_id=user.pk))
    return user


def user_sessions_end(*, user: User) -> int:
    """Delete every stored session signed in as the user; return how many there were."""
    ended = [
        session.pk
        for session in Session.objects.filter(expire_date__gt=timezone.now())
        if session.get_decoded().get(SESSION_KEY) == str(user.pk)
    ]
    Session.objects.filter(pk__in=ended).delete()
    return len(ended)


@transaction.atomic
def user_unban(*, user: User, actor: User | None = None, reason: str = "") -> User:
    user.is_active = True
    user.save(update_fields=["is_active"])
    audit_record(actor=actor, action="user.unbanned", target_user=user, reason=reason)
    return user


def users_seen(*, user_ids) -> None:
    """Record that these users' last sockets just closed: the "last seen" others are shown."""
    User.objects.filter(pk__in=user_ids).update(last_seen_at=timezone.now())
