"""The asyncio client: one object for the API, the live socket and end-to-end encryption.

    async with Client("http://127.0.0.1:8000", token="cbx_...") as chat:
        await chat.send("#general", "hello")
        async for event in chat.events():
            if event.type == "message":
                print(event.message.sender_name, event.message.text)

Targets are a conversation id, `@username` (the direct conversation, made on first use) or
`#name` (a channel or group by name; a public channel is joined on first use).
"""

from __future__ import annotations

import asyncio
import mimetypes
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client import config, e2e
from client.api import HttpApi, normalize_server
from client.errors import (
    EncryptionError,
    EncryptionLocked,
    InvalidError,
    NotFoundError,
    NotMemberError,
    error_from,
)
from client.keys import KeyChange, Keyring, KeyStore, Revealed
from client.socket import ChatSocket

Target = int | str


@dataclass
class Message:
    """A message as this user reads it; `text` is decrypted when the conversation is encrypted.

    `status` is "plain", "ok" (decrypted), "locked", "unknown", "untrusted" or "failed"
    (see `client.keys.Revealed`); `text` is None unless it is "plain" or "ok".
    """

    id: int
    conversation: int
    sender: dict | None
    text: str | None
    status: str
    kind: str = "text"
    client_id: str = ""
    created_at: str = ""
    edited_at: str | None = None
    deleted: bool = False
    reply_to: int | None = None
    attachment: dict | None = None
    content: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def sender_name(self) -> str:
        sender = self.sender or {}
        return sender.get("display_name") or sender.get("username") or "system"

    @property
    def encrypted(self) -> bool:
        return "ciphertext" in self.raw

    @property
    def reaction(self) -> dict | None:
        """What an encrypted reaction message says, `{message, emoji, on}`, if it has the shape the
        browser accepts; None for any other message."""
        reaction = self.content.get("reaction") if self.kind == "reaction" else None
        return {key: reaction[key] for key in ("message", "emoji", "on")} if _reaction_ok(reaction) else None

    @property
    def reactions(self) -> dict[str, list[int]]:
        """`{emoji: [user ids]}` as the server keeps them (plaintext conversations; in encrypted ones
        reactions come as "reaction" events)."""
        return self.raw.get("reactions") or {}

    def as_json(self) -> dict:
        """A plain dict for JSON output (the CLI's `listen --json`)."""
        return {
            "id": self.id,
            "conversation": self.conversation,
            "sender": (self.sender or {}).get("username"),
            "text": self.text,
            "status": self.status,
            "kind": self.kind,
            "created_at": self.created_at,
            "edited_at": self.edited_at,
            "deleted": self.deleted,
            "reply_to": self.reply_to,
            "attachment": self.attachment,
            "encrypted": self.encrypted,
        }


@dataclass
class Event:
    """Something that happened: `type` is one of

    "message" (new), "edited", "deleted" (`data["id"]`), "reaction" (`user` reacted to
    `data["message"]` with `data["emoji"]`, `data["on"]` false when taken back), "typing", "read", "presence",
    "conversation.added", "conversation.updated", "conversation.removed", "key.changed"
    (`data` has `user_id`, `public_key`, `pinned`), "state" (`data["state"]`: "connecting",
    "connected", "reconnecting" with `retry_in`, "signed_out", "banned", "stopped"), "error".
    """

    type: str
    conversation: int | None = None
    message: Message | None = None
    user: int | None = None
    data: dict = field(default_factory=dict)


