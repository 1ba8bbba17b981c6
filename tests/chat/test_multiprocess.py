"""Server processes sharing PostgreSQL and Redis: events cross from one to the other.

Two single-process servers on their own ports, and Gunicorn's workers sharing one port.
"""

import asyncio
import os
import secrets
import urllib.request
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from accounts.services import user_ban
from tests.chat.conftest import ACROSS_PROCESSES, LiveSocket, db, make_group, session_cookie

pytestmark = ACROSS_PROCESSES


@pytest.fixture(scope="module")
def servers(server_factory):
    return server_factory("a"), server_factory("b")


@pytest.fixture(scope="module")
def workers(server_factory):
    """One Gunicorn with two Uvicorn workers on one port, as bin/serve runs with WEB_CONCURRENCY=2."""
    return server_factory("workers", server="uvicorn", workers=2)


def worker_of(server, socket: LiveSocket) -> int:
    """Return the pid of the worker that holds this client's connection (from /proc)."""
    client_port = socket.connection.local_address[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, remote_port = (int(address.split(":")[1], 16) for address in fields[1:3])
        if (local_port, remote_port) == (server.port, client_port):
            inode = fields[9]
            break
    pid = server.process.pid
    for worker in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        if any(_link(fd) == f"socket:[{inode}]" for fd in Path(f"/proc/{worker}/fd").iterdir()):
            return int(worker)
    raise AssertionError(f"no worker of {pid} holds the connection from port {client_port}")


def _link(descriptor: Path) -> str | None:
    """What a process's descriptor points at, or None if it closed since it was listed."""
    try:
        return os.readlink(descriptor)
    except FileNotFoundError:
        return None


def http_delete(server, path: str, cookie: str) -> int:
    """DELETE through the server's API as a browser would: session cookie plus CSRF token."""
    token = secrets.token_hex(16)
    request = urllib.request.Request(
        server.url + path,
        method="DELETE",
        headers={"Cookie": f"sessionid={cookie}; csrftoken={token}", "X-CSRFToken": token, "Origin": server.url},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        return response.status


async def test_message_sent_through_one_process_reaches_a_client_of_the_other(servers, alice, bob):
    server_a, server_b = servers
    group = await db(make_group)(alice, bob)
    alice_socket = await LiveSocket.open(server_a, await db(session_cookie)(alice))
    bob_socket = await LiveSocket.open(server_b, await db(session_cookie)(bob))
    assert bob_socket.hello["conversations"] == [group.pk]

    await alice_socket.send({"type": "message.send", "conversation": group.pk, "client_id": "x1", "body": "across"})
    ack = await alice_socket.receive_type("message.ack")
    new = await bob_socket.receive_type("message.new")
    assert (new["message"]["id"], new["message"]["body"]) == (ack["id"], "across")
    await bob_socket.send({"type": "typing", "conversation": group.pk})
    assert await alice_socket.receive() == {"type": "message.new", "message": new["message"]}
    assert await alice_socket.receive() == {"type": "typing", "conversation": group.pk, "user": bob.pk}
    await alice_socket.close()
    await bob_socket.close()


async def test_removal_on_one_process_and_ban_cut_sockets_on_the_other(servers, alice, bob, carol):
    server_a, server_b = servers
    group = await db(make_group)(alice, bob, carol)
    control = await db(make_group)(alice, bob, carol, name="control")
    alice_cookie = await db(session_cookie)(alice)
    alice_socket = await LiveSocket.open(server_a, alice_cookie)
    bob_socket = await LiveSocket.open(server_b, await db(session_cookie)(bob))
    carol_socket = await LiveSocket.open(server_b, await db(session_cookie)(carol))

    status = await asyncio.to_thread(http_delete, server_a, f"/api/conversations/{group.pk}/members/bob/", alice_cookie)
    assert status == 204
    assert await bob_socket.receive() == {"type": "conversation.removed", "id": group.pk}
    await alice_socket.send({"type": "message.send", "conversation": group.pk, "client_id": "s", "body": "secret"})
    await alice_socket.send({"type": "message.send", "conversation": control.pk, "client_id": "m", "body": "marker"})
    # Carol on the same process as bob gets both; bob's next message is the marker.
    assert (await carol_socket.receive_type("conversation.updated"))["conversation"]["id"] == group.pk
    line = (await carol_socket.receive_type("message.new"))["message"]
    assert (line["system"]["event"], line["system"]["user"]) == ("member.removed", bob.pk)
    assert (await carol_socket.receive_type("message.new"))["message"]["body"] == "secret"
    assert (await bob_socket.receive_type("message.new"))["message"]["body"] == "marker"

    # The ban commits in this process; Redis carries it to process B.
    await db(user_ban)(user=bob)
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await bob_socket.receive()
    assert closed.value.rcvd.code == 4403
    await alice_socket.close()
    await carol_socket.close()


async def test_workers_on_one_port_both_serve_and_pass_messages_between_them(workers, alice, bob):
    group = await db(make_group)(alice, bob)
    cookies = {user: await db(session_cookie)(user) for user in (alice, bob)}
    # The kernel hands each connection to whichever worker accepts first: open sockets until alice
    # has one on a worker and bob one on the other.
    opened, alice_by_worker, bob_by_worker = [], {}, {}
    for attempt in range(40):
        user, by_worker = (alice, alice_by_worker) if attempt % 2 == 0 else (bob, bob_by_worker)
        socket = await LiveSocket.open(workers, cookies[user])
        opened.append(socket)
        by_worker.setdefault(worker_of(workers, socket), socket)
        apart = [(a, b) for a in alice_by_worker for b in bob_by_worker if a != b]
        if apart:
            break
    assert apart, f"every socket went to one worker: {set(alice_by_worker) | set(bob_by_worker)}"
    sender, receiver = alice_by_worker[apart[0][0]], bob_by_worker[apart[0][1]]

    await sender.send({"type": "message.send", "conversation": group.pk, "client_id": "w1", "body": "across"})
    ack = await sender.receive_type("message.ack")
    new = await receiver.receive_type("message.new")
    assert (new["message"]["id"], new["message"]["body"]) == (ack["id"], "across")
    for socket in opened:
        await socket.close()
