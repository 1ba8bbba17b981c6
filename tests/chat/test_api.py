"""The chat HTTP API: every endpoint, its happy path and its bad inputs."""

import pytest

from chat import services
from chat.models import Conversation, Membership, Message
from tests.chat.conftest import make_channel, make_direct, make_group, send, user_messages

pytestmark = pytest.mark.django_db


def post(client, path, body=None, **kwargs):
    return client.post(path, body if body is not None else {}, content_type="application/json", **kwargs)


def error_of(response, status: int, code: str) -> str:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == code
    return response.json()["detail"]


def test_anonymous_gets_json_401(client):
    assert error_of(client.get("/api/conversations/"), 401, "unauthorized")
    assert error_of(client.get("/api/channels/"), 401, "unauthorized")


def test_list_conversations_with_members_unread_and_last_message(alice, bob, carol, client_of):
    bob.status = "Building"
    bob.save(update_fields=["status"])
    group = make_group(alice, bob)
    channel = make_channel(carol, alice, name="news")
    first = send(bob, group, "one")
    send(bob, group, "two")
    own = send(alice, group, "mine does not count")

    listing = client_of(alice).get("/api/conversations/").json()
    assert [c["id"] for c in listing] == [group.pk, channel.pk]
    mine = listing[0]
    assert mine == {
        "id": group.pk,
        "kind": "group",
        "name": "Team",
        "topic": "",
        "encrypted": False,
        "archived": False,
        "created_at": mine["created_at"],
        "members": [
            {
                "id": alice.pk,
                "username": "alice",
                "display_name": "Alice Liddell",
                "avatar_url": mine["members"][0]["avatar_url"],
                "status": "",
                "role": "owner",
                "public_key": None,
                "muted_until": None,
            },
            {
                "id": bob.pk,
                "username": "bob",
                "display_name": "Bob Builder",
                "avatar_url": mine["members"][1]["avatar_url"],
                "status": "Building",
                "role": "member",
                "public_key": None,
                "muted_until": None,
            },
        ],
        "role": "owner",
        "unread": 2,
        "mentions": 0,
        "last_message_id": own.pk,
        "last_message": mine["last_message"],
        "muted": False,
    }
    assert (mine["last_message"]["id"], mine["last_message"]["body"]) == (own.pk, "mine does not count")
    # Bob's group has only the lines that say Bob created it and added Alice.
    assert listing[1]["role"] == "member"
    assert Message.objects.get(pk=listing[1]["last_message_id"]).system["event"] == "member.joined"

    services.read_mark(user=alice, conversation_id=group.pk, up_to=first.pk)
    assert client_of(alice).get("/api/conversations/").json()[0]["unread"] == 1


def test_conversation_list_and_history_take_fixed_queries(alice, bob, carol, client_of, django_assert_num_queries):
    for name in ("a", "b", "c"):
        group = make_group(alice, bob, carol, name=name)
        for i in range(3):
            send(bob, group, f"{name}{i}")
    client = client_of(alice)
    client.get("/api/me/")  # warm the session and user lookups
    # Session, user, conversations, members, last messages: no query per conversation or member.
    with django_assert_num_queries(5):
        assert len(client.get("/api/conversations/").json()) == 3
    # Session, user, membership check, messages with senders, their reactions: none per message.
    with django_assert_num_queries(5):
        messages = client.get(f"/api/conversations/{group.pk}/messages/").json()["messages"]
    assert len(user_messages(messages)) == 3 and len(messages) == 6


