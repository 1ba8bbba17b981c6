"""Fixtures for chat tests: a third user, conversations, and signed-in WebSocket clients."""

import asyncio
import json
import os

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from chat import services
from chatterbox.asgi import application
from tests.conftest import ServerProcess, server_env

ORIGIN = b"http://127.0.0.1"
# Generous: a 2-core CI machine runs these on PostgreSQL and Redis.
FRAME_TIMEOUT = 10


# Marks of a test that runs several server processes: they share events through Redis only.
ACROSS_PROCESSES = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL"), reason="the in-memory channel layer cannot span processes; set REDIS_URL"
    ),
]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Users are made per test; the real PBKDF2 work factor would dominate the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def carol(make_user):
    return make_user("carol", display_name="Carol Danvers")


@pytest.fixture
def no_rate_limit(settings):
    settings.CHAT_RATE_LIMIT = "off"


def session_cookie(user) -> str:
    """Return a session cookie value signed in as the user (stored in the test database)."""
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def make_group(owner, *members, encrypted=False, name="Team"):
    conversation, _ = services.conversation_create(
        creator=owner, kind="group", name=name, members=[member.username for member in members], encrypted=encrypted
    )
    return conversation


def make_channel(owner, *members, name="general"):
    conversation, _ = services.conversation_create(creator=owner, kind="channel", name=name)
    for member in members:
        services.channel_join(user=member, conversation_id=conversation.pk)
    return conversation


def make_direct(user, other):
    conversation, _ = services.conversation_create(creator=user, kind="direct", members=[other.username])
    return conversation


def user_messages(messages: list[dict]) -> list[dict]:
    """Leave out the system lines (who joined, who left) from a list of message objects."""
    return [message for message in messages if message["kind"] != "system"]


def send(user, conversation, body, *, client_id=None):
    message, _ = services.message_send(
        sender=user, conversation_id=conversation.pk, client_id=client_id or f"c-{body}", body=body
    )
    return message


class Socket:
    """A WebsocketCommunicator on the real ASGI application, with JSON helpers."""

    def __init__(self, communicator: WebsocketCommunicator):
        self.communicator = communicator
        self.hello = None
        self.open = True
        # Presence frames arrive whenever a test opens another user's socket; most tests skip them.
        self.skip = {"presence"}

    async def send(self, frame) -> None:
        await self.communicator.send_to(text_data=json.dumps(frame))

    async def send_raw(self, text_data=None, bytes_data=None) -> None:
        await self.communicator.send_to(text_data=text_data, bytes_data=bytes_data)

    async def receive(self) -> dict:
        while True:
            frame = await self.communicator.receive_json_from(timeout=FRAME_TIMEOUT)
            if frame.get("type") not in self.skip:
                return frame

    async def receive_type(self, kind: str) -> dict:
        """Return the next frame, which must be of this type."""
        frame = await self.receive()
        assert frame["type"] == kind, frame
        return frame

    async def barrier(self) -> None:
        """Return once every frame this socket caused so far has been answered (ping, then pong)."""
        await self.send({"type": "ping"})
        assert await self.receive() == {"type": "pong"}

    async def closed_with(self) -> int:
        output = await self.communicator.receive_output(timeout=FRAME_TIMEOUT)
        assert output["type"] == "websocket.close", output
        return output.get("code")

    async def close(self) -> None:
        if self.open:
            self.open = False
            await self.communicator.disconnect()


def communicator(*, cookie: str | None = None, origin: bytes = ORIGIN) -> WebsocketCommunicator:
    headers = [(b"host", b"127.0.0.1"), (b"origin", origin)]
    if cookie:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(application, "/ws/", headers=headers)


@pytest.fixture
async def connect():
    """Open a signed-in socket for a user and read its hello; close them all at the end."""
    opened = []

    async def open_socket(user) -> Socket:
        cookie = await database_sync_to_async(session_cookie)(user)
        socket = Socket(communicator(cookie=cookie))
        connected, _ = await socket.communicator.connect(timeout=FRAME_TIMEOUT)
        assert connected
        opened.append(socket)
        socket.hello = await socket.receive_type("hello")
        return socket

    yield open_socket
    for socket in opened:
        await socket.close()


def db(function):
    """Run a synchronous ORM or service call from an async test, on a worker thread."""
    return database_sync_to_async(function)


class LiveSocket:
    """A client of a real server process over a real WebSocket (the `websockets` library)."""

    def __init__(self, connection, hello: dict):
        self.connection = connection
        self.hello = hello

    @classmethod
    async def open(cls, server, cookie: str) -> "LiveSocket":
        from websockets.asyncio.client import connect as ws_connect

        connection = await ws_connect(
            server.url.replace("http://", "ws://") + "/ws/",
            origin=server.url,
            additional_headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"},
            proxy=None,
            open_timeout=FRAME_TIMEOUT,
        )
        hello = json.loads(await asyncio.wait_for(connection.recv(), FRAME_TIMEOUT))
        assert hello["type"] == "hello", hello
        return cls(connection, hello)

    async def send(self, frame: dict) -> None:
        await self.connection.send(json.dumps(frame))

    async def receive(self, *, skip=("presence",)) -> dict:
        while True:
            frame = json.loads(await asyncio.wait_for(self.connection.recv(), FRAME_TIMEOUT))
            if frame["type"] not in skip:
                return frame

    async def receive_type(self, kind: str) -> dict:
        frame = await self.receive()
        assert frame["type"] == kind, frame
        return frame

    async def close(self) -> None:
        await self.connection.close()


@pytest.fixture(scope="module")
def server_factory(django_db_setup, django_db_blocker, artifacts_dir, tmp_path_factory):
    """Start server processes on the test database (and Redis, when set); stop them after the module."""
    started = []

    def start(name: str, *, server: str | None = None, workers: int = 1, **env_overrides) -> ServerProcess:
        with django_db_blocker.unblock():
            env = server_env(tmp_path_factory.mktemp("media"))
        env.update({"CHAT_RATE_LIMIT": "off", **env_overrides})
        process = ServerProcess(env, artifacts_dir / f"server-{name}.log", name, server=server, workers=workers)
        started.append(process)
        return process

    yield start
    for server in started:
        server.stop()
