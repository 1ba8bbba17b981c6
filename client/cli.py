"""The `chatterbox` command line: log in, list, send, listen, page history, upload.

    chatterbox --server http://127.0.0.1:8000 login
    chatterbox send @bob "hi"
    echo hi | chatterbox send '#general' -
    chatterbox listen --json

The server comes from --server or CHATTERBOX_SERVER (else the one `login` stored), the token
from CHATTERBOX_TOKEN (else the stored one). `login` stores a token, never the password, in
the user's config directory with mode 0600. Encrypted conversations take the passphrase from
CHATTERBOX_PASSPHRASE, or ask for it on a terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import socket
import sys
from pathlib import Path

from client import config
from client.api import HttpApi, normalize_server
from client.client import Client, Message
from client.errors import (
    ChatterboxError,
    EncryptionLocked,
    SignedOut,
    TwoFactorRequired,
    UnauthorizedError,
)

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SIGNED_OUT = 3
# What a report can be for (moderation.models.Report.Reason).
REPORT_REASONS = ("spam", "harassment", "hate", "violence", "sexual", "other")


class UsageError(Exception):
    """The command line is missing something it needs."""


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="chatterbox", description="Chat on a Chatterbox server from a terminal.")
    main.add_argument("--server", help="the server's URL (default: $CHATTERBOX_SERVER, or the one you logged in to)")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    login = commands.add_parser("login", help="log in with your password and store an API token")
    login.add_argument("login", nargs="?", help="username or email (asked if left out)")
    login.add_argument("--token-name", help="the name the token gets on your profile page")

    commands.add_parser("logout", help="forget the stored token (revoke it on the profile page)")
    commands.add_parser("whoami", help="show who the token belongs to")

    listing = commands.add_parser("conversations", help="list your conversations with unread counts")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")

    users = commands.add_parser("users", help="search people by name")
    users.add_argument("query")

    send = commands.add_parser("send", help="send a message ('-' reads it from standard input)")
    send.add_argument("target", help="@username, #channel-name or a conversation id")
    send.add_argument("text", help="the message, or - for standard input")
    send.add_argument("--reply-to", type=int, metavar="ID")

    listen = commands.add_parser("listen", help="print messages as they arrive, until interrupted")
    listen.add_argument("targets", nargs="*", help="only these conversations (default: all)")
    listen.add_argument("--json", action="store_true", help="one JSON object per line")
    listen.add_argument("--count", type=int, help="stop after this many messages")

    history = commands.add_parser("history", help="print a conversation's messages, oldest first")
    history.add_argument("target")
    history.add_argument("--limit", type=int, default=50)
    history.add_argument("--before", type=int, metavar="ID")
    history.add_argument("--json", action="store_true")

    upload = commands.add_parser("upload", help="send a file (encrypted first in an encrypted conversation)")
    upload.add_argument("target")
    upload.add_argument("path", type=Path)
    upload.add_argument("--text", default="", help="a message to go with it")

    react = commands.add_parser("react", help="react to a message with an emoji")
    react.add_argument("target")
    react.add_argument("message", type=int, metavar="MESSAGE_ID")
    react.add_argument("emoji")
    react.add_argument("--off", action="store_true", help="take the reaction back")

    commands.add_parser("blocks", help="list the people you blocked")
    block = commands.add_parser("block", help="stop someone from writing to you in direct messages")
    block.add_argument("username")
    unblock = commands.add_parser("unblock", help="let someone write to you again")
    unblock.add_argument("username")

    report = commands.add_parser("report", help="report a message (or, with @username alone, a person)")
    report.add_argument("target", help="the message's conversation, or @username to report a person")
    report.add_argument("message", type=int, nargs="?", metavar="MESSAGE_ID")
    report.add_argument("--reason", required=True, choices=REPORT_REASONS)
    report.add_argument("--note", default="", help="anything the moderators should know")
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return asyncio.run(run(args)) or 0
    except KeyboardInterrupt:
        return 130
    except UsageError as error:
        print(f"chatterbox: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (SignedOut, UnauthorizedError) as error:
        print(f"chatterbox: {error.detail} Log in again: chatterbox login", file=sys.stderr)
        return EXIT_SIGNED_OUT
    except ChatterboxError as error:
        print(f"chatterbox: {error.detail}", file=sys.stderr)
        return EXIT_ERROR
    except ValueError as error:
        print(f"chatterbox: {error}", file=sys.stderr)
        return EXIT_USAGE


def _server(args) -> str:
    server = args.server or os.environ.get("CHATTERBOX_SERVER") or config.stored_login(None)[0]
    if not server:
        raise UsageError("Which server? Give --server URL or set CHATTERBOX_SERVER.")
    return normalize_server(server)


def _token(server: str) -> str:
    token = os.environ.get("CHATTERBOX_TOKEN") or (config.stored_login(server)[1] or {}).get("token")
    if not token:
        raise UsageError(f"Not logged in to {server}: run `chatterbox login` or set CHATTERBOX_TOKEN.")
    return token


def _ask(prompt: str, *, secret: bool = False) -> str:
    """Ask on the terminal; without one, read a line from standard input (for scripts and tests)."""
    if sys.stdin.isatty():
        return getpass.getpass(prompt) if secret else input(prompt)
    line = sys.stdin.readline()
    if not line:
        raise UsageError(f"{prompt.strip(': ')} is needed, and standard input has ended.")
    return line.rstrip("\n")


def _passphrase() -> str:
    passphrase = os.environ.get("CHATTERBOX_PASSPHRASE")
    if passphrase:
        return passphrase
    if not sys.stdin.isatty():
        raise EncryptionLocked("This conversation is end-to-end encrypted: set CHATTERBOX_PASSPHRASE.")
    return getpass.getpass("Encryption passphrase: ")


async def run(args) -> int | None:
    server = _server(args)
    if args.command == "login":
        return await login(server, args)
    if args.command == "logout":
        forgotten = config.forget_token(server)
        print("Forgot the token." if forgotten else "No token was stored for this server.")
        print(f"It still works until you revoke it at {server}/profile/tokens/.")
        return None
    chat = Client(server, token=_token(server))
    await chat.connect()
    try:
        return await COMMANDS[args.command](chat, args)
    finally:
        await chat.close()


async def login(server: str, args) -> None:
    api = HttpApi(server)
    who = args.login or _ask("Username or email: ")
    password = _ask("Password: ", secret=True)
    try:
        me = await asyncio.to_thread(api.login, who, password)
    except TwoFactorRequired:
        api = HttpApi(server)
        code = _ask("Two-factor code (authenticator app or recovery code): ", secret=True)
        me = await asyncio.to_thread(api.login, who, password, code=code.strip())
    name = args.token_name or f"chatterbox CLI on {socket.gethostname()}"[:64]
    token = await asyncio.to_thread(api.create_token, name)
    # The session has done its job; from here on the token is the credential.
    await asyncio.to_thread(api.logout)
    path = config.save_token(server, username=me["username"], token=token)
    print(f"Logged in to {server} as {me['username']}; the token is stored in {path}.")


async def _unlock_if_needed(chat: Client, conversation: dict) -> None:
    if conversation.get("encrypted") and not chat.keyring.unlocked:
        await chat.unlock(_passphrase())


async def whoami(chat: Client, args) -> None:
    print(f"{chat.me['username']} ({chat.me.get('display_name') or chat.me['username']}) on {chat.server}")


async def conversations(chat: Client, args) -> None:
    for conversation in await chat.list_conversations(refresh=False):
        row = {
            "id": conversation["id"],
            "kind": conversation["kind"],
            "name": chat.title(conversation),
            "target": _target(chat, conversation),
            "encrypted": conversation.get("encrypted", False),
            "unread": conversation.get("unread", 0),
        }
        if args.json:
            print(json.dumps(row))
        else:
            lock = " [encrypted]" if row["encrypted"] else ""
            unread = f" ({row['unread']} unread)" if row["unread"] else ""
            print(f"{row['id']:>5}  {row['target']:<24} {row['kind']:<7} {row['name']}{lock}{unread}")


def _target(chat: Client, conversation: dict) -> str:
    if conversation["kind"] == "direct":
        others = [m for m in conversation.get("members", []) if m["id"] != chat.me["id"]]
        return f"@{others[0]['username']}" if others else str(conversation["id"])
    return f"#{conversation['name']}"


async def users(chat: Client, args) -> None:
    for user in await chat.search_users(args.query):
        state = "online" if user.get("online") else "offline"
        print(f"@{user['username']:<20} {user.get('display_name') or ''} ({state})")


async def send(chat: Client, args) -> None:
    text = sys.stdin.read().rstrip("\n") if args.text == "-" else args.text
    if not text.strip():
        raise UsageError("The message is empty.")
    conversation = await chat.resolve(args.target)
    await _unlock_if_needed(chat, conversation)
    message = await chat.send(conversation["id"], text, reply_to=args.reply_to)
    print(message.id)


def _line(chat: Client, message: Message, as_json: bool) -> str:
    if as_json:
        return json.dumps(message.as_json(), ensure_ascii=False)
    conversation = chat.conversations.get(message.conversation)
    where = _target(chat, conversation) if conversation else str(message.conversation)
    if message.deleted:
        text = "(deleted)"
    elif message.text is not None:
        text = message.text
    else:
        text = f"(could not be decrypted: {message.status})"
    if message.attachment:
        text += f" [file: {message.attachment.get('name') or message.attachment.get('url')}]"
    return f"[{message.created_at[11:19]}] {where} {message.sender_name}: {text}"


async def listen(chat: Client, args) -> int | None:
    wanted = {(await chat.resolve(target))["id"] for target in args.targets}
    if any(c.get("encrypted") for c in chat.conversations.values()) and not chat.keyring.unlocked:
        try:
            await chat.unlock(_passphrase())
        except EncryptionLocked:
            print("chatterbox: encrypted messages stay locked: set CHATTERBOX_PASSPHRASE.", file=sys.stderr)
    where = f"{len(wanted)} conversation(s)" if wanted else "all your conversations"
    print(f"chatterbox: Listening to {where} as {chat.me['username']}; Ctrl-C stops.", file=sys.stderr, flush=True)
    seen = 0
    async for event in chat.events():
        if event.type == "state":
            if event.data["state"] in {"reconnecting", "signed_out", "banned"}:
                print(f"chatterbox: {event.data['state']}", file=sys.stderr, flush=True)
            if event.data["state"] == "signed_out":
                raise SignedOut("Signed out.")
            if event.data["state"] == "banned":
                return EXIT_ERROR
            continue
        if event.type == "key.changed":
            print(f"chatterbox: the key of user {event.user} changed; check the safety number.", file=sys.stderr)
        if event.type != "message" or (wanted and event.conversation not in wanted) or event.message.kind == "reaction":
            continue
        print(_line(chat, event.message, args.json), flush=True)
        seen += 1
        if args.count and seen >= args.count:
            return None
    return None


async def history(chat: Client, args) -> None:
    conversation = await chat.resolve(args.target)
    if conversation.get("encrypted") and not chat.keyring.unlocked:
        await _unlock_if_needed(chat, conversation)
    messages, _ = await chat.history(conversation["id"], before=args.before, limit=args.limit)
    for message in messages:
        if message.kind != "reaction":  # an encrypted reaction belongs to its target, not the list
            print(_line(chat, message, args.json))


async def upload(chat: Client, args) -> None:
    if not args.path.is_file():
        raise UsageError(f"No such file: {args.path}")
    conversation = await chat.resolve(args.target)
    await _unlock_if_needed(chat, conversation)
    message = await chat.send_file(conversation["id"], args.path, args.text)
    print(message.id)


async def react(chat: Client, args) -> None:
    conversation = await chat.resolve(args.target)
    await _unlock_if_needed(chat, conversation)
    await chat.react(conversation["id"], args.message, args.emoji, on=not args.off)


async def blocks(chat: Client, args) -> None:
    for block in await chat.blocks():
        print(f"@{block['user']['username']:<20} since {block['created_at'][:10]}")


async def block(chat: Client, args) -> None:
    await chat.block(args.username.lstrip("@"))


async def unblock(chat: Client, args) -> None:
    await chat.unblock(args.username.lstrip("@"))


async def report(chat: Client, args) -> None:
    if args.message is None:
        if not args.target.startswith("@"):
            raise UsageError("Give the MESSAGE_ID to report a message, or @username to report a person.")
        answer = await chat.report(user=args.target[1:], reason=args.reason, note=args.note)
    else:
        conversation = await chat.resolve(args.target)
        await _unlock_if_needed(chat, conversation)
        page, _ = await chat.history(conversation["id"], before=args.message + 1, limit=1)
        if not page or page[-1].id != args.message:
            raise UsageError(f"No message {args.message} in {args.target}.")
        answer = await chat.report(page[-1], reason=args.reason, note=args.note)
    print(f"Report {answer['id']}: {answer['status']}")


COMMANDS = {
    "whoami": whoami,
    "conversations": conversations,
    "users": users,
    "send": send,
    "listen": listen,
    "history": history,
    "upload": upload,
    "react": react,
    "blocks": blocks,
    "block": block,
    "unblock": unblock,
    "report": report,
}


if __name__ == "__main__":
    sys.exit(main())