def test_create_direct_twice_returns_the_same(alice, bob, client_of):
    response = post(client_of(alice), "/api/conversations/", {"kind": "direct", "members": ["bob"]})
    assert response.status_code == 201
    direct = response.json()
    assert (direct["kind"], direct["encrypted"], direct["role"]) == ("direct", True, "member")
    assert {m["username"] for m in direct["members"]} == {"alice", "bob"}
    again = post(client_of(bob), "/api/conversations/", {"kind": "direct", "members": ["alice"]})
    assert again.status_code == 200
    assert again.json()["id"] == direct["id"]
    assert Conversation.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"kind": "direct", "members": ["alice"]}, 400, "invalid"),
        ({"kind": "direct", "members": ["nobody"]}, 404, "not_found"),
        ({"kind": "direct", "members": []}, 400, "invalid"),
        ({"kind": "direct", "members": ["bob", "carol"]}, 400, "invalid"),
        ({"kind": "direct", "members": ["bob"], "encrypted": False}, 400, "invalid"),
        ({"kind": "direct", "members": "bob"}, 400, "invalid"),
        ({"kind": "group", "members": ["bob"]}, 400, "invalid"),
        ({"kind": "group", "name": "   ", "members": ["bob"]}, 400, "invalid"),
        ({"kind": "group", "name": "x" * 81, "members": []}, 400, "invalid"),
        ({"kind": "group", "name": "Team", "members": ["bob", "ghost"]}, 404, "not_found"),
        ({"kind": "group", "name": "Team", "members": [1]}, 400, "invalid"),
        ({"kind": "group", "name": "Team", "encrypted": "no"}, 400, "invalid"),
        ({"kind": "channel"}, 400, "invalid"),
        ({"kind": "channel", "name": 5}, 400, "invalid"),
        ({"kind": "channel", "name": "news", "encrypted": True}, 400, "invalid"),
        ({"kind": "channel", "name": "news", "members": ["bob"]}, 400, "invalid"),
        ({"kind": "channel", "name": "news", "topic": "t" * 251}, 400, "invalid"),
        ({"kind": "broadcast", "name": "x"}, 400, "invalid"),
        ({"name": "x"}, 400, "invalid"),
    ],
)
def test_create_refuses_bad_input(alice, bob, carol, client_of, body, status, code):
    assert error_of(post(client_of(alice), "/api/conversations/", body), status, code)
    assert Conversation.objects.count() == 0


def test_create_refuses_bad_json(alice, client_of):
    client = client_of(alice)
    assert "JSON" in error_of(
        client.post("/api/conversations/", "{nope", content_type="application/json"), 400, "invalid"
    )
    assert error_of(post(client, "/api/conversations/", ["group"]), 400, "invalid")
    assert error_of(client.put("/api/conversations/"), 405, "method_not_allowed")


def test_banned_user_is_not_found_for_a_dm(alice, make_user, client_of):
    make_user("gone", is_active=False)
    assert error_of(
        post(client_of(alice), "/api/conversations/", {"kind": "direct", "members": ["gone"]}), 404, "not_found"
    )


def test_create_group_and_channel(alice, bob, client_of):
    group = post(
        client_of(alice), "/api/conversations/", {"kind": "group", "name": " Team ", "members": ["bob", "alice"]}
    )
    assert group.status_code == 201
    assert (group.json()["name"], group.json()["encrypted"], group.json()["role"]) == ("Team", True, "owner")
    assert [m["role"] for m in group.json()["members"]] == ["owner", "member"]
    plain = post(client_of(alice), "/api/conversations/", {"kind": "group", "name": "Open", "encrypted": False})
    assert plain.json()["encrypted"] is False
    channel = post(client_of(bob), "/api/conversations/", {"kind": "channel", "name": "news", "topic": "Daily"})
    assert channel.status_code == 201
    assert (channel.json()["kind"], channel.json()["topic"], channel.json()["encrypted"]) == ("channel", "Daily", False)


