"""Who is online: a connection count per user in the shared cache.

Every open socket adds one and removes one when it closes; entries expire on their own
so that a process that dies without closing its sockets does not leave users online.
"""

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

PRESENCE_TTL = 120


def _key(user_id: int) -> str:
    return f"presence:{user_id}"


def presence_connect(user_id: int) -> bool:
    """Count a new socket; return True when the user just came online."""
    key = _key(user_id)
    if cache.add(key, 1, PRESENCE_TTL):
        return True
    try:
        cache.incr(key)
    except ValueError:
        cache.set(key, 1, PRESENCE_TTL)
        return True
    cache.touch(key, PRESENCE_TTL)
    return False


def presence_open_many(openings: list[tuple[int, list[int]]]) -> list[tuple[bool, set[int]]]:
    """Count new sockets (a user id and peer ids each) that open at the same moment, and read which
    peers are online: for each socket, whether it brought its user online, and those peers.

    On Redis, one round trip for all: INCR (a missing entry counts from 0, as `add` would) and
    EXPIRE for each socket, then one MGET of every peer. The keys are ours, so they skip the
    cache's validation (a warning scan of every key).
    """
    backend = caches["default"]
    peers = list({peer for _, peer_ids in openings for peer in peer_ids})
    if not isinstance(backend, RedisCache):
        came_online = [presence_connect(user_id) for user_id, _ in openings]
        online = users_online(peers)
    else:
        pipeline = backend._cache.get_client(write=True).pipeline(transaction=False)
        for user_id, _ in openings:
            key = backend.make_key(_key(user_id))
            pipeline.incr(key)
            pipeline.expire(key, PRESENCE_TTL)
        if peers:
            pipeline.mget([backend.make_key(_key(peer)) for peer in peers])
        replies = pipeline.execute()
        values = replies[-1] if peers else []
        online = {peer for peer, value in zip(peers, values, strict=True) if value and int(value) > 0}
        came_online = [count == 1 for count in replies[0 : 2 * len(openings) : 2]]
    return [(now, online.intersection(peer_ids)) for now, (_, peer_ids) in zip(came_online, openings, strict=True)]


def presence_refresh(user_id: int) -> None:
    """Keep a connected user's entry from expiring (called on the socket's heartbeat)."""
    if not cache.touch(_key(user_id), PRESENCE_TTL):
        cache.add(_key(user_id), 1, PRESENCE_TTL)


def presence_close_many(user_ids: list[int]) -> list[bool]:
    """Forget one socket of each user (a user may come more than once, a socket each); return, for
    each in turn, whether it was the user's last.

    On Redis one script for all: each count goes down and an entry at zero goes, atomically, so a
    socket opening meanwhile never finds its count taken from under it. A count that expired
    meanwhile (the user is already offline) counts as a last socket.
    """
    backend = caches["default"]
    if not user_ids:
        return []
    if not isinstance(backend, RedisCache):
        return [_close_one(user_id) for user_id in user_ids]
    global _close_script
    client = backend._cache.get_client(write=True)
    if _close_script is None:
        _close_script = client.register_script(_CLOSE_SCRIPT)
    counts = _close_script(keys=[backend.make_key(_key(user_id)) for user_id in user_ids], client=client)
    return [count <= 0 for count in counts]


_CLOSE_SCRIPT = """
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('DECR', key)
  if counts[i] <= 0 then redis.call('DEL', key) end
end
return counts
"""
_close_script = None


def _close_one(user_id: int) -> bool:
    key = _key(user_id)
    try:
        remaining = cache.decr(key)
    except ValueError:
        return True
    if remaining <= 0:
        cache.delete(key)
        return True
    return False


def presence_clear(user_id: int) -> None:
    """Forget every socket of the user at once (a ban): they show offline until they connect again."""
    cache.delete(_key(user_id))


def users_online(user_ids) -> set[int]:
    """Return the subset of user_ids that have an open socket."""
    found = cache.get_many([_key(uid) for uid in user_ids])
    return {uid for uid in user_ids if (found.get(_key(uid)) or 0) > 0}
