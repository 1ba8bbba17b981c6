"""The message path's write half: the batching writer (delivery: chat.fanout).

Guarantees kept here (docs/protocol.md "Guarantees", docs/performance.md for the design):
- Stored before ack: a send is acknowledged only after the transaction holding it committed.
- Per-conversation order: every batch locks each conversation it writes to (the same row lock the
  synchronous services.message_send takes), so ids grow in commit order in every process, and
  the committed events are handed to the event loop and broadcast in that order.
- Idempotent client ids: a known (sender, client_id) answers the first message, storing nothing.
- A message the channel layer dropped, or never carried because Redis failed after the commit,
  still reaches every open socket within about 3 s: chat.fanout's watcher repairs it.

The writer: sends from every socket of the process wait in one queue; one database thread, on a
connection it keeps open, takes all that are waiting (up to BATCH_MAX) into one transaction (group
commit): the accepted sends in one insert, a send with a file alone in a savepoint of its own, while
the event loop acks and broadcasts the previous batch.
The database thread never waits for the event loop.

What it costs, measured with `bench/run.py`, is in docs/performance.md.
"""

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from channels.layers import get_channel_layer
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import DatabaseError, IntegrityError, connection, transaction

from chat.fanout import hub, stop_if_cancelled
from chat.models import Message
from chat.services.lookups import pipelined
from chatterbox.ratelimit import BatchWindows, LocalWindows
from chatterbox.sql import insert_returning_ids

log = logging.getLogger(__name__)

try:
    from redis.exceptions import RedisError
except ImportError:  # pragma: no cover - redis is a dependency, but keep the module importable
    RedisError = OSError

# Failures of the database or the channel layer, as opposed to the client's mistakes.
INFRASTRUCTURE_ERRORS = (DatabaseError, RedisError, OSError, TimeoutError, asyncio.TimeoutError)


# Sends stored in one transaction at most.
BATCH_MAX = 200
# Seconds the local delivery of a batch waits at most for its senders' sockets to send their acks.
ACK_WAIT = 5.0

# One database thread for all writers of the process: its connection stays open between batches.
_write_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="message-writer")


class Send:
    __slots__ = ("acked", "client_id", "content", "conversation_id", "future", "reply_to", "sender")

    def __init__(self, sender, conversation_id, client_id, content, reply_to, future, acked=None):
        self.sender, self.conversation_id, self.client_id = sender, conversation_id, client_id
        self.content, self.reply_to, self.future = content, reply_to, future
        # Done once the sender's socket has answered the send (its ack or its error).
        self.acked = acked

    def fields(self) -> dict:
        """The keyword arguments of the message services' store and draft."""
        return {
            "sender": self.sender,
            "conversation_id": self.conversation_id,
            "client_id": self.client_id,
            "content": self.content,
            "reply_to": self.reply_to,
        }


def _batch_store(sends: list[Send], rate_windows: LocalWindows | None = None) -> list:
    """Store a batch (see `_batch_stored`), counting its senders against their rate limits.

    With a shared cache (Redis) the limits hold across the server's processes: the senders'
    windows are read once before the batch and what it stored is added once after
    (`chatterbox.ratelimit.BatchWindows`). With the embedded cache, one process's own memory is
    the whole count (`rate_windows`, no round trip).
    """
    from chat.services import messages

    rule = messages.rate_rule()
    local = rate_windows or LocalWindows()
    if rule is None or not isinstance(caches["default"], RedisCache):
        return _batch_stored(sends, local)
    windows = BatchWindows(rule[1])
    try:
        windows.load({messages.rate_key(send.sender.pk) for send in sends})
    except (RedisError, OSError) as error:
        # The cache is out of reach, not the database: store, counting in this process alone.
        log.warning("Rate limits counted in this process only for a batch: %r", error)
        return _batch_stored(sends, local)
    results = _batch_stored(sends, windows)
    try:
        windows.save()
    except (RedisError, OSError) as error:
        # The batch is stored and committed: its sends are answered as stored, only uncounted.
        log.warning("A batch's sends were not counted against the rate limits: %r", error)
    return results


def _batch_stored(sends: list[Send], rate_windows) -> list:
    """Store the sends in one transaction; return per send (message, created, event) or the error.

    What the sends need (locks, newest ids, memberships, mutes, blocks, known client ids, reply
    targets) is read once for the batch, each send is checked in turn, and the accepted ones are
    inserted together (one statement per table). A refused send undoes nothing else. A send with a
    file goes alone, in its turn and in a savepoint of its own: claiming the file can still refuse
    it after the insert. Rate limits are counted in `rate_windows`.
    """
    from chat.services import messages

    results: list = [None] * len(sends)
    try:
        with transaction.atomic():
            context = messages.StoreContext(
                rate_check=lambda user_id: messages._rate_limit_check(user_id, counter=rate_windows.count)
            )
            context.prefetch([(send.sender, send.conversation_id, send.client_id, send.reply_to) for send in sends])
            drafts: list[tuple[int, messages.Draft]] = []
            for index, send in enumerate(sends):
                if send.content.get("attachment") is not None:
                    _drafts_insert(drafts, results, context)
                    drafts = []
                    results[index] = _store_alone(send, context)
                    continue
                try:
                    draft = messages._message_draft(**send.fields(), context=context)
                except DatabaseError:
                    raise
                except Exception as error:
                    results[index] = error
                    continue
                if isinstance(draft, Message):
                    results[index] = (draft, False, None)
                else:
                    drafts.append((index, draft))
            _drafts_insert(drafts, results, context)
        for index, result in enumerate(results):
            if isinstance(result, IntegrityError):
                # The same client_id raced in through another conversation's lock: answer the stored one.
                send = sends[index]
                try:
                    results[index] = (messages._message_existing(send.sender, send.client_id), False, None)
                except IntegrityError as error:
                    results[index] = error
    except Exception:
        # A broken connection is replaced on the next batch.
        if connection.connection is not None and not connection.is_usable():
            connection.close()
        raise
    return results


