"""Anti-abuse limits: how many conversations, invitations, reports and uploads one user (and one
client address) may make in a while, stricter for new accounts.

Each limit is a sliding window estimated from two fixed ones in the cache (Redis when set, so
every process counts together). A refusal raises RateLimited with retry_after in seconds and
counts nothing, so a client that waits that long gets through.
"""

import ipaddress
from datetime import timedelta
from math import ceil

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from chatterbox.errors import RateLimited
from chatterbox.ratelimit import window_count, window_key

WORDS = {
    "conversations": "new conversations",
    "invitations": "invitations",
    "reports": "reports",
    "uploads": "uploads",
}


def client_address(request) -> str:
    """Return the real client address behind TRUSTED_PROXY_COUNT proxies.

    Each proxy appends the address it was connected from to X-Forwarded-For, so the client is
    the N-th entry from the right; anything further left was written by the client and is not
    trusted. With no proxies configured the header is ignored.
    """
    proxies = settings.TRUSTED_PROXY_COUNT
    peer = request.META.get("REMOTE_ADDR", "")
    if proxies <= 0:
        return peer
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < proxies:
        # Fewer hops than proxies: a request that did not come through all of them.
        return hops[0] if hops else peer
    candidate = hops[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer


def _rule(kind: str, user) -> tuple[int, int] | None:
    try:
        established, new = settings.ABUSE_LIMITS[kind]
    except KeyError:
        raise ImproperlyConfigured(f"ABUSE_LIMITS has no {kind!r} limit.") from None
    young = user is not None and user.date_joined > timezone.now() - timedelta(hours=settings.NEW_ACCOUNT_AGE_HOURS)
    rule = (new if young else established or "").strip().lower()
    if rule in {"", "0", "off"}:
        return None
    try:
        limit, seconds = (int(part) for part in rule.split("/"))
    except ValueError:
        raise ImproperlyConfigured(f'RATE_LIMIT_{kind.upper()} must look like "20/3600" or "off".') from None
    return limit, seconds


def rate_check(kind: str, *, user=None, address: str | None = None, cost: int = 1) -> None:
    """Count `cost` actions of this kind for the user and the address, or raise RateLimited."""
    rule = _rule(kind, user)
    if rule is None:
        return
    limit, seconds = rule
    buckets = []
    if user is not None:
        buckets.append((f"user:{user.pk}", limit))
    if address:
        buckets.append((f"addr:{address}", limit * settings.RATE_LIMIT_ADDRESS_FACTOR))
    counted = []
    for subject, allowed in buckets:
        wait = window_count(f"abuse:{kind}:{subject}", allowed, seconds, cost)
        if wait:
            for key in counted:  # what was counted for the other bucket does not stand
                cache.decr(key, cost)
            raise RateLimited(
                f"Too many {WORDS.get(kind, kind)}: at most {allowed} every {_duration(seconds)}. "
                f"Try again in {_duration(wait)}.",
                retry_after=wait,
            )
        counted.append(window_key(f"abuse:{kind}:{subject}", seconds))


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds >= 120:
        return f"{ceil(seconds / 60)} min"
    return f"{seconds} s"


def upload_rate_check(*, user, address: str | None = None) -> None:
    """Count one upload; the attachments endpoint calls this before storing a file."""
    rate_check("uploads", user=user, address=address)
