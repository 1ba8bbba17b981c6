"""One sliding-window counter in the shared cache, for every rate limit (messages, anti-abuse).

The window is estimated from two fixed ones: the previous window's count, weighted by how much
of it still overlaps the sliding window, stops a burst from slipping through by straddling a
window boundary. A refused action counts nothing, so a client that waits the answer gets through.
"""

import time
from math import ceil

from django.core.cache import cache, caches


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


class BatchWindows:
    """The shared windows of many counters, read in one round trip and added to in one more.

    For the message path's writer: before a batch it reads the windows of every sender in it
    (`load`), counts each send from memory (`count`, as `window_count` would), and once the batch
    is stored adds what it accepted (`save`). A limit then holds across the server's processes;
    processes whose batches overlap in time may each let through what the other counted
    meanwhile, at most a batch's worth, never a multiple of the limit.
    """

    def __init__(self, seconds: int):
        self.seconds = seconds
        window, self.elapsed = divmod(time.time(), seconds)
        self.window = int(window)
        self.read: dict[str, tuple[int, int]] = {}  # prefix -> (previous window's count, this one's)
        self.added: dict[str, int] = {}

    def load(self, prefixes) -> None:
        keys = {prefix: (f"{prefix}:{self.window - 1}", f"{prefix}:{self.window}") for prefix in prefixes}
        found = cache.get_many([key for pair in keys.values() for key in pair])
        self.read = {prefix: (found.get(before, 0), found.get(now, 0)) for prefix, (before, now) in keys.items()}

    def count(self, prefix: str, limit: int, seconds: int, cost: int = 1) -> int:
        previous, used = self.read.get(prefix, (0, 0))
        used += self.added.get(prefix, 0) + cost
        wait = _wait(previous, used, self.elapsed, seconds, limit)
        if not wait:
            self.added[prefix] = self.added.get(prefix, 0) + cost
        return wait

    def save(self) -> None:
        """Add the accepted counts to the shared windows in one round trip (the cache is Redis: with
        the embedded cache there is one process, and LocalWindows counts alone)."""
        if not self.added:
            return
        timeout = 2 * self.seconds + 1
        backend = caches["default"]
        pipeline = backend._cache.get_client(write=True).pipeline(transaction=False)
        for prefix, cost in self.added.items():
            key = backend.make_key(f"{prefix}:{self.window}")
            pipeline.incrby(key, cost)
            pipeline.expire(key, timeout)
        pipeline.execute()


class LocalWindows:
    """The same sliding windows in this process's memory, for a caller that owns them alone.

    No round trip to the cache: with the embedded cache (one process, its own memory) the message
    path's writer counts each sender here.
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
