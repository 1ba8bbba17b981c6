"""Channel layers: Redis with a connection pool that waits instead of failing, and a leaner in-memory one.

channels-redis builds redis-py's plain pool, which raises MaxConnectionsError the moment every
connection is busy: in a reconnect storm hundreds of sockets join their groups at once and some
of them fail. A blocking pool of REDIS_MAX_CONNECTIONS queues those calls for up to
REDIS_POOL_TIMEOUT seconds; only a longer outage raises, and the consumer then closes the socket
with 1011 so that the client reconnects and resyncs.

It also keeps redis-py's read timeout above the layer's blocking-pop timeout (see create_pool).

Both layers add `receive_batch`: everything waiting on a channel that one reader owns (the
fan-out hub's, chat.fanout) in one go. channels-redis receives one event per four round trips
(a clean-up script, BZPOPMIN, a backup copy and its removal); a batch costs two.

And `group_send_many`: a batch of events to several groups, in order. channels-redis's group_send
costs four round trips per event (expire the group, read it, expire each channel, the Lua push);
a batch costs two on one Redis (one pipeline reads every group, one script pushes every event).
"""

import asyncio
import contextlib
import logging
import time
from collections import defaultdict

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool

logger = logging.getLogger(__name__)


# Push each (channel key, message) in order unless the channel is full; ARGV: now, expiry, then the
# messages, capacities and scores, one each per key. Returns how many were over capacity.
GROUP_SEND_MANY = """
local now, expiry, n = tonumber(ARGV[1]), tonumber(ARGV[2]), #KEYS
local over = 0
for i = 1, n do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, now - expiry)
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[2 + n + i]) then
        redis.call('ZADD', KEYS[i], ARGV[2 + 2 * n + i], ARGV[2 + i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over = over + 1
    end
end
return over
"""