def test_browse_and_join_channels(alice, bob, client_of):
    news = make_channel(alice, name="news")
    make_channel(alice, name="random")
    make_group(alice, bob)
    client = client_of(bob)
    assert client.get("/api/channels/").json() == [
        {"id": news.pk, "name": "news", "topic": "", "member_count": 1, "joined": False},
        {"id": news.pk + 1, "name": "random", "topic": "", "member_count": 1, "joined": False},
    ]
    assert [c["name"] for c in client.get("/api/channels/?q=RAND").json()] == ["random"]
    assert error_of(client.get("/api/channels/?q=" + "x" * 65), 400, "invalid")

    joined = post(client, f"/api/conversations/{news.pk}/join/")
    assert joined.status_code == 201
    assert joined.json()["role"] == "member"
    assert post(client, f"/api/conversations/{news.pk}/join/").status_code == 200
    assert client.get("/api/channels/").json()[0] == {
        "id": news.pk,
        "name": "news",
        "topic": "",
        "member_count": 2,
        "joined": True,
    }


def test_join_refuses_private_and_missing(alice, bob, carol, client_of):
    group = make_group(alice, bob)
    assert error_of(post(client_of(carol), f"/api/conversations/{group.pk}/join/"), 403, "forbidden")
    assert error_of(post(client_of(carol), "/api/conversations/999999/join/"), 404, "not_found")
    assert error_of(post(client_of(carol), "/api/conversations/abc/join/"), 404, "not_found")


def test_invite_by_owner_and_admin_only(alice, bob, carol, make_user, client_of):
    dave = make_user("dave")
    group = make_group(alice, bob)
    path = f"/api/conversations/{group.pk}/members/"
    assert error_of(post(client_of(bob), path, {"username": "carol"}), 403, "forbidden")
    assert error_of(post(client_of(carol), path, {"username": "carol"}), 403, "not_member")
    response = post(client_of(alice), path, {"username": "carol"})
    assert response.status_code == 201
    assert [m["username"] for m in response.json()["members"]] == ["alice", "bob", "carol"]
    assert post(client_of(alice), path, {"username": "carol"}).status_code == 200

    assert (
        client_of(alice)
        .patch(f"{path}bob/", {"role": "admin"}, content_type="application/json")
        .json()["members"][1]["role"]
        == "admin"
    )
    assert post(client_of(bob), path, {"username": "dave"}).status_code == 201
    assert Membership.objects.get(conversation=group, user=dave).role == "member"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [({}, 400, "invalid"), ({"username": 7}, 400, "invalid"), ({"username": "ghost"}, 404, "not_found")],
)
def test_invite_refuses_bad_input(alice, bob, client_of, body, status, code):
    group = make_group(alice, bob)
    assert error_of(post(client_of(alice), f"/api/conversations/{group.pk}/members/", body), status, code)


def test_no_invites_into_a_dm(alice, bob, carol, client_of):
    direct = make_direct(alice, bob)
    response = post(client_of(alice), f"/api/conversations/{direct.pk}/members/", {"username": "carol"})
    assert error_of(response, 403, "forbidden")


def test_leave_and_remove(alice, bob, carol, make_user, client_of):
    dave = make_user("dave")
    group = make_group(alice, bob, carol, dave)
    path = f"/api/conversations/{group.pk}/members/"
    assert error_of(client_of(bob).delete(f"{path}carol/"), 403, "forbidden")
    client_of(alice).patch(f"{path}bob/", {"role": "admin"}, content_type="application/json")
    client_of(alice).patch(f"{path}carol/", {"role": "admin"}, content_type="application/json")
    assert error_of(client_of(bob).delete(f"{path}alice/"), 403, "forbidden")  # the owner
    assert error_of(client_of(bob).delete(f"{path}carol/"), 403, "forbidden")  # another admin
    assert error_of(client_of(bob).delete(f"{path}ghost/"), 404, "not_found")
    assert client_of(bob).delete(f"{path}dave/").status_code == 204
    assert error_of(client_of(dave).get(f"/api/conversations/{group.pk}/messages/"), 403, "not_member")
    assert client_of(carol).delete(f"{path}carol/").status_code == 204
    assert client_of(alice).delete(f"{path}bob/").status_code == 204
    assert error_of(client_of(bob).delete(f"{path}bob/"), 403, "not_member")
    assert list(group.memberships.values_list("user__username", flat=True)) == ["alice"]


