"""Bots and scripts open the WebSocket with a bearer token instead of a session cookie."""

import pytest
from channels.testing import WebsocketCommunicator

from accounts import tokens
from chatterbox.asgi import application
from tests.chat.conftest import ORIGIN, Socket, db, make_channel

pytestmark = pytest.mark.django_db(transaction=True)


def token_socket(secret: str) -> Socket:
    headers = [(b"host", b"127.0.0.1"), (b"origin", ORIGIN), (b"authorization", f"Bearer {secret}".encode())]
    return Socket(WebsocketCommunicator(application, "/ws/", headers=headers))


async def test_token_opens_the_socket_as_its_user(alice):
    channel = await db(make_channel)(alice)
    _, secret = await db(tokens.token_create)(user=alice, name="bot")
    socket = token_socket(secret)
    connected, _ = await socket.communicator.connect()
    assert connected
    hello = await socket.receive_type("hello")
    assert hello["user"]["username"] == "alice"
    assert channel.pk in hello["conversations"]
    await socket.send({"type": "message.send", "conversation": channel.pk, "client_id": "bot-1", "body": "beep"})
    ack = await socket.receive_type("message.ack")
    assert ack["client_id"] == "bot-1"
    await socket.close()


async def test_unknown_token_is_anonymous(alice):
    socket = token_socket("cbx_forged")
    connected, _ = await socket.communicator.connect()
    assert connected
    assert await socket.closed_with() == 4401
