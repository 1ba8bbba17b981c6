"""Local fan-out: one channel-layer subscription per process and group, and delivery repair.

A conversation's events cross the channel layer once per process, not once per socket: the first
socket of this process in a conversation subscribes the process's hub channel to the
conversation's group, and the hub hands each event it receives straight to this process's sockets
there (`ChatConsumer.hub_event`), on the event loop, without a queue, a thread hop or a copy per
socket. With channels-redis that is one Redis push and pop per process and event where it was one
per socket; in one process (the in-memory layer) one queue put per event. A user's, a session's
and a token's events (bans, sign-outs, memberships) arrive the same way, all through one layer
group (chat.events.PERSONAL_GROUP) that the hub subscribes to once: a socket has no
channel-layer channel of its own, and joining its groups costs no layer round trip.

A subscription outlives its last socket by IDLE_UNSUBSCRIBE seconds, so a reconnect storm does not
unsubscribe and subscribe again; subscribing and unsubscribing a conversation are serialized by a
lock of its own, so the layer never sees them out of order. Subscriptions are renewed every
RENEW_INTERVAL, well inside the layer's group expiry (settings.CHANNEL_LAYER_GROUP_EXPIRY, ten
minutes: a process that dies without unsubscribing, killed or crashed, stays in its groups that
long, and every event to them is pushed to its channel meanwhile), and at once when the layer
turns out to have lost the personal one (checked every PERSONAL_CHECK_INTERVAL: a Redis that
restarted or was flushed forgets every group).

The watcher: a message the layer dropped (a full hub channel, Redis failing after the commit)
still reaches every open socket within about STALL_LOOKS * HEAL_INTERVAL (3 s), even when no later
message follows. Once a second it reads the newest id of every conversation with a local socket
(one indexed query) and asks each socket that was behind with no progress at STALL_LOOKS looks in
a row to catch up from the database.
"""

import asyncio
import logging
import time
import uuid
from collections import defaultdict

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from accounts.sessions import SignedInSessions
from chat.events import PERSONAL_GROUP, conversation_group

log = logging.getLogger(__name__)

HEAL_INTERVAL = 1.0
STALL_LOOKS = 3
IDLE_UNSUBSCRIBE = 30.0
RENEW_INTERVAL = 120.0
# How often the hub checks that the layer still holds its subscription to the personal events.
PERSONAL_CHECK_INTERVAL = 5.0
# A hub channel's name starts so (settings give hub channels a capacity of their own).
HUB_CHANNEL_PREFIX = "hub."
# Events the hub takes from the layer at once.
RECEIVE_BATCH = 200


def stop_if_cancelled(error: BaseException | None = None) -> None:
    """Raise CancelledError if this task was asked to stop and a library lost the request on the way.

    redis-py reads under asyncio.timeout; a cancel that lands as the timeout fires comes out as a
    timeout, which redis-py then retries: the task, still marked as cancelling, would read again
    and again and never stop (a server's shutdown, an event loop's close would wait for ever).
    """
    if asyncio.current_task().cancelling():
        raise asyncio.CancelledError from error


