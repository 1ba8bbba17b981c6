"""The user's key pair and the contacts' pinned keys, as the browser keeps them (docs/e2e.md).

`KeyStore` is a small JSON file (mode 0600) per server and user: contacts' public keys pinned
on first use, the keys they replaced, and the conversations pinned as encrypted. `Keyring`
unlocks the key pair with the passphrase, notices key changes, and seals and opens messages
with `client.e2e`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from nacl.public import PrivateKey

from client import e2e
from client.errors import (
    EncryptionDowngrade,
    EncryptionLocked,
    KeyChanged,
    MissingKeys,
    NoKeyBackup,
    WrongPassphraseError,
)

PREVIOUS_KEYS_KEPT = 10


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(path.suffix + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


class KeyStore:
    """Pinned contact keys and encrypted-conversation flags of one user on one server.

    With `path=None` it lives in memory only (tests, throw-away bots).
    """

    def __init__(self, path: Path | None = None):
        self.path = path
        self.contacts: dict[str, dict] = {}
        self.encrypted: dict[str, bool] = {}
        if path is not None and path.exists():
            stored = json.loads(path.read_text())
            self.contacts = stored.get("contacts", {})
            self.encrypted = stored.get("encrypted", {})

    def save(self) -> None:
        if self.path is not None:
            write_private(self.path, json.dumps({"contacts": self.contacts, "encrypted": self.encrypted}, indent=1))

    def contact(self, user_id: int) -> dict | None:
        return self.contacts.get(str(user_id))

    def pin(self, user_id: int, public_key: str, *, verified: bool = False, previous: list | None = None) -> dict:
        record = {"public_key": public_key, "verified": verified, "previous": previous or [], "pinned_at": time.time()}
        self.contacts[str(user_id)] = record
        self.save()
        return record

    def check(self, user_id: int, public_key: str) -> str:
        """Pin a key seen for the first time ("new"); else say whether it is the pinned one."""
        pinned = self.contact(user_id)
        if pinned is None:
            self.pin(user_id, public_key)
            return "new"
        return "same" if pinned["public_key"] == public_key else "changed"

    def accept(self, user_id: int, public_key: str) -> dict:
        """Replace a contact's pinned key after a change; the old one still opens older messages."""
        pinned = self.contact(user_id)
        previous = []
        if pinned:
            previous = [{"public_key": pinned["public_key"], "replaced_at": time.time()}, *pinned["previous"]]
        return self.pin(user_id, public_key, previous=previous[:PREVIOUS_KEYS_KEPT])

    def verify(self, user_id: int) -> dict:
        pinned = self.contact(user_id)
        if pinned is None:
            raise KeyError(user_id)
        return self.pin(user_id, pinned["public_key"], verified=True, previous=pinned["previous"])

    def pin_encrypted(self, conversation_id: int, encrypted: bool) -> bool:
        """Pin a conversation's `encrypted` flag on first sight; return True if the server downgraded it."""
        key = str(conversation_id)
        if key not in self.encrypted:
            self.encrypted[key] = bool(encrypted)
            self.save()
            return False
        return self.encrypted[key] and not encrypted


@dataclass
class KeyChange:
    """A contact's public key differs from the pinned one (shown as "X's key changed")."""

    user_id: int
    public_key: str
    pinned: str


@dataclass
class Revealed:
    """A message's content as this user can read it.

    `status` is "plain" (not encrypted), "ok", "locked" (no key unlocked), "unknown" (the sender's
    key is not known), "untrusted" (it opens only with the sender's new, unaccepted key) or "failed".
    """

    status: str
    text: str | None = None
    content: dict = field(default_factory=dict)


