"""An example bot: answers `/time` and `/roll` wherever it is a member, encrypted DMs included.

    CHATTERBOX_SERVER=http://127.0.0.1:8000 CHATTERBOX_TOKEN=cbx_... \\
    CHATTERBOX_PASSPHRASE='bot passphrase' python -m client.bots.dicebot

Make the token on the bot account's profile page (API tokens). With a passphrase the bot
unlocks its key pair, or creates one if the account has none yet, so people can write to it
in encrypted direct messages; without one it answers in plaintext conversations only.

    /time          the server-independent UTC time
    /roll          one six-sided die
    /roll 20       one twenty-sided die
    /roll 3d6      three six-sided dice and their sum
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import secrets
import sys
from datetime import UTC, datetime

from client.client import Client, Event
from client.errors import ChatterboxError, EncryptionError, RateLimitedError

log = logging.getLogger("dicebot")

DICE = re.compile(r"^(?:(\d{1,3})d)?(\d{1,4})$", re.IGNORECASE)
MAX_DICE = 100
MAX_SIDES = 1000
USAGE = "Try /roll, /roll 20 or /roll 3d6 (at most 100 dice of 2 to 1000 sides)."


def answer(text: str, *, now: datetime | None = None) -> str | None:
    """Return the bot's reply to a message, or None if it is not a command for this bot."""
    words = (text or "").strip().split()
    if not words:
        return None
    command = words[0].lower()
    if command == "/time":
        moment = now or datetime.now(UTC)
        return f"It is {moment:%H:%M:%S} UTC on {moment:%A %d %B %Y}."
    if command != "/roll":
        return None
    match = DICE.match(words[1]) if len(words) > 1 else DICE.match("1d6")
    if not match:
        return USAGE
    count, sides = int(match.group(1) or 1), int(match.group(2))
    if not (1 <= count <= MAX_DICE and 2 <= sides <= MAX_SIDES):
        return USAGE
    rolls = [secrets.randbelow(sides) + 1 for _ in range(count)]
    if count == 1:
        return f"🎲 d{sides}: {rolls[0]}"
    return f"🎲 {count}d{sides}: {' + '.join(map(str, rolls))} = {sum(rolls)}"


class DiceBot:
    """Reply to commands from others, in every conversation the bot's account is in."""

    def __init__(self, chat: Client, *, trust_new_keys: bool = False):
        self.chat = chat
        self.trust_new_keys = trust_new_keys

    async def handle(self, event: Event) -> None:
        if event.type == "key.changed":
            if self.trust_new_keys:
                log.warning("User %s has a new key; trusting it (--trust-new-keys).", event.user)
                self.chat.accept_key(event.user)
            else:
                log.warning("User %s has a new key; not writing to them until it is accepted.", event.user)
            return
        if event.type == "state":
            log.info("Connection: %s", event.data.get("state"))
            return
        message = event.message
        if event.type != "message" or message is None or event.user == self.chat.me["id"] or message.text is None:
            return
        reply = answer(message.text)
        if reply is None:
            return
        try:
            await self.send(message.conversation, reply, message.id)
        except EncryptionError as error:
            log.warning("Cannot answer in conversation %s: %s", message.conversation, error.detail)
        except ChatterboxError as error:
            log.warning("The server refused the answer in conversation %s: %s", message.conversation, error.detail)

    async def send(self, conversation: int, text: str, reply_to: int) -> None:
        try:
            await self.chat.send(conversation, text, reply_to=reply_to)
        except RateLimitedError as limited:
            await asyncio.sleep(limited.extra.get("retry_after", 1))
            await self.chat.send(conversation, text, reply_to=reply_to)

    async def run(self) -> None:
        async for event in self.chat.events():
            await self.handle(event)


async def start(server: str, token: str, passphrase: str | None, *, trust_new_keys: bool = False) -> None:
    chat = Client(server, token=token)
    await chat.connect()
    if passphrase:
        if await asyncio.to_thread(chat.api.key_backup) is None:
            log.info("No key pair yet for %s: creating one.", chat.me["username"])
            await chat.setup_encryption(passphrase)
        else:
            await chat.unlock(passphrase)
    log.info("Answering /time and /roll as %s on %s.", chat.me["username"], server)
    try:
        await DiceBot(chat, trust_new_keys=trust_new_keys).run()
    finally:
        await chat.close()
    if chat.socket.closed_for_good is not None:
        # Signed out (revoked token) or banned: the events ended; say why and exit non-zero.
        raise chat.socket.closed_for_good


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--server", default=os.environ.get("CHATTERBOX_SERVER"))
    options.add_argument("--trust-new-keys", action="store_true", help="accept contacts' changed keys on its own")
    args = options.parse_args(argv)
    token = os.environ.get("CHATTERBOX_TOKEN")
    if not args.server or not token:
        print("Set CHATTERBOX_SERVER (or --server) and CHATTERBOX_TOKEN.", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        passphrase = os.environ.get("CHATTERBOX_PASSPHRASE")
        asyncio.run(start(args.server, token, passphrase, trust_new_keys=args.trust_new_keys))
    except KeyboardInterrupt:
        return 0
    except ChatterboxError as error:
        print(f"dicebot: {error.detail}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
