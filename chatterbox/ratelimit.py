"""One sliding-window counter in the shared cache, for every rate limit (messages, anti-abuse).

The window is estimated from two fixed ones: the previous window's count, weighted by how much
of it still overlaps the sliding window, stops a burst from slipping through by straddling a
window boundary. A refused action counts nothing, so a client that waits the answer gets through.
"""

import time
from math import ceil

from django.core.cache import cache


def window_key(prefix: str, seconds: int) -> str:
    """Return the cache key of the current fixed window under prefix."""
    return f"{prefix}:{int(time.time() // seconds)}"


def window_count(prefix: str, limit: int, seconds: int, cost: int = 1) -> int:
    """Count cost in the current window; return 0, or the seconds to wait (and count nothing)."""
    now = time.time()
    window, elapsed = divmod(now, seconds)
    key = f"{prefix}:{int(window)}"
    previous = cache.get(f"{prefix}:{int(window) - 1}", 0)
    cache.add(key, 0, timeout=2 * seconds + 1)
    try:
        used = cache.incr(key, cost)
    except ValueError:  # expired between add and incr
        used = cost
        cache.set(key, used, timeout=2 * seconds + 1)
    overlap = 1 - elapsed / seconds
    if previous * overlap + used <= limit:
        return 0
    cache.decr(key, cost)
    wait = seconds - elapsed
    if used <= limit and previous:
        # Only the previous window is in the way: wait until its weight leaves room.
        wait = (overlap - (limit - used) / previous) * seconds
    return max(1, ceil(wait))
