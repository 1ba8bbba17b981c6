"""Django's Redis cache with one client, and so one connection pool, per process.

Django builds a cache object per async context: every ASGI request and every WebSocket gets its
own, and with it a new Redis connection pool that opens a new connection on first use and is
never closed. Under load that is a TCP connection (and a package-metadata read in redis-py) per
socket: a third of the server's time while 1,000 sockets connect. Here every cache object of a
process with the same settings shares one client; redis-py's pools are thread-safe.
"""

import threading

from django.core.cache.backends import redis
from django.utils.functional import cached_property

_clients: dict[tuple, redis.RedisCacheClient] = {}
_lock = threading.Lock()


class RedisCache(redis.RedisCache):
    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
                # Made here, under the lock, so that threads never race to make a pool each.
                client._get_connection_pool(write=True)
            return client
