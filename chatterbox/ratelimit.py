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
    wait = _wait(previous, used, elapsed, seconds, limit)
    if wait:
        cache.decr(key, cost)
    return wait


class LocalWindows:
    """The same sliding windows in this process's memory, for a caller that owns them alone.

    No round trip to the cache: the message path's writer counts each sender here, so a limit
    holds per server process (docs/performance.md).
    """

    def __init__(self):
        # prefix -> (window number, count in it, count in the window before)
        self.state: dict[str, tuple[int, int, int]] = {}
        self.swept = 0

    def count(self, prefix: str, limit: int, seconds: int, cost: int = 1) -> int:
        window, elapsed = divmod(time.time(), seconds)
        window = int(window)
        known, used, previous = self.state.get(prefix, (window, 0, 0))
        if known != window:
            used, previous = 0, used if known == window - 1 else 0
        wait = _wait(previous, used + cost, elapsed, seconds, limit)
        self.state[prefix] = (window, used if wait else used + cost, previous)
        if window - self.swept > 2:
            self.swept = window
            self.state = {key: value for key, value in self.state.items() if value[0] >= window - 1}
        return wait


def _wait(previous: int, used: int, elapsed: float, seconds: int, limit: int) -> int:
    """Return 0 if `used` in this window (after `elapsed` of its `seconds`) fits, else the seconds to wait."""
    overlap = 1 - elapsed / seconds
    if previous * overlap + used <= limit:
        return 0
    wait = seconds - elapsed
    if used <= limit and previous:
        # Only the previous window is in the way: wait until its weight leaves room.
        wait = (overlap - (limit - used) / previous) * seconds
    return max(1, ceil(wait))