def _drafts_insert(drafts: list, results: list, context) -> None:
    """Insert checked drafts in one statement per table; one by one if a client id raced in meanwhile."""
    from chat.services import messages

    if not drafts:
        return
    mark = context.mark()
    savepoint = None
    try:
        # Pipelined on PostgreSQL: the savepoint, the inserts and the release go out together, and
        # the batch waits for the server once for them all. (Only here: in pipeline mode an
        # UPDATE's row count is unknown until read, which the ORM's save(update_fields=...)
        # elsewhere relies on.)
        with pipelined():
            savepoint = connection.savepoint()
            insert_returning_ids([draft.message for _, draft in drafts])
            rows: list = []
            for index, draft in drafts:
                results[index] = (draft.message, True, messages._message_stored(draft, context, rows))
            messages.rows_insert(rows)
            connection.savepoint_commit(savepoint)
        return
    except IntegrityError:
        # Rolled back once the pipeline has synced: an aborted pipeline refuses the rollback.
        if savepoint is not None:
            connection.savepoint_rollback(savepoint)
        context.rollback(mark)
    for index, draft in drafts:
        mark = context.mark()
        draft.message.pk = None
        draft.message._state.adding = True
        try:
            with transaction.atomic():
                draft.message.save(force_insert=True)
                results[index] = (draft.message, True, messages._message_stored(draft, context))
        except IntegrityError as error:
            context.rollback(mark)
            results[index] = error


def _store_alone(send: Send, context):
    """Store one send in a savepoint of its own; return its result or its error."""
    from chat.services import messages

    mark = context.mark()
    try:
        with transaction.atomic():
            return messages._message_store(**send.fields(), context=context)
    except DatabaseError as error:
        context.rollback(mark)
        if isinstance(error, IntegrityError):
            return error
        raise
    except Exception as error:
        context.rollback(mark)
        return error


class MessageWriter:
    """Group commit for the sockets of one event loop (see the module docstring)."""

    def __init__(self):
        self.queue: asyncio.Queue[Send] = asyncio.Queue()
        # Senders' rate limits, counted on the database thread only.
        self.rate_windows = LocalWindows()
        self.broadcasts: asyncio.Queue[list] = asyncio.Queue()
        self.tasks = [asyncio.create_task(self._write()), asyncio.create_task(self._broadcast())]

    async def submit(
        self,
        *,
        sender,
        conversation_id: int,
        client_id: str,
        content: dict,
        reply_to: int | None,
        acked: asyncio.Future | None = None,
    ):
        """Store a send with the others waiting; return (message, created) or raise its error.

        `acked`, if given, is done once the caller has answered its client: this process's sockets
        get the message only after that, so the sender's socket has its ack before its echo.
        """
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait(Send(sender, conversation_id, client_id, content, reply_to, future, acked))
        return await future

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            stop_if_cancelled()
            sends = [await self.queue.get()]
            while len(sends) < BATCH_MAX and not self.queue.empty():
                sends.append(self.queue.get_nowait())
            try:
                results = await loop.run_in_executor(_write_thread, _batch_store, sends, self.rate_windows)
            except Exception as error:
                log.warning("A batch of %d message(s) could not be stored: %r", len(sends), error)
                for send in sends:
                    if not send.future.done():
                        send.future.set_exception(error)
                continue
            # Broadcast first, in commit order; ack right after (both are on this loop).
            stored = [result[2] for result in results if isinstance(result, tuple) and result[2]]
            self.broadcasts.put_nowait((stored, [send.acked for send in sends if send.acked is not None]))
            for send, result in zip(sends, results, strict=True):
                if send.future.done():
                    continue
                if isinstance(result, BaseException):
                    send.future.set_exception(result)
                else:
                    send.future.set_result(result[:2])

    async def _broadcast(self) -> None:
        from chat import events

        layer = get_channel_layer()
        while True:
            stop_if_cancelled()
            batch, acks = await self.broadcasts.get()
            # Batches that piled up while the layer was busy go out together, still in commit order.
            while not self.broadcasts.empty():
                more, more_acks = self.broadcasts.get_nowait()
                batch, acks = batch + more, acks + more_acks
            if not batch:
                continue
            sends = [events.conversation_message(event["message"]["conversation"], event) for event in batch]
            # The layer carries them to the other processes only; this process's sockets get them
            # from here, without a round trip through the layer and back.
            local = hub()
            try:
                await layer.group_send_many(sends, skip=local.channel)
            except Exception as error:
                stop_if_cancelled(error)
                # Stored and acked: the delivery watcher brings it to the sockets that missed it.
                log.warning("%d stored message(s) could not be broadcast: %r", len(batch), error)
            # Each sender's socket has its ack before its own message (they answer at once).
            waiting = [ack for ack in acks if not ack.done()]
            if waiting:
                await asyncio.wait(waiting, timeout=ACK_WAIT)
            for _, event in sends:
                await local.deliver(event)


_writers: dict[asyncio.AbstractEventLoop, MessageWriter] = {}


def message_writer() -> MessageWriter:
    """Return the writer of the running event loop, starting it on first use."""
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None or any(task.done() for task in writer.tasks):
        for stale in [other for other in _writers if other.is_closed()]:
            del _writers[stale]
        writer = _writers[loop] = MessageWriter()
    return writer