def test_owner_leaving_hands_over_to_an_admin(alice, bob, carol, client_of):
    group = make_group(alice, bob, carol)
    services.membership_set_role(actor=alice, conversation_id=group.pk, username="carol", role="admin")
    assert client_of(alice).delete(f"/api/conversations/{group.pk}/members/alice/").status_code == 204
    assert dict(group.memberships.values_list("user__username", "role")) == {"bob": "member", "carol": "owner"}


def test_roles_change_by_the_owner_and_admins_only(alice, bob, carol, client_of):
    group = make_group(alice, bob, carol)
    path = f"/api/conversations/{group.pk}/members/"
    patch = lambda client, who, body: client.patch(f"{path}{who}/", body, content_type="application/json")  # noqa: E731
    assert error_of(patch(client_of(bob), "carol", {"role": "admin"}), 403, "forbidden")
    assert error_of(patch(client_of(alice), "carol", {"role": "boss"}), 400, "invalid")
    assert error_of(patch(client_of(alice), "alice", {"role": "member"}), 403, "forbidden")
    assert error_of(patch(client_of(alice), "carol", {}), 400, "invalid")
    assert patch(client_of(alice), "carol", {"role": "admin"}).json()["members"][2]["role"] == "admin"


def test_dm_cannot_be_left(alice, bob, client_of):
    direct = make_direct(alice, bob)
    assert error_of(client_of(alice).delete(f"/api/conversations/{direct.pk}/members/alice/"), 403, "forbidden")


def test_history_paging(alice, bob, client_of, no_rate_limit):
    group = make_group(alice, bob)
    for i in range(5):
        send(alice, group, f"m{i}")
    # The lines that say who created the group and who was added page like any message.
    ids = list(Message.objects.filter(conversation=group).order_by("id").values_list("id", flat=True))
    assert len(ids) == 7
    client = client_of(bob)
    path = f"/api/conversations/{group.pk}/messages/"

    def page(query=""):
        answer = client.get(path + query).json()
        return [m["id"] for m in answer["messages"]], answer["has_more"]

    assert page() == (ids, False)
    assert page("?limit=3") == (ids[4:], True)
    assert page(f"?limit=3&before={ids[4]}") == (ids[1:4], True)
    assert page(f"?limit=3&before={ids[1]}") == (ids[:1], False)
    assert page(f"?after={ids[2]}&limit=2") == (ids[3:5], True)
    assert page(f"?after={ids[4]}&limit=2") == (ids[5:], False)
    assert page(f"?after={ids[1]}&before={ids[4]}") == (ids[2:4], False)
    first = client.get(path + "?limit=1").json()["messages"][0]
    assert first == {
        "id": ids[-1],
        "conversation": group.pk,
        "sender": {
            "id": alice.pk,
            "username": "alice",
            "display_name": "Alice Liddell",
            "avatar_url": first["sender"]["avatar_url"],
        },
        "client_id": "c-m4",
        "kind": "text",
        "created_at": first["created_at"],
        "edited_at": None,
        "deleted": False,
        "reply_to": None,
        "attachment": None,
        "body": "m4",
        "reactions": {},
    }


@pytest.mark.parametrize(
    "query", ["?limit=101", "?limit=0", "?limit=x", "?before=-1", "?after=1.5", "?after=99999999999999999999"]
)
def test_history_refuses_bad_query(alice, client_of, query):
    group = make_group(alice)
    assert error_of(client_of(alice).get(f"/api/conversations/{group.pk}/messages/{query}"), 400, "invalid")


def test_history_for_strangers_and_missing(alice, bob, client_of):
    group = make_group(alice)
    assert error_of(client_of(bob).get(f"/api/conversations/{group.pk}/messages/"), 403, "not_member")
    assert error_of(client_of(bob).get("/api/conversations/424242/messages/"), 404, "not_found")


