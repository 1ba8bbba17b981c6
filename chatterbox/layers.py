"""The Redis channel layer with a connection pool that waits instead of failing when it runs dry.

channels-redis builds redis-py's plain pool, which raises MaxConnectionsError the moment every
connection is busy: in a reconnect storm hundreds of sockets join their groups at once and some
of them fail. A blocking pool of REDIS_MAX_CONNECTIONS queues those calls for up to
REDIS_POOL_TIMEOUT seconds; only a longer outage raises, and the consumer then closes the socket
with 1011 so that the client reconnects and resyncs.

It also keeps redis-py's read timeout above the layer's blocking-pop timeout (see create_pool).
"""

from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool


class PooledRedisChannelLayer(RedisChannelLayer):
    def __init__(self, *, max_connections: int = 200, pool_timeout: float = 10.0, **config):
        super().__init__(**config)
        self.max_connections = max_connections
        self.pool_timeout = pool_timeout

    def create_pool(self, index):
        host = dict(self.hosts[index])
        address = host.pop("address")
        # redis-py's default read timeout (5 s) equals the layer's BZPOPMIN timeout: on a busy machine
        # the read gives up first and takes the receiving socket down with it. Give reads more room.
        host.setdefault("socket_timeout", self.brpop_timeout + 10)
        return BlockingConnectionPool.from_url(
            address, max_connections=self.max_connections, timeout=self.pool_timeout, **host
        )
