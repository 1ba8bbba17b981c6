"""The presence counter in the shared cache: Redis on the PostgreSQL + Redis path, memory on the embedded one."""

import pytest
from django.conf import settings
from django.core.cache import caches

from chat.presence import (
    PRESENCE_TTL,
    presence_close_many,
    presence_open_many,
    presence_refresh,
    users_online,
)


def presence_open(user_id: int, peer_ids: list[int]) -> tuple[bool, set[int]]:
    """One socket opening alone."""
    return presence_open_many([(user_id, peer_ids)])[0]


@pytest.fixture(autouse=True)
def no_presence():
    caches["default"].delete_many([f"presence:{uid}" for uid in range(1, 6)])


def test_sockets_are_counted_and_peers_read_in_one_go():
    # The first socket brings the user online; peers offline are left out.
    assert presence_open(1, [2, 3]) == (True, set())
    assert presence_open(2, [1, 3]) == (True, {1})
    # A second tab of the same user does not announce them again.
    assert presence_open(1, [2]) == (False, {2})
    assert presence_open(3, []) == (True, set())
    assert users_online([1, 2, 3, 4]) == {1, 2, 3}

    # The last socket to close takes the user offline; not before.
    assert presence_close_many([1]) == [False]
    assert users_online([1]) == {1}
    assert presence_close_many([1]) == [True]
    assert users_online([1, 2]) == {2}
    # Closing more sockets than were counted (an entry that expired) leaves the user offline.
    assert presence_close_many([1]) == [True]
    assert users_online([1]) == set()
    presence_refresh(2)
    assert presence_open(2, [1, 3]) == (False, {3})


def test_sockets_closing_together_are_counted_out_in_order():
    presence_open_many([(1, []), (1, []), (2, []), (3, [])])
    # User 1's two sockets: the second to go is the last; user 4 has no entry (it expired).
    assert presence_close_many([1, 2, 4, 1]) == [False, True, True, True]
    assert users_online([1, 2, 3, 4]) == {3}
    # Counted out again after they went: still offline, no entry below zero left behind.
    assert presence_close_many([2]) == [True]
    assert presence_open_many([(2, [3])]) == [(True, {3})]
    assert presence_close_many([]) == []


def test_sockets_opening_together_are_counted_in_order_and_see_each_other():
    presence_open(4, [])
    opened = presence_open_many([(1, [2, 4]), (2, [1, 3]), (1, [3]), (5, [])])
    # Each socket in turn: user 1's second socket finds them online already.
    assert [online_now for online_now, _ in opened] == [True, True, False, True]
    # Peers are read after every socket of the batch is counted.
    assert [online for _, online in opened] == [{2, 4}, {1}, set(), set()]
    assert presence_close_many([1, 1]) == [False, True]
    assert presence_open_many([]) == []


@pytest.mark.skipif(not settings.REDIS_URL, reason="reads the entry's expiry from Redis")
def test_every_count_is_written_with_its_expiry():
    """So that a process that dies with sockets open does not leave their users online."""
    backend = caches["default"]
    presence_open(5, [])
    presence_open(5, [])
    ttl = backend._cache.get_client().ttl(backend.make_and_validate_key("presence:5"))
    assert 0 < ttl <= PRESENCE_TTL
