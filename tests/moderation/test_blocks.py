"""Blocking: the API, direct conversations refused both ways, and user search."""

import pytest

from chat import services
from chatterbox.errors import Forbidden
from moderation.models import Block
from tests.chat.conftest import db, make_direct, make_group, send

pytestmark = pytest.mark.django_db


def post(client, path, body):
    return client.post(path, body, content_type="application/json")


def test_block_list_and_unblock_through_the_api(alice, bob, carol, client_of):
    client = client_of(alice)
    created = post(client, "/api/blocks/", {"username": "bob"})
    assert created.status_code == 201
    assert created.json()["user"]["username"] == "bob"
    assert post(client, "/api/blocks/", {"username": "bob"}).status_code == 200
    assert post(client, "/api/blocks/", {"username": "carol"}).status_code == 201
    assert [row["user"]["username"] for row in client.get("/api/blocks/").json()] == ["carol", "bob"]
    assert client.delete("/api/blocks/bob/").status_code == 204
    assert [row["user"]["username"] for row in client.get("/api/blocks/").json()] == ["carol"]
    # Bob's own list is his own.
    assert client_of(bob).get("/api/blocks/").json() == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "invalid"),
        ({"username": 5}, 400, "invalid"),
        ({"username": "alice"}, 400, "invalid"),
        ({"username": "nobody"}, 404, "not_found"),
    ],
)
def test_bad_blocks_are_refused(alice, client_of, body, status, code):
    response = post(client_of(alice), "/api/blocks/", body)
    assert response.status_code == status, response.content
    assert response.json()["error"] == code
    assert not Block.objects.exists()


def test_unblocking_someone_not_blocked_is_not_found(alice, bob, client_of):
    response = client_of(alice).delete("/api/blocks/bob/")
    assert response.status_code == 404
    assert "not blocked" in response.json()["detail"]


def test_a_blocked_user_cannot_start_a_direct_conversation_or_write_in_one(alice, bob, client_of):
    direct = make_direct(alice, bob)
    post(client_of(alice), "/api/blocks/", {"username": "bob"})

    response = post(client_of(bob), "/api/conversations/", {"kind": "direct", "members": ["alice"]})
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden", "detail": "alice has blocked you: you cannot write to them."}
    # The blocker is told why too, and how to undo it.
    response = post(client_of(alice), "/api/conversations/", {"kind": "direct", "members": ["bob"]})
    assert response.json()["detail"] == "You blocked bob; unblock them to write to them."

    with pytest.raises(Forbidden, match="alice has blocked you"):
        services.message_send(
            sender=bob, conversation_id=direct.pk, client_id="x", ciphertext="A" * 24, nonce="A" * 32, keys={}
        )


def test_unblocking_lets_the_direct_conversation_start(alice, bob, client_of):
    post(client_of(alice), "/api/blocks/", {"username": "bob"})
    client_of(alice).delete("/api/blocks/bob/")
    response = post(client_of(bob), "/api/conversations/", {"kind": "direct", "members": ["alice"]})
    assert response.status_code == 201


@pytest.mark.django_db(transaction=True)
async def test_a_blocked_users_frame_in_a_direct_conversation_is_forbidden(alice, bob, connect):
    direct = await db(make_direct)(alice, bob)
    await db(Block.objects.create)(blocker=alice, blocked=bob)
    socket = await connect(bob)
    frame = {"type": "message.send", "conversation": direct.pk, "client_id": "b1", "ciphertext": "A" * 24}
    await socket.send({**frame, "nonce": "A" * 32, "keys": {}})
    error = await socket.receive_type("error")
    assert (error["code"], error["client_id"]) == ("forbidden", "b1")
    assert "alice has blocked you" in error["detail"]


def test_groups_still_carry_messages_between_them(alice, bob, carol):
    group = make_group(carol, alice, bob)
    Block.objects.create(blocker=alice, blocked=bob)
    # Shared rooms are not direct conversations: the blocker's browser hides these instead.
    assert send(bob, group, "still here").body == "still here"


def test_a_blocker_does_not_show_up_in_the_blocked_users_search(alice, bob, carol, client_of):
    Block.objects.create(blocker=alice, blocked=bob)
    found = [user["username"] for user in client_of(bob).get("/api/users/?q=a").json()]
    assert "alice" not in found and "carol" in found
    assert "bob" in [user["username"] for user in client_of(alice).get("/api/users/?q=b").json()]


def test_the_profile_page_lists_blocked_users_and_unblocks(alice, bob, client_of):
    Block.objects.create(blocker=alice, blocked=bob)
    client = client_of(alice)
    page = client.get("/profile/").content.decode()
    assert "Blocked users" in page and "Unblock bob" in page
    response = client.post("/profile/blocks/bob/remove/", follow=True)
    assert "You unblocked bob." in response.content.decode()
    assert not Block.objects.exists()
    again = client.post("/profile/blocks/bob/remove/", follow=True)
    assert "You have not blocked bob." in again.content.decode()
