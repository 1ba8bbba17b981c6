"""The one WebSocket per tab: every conversation multiplexed, every frame checked when it arrives.

The consumer only checks a frame's shape, calls one service and turns the result or the
domain error into a frame. Channel-layer events are forwarded after a cheap check against
this socket's own view of its memberships, which membership events keep current.
"""

import asyncio
import contextlib
import copy
import itertools
import json
import logging
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError, connection

from accounts.api import user_json
from accounts.models import User
from accounts.services import users_seen
from accounts.sessions import SocketCredentials, session_tag, socket_signin, token_refused
from chat import events, services
from chat.fanout import hub, loop_local
from chat.message_path import INFRASTRUCTURE_ERRORS, message_writer
from chat.presence import presence_close_many, presence_open_many, presence_refresh, users_online
from chatterbox.errors import DomainError, Invalid, TooLarge, Unavailable

log = logging.getLogger(__name__)

# Relay at most one typing frame per conversation and socket in this many seconds.
TYPING_INTERVAL = 3.0
# Renew the presence entry (it expires after chat.presence.PRESENCE_TTL) at most this often.
PRESENCE_REFRESH_INTERVAL = 30.0
# Close code for a socket this server cannot serve right now: the client reconnects and syncs.
CLOSE_SERVER_ERROR = 1011
# The close code of a server that stops (Uvicorn, Gunicorn's workers, chatterbox.daphne_server).
CLOSE_SERVICE_RESTART = 1012


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# What a field must be: a test and the words for the error.
FIELD_KINDS = {
    "id": (lambda v: _integer(v) and 1 <= v <= services.ID_MAX, "a positive integer"),
    "cursor": (lambda v: _integer(v) and 0 <= v <= services.ID_MAX, "an integer, 0 or more"),
    "limit": (lambda v: _integer(v) and 1 <= v <= services.HISTORY_PAGE_MAX, "an integer from 1 to 100"),
    "text": (lambda v: isinstance(v, str), "a string"),
    "flag": (lambda v: isinstance(v, bool), "true or false"),
    "object": (lambda v: isinstance(v, dict), "an object"),
}

# Client frames: field -> (kind, required). Other fields are ignored; null counts as absent.
CONTENT_FIELDS = {"body": ("text", False), "ciphertext": ("text", False), "nonce": ("text", False)}
FRAMES = {
    "message.send": {
        "conversation": ("id", True),
        "client_id": ("text", True),
        **CONTENT_FIELDS,
        "keys": ("object", False),
        "reply_to": ("id", False),
        "attachment": ("id", False),
        "kind": ("text", False),
    },
    "reaction": {"message": ("id", True), "emoji": ("text", True), "on": ("flag", True)},
    "message.edit": {"id": ("id", True), **CONTENT_FIELDS, "keys": ("object", False)},
    "message.delete": {"id": ("id", True)},
    "sync": {"conversation": ("id", True), "after": ("cursor", True), "limit": ("limit", False)},
    "typing": {"conversation": ("id", True)},
    "read": {"conversation": ("id", True), "up_to": ("cursor", True)},
    "ping": {},
}


# What message.send hands the writer besides the conversation, client id and reply.
SEND_CONTENT = ("body", "ciphertext", "nonce", "keys", "attachment", "kind")


# See settings.SOCKET_READ_THREADS. Channels' own database thread is one for the whole process.
_read_threads = ThreadPoolExecutor(max_workers=settings.SOCKET_READ_THREADS, thread_name_prefix="socket-reads")


def read_async(func):
    """Run a read for a socket's connect or sync on the socket read threads, where database_sync_to_async
    would run it on Channels' one thread.

    Each read thread keeps its database connection (a pooled one on PostgreSQL) from one read to
    the next: giving it back and taking it again around every call, as database_sync_to_async
    does, cost as much as a query. A read that the database fails gives its connection up (the
    next read opens another).
    """

    async def run(*args, **kwargs):
        return await asyncio.get_running_loop().run_in_executor(_read_threads, _read, func, args, kwargs)

    return run


def _read(func, args, kwargs):
    try:
        return func(*args, **kwargs)
    except DatabaseError:
        connection.close_if_unusable_or_obsolete()
        raise


