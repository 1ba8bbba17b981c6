"""Django's Redis cache with one client, and so one connection pool, per process.

Django builds a cache object per async context: every ASGI request and every WebSocket gets its
own, and with it a new Redis connection pool that opens a new connection on first use and is
never closed. Under load that is a TCP connection (and a package-metadata read in redis-py) per
socket: a third of the server's time while 1,000 sockets connect. Here every cache object of a
process with the same settings shares one client; redis-py's pools are thread-safe. That client
also keeps one redis-py client object per pool, where Django's builds a new one for every call
(its constructor cost as much as the round trip of the call).

`clear()` deletes this cache's keys only, where Django's flushes the whole Redis database: the
channel layer keeps its groups in the same database, and a flush would silently unsubscribe every
process from the conversations it serves.
"""

import threading

from django.core.cache.backends import redis
from django.utils.functional import cached_property

_clients: dict[tuple, redis.RedisCacheClient] = {}
_lock = threading.Lock()


class SharedRedisCacheClient(redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._redis_clients: dict[int, object] = {}  # by id() of the pool

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._redis_clients.get(id(pool))
        if client is None:
            client = self._redis_clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedRedisCacheClient

    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
                # Made here, under the lock, so that threads never race to make a pool (and client) each.
                client.get_client(write=True)
            return client

    def clear(self):
        client = self._cache.get_client(write=True)
        # Django's keys are "prefix:version:key"; the channel layer's may share the prefix, never a version.
        keys = client.scan_iter(match=f"{self.key_prefix}:[0-9]*:*", count=1000)
        while batch := [key for _, key in zip(range(1000), keys, strict=False)]:
            client.unlink(*batch)