class Hub:
    """The sockets of one event loop by conversation and group, the loop's layer subscriptions and its watcher.

    A key is a conversation id (its events carry `conversation_id`) or the name of a user,
    session or token group (its events carry `group`, added by chat.events.broadcast, and reach
    the process through PERSONAL_GROUP, which stays subscribed while the process runs).
    """

    def __init__(self):
        self.layer = get_channel_layer()
        self.sockets: dict[int | str, set] = defaultdict(set)
        self.subscribed: set[int | str] = set()
        self.idle_since: dict[int | str, float] = {}
        self.locks: dict[int | str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.channel: str | None = None
        self._starting = asyncio.Lock()
        self.tasks: list[asyncio.Task] = []
        # Sessions this loop's sockets signed in with lately; kept true by the personal events the hub receives.
        self.signed_in = SignedInSessions()

    # Sockets come and go

    async def join(self, key: int | str, consumer) -> None:
        """Deliver the conversation's or group's events to the consumer; return once the process is subscribed."""
        self.sockets[key].add(consumer)
        if not isinstance(key, int):
            key = PERSONAL_GROUP
        self.idle_since.pop(key, None)
        if key not in self.subscribed:
            await self._subscribe(key)

    def leave(self, key: int | str, consumer) -> None:
        consumers = self.sockets.get(key)
        if consumers is None:
            return
        consumers.discard(consumer)
        if not consumers:
            del self.sockets[key]
            if isinstance(key, int):
                self.idle_since[key] = time.monotonic()

    @staticmethod
    def _group(key: int | str) -> str:
        """The layer group of a subscription: a conversation's, or PERSONAL_GROUP."""
        return conversation_group(key) if isinstance(key, int) else key

    async def _subscribe(self, key: int | str) -> None:
        async with self.locks[key]:
            if key in self.subscribed:
                return
            channel = await self._start()
            await self.layer.group_add(self._group(key), channel)
            self.subscribed.add(key)

    async def _unsubscribe_idle(self) -> None:
        now = time.monotonic()
        for key, since in list(self.idle_since.items()):
            if now - since < IDLE_UNSUBSCRIBE:
                continue
            async with self.locks[key]:
                if key in self.sockets or self.idle_since.get(key) != since:
                    continue  # a socket came back meanwhile
                del self.idle_since[key]
                if key in self.subscribed:
                    self.subscribed.discard(key)
                    await self.layer.group_discard(self._group(key), self.channel)
            if key not in self.sockets and not self.locks[key].locked():
                del self.locks[key]

    async def _renew(self) -> None:
        # Every subscription in one pipeline, each held by its lock meanwhile (a lock that is free is
        # taken without waiting); one being changed right now is renewed by that change.
        held = [key for key in list(self.subscribed) if not self.locks[key].locked()]
        for key in held:
            await self.locks[key].acquire()
        try:
            await self.layer.group_add_many([self._group(key) for key in held if key in self.subscribed], self.channel)
        finally:
            for key in held:
                self.locks[key].release()

    async def _personal_lost(self) -> bool:
        """Subscribe to the personal events again if the layer lost the subscription; say whether it had.

        Redis keeps nothing on disk: restarted or flushed, it forgets every group. The sign-outs and
        bans missed meanwhile may concern sessions this hub remembers, so it forgets them all.
        """
        renew = getattr(self.layer, "group_renew", None)
        if renew is None or PERSONAL_GROUP not in self.subscribed:
            return False
        async with self.locks[PERSONAL_GROUP]:
            lost = await renew(PERSONAL_GROUP, self.channel)
        if lost:
            log.warning("The channel layer had lost this process's subscriptions; subscribing again.")
            self.signed_in.clear()
        return lost

    async def _start(self) -> str:
        async with self._starting:
            if self.channel is None:
                # A channel of its own (not process-specific, which channels-redis receives through
                # one shared key and lock): the hub is its only reader, and takes events in batches.
                self.channel = HUB_CHANNEL_PREFIX + uuid.uuid4().hex
                loop = asyncio.get_running_loop()
                self.tasks = [loop.create_task(self._receive()), loop.create_task(self._watch())]
        return self.channel

    # Delivery

    async def _receive(self) -> None:
        while True:
            stop_if_cancelled()
            try:
                if hasattr(self.layer, "receive_batch"):
                    batch = await self.layer.receive_batch(self.channel, RECEIVE_BATCH)
                else:
                    batch = [await self.layer.receive(self.channel)]
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the layer failed: the watcher repairs what this misses
                stop_if_cancelled(error)
                log.warning("The fan-out hub could not receive: %r", error)
                self.signed_in.clear()  # an ending may be among what was missed
                await asyncio.sleep(HEAL_INTERVAL)
                continue
            for event in batch:
                await self.deliver(event)

    async def deliver(self, event: dict) -> None:
        key = event.get("conversation_id")
        if key is None:
            key = event.get("group")
            self.signed_in.event(key or "", event)
        consumers = self.sockets.get(key)
        if not consumers:
            return
        handler = get_handler_name(event)
        for consumer in tuple(consumers):
            try:
                await consumer.hub_event(handler, event)
            except Exception:  # the consumer closes itself on its own failures; never stop the hub
                log.exception("Delivering %s to a socket failed.", event.get("type"))

    # The watcher

    async def _watch(self) -> None:
        from chat import services

        # Sockets behind the database at the last look: the id they had delivered, and for how many looks.
        lagging: dict[tuple, tuple[int, int]] = {}
        renewed = checked = time.monotonic()
        while True:
            await asyncio.sleep(HEAL_INTERVAL)
            stop_if_cancelled()
            try:
                await self._unsubscribe_idle()
                if time.monotonic() - checked > PERSONAL_CHECK_INTERVAL:
                    checked = time.monotonic()
                    if await self._personal_lost():
                        renewed = 0.0
                if time.monotonic() - renewed > min(RENEW_INTERVAL, settings.CHANNEL_LAYER_GROUP_EXPIRY / 5):
                    await self._renew()
                    renewed = time.monotonic()
            except Exception as error:
                log.warning("The fan-out hub could not update its subscriptions: %r", error)
            conversation_ids = [key for key in self.sockets if isinstance(key, int)]
            if not conversation_ids:
                lagging = {}
                continue
            try:
                newest = await database_sync_to_async(services.newest_message_ids)(conversation_ids)
            except Exception as error:  # the database may be down: try again next time
                log.warning("Delivery watcher could not read the newest ids: %r", error)
                continue
            now_lagging, stalled = {}, []
            for conversation_id, target in newest.items():
                for consumer in tuple(self.sockets.get(conversation_id, ())):
                    delivered = consumer.delivered.get(conversation_id, target)
                    if delivered < target:
                        key = (consumer, conversation_id)
                        before, looks = lagging.get(key, (None, 0))
                        looks = looks + 1 if before == delivered else 1
                        now_lagging[key] = (delivered, looks)
                        # Behind at STALL_LOOKS looks in a row with no progress: lost, not late.
                        if looks % STALL_LOOKS == 0:
                            stalled.append(key)
            lagging = now_lagging
            if stalled:
                log.warning("Repairing delivery for %d socket(s) that missed messages.", len(stalled))
                for consumer, conversation_id in stalled:
                    consumer.catch_up(conversation_id)


def loop_local(factory):
    """Return a function that gives the running event loop its own `factory()` (one loop per
    process in production; tests run several, one after another)."""
    instances: dict[asyncio.AbstractEventLoop, object] = {}

    def get():
        loop = asyncio.get_running_loop()
        found = instances.get(loop)
        if found is None:
            for stale in [other for other in instances if other.is_closed()]:
                del instances[stale]
            found = instances[loop] = factory()
        return found

    return get


# The hub of the running event loop.
hub = loop_local(Hub)
