"""The one multiplexed WebSocket: reconnect with backoff, catch up with `sync`, resend until acked.

`ChatSocket` is the Python twin of static/chat/js/socket.js. It keeps, per conversation, the
last message id it handed on, so after every (re)connect it syncs from there, holds back live
messages of a conversation until its sync is done, and drops any id it already delivered:
nothing is lost and nothing comes twice. Sends wait in an outbox until the server acks them
and are sent again, with the same `client_id`, after a reconnect (the server stores a
`client_id` once). Close codes 4401 (signed out) and 4403 (banned) end it for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import websockets
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from client.errors import Banned, NotConnected, SignedOut, error_from

log = logging.getLogger(__name__)

CLOSE_SIGNED_OUT = 4401
CLOSE_BANNED = 4403
BACKOFF_BASE = 0.5
BACKOFF_MAX = 30.0
# The server forgets a silent user's presence after two minutes; it asks for a ping every 60 s.
PING_INTERVAL = 30.0
SYNC_LIMIT = 100
MAX_FRAME = 16 * 1024 * 1024

FrameHandler = Callable[[dict], Awaitable[None]]


def websocket_url(server: str) -> str:
    parts = urllib.parse.urlsplit(server)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws/", "", ""))


def origin_of(server: str) -> str:
    """The Origin the handshake names: the server's own scheme and host, an allowed host."""
    parts = urllib.parse.urlsplit(server)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class _Pending:
    frame: dict
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class ChatSocket:
    """One reconnecting socket to `/ws/`.

    `on_message(frame_type, message)` gets each `message.new` once, in id order per conversation
    (synced ones included); `on_frame(frame)` gets every other server frame; `on_state(state,
    detail)` hears "connecting", "connected", "reconnecting" (detail: seconds until the next try),
    "signed_out", "banned" and "stopped". `starts(ids)` returns where to start syncing the given
    conversations this socket does not follow yet (the client asks the API).
    """

    def __init__(
        self,
        server: str,
        *,
        headers: dict[str, str],
        on_message: Callable[[str, dict], Awaitable[None]],
        on_frame: FrameHandler,
        on_state: Callable[[str, object], Awaitable[None]],
        starts: Callable[[list[int]], Awaitable[dict[int, int]]],
        backoff_base: float = BACKOFF_BASE,
        backoff_max: float = BACKOFF_MAX,
    ):
        self.url = websocket_url(server)
        self.origin = origin_of(server)
        self.headers = headers
        self.on_message = on_message
        self.on_frame = on_frame
        self.on_state = on_state
        self.starts = starts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.last_ids: dict[int, int] = {}
        self.syncing: set[int] = set()
        self.held: dict[int, list[dict]] = {}
        self.outbox: dict[str, _Pending] = {}
        self.hello: asyncio.Future | None = None
        self.state = "idle"
        self.closed_for_good: Exception | None = None
        self._ws = None
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._wake = asyncio.Event()
        self._dropping: asyncio.Future | None = None
        # Pings sent and pongs seen on this connection; barrier() waits for its own ping's pong.
        self._pings = self._pongs = 0
        self._barriers: list[tuple[int, asyncio.Future]] = []

    # Life cycle

    def start(self) -> asyncio.Future:
        """Start connecting; return a future that resolves with the first `hello` frame."""
        self.hello = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(), name="chatterbox-socket")
        return self.hello

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._fail_outbox(NotConnected("The client was closed."))
        await self._set_state("stopped", None)

    def reconnect_now(self) -> None:
        """Skip the rest of the backoff wait (e.g. the user pressed "retry")."""
        self._wake.set()

    def drop(self) -> None:
        """Close the current connection as if the network went away; the socket reconnects."""
        if self._ws is not None:
            self._dropping = asyncio.ensure_future(self._ws.close(code=4000, reason="dropped by the client"))

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            await self._set_state("connecting" if attempt == 0 else "reconnecting", 0)
            code = None
            try:
                async with connect(
                    self.url,
                    origin=self.origin,
                    additional_headers=self.headers,
                    proxy=None,
                    max_size=MAX_FRAME,
                    open_timeout=10,
                    ping_interval=20,
                    ping_timeout=20,
                    user_agent_header="chatterbox-python/0.1",
                ) as ws:
                    self._ws = ws
                    self._pings = self._pongs = 0
                    pinger = asyncio.create_task(self._ping(ws))
                    try:
                        async for text in ws:
                            frame = json.loads(text)
                            if frame.get("type") == "hello":
                                attempt = 0
                            await self._handle(ws, frame)
                    finally:
                        pinger.cancel()
                        self._ws = None
                        self._fail_barriers()
                    code = ws.close_code
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
            except InvalidStatus as refused:
                log.warning("The server refused the socket: HTTP %s", refused.response.status_code)
            except (TimeoutError, OSError, InvalidHandshake, websockets.exceptions.WebSocketException) as error:
                log.info("Socket connection failed: %s", error)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Socket error")
            if code in (CLOSE_SIGNED_OUT, CLOSE_BANNED):
                error = (
                    SignedOut("Signed out: log in again.")
                    if code == CLOSE_SIGNED_OUT
                    else Banned("This account is banned or inactive.")
                )
                await self._end(error, "signed_out" if code == CLOSE_SIGNED_OUT else "banned")
                return
            if self._stopping:
                return
            attempt += 1
            delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            await self._set_state("reconnecting", round(delay, 2))
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _end(self, error: Exception, state: str) -> None:
        self.closed_for_good = error
        self._stopping = True
        if self.hello is not None and not self.hello.done():
            self.hello.set_exception(error)
        self._fail_outbox(error)
        await self._set_state(state, str(error))

    def _fail_outbox(self, error: Exception) -> None:
        for pending in self.outbox.values():
            if not pending.future.done():
                pending.future.set_exception(error)
        self.outbox.clear()

    async def _set_state(self, state: str, detail) -> None:
        if state != self.state or state == "reconnecting":
            self.state = state
            await self.on_state(state, detail)

    async def _ping(self, ws) -> None:
        with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
            while True:
                await asyncio.sleep(PING_INTERVAL)
                self._pings += 1
                await ws.send(json.dumps({"type": "ping"}))

    # Sending

    async def send(self, frame: dict) -> None:
        """Send a frame now if connected; frames that need no answer are dropped while offline."""
        if self.closed_for_good:
            raise NotConnected(str(self.closed_for_good))
        if self._ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._ws.send(json.dumps(frame))

    async def barrier(self) -> None:
        """Return once the server has handled every frame sent before (the frames of a socket are
        handled in order: a ping, then its pong); NotConnected if the connection drops first."""
        if self._ws is None:
            raise NotConnected("Not connected: the server may not have received it.")
        future = asyncio.get_running_loop().create_future()
        self._pings += 1
        self._barriers.append((self._pings, future))
        with contextlib.suppress(ConnectionClosed):
            await self._ws.send(json.dumps({"type": "ping"}))
        await future

    def _fail_barriers(self) -> None:
        barriers, self._barriers = self._barriers, []
        for _, future in barriers:
            if not future.done():
                future.set_exception(NotConnected("The connection dropped before the server answered."))

    async def request(self, frame: dict) -> dict:
        """Send a `message.send` and return its ack, resending after reconnects; raise its error."""
        if self.closed_for_good:
            raise NotConnected(str(self.closed_for_good))
        pending = self.outbox.get(frame["client_id"]) or _Pending(frame)
        self.outbox[frame["client_id"]] = pending
        await self.send(frame)
        try:
            return await asyncio.shield(pending.future)
        except asyncio.CancelledError:
            # The caller gave up (a timeout): do not send it behind their back after a reconnect.
            self.outbox.pop(frame["client_id"], None)
            raise

    # Receiving

    async def _handle(self, ws, frame: dict) -> None:
        kind = frame.get("type")
        if kind == "hello":
            await self._on_hello(ws, frame)
        elif kind == "message.new":
            await self._on_live(frame["message"])
        elif kind == "sync.result":
            await self._on_sync(ws, frame)
        elif kind == "message.ack":
            pending = self.outbox.pop(frame.get("client_id"), None)
            if pending and not pending.future.done():
                pending.future.set_result(frame)
        elif kind == "error" and frame.get("client_id") in self.outbox:
            pending = self.outbox.pop(frame["client_id"])
            if not pending.future.done():
                pending.future.set_exception(error_from(frame))
        elif kind == "conversation.added":
            conversation = frame["conversation"]
            self.last_ids.setdefault(conversation["id"], conversation.get("last_message_id") or 0)
            await self.on_frame(frame)
        elif kind == "conversation.removed":
            for state in (self.last_ids, self.held):
                state.pop(frame["id"], None)
            self.syncing.discard(frame["id"])
            await self.on_frame(frame)
        elif kind == "pong":
            self._pongs += 1
            answered = [entry for entry in self._barriers if entry[0] <= self._pongs]
            self._barriers = [entry for entry in self._barriers if entry[0] > self._pongs]
            for _, future in answered:
                if not future.done():
                    future.set_result(None)
        else:
            await self.on_frame(frame)

    async def _on_hello(self, ws, frame: dict) -> None:
        conversations = [cid for cid in frame.get("conversations", []) if isinstance(cid, int)]
        unknown = [cid for cid in conversations if cid not in self.last_ids]
        if unknown:
            starts = await self.starts(unknown)
            for cid in unknown:
                self.last_ids[cid] = starts.get(cid, 0)
        for cid in list(self.last_ids):
            if cid not in conversations:
                self.last_ids.pop(cid)
        self.syncing = set(conversations)
        self.held = {cid: [] for cid in conversations}
        await self._set_state("connected", None)
        await self.on_frame(frame)
        if self.hello is not None and not self.hello.done():
            self.hello.set_result(frame)
        for cid in conversations:
            sync = {"type": "sync", "conversation": cid, "after": self.last_ids[cid], "limit": SYNC_LIMIT}
            await ws.send(json.dumps(sync))
        # Unacknowledged sends go again with their own client_id: the server stores each once.
        for pending in list(self.outbox.values()):
            await ws.send(json.dumps(pending.frame))

    async def _on_live(self, message: dict) -> None:
        cid = message["conversation"]
        if cid in self.syncing:
            self.held.setdefault(cid, []).append(message)
        else:
            await self._deliver(message)

    async def _on_sync(self, ws, frame: dict) -> None:
        cid = frame["conversation"]
        for message in frame.get("messages", []):
            await self._deliver(message)
        if frame.get("has_more"):
            after = self.last_ids.get(cid, 0)
            await ws.send(json.dumps({"type": "sync", "conversation": cid, "after": after, "limit": SYNC_LIMIT}))
            return
        self.syncing.discard(cid)
        for message in sorted(self.held.pop(cid, []), key=lambda held: held["id"]):
            await self._deliver(message)

    async def _deliver(self, message: dict) -> None:
        cid = message["conversation"]
        if message["id"] <= self.last_ids.get(cid, 0):
            return
        self.last_ids[cid] = message["id"]
        await self.on_message("message.new", message)