def frame_check(frame) -> tuple[str, dict]:
    """Return the frame's type and its known fields, or raise Invalid saying what is wrong."""
    if not isinstance(frame, dict):
        raise Invalid("A frame is a JSON object.")
    kind = frame.get("type")
    if not isinstance(kind, str) or kind not in FRAMES:
        raise Invalid(f"Unknown frame type; use one of: {', '.join(FRAMES)}.", field="type")
    fields = {}
    for name, (field_kind, required) in FRAMES[kind].items():
        value = frame.get(name)
        if value is None:
            if required:
                raise Invalid(f"{kind} needs {name}.", field=name)
            continue
        test, wanted = FIELD_KINDS[field_kind]
        if not test(value):
            raise Invalid(f"{name} must be {wanted}.", field=name)
        fields[name] = value
    return kind, fields


def sockets_open(openings: list[SocketCredentials]) -> list[tuple[int | None, User | None, dict, set, list, bool]]:
    """Everything new sockets read once they listen to their users' events, for all the sockets
    that open at the same moment (see OpenReads): one trip to a read thread, two queries and one
    Redis round trip, however many sockets.

    For each socket: the close code if it may not stay (4401: the credentials no longer sign the
    user in: signed out, password changed, token revoked, account deactivated), the user, their
    conversations with their newest message ids, the plaintext ones among them, the peers
    online, and whether this socket brought the user online.
    """
    found = services.socket_sessions(list({credentials.user_id for credentials in openings}))
    results: list = [(4401, None, {}, set(), [], False)] * len(openings)
    staying, users = [], set()
    for index, credentials in enumerate(openings):
        if credentials.token_id is not None and token_refused(
            user_id=credentials.user_id, token_id=credentials.token_id
        ):
            continue
        entry = found.get(credentials.user_id)
        if entry is None or not credentials.hold_for(entry[0]):
            continue
        user = entry[0]
        # Two sockets of one user each get their own user object.
        staying.append((index, copy.copy(user) if user.pk in users else user, *entry[1:]))
        users.add(user.pk)
    presence = presence_open_many([(user.pk, peers) for _, user, _, _, peers in staying])
    for (index, user, newest, plaintext, _), (online_now, online) in zip(staying, presence, strict=True):
        results[index] = (None, user, newest, plaintext, sorted(online), online_now)
    return results


class OpenReads:
    """Sockets that open at the same moment read together, as the writer stores sends together.

    A socket's read starts at once while fewer than `limit` reads are on the read threads; the
    sockets that arrive meanwhile wait and then go together, up to `SIZE` at a time. In a
    reconnect storm the trips to a read thread, the queries and the presence round trips are then
    a few per batch, not a few per socket; a lone socket waits for nothing.
    """

    SIZE = 200

    def __init__(self):
        self.limit = max(1, settings.SOCKET_READ_THREADS // 2)
        self.running = 0
        self.waiting: list[tuple[SocketCredentials, asyncio.Future]] = []
        self.tasks: set[asyncio.Task] = set()

    async def read(self, credentials: SocketCredentials):
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((credentials, future))
        if self.running < self.limit:
            self._start()
        return await future

    def _start(self) -> None:
        batch, self.waiting = self.waiting[: self.SIZE], self.waiting[self.SIZE :]
        self.running += 1
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, batch) -> None:
        try:
            results = await read_async(sockets_open)([credentials for credentials, _ in batch])
        except Exception as error:  # each socket fails as its own read would have (and closes)
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
                elif result[0] is None:
                    # The socket went while its read ran, and the read counted it in: count it out
                    # (nobody was told it came online, so there is nothing to take back).
                    presence_leave_soon(result[1].pk, ())
        finally:
            # Cancelled (the loop closes): the sockets waiting on this batch stop waiting too.
            for _, future in batch:
                if not future.done():
                    future.cancel()
            self.running -= 1
            if self.waiting:
                self._start()


# The open reads of the running event loop.
open_reads = loop_local(OpenReads)


# Moments in the life of the process, in order: a socket's open read done, a shared sync read
# started (on a read thread; next() on a count is atomic under the GIL).
_moments = itertools.count(1)


class _SharedSync:
    """A plaintext page being read for every socket that asks for it meanwhile."""

    __slots__ = ("started", "task")

    def __init__(self):
        self.started: int | None = None
        self.task: asyncio.Task | None = None


# The running event loop's plaintext syncs being read, by (conversation, after, limit).
shared_syncs = loop_local(dict)