def test_encrypted_history_gives_own_key_and_hides_what_came_before_joining(alice, bob, carol, client_of):
    group = make_group(alice, bob, encrypted=True)
    keys = {str(alice.pk): "QUFB", str(bob.pk): "QkJC"}
    before, _ = services.message_send(
        sender=alice,
        conversation_id=group.pk,
        client_id="e1",
        ciphertext="Y2lwaGVydGV4dC0xNmJ5dGVz",
        nonce="A" * 32,
        keys=keys,
    )
    services.membership_add(actor=alice, conversation_id=group.pk, username="carol")
    keys[str(carol.pk)] = "Q0ND"
    after, _ = services.message_send(
        sender=alice,
        conversation_id=group.pk,
        client_id="e2",
        ciphertext="Y2lwaGVydGV4dC0xNmJ5dGVz",
        nonce="A" * 32,
        keys=keys,
    )
    bob_view = client_of(bob).get(f"/api/conversations/{group.pk}/messages/").json()["messages"]
    # The system lines (created, Bob added, Carol added) are plaintext, without ciphertext or key.
    assert [m["system"]["event"] for m in bob_view if m["kind"] == "system"] == [
        "created",
        "member.added",
        "member.added",
    ]
    assert all("key" not in m and "ciphertext" not in m for m in bob_view if m["kind"] == "system")
    bob_view = user_messages(bob_view)
    assert [(m["id"], m["key"]) for m in bob_view] == [(before.pk, "QkJC"), (after.pk, "QkJC")]
    assert all("body" not in m for m in bob_view)
    carol_view = user_messages(client_of(carol).get(f"/api/conversations/{group.pk}/messages/").json()["messages"])
    assert [(m["id"], m["key"]) for m in carol_view] == [(after.pk, "Q0ND")]
    assert client_of(carol).get("/api/conversations/").json()[0]["unread"] == 1

    services.message_delete(actor=alice, message_id=after.pk)
    (tombstone,) = user_messages(client_of(carol).get(f"/api/conversations/{group.pk}/messages/").json()["messages"])
    assert (tombstone["deleted"], tombstone["ciphertext"], tombstone["nonce"], tombstone["key"]) == (
        True,
        None,
        None,
        None,
    )


def test_read_marker_endpoint(alice, bob, client_of):
    group = make_group(alice, bob)
    message = send(alice, group, "hi")
    path = f"/api/conversations/{group.pk}/read/"
    assert post(client_of(bob), path, {"up_to": message.pk + 100}).json() == {
        "conversation": group.pk,
        "up_to": message.pk,
    }
    assert post(client_of(bob), path, {"up_to": 0}).json()["up_to"] == message.pk
    assert error_of(post(client_of(bob), path, {"up_to": "1"}), 400, "invalid")
    assert error_of(post(client_of(bob), path, {"up_to": True}), 400, "invalid")
    group2 = make_group(alice)
    assert error_of(post(client_of(bob), f"/api/conversations/{group2.pk}/read/", {"up_to": 1}), 403, "not_member")


def test_one_conversation_and_mute(alice, bob, client_of):
    group = make_group(alice, bob)
    path = f"/api/conversations/{group.pk}/"
    assert client_of(bob).get(path).json()["id"] == group.pk
    muted = client_of(bob).patch(path, {"muted": True}, content_type="application/json")
    assert muted.json()["muted"] is True
    assert client_of(alice).get(path).json()["muted"] is False
    # Renaming is for the owner and admins; unknown fields are refused.
    assert error_of(client_of(bob).patch(path, {"name": "x"}, content_type="application/json"), 403, "forbidden")
    assert error_of(client_of(bob).patch(path, {"color": "red"}, content_type="application/json"), 400, "invalid")
    assert error_of(client_of(bob).patch(path, {"muted": "yes"}, content_type="application/json"), 400, "invalid")
    make_user_group = make_group(alice)
    assert error_of(client_of(bob).get(f"/api/conversations/{make_user_group.pk}/"), 403, "not_member")