class PooledRedisChannelLayer(RedisChannelLayer):
    def __init__(self, *, max_connections: int = 200, pool_timeout: float = 10.0, **config):
        super().__init__(**config)
        self.max_connections = max_connections
        self.pool_timeout = pool_timeout
        # Scores (times) of pushed events only grow, so that a channel pops them in the order sent.
        self._last_score = 0.0

    def create_pool(self, index):
        host = dict(self.hosts[index])
        address = host.pop("address")
        # redis-py's default read timeout (5 s) equals the layer's BZPOPMIN timeout: on a busy machine
        # the read gives up first and takes the receiving socket down with it. Give reads more room.
        host.setdefault("socket_timeout", self.brpop_timeout + 10)
        return BlockingConnectionPool.from_url(
            address, max_connections=self.max_connections, timeout=self.pool_timeout, **host
        )

    async def group_renew(self, group: str, channel: str) -> bool:
        """group_add that says whether the channel was missing from the group (Redis lost it)."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        key = self._group_key(group)
        connection = self.connection(self.consistent_hash(group))
        added = await connection.zadd(key, {channel: time.time()})
        await connection.expire(key, self.group_expiry)
        return bool(added)

    async def group_add_many(self, groups: list[str], channel: str) -> None:
        """group_add for many groups at once: one pipeline per Redis host, not two round trips each."""
        self.require_valid_channel_name(channel)
        by_host: dict[int, list[str]] = defaultdict(list)
        for group in groups:
            self.require_valid_group_name(group)
            by_host[self.consistent_hash(group)].append(group)
        now = time.time()
        for index, host_groups in by_host.items():
            pipe = self.connection(index).pipeline(transaction=False)
            for group in host_groups:
                pipe.zadd(self._group_key(group), {channel: now})
                pipe.expire(self._group_key(group), self.group_expiry)
            await pipe.execute()

    async def group_send_many(self, sends: list[tuple[str, dict]], *, skip: str | None = None) -> None:
        """Send each (group, event) as group_send would, in order, in two round trips for all;
        never to the channel `skip` (the sender's own hub, which delivered them itself)."""
        if self.ring_size != 1:
            # Sharded: group_send reaches `skip` too, whose sockets drop what they already have.
            for group, message in sends:
                await self.group_send(group, message)
            return
        connection = self.connection(0)
        groups = list(dict.fromkeys(group for group, _ in sends))
        pipe = connection.pipeline(transaction=False)
        for group in groups:
            self.require_valid_group_name(group)
            pipe.zremrangebyscore(self._group_key(group), min=0, max=int(time.time()) - self.group_expiry)
            pipe.zrange(self._group_key(group), 0, -1)
        replies = await pipe.execute()
        members = {
            group: [name.decode() for name in replies[2 * i + 1] if name.decode() != skip]
            for i, group in enumerate(groups)
        }
        keys, messages, capacities = [], [], []
        for group, message in sends:
            _, by_key, capacity = self._map_channel_keys_to_connection(members[group], message)
            for key, payload in by_key.items():
                keys.append(key)
                messages.append(payload)
                capacities.append(capacity[key])
        if not keys:
            return
        now = time.time()
        start = max(now, self._last_score + 1e-6)
        scores = [start + i * 1e-6 for i in range(len(keys))]
        self._last_score = scores[-1]
        over = await connection.eval(
            GROUP_SEND_MANY, len(keys), *keys, now, self.expiry, *messages, *capacities, *scores
        )
        if over:
            logger.info("%s of %s events over capacity in a batch of group sends", over, len(keys))

    async def receive_batch(self, channel: str, limit: int) -> list[dict]:
        """Wait for an event on a channel only this process reads, then take up to `limit` waiting.

        Unlike receive, nothing is kept in a backup queue while it is handled: a process that dies
        loses what it popped, and with it the sockets it was for (they reconnect and sync).
        """
        assert "!" not in channel, "receive_batch is for a channel one reader owns, not a process-specific one"
        self.require_valid_channel_name(channel, receive=True)
        key = self.prefix + channel
        connection = self.connection(self.consistent_hash(channel))
        first = await connection.bzpopmin(key, timeout=self.brpop_timeout)
        if first is None:
            return []
        members = [first[1]]
        if limit > 1:
            members += [member for member, _ in await connection.zpopmin(key, limit - 1)]
        messages = [self.deserialize(member) for member in members]
        for message in messages:
            # group_send names the recipients for process-specific channels; receive drops it too.
            message.pop("__asgi_channel__", None)
        return messages


class LocalChannelLayer(InMemoryChannelLayer):
    """Channels' in-memory layer (one process) without its per-event costs.

    - An event is shared by its recipients, not deep-copied for each: events are never changed
      after they are sent (consumers build new dicts when they need to).
    - group_send puts the event straight into each member's queue, instead of one task per member.
    - Expired events are swept at most once a second, not by walking every channel on every receive.
    - `channel_capacity` patterns work (Channels' in-memory layer leaves them uncompiled).
    A full queue still drops the event, as before: the socket notices by `prev_id`, or the delivery
    watcher (chat.fanout) repairs it.
    """

    SWEEP_INTERVAL = 1.0

    def __init__(self, **config):
        super().__init__(**config)
        # Channels' in-memory layer keeps the patterns uncompiled, and get_capacity needs them compiled.
        self.channel_capacity = self.compile_capacities(self.channel_capacity)
        self._swept = 0.0

    def _sweep(self) -> None:
        now = time.monotonic()
        if now - self._swept >= self.SWEEP_INTERVAL:
            self._swept = now
            self._clean_expired()

    def _put(self, channel: str, message: dict) -> None:
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        queue.put_nowait((time.time() + self.expiry, message))

    async def send(self, channel, message):
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        try:
            self._put(channel, message)
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    async def receive(self, channel):
        self.require_valid_channel_name(channel)
        self._sweep()
        queue = self.channels.setdefault(channel, asyncio.Queue(maxsize=self.get_capacity(channel)))
        try:
            _, message = await queue.get()
        finally:
            if queue.empty():
                self.channels.pop(channel, None)
        return message

    async def receive_batch(self, channel: str, limit: int) -> list[dict]:
        """Wait for an event, then take up to `limit` waiting (see PooledRedisChannelLayer)."""
        messages = [await self.receive(channel)]
        queue = self.channels.get(channel)
        while queue is not None and len(messages) < limit and not queue.empty():
            messages.append(queue.get_nowait()[1])
        if queue is not None and queue.empty():
            self.channels.pop(channel, None)
        return messages

    async def group_add_many(self, groups: list[str], channel: str) -> None:
        for group in groups:
            await self.group_add(group, channel)

    async def group_send_many(self, sends: list[tuple[str, dict]], *, skip: str | None = None) -> None:
        for group, message in sends:
            await self.group_send(group, message, skip=skip)

    async def group_send(self, group, message, *, skip: str | None = None):
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_group_name(group)
        self._sweep()
        for channel in list(self.groups.get(group, ())):
            if channel == skip:
                continue
            with contextlib.suppress(asyncio.QueueFull):
                self._put(channel, message)