class Keyring:
    """This user's key pair and their contacts' pinned keys."""

    def __init__(self, me: dict, store: KeyStore):
        self.me = me
        self.store = store
        self.private_key: PrivateKey | None = None
        self.changed: dict[int, str] = {}

    @property
    def unlocked(self) -> bool:
        return self.private_key is not None

    @property
    def public_key(self) -> str | None:
        return e2e.public_key_b64(self.private_key) if self.private_key else None

    def unlock(self, backup: dict | None, passphrase: str) -> None:
        """Open the key backup from `GET /api/keys/` with the passphrase."""
        if not backup:
            raise NoKeyBackup("Set up end-to-end encryption first (in the browser, or with `setup`).")
        try:
            self.private_key = e2e.unlock_key_pair(backup, passphrase)
        except e2e.WrongPassphrase:
            raise WrongPassphraseError("Wrong passphrase: the key backup does not open with it.") from None

    def create(self, passphrase: str, *, opslimit: int | None = None, memlimit: int | None = None) -> dict:
        """Make a new key pair; return the backup body for `PUT /api/keys/`."""
        key = e2e.generate_key_pair()
        limits = {"opslimit": opslimit or e2e.OPSLIMIT_MODERATE, "memlimit": memlimit or e2e.MEMLIMIT_MODERATE}
        backup = e2e.backup_key_pair(key, passphrase, **limits)
        self.private_key = key
        return backup

    # Contacts

    def learn(self, members: list[dict]) -> list[KeyChange]:
        """Pin the members' keys on first use; return the changes not accepted yet that are new."""
        news = []
        for member in members:
            user_id, public_key = member.get("id"), member.get("public_key")
            if not public_key or user_id == self.me["id"] or self.changed.get(user_id) == public_key:
                continue
            pinned = self.store.contact(user_id)
            if pinned and pinned["public_key"] == public_key:
                # An older view of the member (the pinned key) does not undo a change seen since.
                continue
            if self.store.check(user_id, public_key) == "changed":
                self.changed[user_id] = public_key
                news.append(KeyChange(user_id, public_key, self.store.contact(user_id)["public_key"]))
            else:
                self.changed.pop(user_id, None)
        return news

    def key_changed(self, user_id: int, public_key: str) -> KeyChange | None:
        return next(iter(self.learn([{"id": user_id, "public_key": public_key}])), None)

    def accept(self, user_id: int) -> None:
        """Trust a contact's new key after the user was told it changed."""
        public_key = self.changed.pop(user_id, None)
        if public_key:
            self.store.accept(user_id, public_key)

    def safety_number(self, user_id: int) -> str | None:
        theirs = self.changed.get(user_id) or (self.store.contact(user_id) or {}).get("public_key")
        return e2e.safety_number(self.public_key, theirs) if self.private_key and theirs else None

    # Messages

    def check_conversation(self, conversation: dict) -> None:
        """Refuse a plaintext send to a conversation pinned as encrypted (a server downgrade)."""
        if self.store.pin_encrypted(conversation["id"], conversation.get("encrypted", False)):
            raise EncryptionDowngrade(
                "The server now calls this conversation unencrypted, but it was encrypted: nothing was sent."
            )

    def seal(self, conversation: dict, client_id: str, content: dict) -> dict:
        """Return `{ciphertext, nonce, keys}` for every current member, or raise why not."""
        if self.private_key is None:
            raise EncryptionLocked("This conversation is end-to-end encrypted: unlock your key with your passphrase.")
        self.learn(conversation["members"])
        others = [member for member in conversation["members"] if member["id"] != self.me["id"]]
        missing = [member["username"] for member in others if not member.get("public_key")]
        if missing:
            raise MissingKeys(f"{', '.join(missing)} ha{'s' if len(missing) == 1 else 've'} not set up encryption yet.")
        changed = [member["username"] for member in others if member["id"] in self.changed]
        if changed:
            raise KeyChanged(f"The key of {', '.join(changed)} changed: accept it before sending.", users=changed)
        recipients = {member["id"]: self.store.contact(member["id"])["public_key"] for member in others}
        recipients[self.me["id"]] = self.public_key
        return e2e.seal_message(
            content=content,
            conversation=conversation["id"],
            client_id=client_id,
            sender_private_key=self.private_key,
            recipients=recipients,
        )

    def evidence(self, message: dict) -> dict | None:
        """Return a report's evidence for an encrypted message, `{text, key}`, or None if it does not
        open with its sender's trusted key."""
        if self.private_key is None or not message.get("ciphertext") or message.get("deleted"):
            return None
        for sender_key in self._trusted(message):
            opened = e2e.open_message_and_key(message, sender_public_key=sender_key, my_private_key=self.private_key)
            if opened is not None:
                content, key = opened
                return {"text": content.get("text") if isinstance(content.get("text"), str) else "", "key": key}
        return None

    def reveal(self, message: dict) -> Revealed:
        """Decrypt a message object if it is encrypted; never raises."""
        if "body" in message and message.get("body") is not None:
            return Revealed("plain", message["body"])
        if message.get("deleted") or not message.get("ciphertext"):
            return Revealed("plain", "")
        if self.private_key is None:
            return Revealed("locked")
        sender_id = (message.get("sender") or {}).get("id")
        trusted = self._trusted(message)
        for key in trusted:
            content = self._open(message, key)
            if content is not None:
                return Revealed("ok", content.get("text") if isinstance(content.get("text"), str) else None, content)
        if sender_id in self.changed and self._open(message, self.changed[sender_id]) is not None:
            return Revealed("untrusted")
        return Revealed("failed" if trusted else "unknown")

    def _trusted(self, message: dict) -> list[str]:
        """The sender's keys this message may be opened with: the pinned one, or one it replaced
        after the message was sent."""
        sender_id = (message.get("sender") or {}).get("id")
        pin = self.store.contact(sender_id) if sender_id is not None else None
        if sender_id == self.me["id"]:
            return [self.public_key]
        if pin:
            sent_at = _timestamp(message.get("created_at"))
            older = [key["public_key"] for key in pin["previous"] if sent_at < key["replaced_at"]]
            return [pin["public_key"], *older]
        return []

    def _open(self, message: dict, sender_public_key: str) -> dict | None:
        return e2e.open_message(message, sender_public_key=sender_public_key, my_private_key=self.private_key)


def _timestamp(value: str | None) -> float:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else 0.0
    except ValueError:
        return 0.0