async def plaintext_sync(conversation_id: int, *, after: int, limit: int, opened: int) -> tuple[str, int | None]:
    """The sync.result frame for a plaintext conversation from `after`, encoded, and the id the
    client is then up to date with (None if there is more).

    A plaintext page is the same for every member, and in a reconnect storm a conversation's
    members all ask for it from the same id at once: sockets that ask while a read is waiting
    for its thread, or that opened before it started, share that read and its encoding. A socket
    never shares a read that started before its own open read: that page could lack a message
    this socket heard of neither from that read nor live.
    """
    key, reading = (conversation_id, after, limit), shared_syncs()
    shared = reading.get(key)
    if shared is None or (shared.started is not None and shared.started <= opened):
        shared = reading[key] = _SharedSync()

        def read():
            shared.started = next(_moments)
            return services.history_page(
                user=None, conversation_id=conversation_id, after=after, limit=limit, member_known=True, plaintext=True
            )

        async def run():
            try:
                messages, has_more = await read_async(read)()
            finally:
                if reading.get(key) is shared:
                    del reading[key]
            frame = {"type": "sync.result", "conversation": conversation_id, "messages": messages, "has_more": has_more}
            return json.dumps(frame), None if has_more else (messages[-1]["id"] if messages else after)

        shared.task = asyncio.get_running_loop().create_task(run())
        # Every socket that waited may have closed: the failure is theirs to report, not the loop's.
        shared.task.add_done_callback(lambda task: task.cancelled() or task.exception())
    # Shielded: a socket that closes while it waits does not cancel the read for the others.
    return await asyncio.shield(shared.task)


def presence_sends(user_id: int, conversation_ids, *, online: bool) -> list[tuple[str, dict]]:
    """The layer sends that tell a user's conversations they came online or went offline."""
    event = {"type": "chat.presence", "user": user_id, "online": online}
    return [events.conversation_message(conversation_id, event) for conversation_id in conversation_ids]


async def presence_announce(user_id: int, conversation_ids, *, online: bool) -> None:
    if conversation_ids:
        await get_channel_layer().group_send_many(presence_sends(user_id, conversation_ids, online=online))


# Closed sockets waiting out settings.PRESENCE_OFFLINE_GRACE before they count out.
_presence_leaving: set[asyncio.Task] = set()


def _count_out(user_ids: list[int]) -> set[int]:
    """Count closed sockets out (a user id each); record when the users whose last socket it was
    were last seen, and return them."""
    offline = {user_id for user_id, last in zip(user_ids, presence_close_many(user_ids), strict=True) if last}
    if offline:
        users_seen(user_ids=offline)
    return offline


class PresenceLeaves:
    """Closed sockets counted out together, as OpenReads opens them together.

    Sockets that close at the same moment (a network change, a proxy restart, a reconnect storm)
    see their graces run out at the same moment too. One batch runs at a time and the sockets
    that come meanwhile wait for the next: a batch costs one trip to the database thread (one
    Redis script, one UPDATE of the last seen) and one `group_send_many` of the users who went
    offline, where each socket took a trip, three Redis round trips, an UPDATE and a group send
    of its own.
    """

    SIZE = 500

    def __init__(self):
        self.waiting: list[tuple[int, tuple[int, ...], asyncio.Future]] = []
        self.task: asyncio.Task | None = None

    async def leave(self, user_id: int, conversation_ids: tuple[int, ...]) -> None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        # Counted out even if this waiter is cancelled: the socket is closed either way.
        self.waiting.append((user_id, conversation_ids, future))
        if self.task is None:
            self.task = loop.create_task(self._drain())
        await future

    async def _drain(self) -> None:
        batch = []
        try:
            while self.waiting:
                batch, self.waiting = self.waiting[: self.SIZE], self.waiting[self.SIZE :]
                try:
                    await self._count_out(batch)
                except Exception:
                    # The entries then expire with PRESENCE_TTL.
                    log.exception("Counting %d closed sockets out failed.", len(batch))
                for *_, future in batch:
                    if not future.done():
                        future.set_result(None)
        finally:
            # Cancelled (the loop closes): nobody is left waiting.
            for *_, future in batch + self.waiting:
                if not future.done():
                    future.cancel()
            self.task = None

    @staticmethod
    async def _count_out(batch) -> None:
        offline = await database_sync_to_async(_count_out)([user_id for user_id, _, _ in batch])
        announced = set()
        sends = []
        for user_id, conversation_ids, _ in batch:
            if user_id in offline and user_id not in announced:
                announced.add(user_id)
                sends += presence_sends(user_id, conversation_ids, online=False)
        if sends:
            await get_channel_layer().group_send_many(sends)


