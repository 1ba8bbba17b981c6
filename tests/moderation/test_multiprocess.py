"""Moderation across two real Daphne processes on PostgreSQL and Redis: an action taken through
process A's admin and API takes effect at once on sockets held by process B."""

import asyncio
import secrets
import urllib.parse
import urllib.request
from datetime import timedelta

import pytest
from django.utils import timezone
from websockets.exceptions import ConnectionClosed

from moderation.models import AuditEntry, Report
from moderation.services import report_create
from tests.chat.conftest import ACROSS_PROCESSES, LiveSocket, db, make_group, session_cookie

pytestmark = ACROSS_PROCESSES


@pytest.fixture(scope="module")
def servers(server_factory):
    return server_factory("mod-a"), server_factory("mod-b")


def http(server, method: str, path: str, cookie: str, *, json_body: str | None = None, form: dict | None = None) -> int:
    """Call the server as a browser would: session cookie plus CSRF token (header and form field)."""
    token = secrets.token_hex(16)
    headers = {"Cookie": f"sessionid={cookie}; csrftoken={token}", "X-CSRFToken": token, "Origin": server.url}
    data = None
    if json_body is not None:
        data, headers["Content-Type"] = json_body.encode(), "application/json"
    if form is not None:
        data = urllib.parse.urlencode({**form, "csrfmiddlewaretoken": token}).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(server.url + path, method=method, headers=headers, data=data)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


async def test_a_ban_from_a_report_on_one_process_closes_the_socket_on_the_other(servers, alice, bob, make_user):
    server_a, server_b = servers
    moderator = await db(make_user)("mod", is_staff=True, is_superuser=True)
    await db(make_group)(alice, bob)
    report, _ = await db(report_create)(reporter=bob, username="alice", reason="harassment")
    alice_socket = await LiveSocket.open(server_b, await db(session_cookie)(alice))
    bob_socket = await LiveSocket.open(server_b, await db(session_cookie)(bob))

    status = await asyncio.to_thread(
        http,
        server_a,
        "POST",
        f"/admin/moderation/report/{report.pk}/resolve/",
        await db(session_cookie)(moderator),
        form={"action": "ban_user", "reason": "threats"},
    )
    assert status == 302
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await alice_socket.receive()
    assert closed.value.rcvd.code == 4403
    handled = await bob_socket.receive_type("report.handled")
    assert handled["report"]["status"] == "acted"
    assert (await db(Report.objects.get)(pk=report.pk)).status == "acted"
    actions = await db(lambda: sorted(AuditEntry.objects.values_list("action", flat=True)))()
    assert actions == ["report.acted", "user.banned"]
    await bob_socket.close()


async def test_a_removal_and_a_mute_through_one_process_reach_the_other(servers, alice, bob, carol):
    server_a, server_b = servers
    group = await db(make_group)(alice, bob, carol)
    alice_cookie = await db(session_cookie)(alice)
    bob_socket = await LiveSocket.open(server_b, await db(session_cookie)(bob))
    carol_socket = await LiveSocket.open(server_b, await db(session_cookie)(carol))

    until = (timezone.now() + timedelta(minutes=5)).isoformat()
    path = f"/api/conversations/{group.pk}/members/"
    status = await asyncio.to_thread(
        http, server_a, "PATCH", f"{path}carol/", alice_cookie, json_body=f'{{"muted_until": "{until}"}}'
    )
    assert status == 200
    assert (await carol_socket.receive_type("message.new"))["message"]["kind"] == "system"
    await carol_socket.receive_type("conversation.updated")
    await carol_socket.send({"type": "message.send", "conversation": group.pk, "client_id": "m1", "body": "hi"})
    assert (await carol_socket.receive_type("error"))["code"] == "forbidden"

    status = await asyncio.to_thread(http, server_a, "DELETE", f"{path}bob/", alice_cookie)
    assert status == 204
    skip = ("presence", "message.new", "conversation.updated")
    assert await bob_socket.receive(skip=skip) == {"type": "conversation.removed", "id": group.pk}
    await bob_socket.send({"type": "message.send", "conversation": group.pk, "client_id": "b1", "body": "still?"})
    assert (await bob_socket.receive(skip=skip))["code"] == "not_member"
    await bob_socket.close()
    await carol_socket.close()
