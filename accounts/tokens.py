"""API tokens: created on the profile page, sent as `Authorization: Bearer <token>`."""

import hashlib
import secrets

from django.utils import timezone

from accounts.models import ApiToken, User
from chatterbox.errors import Invalid

TOKEN_PREFIX = "cbx_"
MAX_TOKENS_PER_USER = 20
# Writing last_used_at on every request would turn every read into a write.
LAST_USED_RESOLUTION = timezone.timedelta(minutes=5)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret, which is shown once and never stored."""
    name = name.strip()
    if not name or len(name) > 64:
        raise Invalid("Give the token a name of 1 to 64 characters.")
    if ApiToken.objects.filter(user=user).count() >= MAX_TOKENS_PER_USER:
        raise Invalid(f"You have {MAX_TOKENS_PER_USER} tokens already; revoke one first.")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, key_hash=_hash(raw), prefix=raw[:12])
    return token, raw


def token_revoke(*, user: User, token_id: int) -> None:
    """Delete the token; sockets opened with it close on commit (accounts.sessions.token_deleted)."""
    ApiToken.objects.filter(user=user, pk=token_id).delete()


def token_find(raw: str) -> ApiToken | None:
    """Return the token with this secret, its active user loaded, or None."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 100:
        return None
    token = ApiToken.objects.select_related("user").filter(key_hash=_hash(raw)).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