# The presence leaves of the running event loop.
presence_leaves = loop_local(PresenceLeaves)


def presence_leave_soon(user_id: int, conversation_ids: tuple[int, ...], *, after: float = 0) -> None:
    """presence_leave as a task of its own, kept until it ends (the socket it counts out is gone)."""
    task = asyncio.get_running_loop().create_task(presence_leave(user_id, conversation_ids, after=after))
    _presence_leaving.add(task)
    task.add_done_callback(_presence_leaving.discard)


async def presence_leave(user_id: int, conversation_ids: tuple[int, ...], *, after: float = 0) -> None:
    """Count a closed socket out `after` seconds (settings.PRESENCE_OFFLINE_GRACE); if it was the user's last, say so.

    A user whose socket comes back meanwhile (a reload, a network change, a reconnect storm) is
    never shown offline and online again: their count never reached zero, so there is nothing to
    announce either way. A failure is logged; the entry then expires with PRESENCE_TTL.
    """
    await asyncio.sleep(after)
    await presence_leaves().leave(user_id, conversation_ids)


class ChatConsumer(AsyncJsonWebsocketConsumer):
    """One socket per tab. Anonymous handshakes are closed with 4401, banned users with 4403.

    A socket that cannot join its groups, sync or deliver (the database or the channel layer
    failed) is closed with 1011, never left open and deaf: the client reconnects and syncs.
    """

    user = None
    closing = False
    conversations: set[int] = frozenset()
    # The plaintext ones among them (kind and encryption never change): their history is a plain query.
    plaintext: set[int] = frozenset()
    groups_joined: list[str] = ()
    session_tag = credentials_group = None

    async def __call__(self, scope, receive, send):
        """Channels' consumer loop, without a channel-layer channel of its own: every event reaches
        the socket through its process's hub (chat.fanout), so the client is the only source."""
        self.scope, self.base_send, self.channel_layer = scope, send, None
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message):
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        if self.closing and message["type"] != "websocket.disconnect":
            return
        try:
            # Channels closes stale database connections on a worker thread before every event; that
            # hop is skipped: every database call here goes through database_sync_to_async, which
            # does it itself.
            await handler(message)
        except StopConsumer:
            raise
        except Exception:
            if message["type"] == "websocket.disconnect":
                log.exception("Cleaning up a closed socket failed.")
                raise StopConsumer() from None
            await self._fail(f"{message['type']} failed")

    async def _fail(self, what: str) -> None:
        """Close the socket after a failure of ours, so that the client reconnects and syncs.

        The close code is 1011. Daphne (autobahn) refuses to send a code under 3000 other than 1000:
        there the socket is closed without one, and clients reconnect on every code but 4401 and 4403.
        A socket the network already closed is only marked closing.
        """
        if self.closing:
            return
        self.closing = True
        if type(sys.exception()).__name__.endswith("Disconnected"):  # autobahn, Uvicorn: the peer is gone
            log.info("A socket closed under a %s.", what)
            return
        log.exception("Closing a socket with %d: %s.", CLOSE_SERVER_ERROR, what)
        try:
            await self.close(code=CLOSE_SERVER_ERROR)
        except Exception:
            with contextlib.suppress(Exception):
                await self.close()

    async def connect(self):
        self.present = False
        self.conversations: set[int] = set()
        # Conversations this socket was refused, so repeated frames cost no query.
        self.refused: dict[int, DomainError] = {}
        # Newest message id this socket delivered per conversation, to spot dropped events.
        self.delivered: dict[int, int] = {}
        self.presence: dict[int, bool] = {}
        self.typing_at: dict[int, float] = {}
        # Live messages held while a catch-up from the database runs, by conversation.
        self.held: dict[int, list] = {}
        self.tasks: set[asyncio.Task] = set()
        # The hub's events until hello is sent (then None).
        self.early: list | None = []
        self.presence_at = time.monotonic()
        self.groups_joined = []
        # Accept first: a close code reaches the client only on an open socket.
        await self.accept()
        session_key, raw_token = self.scope.get("session_key"), self.scope.get("bearer_token")
        if session_key is None and raw_token is None:
            await self.close(code=4401)
            return
        # Listen to each group before the read that it would correct, so that a sign-out, ban or
        # membership change from then on reaches this socket, and one before is seen by the read.
        # A session's group is known from its key: listened to before the session is read (or
        # found among the sessions this process read lately).
        local = hub()
        if session_key is not None:
            await self._listen(events.session_group(session_tag(session_key)))
        credentials = local.signed_in.find(session_key) if session_key is not None and raw_token is None else None
        if credentials is None:
            generation = local.signed_in.generation
            credentials = await read_async(socket_signin)(session_key=session_key, raw_token=raw_token)
            if credentials is None:
                await self.close(code=4401)
                return
            local.signed_in.remember(session_key, credentials, generation=generation)
        if credentials.token_id is not None:
            self._unlisten_all()
            await self._listen(events.token_group(credentials.token_id))
        else:
            self.session_tag = session_tag(session_key)
        self.credentials_group = self.groups_joined[0]
        await self._listen(events.user_group(credentials.user_id))
        refused, user, newest, self.plaintext, online, online_now = await open_reads().read(credentials)
        self.opened = next(_moments)
        if refused:
            await self.close(code=refused)
            return
        self.user = user
        self.present = True
        # The client syncs from its own last id; live events from here on must follow these.
        self.delivered = dict(newest)
        await asyncio.gather(*(self._group_join(conversation_id) for conversation_id in newest))
        conversation_ids = list(newest)
        if online_now:
            await self._presence_announce(online=True)
        self.presence = dict.fromkeys(online, True)
        hello = {"type": "hello", "user": user_json(self.user), "conversations": conversation_ids, "online": online}
        await self.send_json(hello)
        # hello comes first: what the hub handed over meanwhile follows now, in order.
        while self.early:
            await self._hub_handle(*self.early.pop(0))
        self.early = None

    async def _listen(self, group: str) -> None:
        self.groups_joined.append(group)
        await hub().join(group, self)

    def _unlisten_all(self) -> None:
        local = hub()
        for group in self.groups_joined:
            local.leave(group, self)
        self.groups_joined = []

    async def disconnect(self, code):
        self.closing = True
        local = hub()
        for conversation_id in self.conversations:
            local.leave(conversation_id, self)
        self._unlisten_all()
        if self.user is None:
            return
        if self.present:
            conversation_ids = tuple(self.conversations)
            # A server that stops (1012) counts its sockets out at once: its pending graces would die with it.
            if settings.PRESENCE_OFFLINE_GRACE > 0 and code != CLOSE_SERVICE_RESTART:
                presence_leave_soon(self.user.pk, conversation_ids, after=settings.PRESENCE_OFFLINE_GRACE)
            else:
                await presence_leave(self.user.pk, conversation_ids)

    async def websocket_disconnect(self, message):
        # As Channels' own, less what does not apply: it discards the layer groups of the
        # consumer's own channel (a socket has none) and closes stale database connections on a
        # trip to its database thread (every database call here looks after its connection).
        await self.disconnect(message["code"])
        raise StopConsumer()

    # Frames from the client

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is None:
            await self._error(Invalid("Send JSON text frames, not binary ones."))
        elif len(text_data) > settings.WS_MAX_FRAME_BYTES or len(text_data.encode()) > settings.WS_MAX_FRAME_BYTES:
            await self._error(TooLarge(f"A frame has at most {settings.WS_MAX_FRAME_BYTES} bytes."))
        else:
            try:
                frame = json.loads(text_data)
            except ValueError:
                await self._error(Invalid("The frame is not valid JSON."))
            else:
                await self.receive_json(frame)

    async def receive_json(self, content, **kwargs):
        client_id = content.get("client_id") if isinstance(content, dict) else None
        try:
            kind, fields = frame_check(content)
            self._presence_keepalive()
            await getattr(self, "frame_" + kind.replace(".", "_"))(**fields)
        except DomainError as error:
            # The one place where domain errors become error frames.
            await self._error(error, client_id=client_id if isinstance(client_id, str) else None)

    async def _error(self, error: DomainError, *, client_id: str | None = None) -> None:
        frame = {"type": "error", "code": error.code, "detail": error.detail, **error.extra}
        if client_id is not None:
            frame["client_id"] = client_id
        await self.send_json(frame)

    async def frame_message_send(self, *, conversation: int, client_id: str, **content):
        # Done once this socket has its ack (or its error): the message reaches this process's
        # sockets, this one included, only after that.
        acked = asyncio.get_running_loop().create_future()
        try:
            try:
                await self._member_require(conversation)
                services.client_id_check(client_id)
                message, _ = await message_writer().submit(
                    sender=self.user,
                    conversation_id=conversation,
                    client_id=client_id,
                    content={field: content.get(field) for field in SEND_CONTENT},
                    reply_to=content.get("reply_to"),
                    acked=acked,
                )
            except INFRASTRUCTURE_ERRORS as error:
                log.warning("A message could not be stored: %r", error)
                raise Unavailable("The message could not be stored; send it again.", retry_after=1) from None
            ack = {
                "type": "message.ack",
                "client_id": message.client_id,
                "id": message.pk,
                "created_at": events.timestamp(message.created_at),
                "conversation": message.conversation_id,
            }
            await self.send_json(ack)
        finally:
            acked.set_result(None)

    async def frame_message_edit(self, *, id: int, **content):
        await database_sync_to_async(services.message_edit)(editor=self.user, message_id=id, **content)

    async def frame_message_delete(self, *, id: int):
        await database_sync_to_async(services.message_delete)(actor=self.user, message_id=id)

    async def frame_reaction(self, *, message: int, emoji: str, on: bool):
        await database_sync_to_async(services.reaction_set)(user=self.user, message_id=message, emoji=emoji, on=on)

    async def frame_sync(self, *, conversation: int, after: int, limit: int = services.HISTORY_PAGE_MAX):
        await self._member_require(conversation)
        if conversation in self.plaintext:
            text, up_to = await plaintext_sync(conversation, after=after, limit=limit, opened=self.opened)
            if up_to is not None:
                self.delivered[conversation] = max(self.delivered.get(conversation, 0), up_to)
            await self.send(text_data=text)
            return
        messages, has_more = await read_async(services.history_page)(
            user=self.user,
            conversation_id=conversation,
            after=after,
            limit=limit,
            member_known=True,
            plaintext=conversation in self.plaintext,
        )
        if not has_more:
            # The client is now up to date here; live messages up to this id are duplicates.
            newest = messages[-1]["id"] if messages else after
            self.delivered[conversation] = max(self.delivered.get(conversation, 0), newest)
        frame = {"type": "sync.result", "conversation": conversation, "messages": messages, "has_more": has_more}
        await self.send_json(frame)

    async def frame_typing(self, *, conversation: int):
        await self._member_require(conversation)
        now = time.monotonic()
        if now - self.typing_at.get(conversation, -math.inf) < TYPING_INTERVAL:
            return
        self.typing_at[conversation] = now
        await events.conversation_send(
            conversation, {"type": "chat.typing", "conversation": conversation, "user": self.user.pk}
        )

    async def frame_read(self, *, conversation: int, up_to: int):
        await self._member_require(conversation)
        await database_sync_to_async(services.read_mark)(user=self.user, conversation_id=conversation, up_to=up_to)

    async def frame_ping(self):
        await self.send_json({"type": "pong"})

    async def _member_require(self, conversation_id: int) -> None:
        """Refuse a conversation this socket does not belong to, from memory when it can."""
        if conversation_id in self.conversations:
            return
        if conversation_id not in self.refused:
            try:
                await database_sync_to_async(services.member_check)(user=self.user, conversation_id=conversation_id)
            except DomainError as error:
                self.refused[conversation_id] = error
            else:
                # Joined through another door; its event has not reached this socket yet.
                await self._group_join(conversation_id)
                return
        raise self.refused[conversation_id]

    async def _group_join(self, conversation_id: int) -> None:
        self.refused.pop(conversation_id, None)
        if conversation_id not in self.conversations:
            self.conversations.add(conversation_id)
            await hub().join(conversation_id, self)

    def _presence_keepalive(self) -> None:
        """Renew the user's presence entry now and then, beside the frame, not before it: sockets
        that connected together renew together, and each frame that waited for its renewal queued
        behind the others on Channels' one database thread."""
        if time.monotonic() - self.presence_at > PRESENCE_REFRESH_INTERVAL:
            self.presence_at = time.monotonic()
            task = asyncio.get_running_loop().create_task(read_async(presence_refresh)(self.user.pk))
            self.tasks.add(task)
            task.add_done_callback(self._presence_renewed)

    def _presence_renewed(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The entry then expires with PRESENCE_TTL unless a later frame renews it.
            log.warning("Renewing the presence of user %s failed: %r", self.user.pk, task.exception())

    async def _presence_announce(self, *, online: bool) -> None:
        await presence_announce(self.user.pk, self.conversations, online=online)

    # Events from the channel layer, through the process's hub

    async def hub_event(self, handler: str, event: dict) -> None:
        """Handle an event the hub hands over, as dispatch would, minus the queue."""
        if self.closing:
            return
        if self.early is not None:
            self.early.append((handler, event))
            return
        await self._hub_handle(handler, event)

    async def _hub_handle(self, handler: str, event: dict) -> None:
        try:
            await getattr(self, handler)(event)
        except Exception:
            await self._fail(f"{event['type']} failed")

    async def chat_message(self, event):
        conversation_id = event["message"]["conversation"]
        held = self.held.get(conversation_id)
        if held is not None:
            # A catch-up from the database is under way: this follows it, in order.
            held.append(event)
            return
        last = self.delivered.get(conversation_id)
        if last is not None and event["prev_id"] > last and event["message"]["id"] > last:
            # The layer dropped what came before: send it from the database first.
            self.held[conversation_id] = [event]
            self._catch_up_start(conversation_id)
            return
        await self._message_deliver(event)

    async def _message_deliver(self, event) -> None:
        frame = self._message_frame(event, "message.new")
        if frame is None:
            return
        message = event["message"]
        last = self.delivered.get(message["conversation"])
        if last is not None and message["id"] <= last:
            return
        await self.send(text_data=frame)
        self.delivered[message["conversation"]] = message["id"]

    def catch_up(self, conversation_id: int) -> None:
        """Send what this socket missed in the conversation (asked by chat.fanout's watcher).

        Not before hello: a socket still connecting holds its live events until then, and a later
        look finds it behind again if it still is.
        """
        if self.early is not None:
            return
        if conversation_id in self.conversations and conversation_id not in self.held and not self.closing:
            self.held[conversation_id] = []
            self._catch_up_start(conversation_id)

    def _catch_up_start(self, conversation_id: int) -> None:
        task = asyncio.get_running_loop().create_task(self._catch_up(conversation_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _catch_up(self, conversation_id: int) -> None:
        """Resend from the database, then the live events held meanwhile; a failure closes with 1011."""
        held = self.held[conversation_id]
        try:
            await self._resend_missed(conversation_id, after=self.delivered.get(conversation_id, 0))
            while held and not self.closing:
                await self._message_deliver(held.pop(0))
        except Exception:
            await self._fail("catching up failed")
        finally:
            self.held.pop(conversation_id, None)

    async def _resend_missed(self, conversation_id: int, *, after: int) -> None:
        """Send from the database what the channel layer dropped, so delivery has no gaps."""
        missed = 0
        has_more = True
        while has_more and not self.closing:
            try:
                messages, has_more = await read_async(services.history_page)(
                    user=self.user,
                    conversation_id=conversation_id,
                    after=after,
                    limit=100,
                    member_known=True,
                    plaintext=conversation_id in self.plaintext,
                )
            except DomainError:
                return
            for message in messages:
                # A sync the client asked for meanwhile may have brought it already.
                if message["id"] > self.delivered.get(conversation_id, 0):
                    await self.send_json({"type": "message.new", "message": message})
                    self.delivered[conversation_id] = message["id"]
                    missed += 1
            if messages:
                after = messages[-1]["id"]
        if missed:
            log.warning(
                "A socket of user %s missed %d message(s) in conversation %s; resent them.",
                self.user.pk,
                missed,
                conversation_id,
            )

    def _message_frame(self, event, frame_type: str) -> str | None:
        """Return the frame as this user gets it, or None if the user is not among its recipients.

        The message arrives encoded once for everyone; an encrypted one only gains this user's key.
        """
        if event["message"]["conversation"] not in self.conversations:
            return None
        if event["audience"] is not None and self.user.pk not in event["audience"]:
            return None
        text = event["text"]
        if event["keys"] is not None:
            key = event["keys"].get(str(self.user.pk))
            if not key:
                return None
            # The shared text is a JSON object without a "key": add it before the closing brace.
            text = f'{text[:-1]}, "key": {json.dumps(key)}}}'
        return f'{{"type": "{frame_type}", "message": {text}}}'

    async def chat_message_updated(self, event):
        frame = self._message_frame(event, "message.updated")
        if frame is not None:
            await self.send(text_data=frame)

    async def chat_message_deleted(self, event):
        if event["conversation"] in self.conversations:
            await self.send_json({"type": "message.deleted", "id": event["id"], "conversation": event["conversation"]})

    async def chat_reaction(self, event):
        if event["conversation"] in self.conversations:
            frame = {key: value for key, value in event.items() if key not in ("type", "conversation_id")}
            await self.send_json(frame | {"type": "reaction"})

    async def chat_typing(self, event):
        if event["conversation"] in self.conversations and event["user"] != self.user.pk:
            await self.send_json({"type": "typing", "conversation": event["conversation"], "user": event["user"]})

    async def chat_read(self, event):
        if event["conversation"] in self.conversations:
            frame = {
                "type": "read",
                "conversation": event["conversation"],
                "user": event["user"],
                "up_to": event["up_to"],
            }
            await self.send_json(frame)

    async def chat_presence(self, event):
        # One announcement reaches us once per shared conversation; pass on changes only.
        user_id, online = event["user"], event["online"]
        if user_id != self.user.pk and self.presence.get(user_id) != online:
            self.presence[user_id] = online
            await self.send_json({"type": "presence", "user": user_id, "online": online})

    async def chat_key_changed(self, event):
        if event["conversation"] in self.conversations and event["user"] != self.user.pk:
            frame = {key: value for key, value in event.items() if key != "conversation_id"}
            await self.send_json({**frame, "type": "key.changed"})

    async def chat_conversation_added(self, event):
        conversation = self._conversation_for_me(event["conversation"])
        if conversation is not None:
            await self._group_join(conversation["id"])
            if not conversation["encrypted"]:
                self.plaintext = {*self.plaintext, conversation["id"]}
            self.delivered.setdefault(conversation["id"], conversation["last_message_id"] or 0)
            await self.send_json({"type": "conversation.added", "conversation": conversation})
            await self._presence_share(conversation)

    async def chat_conversation_updated(self, event):
        conversation = self._conversation_for_me(event["conversation"])
        if conversation is not None and conversation["id"] in self.conversations:
            await self.send_json({"type": "conversation.updated", "conversation": conversation})

    async def _presence_share(self, conversation: dict) -> None:
        """In a newly shared conversation, learn who is online there and tell them we are."""
        others = [member["id"] for member in conversation["members"] if member["id"] != self.user.pk]
        for user_id in await database_sync_to_async(users_online)(others):
            if self.presence.get(user_id) is not True:
                self.presence[user_id] = True
                await self.send_json({"type": "presence", "user": user_id, "online": True})
        await events.conversation_send(
            conversation["id"], {"type": "chat.presence", "user": self.user.pk, "online": True}
        )

    def _conversation_for_me(self, conversation: dict) -> dict | None:
        """Add my role to a shared conversation object; None if I am not among its members."""
        role = next((member["role"] for member in conversation["members"] if member["id"] == self.user.pk), None)
        return {**conversation, "role": role} if role else None

    async def chat_conversation_removed(self, event):
        conversation_id = event["id"]
        if conversation_id in self.conversations:
            self.conversations.discard(conversation_id)
            hub().leave(conversation_id, self)
        for state in (self.delivered, self.typing_at):
            state.pop(conversation_id, None)
        await self.send_json({"type": "conversation.removed", "id": conversation_id})

    async def chat_report_handled(self, event):
        await self.send_json({"type": "report.handled", "report": event["report"]})

    async def chat_user_banned(self, event):
        await self.close(code=4403)

    # The credentials this socket was opened with: logout, password change, "sign out
    # everywhere" and token revocation close it with 4401 (accounts.signals.signed_out).

    async def chat_signed_out(self, event):
        keep = event.get("keep")
        # Sent to the whole user ("every session but these"): tokens and the kept sessions stay.
        if keep is not None and (self.session_tag is None or self.session_tag in keep):
            return
        await self.close(code=4401)

    async def chat_session_moved(self, event):
        if self.session_tag is None:
            return
        hub().leave(self.credentials_group, self)
        self.groups_joined.remove(self.credentials_group)
        self.session_tag = event["to"]
        self.credentials_group = events.session_group(self.session_tag)
        await self._listen(self.credentials_group)
