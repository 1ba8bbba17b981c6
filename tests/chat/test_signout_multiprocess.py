"""Two real Daphne processes on PostgreSQL and Redis: ending credentials through one process
closes the sockets opened with them on the other, at once, with 4401."""

import asyncio
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from django.conf import settings
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from accounts import tokens
from tests.chat.conftest import ACROSS_PROCESSES, FRAME_TIMEOUT, LiveSocket, db, make_group, session_cookie
from tests.conftest import PASSWORD

pytestmark = ACROSS_PROCESSES


@pytest.fixture(scope="module")
def servers(server_factory):
    return server_factory("signout-a"), server_factory("signout-b")


@pytest.fixture(autouse=True)
def _fast_password_hashing():
    """Keep the real hasher here: the server processes check the old password with their own settings."""


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def http_post(server, path: str, cookie: str, fields: dict | None = None) -> int:
    """POST a form through the server as a browser would: session cookie plus CSRF token."""
    csrf = secrets.token_hex(16)
    request = urllib.request.Request(
        server.url + path,
        data=urllib.parse.urlencode(fields or {}).encode(),
        method="POST",
        headers={
            "Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
            "Origin": server.url,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())
    try:
        with opener.open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


async def token_socket(server, secret: str) -> LiveSocket:
    connection = await ws_connect(
        server.url.replace("http://", "ws://") + "/ws/",
        origin=server.url,
        additional_headers={"Authorization": f"Bearer {secret}"},
        proxy=None,
        open_timeout=FRAME_TIMEOUT,
    )
    hello = json.loads(await asyncio.wait_for(connection.recv(), FRAME_TIMEOUT))
    assert hello["type"] == "hello", hello
    return LiveSocket(connection, hello)


async def closed_within_a_second(socket: LiveSocket) -> int:
    started = time.monotonic()
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            frame = await socket.receive()
            assert frame["type"] == "presence", frame
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"closed after {elapsed:.2f} s"
    return closed.value.rcvd.code


async def still_open(socket: LiveSocket) -> None:
    await socket.send({"type": "ping"})
    assert await socket.receive() == {"type": "pong"}


async def test_logout_on_one_process_closes_that_sessions_socket_on_the_other(servers, alice, bob):
    server_a, server_b = servers
    group = await db(make_group)(alice, bob)
    leaving, staying = await db(session_cookie)(alice), await db(session_cookie)(alice)
    leaving_socket = await LiveSocket.open(server_b, leaving)
    staying_socket = await LiveSocket.open(server_b, staying)
    bob_socket = await LiveSocket.open(server_a, await db(session_cookie)(bob))

    assert await asyncio.to_thread(http_post, server_a, "/accounts/logout/", leaving) == 302
    assert await closed_within_a_second(leaving_socket) == 4401
    # The other session of the same user keeps its socket and its messages.
    await bob_socket.send({"type": "message.send", "conversation": group.pk, "client_id": "b1", "body": "still here?"})
    assert (await staying_socket.receive_type("message.new"))["message"]["body"] == "still here?"
    await still_open(staying_socket)
    for socket in (staying_socket, bob_socket):
        await socket.close()


async def test_password_change_on_one_process_closes_the_other_sessions_sockets(servers, alice):
    server_a, server_b = servers
    changer, other = await db(session_cookie)(alice), await db(session_cookie)(alice)
    changer_socket = await LiveSocket.open(server_b, changer)
    other_socket = await LiveSocket.open(server_b, other)
    other_on_a = await LiveSocket.open(server_a, other)

    new = "a brand new secret 42"
    form = {"oldpassword": PASSWORD, "password1": new, "password2": new}
    assert await asyncio.to_thread(http_post, server_a, "/accounts/password/change/", changer, form) == 302
    assert await closed_within_a_second(other_socket) == 4401
    assert await closed_within_a_second(other_on_a) == 4401
    await still_open(changer_socket)
    await changer_socket.close()


async def test_revoking_a_token_on_one_process_closes_its_socket_on_the_other(servers, alice):
    server_a, server_b = servers
    token, secret = await db(tokens.token_create)(user=alice, name="bot")
    _, other_secret = await db(tokens.token_create)(user=alice, name="other bot")
    bot_socket = await token_socket(server_b, secret)
    other_bot = await token_socket(server_b, other_secret)
    cookie = await db(session_cookie)(alice)

    assert await asyncio.to_thread(http_post, server_a, "/profile/tokens/", cookie, {"revoke": token.pk}) == 302
    assert await closed_within_a_second(bot_socket) == 4401
    await still_open(other_bot)
    await other_bot.close()
