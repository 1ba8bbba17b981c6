"""A server that is told to stop (SIGTERM) closes its WebSockets with 1012, so clients reconnect and sync."""

import asyncio
import os
import signal

import pytest
from websockets.exceptions import ConnectionClosed

from chat.presence import users_online
from chatterbox import serve
from tests.chat.conftest import LiveSocket, db, make_group, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("server", "workers"),
    [
        *((server, 1) for server in serve.SERVERS),
        pytest.param(
            "uvicorn",
            2,
            marks=pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="several workers need REDIS_URL"),
        ),
    ],
)
async def test_sigterm_closes_open_sockets_with_1012(server_factory, server, workers, alice, bob):
    # A long presence grace: a stopping server must count its sockets out at once all the same.
    process = server_factory(
        f"shutdown-{server}-{workers}", server=server, workers=workers, PRESENCE_OFFLINE_GRACE="60"
    )
    group = await db(make_group)(alice, bob)
    alice_socket = await LiveSocket.open(process, await db(session_cookie)(alice))
    bob_socket = await LiveSocket.open(process, await db(session_cookie)(bob))
    await alice_socket.send({"type": "message.send", "conversation": group.pk, "client_id": "x1", "body": "before"})
    assert (await bob_socket.receive_type("message.new"))["message"]["body"] == "before"

    process.process.terminate()
    for socket in (alice_socket, bob_socket):
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await socket.receive(skip=("presence", "message.new", "message.ack"))
        assert closed.value.rcvd is not None, "closed without a close frame (1006)"
        assert closed.value.rcvd.code == 1012
    # Uvicorn ends by re-raising the signal once it has shut down; Daphne and Gunicorn exit with 0.
    assert await asyncio.to_thread(process.process.wait, 15) in (0, -signal.SIGTERM)
    if os.environ.get("REDIS_URL"):  # the presence counts live in Redis, shared with this test
        assert await db(users_online)([alice.pk, bob.pk]) == set()