class Client:
    """A Chatterbox user: by token (`token=`), or by session after `Client.login(...)`."""

    def __init__(
        self,
        server: str,
        *,
        token: str | None = None,
        api: HttpApi | None = None,
        keystore: KeyStore | None = None,
        keys_dir: Path | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
    ):
        self.server = normalize_server(server)
        self.api = api or HttpApi(self.server, token=token)
        self._keystore = keystore
        self._keys_dir = keys_dir
        self.me: dict = {}
        self.conversations: dict[int, dict] = {}
        self.online: set[int] = set()
        self.keyring: Keyring | None = None
        self.socket: ChatSocket | None = None
        self._backoff = (backoff_base, backoff_max)
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._listeners: list[Callable[[Event], Any]] = []
        # Error frames without a client id, gathered for whoever waits on a frame that has no ack.
        self._error_watchers: list[list[dict]] = []

    @classmethod
    async def login(
        cls, server: str, login: str, password: str, *, code: str | Callable[[], str] | None = None, **options
    ) -> Client:
        """Sign in with a username or email and password (and a 2FA code if the account has one).

        The client then uses the session cookie; `create_token()` mints a token with it.
        """
        api = HttpApi(server)
        await asyncio.to_thread(api.login, login, password, code=code)
        return cls(server, api=api, **options)

    async def create_token(self, name: str) -> str:
        """Mint an API token on the profile page with this client's session (not with a token)."""
        return await asyncio.to_thread(self.api.create_token, name)

    async def _call(self, method: Callable, *args, **kwargs):
        return await asyncio.to_thread(method, *args, **kwargs)

    # Connecting

    async def connect(self, *, timeout: float = 30.0) -> dict:
        """Load the user and conversations, open the socket and wait for its `hello`."""
        self.me = await self._call(self.api.me)
        store = self._keystore or KeyStore(config.keystore_path(self.server, self.me["id"], self._keys_dir))
        self.keyring = Keyring(self.me, store)
        for conversation in await self._call(self.api.conversations):
            self._remember(conversation)
        headers = {}
        if self.api.token:
            headers["Authorization"] = f"Bearer {self.api.token}"
        else:
            headers["Cookie"] = f"sessionid={self.api.session_cookie()}"
        self.socket = ChatSocket(
            self.server,
            headers=headers,
            on_message=self._on_message,
            on_frame=self._on_frame,
            on_state=self._on_state,
            starts=self._starts,
            backoff_base=self._backoff[0],
            backoff_max=self._backoff[1],
        )
        for conversation in self.conversations.values():
            self.socket.last_ids[conversation["id"]] = conversation.get("last_message_id") or 0
        hello = await asyncio.wait_for(self.socket.start(), timeout)
        return hello

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.stop()

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @property
    def state(self) -> str:
        return self.socket.state if self.socket else "idle"

    async def _starts(self, conversation_ids: list[int]) -> dict[int, int]:
        """Where to start following conversations joined while this client was away: their newest id.

        A conversation joined while offline starts at its newest message, as the browser does,
        so a bot does not answer old commands; its earlier history stays in `history()`.
        """
        starts = {}
        for conversation in await self._call(self.api.conversations):
            self._remember(conversation)
            starts[conversation["id"]] = conversation.get("last_message_id") or 0
        return {cid: starts.get(cid, 0) for cid in conversation_ids}

    # Events

    def add_listener(self, listener: Callable[[Event], Any]) -> None:
        """Call `listener(event)` for every event, in the client's event loop (the sync facade uses it)."""
        self._listeners.append(listener)

    async def events(self) -> AsyncIterator[Event]:
        """Yield events as they come, for as long as the client runs."""
        while True:
            event = await self._queue.get()
            yield event
            if event.type == "state" and event.data.get("state") in {"signed_out", "banned", "stopped"}:
                return

    async def next_event(self, *, types: set[str] | None = None, timeout: float | None = None) -> Event:
        """Return the next event (of one of `types`); asyncio.TimeoutError after `timeout` seconds."""

        async def wait() -> Event:
            while True:
                event = await self._queue.get()
                if types is None or event.type in types:
                    return event

        return await asyncio.wait_for(wait(), timeout)

    def _emit(self, event: Event) -> None:
        self._queue.put_nowait(event)
        for listener in self._listeners:
            listener(event)

    async def _on_state(self, state: str, detail) -> None:
        data = {"state": state}
        if state == "reconnecting":
            data["retry_in"] = detail
        elif detail:
            data["detail"] = detail
        self._emit(Event("state", data=data))

    async def _on_message(self, frame_type: str, raw: dict) -> None:
        message = self.reveal(raw)
        if message.kind == "reaction":
            # An encrypted reaction: folded into its target, never a message of its own.
            if message.reaction is not None:
                sender = (message.sender or {}).get("id")
                self._emit(Event("reaction", message.conversation, user=sender, data=message.reaction))
            return
        conversation = self.conversations.get(message.conversation)
        if conversation is not None:
            conversation["last_message_id"] = max(conversation.get("last_message_id") or 0, message.id)
            conversation["last_message"] = raw
            sender = (message.sender or {}).get("id")
            if sender != self.me.get("id") and message.kind != "system":
                conversation["unread"] = (conversation.get("unread") or 0) + 1
        self._emit(Event("message", message.conversation, message, (message.sender or {}).get("id")))

    async def _on_frame(self, frame: dict) -> None:
        kind = frame.get("type")
        if kind == "hello":
            self.me = {**self.me, **frame.get("user", {})}
            self.online = set(frame.get("online", []))
        elif kind == "message.updated":
            message = self.reveal(frame["message"])
            self._emit(Event("edited", message.conversation, message, (message.sender or {}).get("id")))
        elif kind == "message.deleted":
            self._emit(Event("deleted", frame["conversation"], data={"id": frame["id"]}))
        elif kind == "reaction":
            data = {key: frame[key] for key in ("message", "emoji", "on")}
            self._emit(Event("reaction", frame["conversation"], user=frame["user"], data=data))
        elif kind in {"typing", "read"}:
            self._emit(Event(kind, frame["conversation"], user=frame["user"], data=frame))
        elif kind == "presence":
            (self.online.add if frame["online"] else self.online.discard)(frame["user"])
            self._emit(Event("presence", user=frame["user"], data={"online": frame["online"]}))
        elif kind in {"conversation.added", "conversation.updated"}:
            conversation = self._remember(frame["conversation"], merge=kind == "conversation.updated")
            self._emit(Event(kind, conversation["id"], data=conversation))
        elif kind == "conversation.removed":
            self.conversations.pop(frame["id"], None)
            self._emit(Event(kind, frame["id"]))
        elif kind == "key.changed":
            for conversation in self.conversations.values():
                for member in conversation.get("members", []):
                    if member["id"] == frame["user"]:
                        member["public_key"] = frame["public_key"]
            change = self.keyring.key_changed(frame["user"], frame["public_key"]) if self.keyring else None
            if change is not None:
                self._emit_key_change(change, frame.get("conversation"))
        elif kind == "error":
            for watcher in self._error_watchers:
                watcher.append(frame)
            self._emit(Event("error", data=frame))

    def _remember(self, conversation: dict, *, merge: bool = False) -> dict:
        if merge and conversation["id"] in self.conversations:
            conversation = {**self.conversations[conversation["id"]], **conversation}
        self.conversations[conversation["id"]] = conversation
        if self.keyring is not None:
            self.keyring.store.pin_encrypted(conversation["id"], conversation.get("encrypted", False))
            if conversation.get("encrypted"):
                for change in self.keyring.learn(conversation.get("members", [])):
                    self._emit_key_change(change, conversation["id"])
        return conversation

    def _emit_key_change(self, change: KeyChange, conversation_id: int | None) -> None:
        data = {"user_id": change.user_id, "public_key": change.public_key, "pinned": change.pinned}
        self._emit(Event("key.changed", conversation_id, user=change.user_id, data=data))

    # Conversations and people

    async def list_conversations(self, *, refresh: bool = True) -> list[dict]:
        """Return the user's conversations, newest activity first."""
        if refresh:
            for conversation in await self._call(self.api.conversations):
                self._remember(conversation)
        return sorted(self.conversations.values(), key=lambda c: c.get("last_message_id") or 0, reverse=True)

    async def search_users(self, query: str) -> list[dict]:
        return await self._call(self.api.users, query)

    async def search_channels(self, query: str = "") -> list[dict]:
        return await self._call(self.api.channels, query)

    def title(self, conversation: dict) -> str:
        """What to call a conversation: its name, or the other member's for a direct one."""
        if conversation.get("kind") == "direct" or not conversation.get("name"):
            others = [m for m in conversation.get("members", []) if m["id"] != self.me.get("id")]
            if others:
                return others[0].get("display_name") or others[0]["username"]
        return conversation.get("name") or f"#{conversation['id']}"

    async def resolve(self, target: Target) -> dict:
        """Return the conversation a target names: an id, `@username` or `#name`."""
        if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
            cid = int(target)
            if cid not in self.conversations:
                self._remember(await self._call(self.api.conversation, cid))
            return self.conversations[cid]
        if not isinstance(target, str) or len(target) < 2 or target[0] not in "@#":
            raise InvalidError(f"A target is a conversation id, @username or #name, not {target!r}.")
        name = target[1:]
        if target[0] == "@":
            for conversation in self.conversations.values():
                if conversation.get("kind") == "direct" and any(
                    m["username"].lower() == name.lower() and m["id"] != self.me.get("id")
                    for m in conversation.get("members", [])
                ):
                    return conversation
            return self._remember(await self._call(self.api.direct, name))
        for conversation in self.conversations.values():
            if conversation.get("kind") != "direct" and (conversation.get("name") or "").lower() == name.lower():
                return conversation
        for channel in await self._call(self.api.channels, name):
            if channel["name"].lower() == name.lower():
                return self._remember(await self._call(self.api.join, channel["id"]))
        raise NotFoundError(f"No channel or group called {name!r} that you can see.")

    async def refresh(self, conversation_id: int) -> dict:
        return self._remember(await self._call(self.api.conversation, conversation_id))

    async def create_channel(self, name: str, topic: str = "") -> dict:
        return self._remember(await self._call(self.api.create_channel, name, topic))

    async def create_group(self, name: str, members: list[str], *, encrypted: bool = True) -> dict:
        return self._remember(await self._call(self.api.create_group, name, members, encrypted=encrypted))

    async def join(self, conversation_id: int) -> dict:
        return self._remember(await self._call(self.api.join, conversation_id))

    # Encryption

    async def unlock(self, passphrase: str) -> None:
        """Unlock this user's key pair from the server's backup with their encryption passphrase."""
        backup = await self._call(self.api.key_backup)
        await asyncio.to_thread(self.keyring.unlock, backup, passphrase)

    async def setup_encryption(self, passphrase: str, *, opslimit: int | None = None, memlimit: int | None = None):
        """Make a key pair and store its passphrase-sealed backup (replaces any old one: a key reset)."""
        backup = await asyncio.to_thread(self.keyring.create, passphrase, opslimit=opslimit, memlimit=memlimit)
        await self._call(self.api.put_key_backup, backup)

    def accept_key(self, user_id: int) -> None:
        """Trust a contact's new key after a "key.changed" event."""
        self.keyring.accept(user_id)

    def safety_number(self, user_id: int) -> str | None:
        return self.keyring.safety_number(user_id)

    def reveal(self, raw: dict) -> Message:
        """Turn a message object from the server into a `Message`, decrypting it if need be."""
        revealed = self.keyring.reveal(raw) if self.keyring else None
        attachment = raw.get("attachment")
        inner = revealed.content.get("attachment") if revealed is not None else None
        if isinstance(inner, dict):
            if not attachment or inner.get("id") != attachment.get("id"):
                # The encrypted content names another upload than the message carries: refuse it.
                revealed = Revealed("failed")
                attachment = None
            else:
                attachment = {**attachment, **inner, "encrypted": True}
        return Message(
            id=raw["id"],
            conversation=raw["conversation"],
            sender=raw.get("sender"),
            text=revealed.text if revealed else raw.get("body"),
            status=revealed.status if revealed else "plain",
            kind=raw.get("kind") or "text",
            client_id=raw.get("client_id") or "",
            created_at=raw.get("created_at") or "",
            edited_at=raw.get("edited_at"),
            deleted=bool(raw.get("deleted")),
            reply_to=raw.get("reply_to"),
            attachment=attachment,
            content=revealed.content if revealed else {},
            raw=raw,
        )

    # Messages

    async def send(
        self,
        target: Target,
        text: str = "",
        *,
        reply_to: int | None = None,
        attachment: dict | None = None,
        client_id: str | None = None,
        timeout: float = 60.0,
    ) -> Message:
        """Send a message and wait for the server's ack; return it with its id.

        In an encrypted conversation the text (and the attachment's key) is sealed for every
        member. Raises the mapped server error (RateLimitedError, TooLargeError, ...) or an
        EncryptionError (locked, missing or changed keys, downgrade).
        """
        conversation = await self.resolve(target)
        client_id = client_id or uuid.uuid4().hex
        for attempt in range(2):
            frame = self._send_frame(conversation, client_id, text, reply_to, attachment)
            try:
                ack = await asyncio.wait_for(self.socket.request(frame), timeout)
                break
            except (InvalidError, NotMemberError) as error:
                # The member list changed under us: load it again and seal for the new members.
                stale_members = {"missing", "not_members"} & error.extra.keys()
                if attempt or not conversation.get("encrypted") or not stale_members:
                    raise
                conversation = await self.refresh(conversation["id"])
        raw = {
            "id": ack["id"],
            "conversation": conversation["id"],
            "sender": self.me,
            "client_id": client_id,
            "created_at": ack.get("created_at"),
            "reply_to": reply_to,
            "kind": "text",
        }
        content = {"text": text}
        if attachment and conversation.get("encrypted"):
            attachment = {**attachment, "encrypted": True}
            content["attachment"] = attachment
        return Message(
            id=ack["id"],
            conversation=conversation["id"],
            sender=self.me,
            text=text,
            status="ok" if conversation.get("encrypted") else "plain",
            client_id=client_id,
            created_at=ack.get("created_at") or "",
            reply_to=reply_to,
            attachment=attachment,
            content=content if conversation.get("encrypted") else {},
            raw=raw,
        )

    def _send_frame(
        self, conversation: dict, client_id: str, text: str, reply_to: int | None, attachment: dict | None
    ) -> dict:
        frame: dict[str, Any] = {"type": "message.send", "conversation": conversation["id"], "client_id": client_id}
        if reply_to:
            frame["reply_to"] = reply_to
        if attachment:
            frame["attachment"] = attachment["id"]
        if conversation.get("encrypted"):
            content: dict[str, Any] = {"text": text}
            if attachment:
                content["attachment"] = {
                    k: v for k, v in attachment.items() if k not in {"url", "thumbnail_url", "encrypted"}
                }
            frame.update(self.keyring.seal(conversation, client_id, content))
        else:
            self.keyring.check_conversation(conversation)
            frame["body"] = text
        return frame

    async def edit(self, message: Message, text: str) -> None:
        """Change the text of one of your messages (sealed again for the current members)."""
        conversation = await self.resolve(message.conversation)
        frame: dict[str, Any] = {"type": "message.edit", "id": message.id, "client_id": message.client_id}
        if conversation.get("encrypted"):
            content = {**message.content, "text": text} if message.content else {"text": text}
            content = {k: v for k, v in content.items() if k not in {"v", "conversation", "client_id"}}
            frame.update(self.keyring.seal(conversation, message.client_id, content))
        else:
            self.keyring.check_conversation(conversation)
            frame["body"] = text
        await self.socket.send(frame)

    async def delete(self, message_id: int) -> None:
        await self.socket.send({"type": "message.delete", "id": message_id})

    async def react(
        self, target: Target, message_id: int, emoji: str, *, on: bool = True, timeout: float = 60.0
    ) -> None:
        """React to a message of a conversation with an emoji (`on=False` takes the reaction back).

        In a plaintext conversation the server keeps it and tells every member; in an encrypted
        one it is an encrypted message of kind "reaction" that only the members can read, and this
        waits for its ack. Others' reactions arrive as "reaction" events.
        """
        conversation = await self.resolve(target)
        reaction = {"message": message_id, "emoji": emoji, "on": on}
        if not conversation.get("encrypted"):
            self.keyring.check_conversation(conversation)
            await self._answered({"type": "reaction", **reaction}, timeout)
            return
        client_id = uuid.uuid4().hex
        frame = {"type": "message.send", "conversation": conversation["id"], "client_id": client_id, "kind": "reaction"}
        frame.update(self.keyring.seal(conversation, client_id, {"reaction": reaction}))
        await asyncio.wait_for(self.socket.request(frame), timeout)

    async def _answered(self, frame: dict, timeout: float) -> None:
        """Send a frame the server answers only when it refuses it, and return once it was handled;
        raise the error it answered with (an error frame that came meanwhile)."""
        errors: list[dict] = []
        self._error_watchers.append(errors)
        try:
            await self.socket.send(frame)
            await asyncio.wait_for(self.socket.barrier(), timeout)
        finally:
            self._error_watchers.remove(errors)
        if errors:
            raise error_from(errors[0])

    # Blocks and reports

    async def blocks(self) -> list[dict]:
        return await self._call(self.api.blocks)

    async def block(self, username: str) -> dict:
        """Block someone: they can no longer start or write in a direct conversation with you."""
        return await self._call(self.api.block, username)

    async def unblock(self, username: str) -> None:
        await self._call(self.api.unblock, username)

    async def report(
        self, message: Message | None = None, *, user: str | None = None, reason: str, note: str = ""
    ) -> dict:
        """Report a message (or, with `user` alone, a person) to the moderators; return `{id, status}`.

        For an encrypted message the text you read and its message key go along as evidence, so
        the moderators can check that the sender really wrote it.
        """
        evidence = None
        if message is not None and message.encrypted:
            evidence = self.keyring.evidence(message.raw) if self.keyring else None
            if evidence is None:
                raise EncryptionError(
                    "This message could not be read here, so there is nothing to show the moderators."
                )
        return await self._call(
            self.api.report,
            reason=reason,
            message=message.id if message else None,
            user=user,
            note=note,
            evidence=evidence,
        )

    async def typing(self, target: Target) -> None:
        conversation = await self.resolve(target)
        await self.socket.send({"type": "typing", "conversation": conversation["id"]})

    async def mark_read(self, target: Target, up_to: int) -> None:
        """Move the read marker forward (it never goes back); unread counts follow."""
        conversation = await self.resolve(target)
        conversation["unread"] = 0
        await self.socket.send({"type": "read", "conversation": conversation["id"], "up_to": up_to})

    async def history(
        self, target: Target, *, before: int | None = None, after: int | None = None, limit: int = 50
    ) -> tuple[list[Message], bool]:
        """Return one page of history, oldest first, and whether there is more (older, or newer with `after`)."""
        conversation = await self.resolve(target)
        page = await self._call(self.api.messages, conversation["id"], before=before, after=after, limit=limit)
        return [self.reveal(raw) for raw in page["messages"]], page["has_more"]

    # Attachments (docs/protocol.md "Attachments"; encrypted: docs/e2e.md "Attachments")

    async def upload(
        self, target: Target, data: bytes | str | Path, *, name: str | None = None, content_type: str | None = None
    ) -> dict:
        """Upload a file to a conversation; return what `send(attachment=...)` takes.

        In a plaintext conversation the server keeps the name and type (and re-encodes pictures
        without metadata). In an encrypted one the file is padded and encrypted first
        (`e2e.seal_file`: secretstream, 64 KiB chunks); the server gets an opaque blob, and the
        key, header, name, type, size and, for a picture, its size and a small JPEG thumbnail
        travel inside the encrypted message.
        """
        conversation = await self.resolve(target)
        if isinstance(data, str | Path):
            path = Path(data)
            name = name or path.name
            data = await asyncio.to_thread(path.read_bytes)
        name = name or "file"
        content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        kind = "picture" if content_type in PICTURE_TYPES else "file"
        if not conversation.get("encrypted"):
            return await self._call(
                self.api.upload, conversation["id"], data, name=name, content_type=content_type, fields={"kind": kind}
            )
        if self.keyring is None or not self.keyring.unlocked:
            raise EncryptionLocked("This conversation is end-to-end encrypted: unlock your key with your passphrase.")
        sealed = await asyncio.to_thread(e2e.seal_file, data)
        upload = await self._call(
            self.api.upload, conversation["id"], sealed["blob"], name="blob", content_type="application/octet-stream"
        )
        inner = {
            "id": upload["id"],
            "key": sealed["key"],
            "header": sealed["header"],
            "name": name,
            "type": content_type,
            "size": len(data),
            "kind": kind,
        }
        if kind == "picture":
            inner.update(await asyncio.to_thread(_picture_preview, data))
        return {**inner, "url": upload["url"]}

    async def send_file(
        self, target: Target, path: str | Path, text: str = "", *, content_type: str | None = None
    ) -> Message:
        """Upload a file and send it in one message (the text is an optional caption)."""
        attachment = await self.upload(target, path, content_type=content_type)
        return await self.send(target, text, attachment=attachment)

    async def download(self, message: Message, *, thumbnail: bool = False) -> bytes:
        """Return an attachment's bytes, decrypted and checked in an encrypted conversation.

        With `thumbnail=True`, a picture's small version: the server's thumbnail in a plaintext
        conversation, the one inside the encrypted content in an encrypted one.
        """
        attachment = message.attachment or {}
        if attachment.get("encrypted"):
            if thumbnail and attachment.get("thumbnail"):
                return e2e.b64decode(attachment["thumbnail"])
            blob = await self._call(self.api.download, attachment["url"])
            data = await asyncio.to_thread(e2e.open_file, blob, attachment.get("key"), attachment.get("header"))
            if data is None or len(data) != attachment.get("size"):
                raise InvalidError("The attachment could not be decrypted: it was altered or cut short.")
            return data
        url = (
            attachment.get("thumbnail_url") if thumbnail and attachment.get("thumbnail_url") else attachment.get("url")
        )
        if not url:
            raise NotFoundError("This message has no attachment.")
        return await self._call(self.api.download, url)


PICTURE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
THUMBNAIL_SIDE = 320


def _picture_preview(data: bytes) -> dict:
    """Return a picture's width, height and a JPEG thumbnail (at most 320 px a side), or {} if it does not decode."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=70)
    except (UnidentifiedImageError, OSError, ValueError):
        return {}
    return {"width": width, "height": height, "thumbnail": e2e.b64encode(out.getvalue())}


def _reaction_ok(reaction) -> bool:
    """Whether an encrypted reaction's content has the shape the browser accepts (keyring.js)."""
    return (
        isinstance(reaction, dict)
        and isinstance(reaction.get("message"), int)
        and not isinstance(reaction.get("message"), bool)
        and isinstance(reaction.get("emoji"), str)
        # The browser counts UTF-16 code units.
        and 0 < len(reaction["emoji"].encode("utf-16-le")) // 2 <= 32
        and isinstance(reaction.get("on"), bool)
    )
