"""The message path's hot parts: delivery repair for the sockets of this process.

Guarantees kept here (docs/protocol.md "Guarantees", docs/performance.md for the design):
- A message is stored before it is acknowledged or delivered; live delivery per conversation
  follows id order without gaps or duplicates on each socket.
- A message the channel layer dropped, or never carried because Redis failed after the commit,
  still reaches every open socket within about two HEAL_INTERVALs, even when no later message
  follows: a per-process watcher compares each socket's newest delivered id with the database.

The watcher costs one indexed query per process every HEAL_INTERVAL while sockets are open
(one row per conversation that has a socket here), and nothing per message.
"""

import asyncio
import logging
from collections import defaultdict

from channels.db import database_sync_to_async
from django.db import DatabaseError

log = logging.getLogger(__name__)

# Seconds between two looks at the newest ids. A socket is repaired when it was behind at two looks
# in a row and delivered nothing in between: a busy socket that is merely late is left alone.
HEAL_INTERVAL = 1.0

try:
    from redis.exceptions import RedisError
except ImportError:  # pragma: no cover - redis is a dependency, but keep the module importable
    RedisError = OSError

# Failures of the database or the channel layer, as opposed to the client's mistakes.
INFRASTRUCTURE_ERRORS = (DatabaseError, RedisError, OSError, TimeoutError, asyncio.TimeoutError)


class LocalSockets:
    """The consumers of this process by conversation, and the watcher that repairs their gaps."""

    def __init__(self):
        self.by_conversation: dict[int, set] = defaultdict(set)
        self._watcher: asyncio.Task | None = None

    def add(self, conversation_id: int, consumer) -> None:
        self.by_conversation[conversation_id].add(consumer)
        if self._watcher is None or self._watcher.done() or self._watcher.get_loop() is not asyncio.get_running_loop():
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    def discard(self, conversation_id: int, consumer) -> None:
        consumers = self.by_conversation.get(conversation_id)
        if consumers is not None:
            consumers.discard(consumer)
            if not consumers:
                del self.by_conversation[conversation_id]

    async def _watch(self) -> None:
        from chat import services

        # Sockets behind the database at the last look, with the id they had delivered then.
        lagging: dict[tuple, int] = {}
        while self.by_conversation:
            await asyncio.sleep(HEAL_INTERVAL)
            try:
                newest = await database_sync_to_async(services.newest_message_ids)(list(self.by_conversation))
            except Exception as error:  # the database may be down: try again next time
                log.warning("Delivery watcher could not read the newest ids: %r", error)
                continue
            now_lagging, stalled = {}, []
            for conversation_id, target in newest.items():
                for consumer in list(self.by_conversation.get(conversation_id, ())):
                    delivered = consumer.delivered.get(conversation_id, target)
                    if delivered < target:
                        key = (consumer, conversation_id)
                        now_lagging[key] = delivered
                        # Behind twice in a row without any progress: its events are lost, not late.
                        if lagging.get(key) == delivered:
                            stalled.append(key)
            lagging = now_lagging
            if stalled:
                log.warning("Repairing delivery for %d socket(s) that missed messages.", len(stalled))
                results = await asyncio.gather(
                    *(consumer.heal_request(conversation_id) for consumer, conversation_id in stalled),
                    return_exceptions=True,
                )
                for result in results:
                    if isinstance(result, BaseException):
                        log.warning("Could not ask a socket to catch up: %r", result)


local_sockets = LocalSockets()
