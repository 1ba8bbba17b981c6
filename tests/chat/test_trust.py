"""What the server may not do to a conversation behind its members' backs: kind and encryption are fixed."""

import pytest
from django.db import IntegrityError, connection, transaction

from chat import services
from chat.models import Conversation
from chatterbox.errors import Forbidden
from tests.chat.conftest import make_channel, make_direct, make_group

pytestmark = pytest.mark.django_db

ADMIN_URL = "/admin/chat/conversation/"


@pytest.fixture
def root(make_user):
    return make_user("root", is_staff=True, is_superuser=True)


def stored(conversation) -> tuple[str, bool]:
    return tuple(Conversation.objects.filter(pk=conversation.pk).values_list("kind", "encrypted").get())


@pytest.mark.parametrize("changes", [{"encrypted": False}, {"kind": "channel"}, {"encrypted": False, "name": "x"}])
def test_the_service_refuses_to_change_kind_or_encryption(alice, bob, changes):
    group = make_group(alice, bob, encrypted=True)
    with pytest.raises(Forbidden, match="never change"):
        services.conversation_update(actor=alice, conversation_id=group.pk, changes=changes)
    assert stored(group) == ("group", True)
    assert Conversation.objects.get(pk=group.pk).name == "Team"


def test_the_api_refuses_a_downgrade_and_keeps_mute_alone(alice, bob, client_of):
    group = make_group(alice, bob, encrypted=True)
    response = client_of(alice).patch(
        f"/api/conversations/{group.pk}/", {"encrypted": False, "muted": True}, content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert response.json()["fields"] == ["encrypted"]
    assert stored(group) == ("group", True)
    assert group.memberships.get(user=alice).muted is False


def test_the_model_refuses_to_save_a_changed_kind_or_encryption(alice, bob):
    group = make_group(alice, bob, encrypted=True)
    group.encrypted = False
    with pytest.raises(Forbidden, match="never change"):
        group.save()
    with pytest.raises(Forbidden):
        group.save(update_fields=["encrypted"])
    direct = make_direct(alice, bob)
    direct.kind = "group"
    with pytest.raises(Forbidden):
        direct.save()
    # A copy made from scratch with the same id is checked against the stored row too.
    with pytest.raises(Forbidden):
        Conversation(pk=group.pk, kind="group", name="Team", encrypted=False).save()
    with pytest.raises(Forbidden):
        Conversation.objects.filter(pk=group.pk).update(encrypted=False)
    with pytest.raises(Forbidden):
        Conversation.objects.bulk_update([group], ["encrypted"])
    assert stored(group) == ("group", True)
    assert stored(direct) == ("direct", True)
    # Other fields still save.
    fresh = Conversation.objects.get(pk=group.pk)
    fresh.topic = "plans"
    fresh.save()
    assert Conversation.objects.get(pk=group.pk).topic == "plans"


def test_the_database_refuses_a_downgrade_that_goes_around_the_model(alice, bob):
    group = make_group(alice, bob, encrypted=True)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE chat_conversation SET encrypted = %s WHERE id = %s", [False, group.pk])
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE chat_conversation SET kind = %s WHERE id = %s", ["channel", group.pk])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE chat_conversation SET topic = %s WHERE id = %s", ["still fine", group.pk])
    assert stored(group) == ("group", True)


def test_the_admin_shows_kind_and_encryption_read_only(alice, bob, root, client_of):
    group = make_group(alice, bob, encrypted=True)
    admin = client_of(root)
    page = admin.get(f"{ADMIN_URL}{group.pk}/change/").content.decode()
    assert 'name="encrypted"' not in page
    assert 'name="kind"' not in page
    assert "field-encrypted" in page and "field-kind" in page
    memberships = list(group.memberships.order_by("id"))
    form = {
        "name": "Renamed",
        "topic": "",
        "created_by": alice.pk,
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
        # Tampered: fields the form does not have are ignored.
        "kind": "channel",
        "memberships-TOTAL_FORMS": str(len(memberships)),
        "memberships-INITIAL_FORMS": str(len(memberships)),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        # The inline that adds members, with none to add.
        "memberships-2-TOTAL_FORMS": "0",
        "memberships-2-INITIAL_FORMS": "0",
    }
    for index, membership in enumerate(memberships):
        form.update(
            {
                f"memberships-{index}-id": membership.pk,
                f"memberships-{index}-conversation": group.pk,
                f"memberships-{index}-user": membership.user_id,
                f"memberships-{index}-role": membership.role,
            }
        )
    response = admin.post(f"{ADMIN_URL}{group.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    group.refresh_from_db()
    assert (group.name, group.kind, group.encrypted) == ("Renamed", "group", True)
    # Adding a conversation in the admin still sets both.
    add_page = admin.get(f"{ADMIN_URL}add/").content.decode()
    assert 'name="encrypted"' in add_page and 'name="kind"' in add_page


def test_owner_renames_a_group_and_members_cannot(alice, bob, client_of):
    group = make_group(alice, bob, encrypted=True)
    with pytest.raises(Forbidden):
        services.conversation_update(actor=bob, conversation_id=group.pk, changes={"name": "Mine"})
    response = client_of(alice).patch(
        f"/api/conversations/{group.pk}/", {"name": " Plans ", "topic": "Q3"}, content_type="application/json"
    )
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["topic"]) == ("Plans", "Q3")
    response = client_of(alice).patch(f"/api/conversations/{group.pk}/", {"name": ""}, content_type="application/json")
    assert (response.status_code, response.json()["error"]) == (400, "invalid")
    channel = make_channel(alice, name="General")
    make_channel(alice, name="random")
    response = client_of(alice).patch(
        f"/api/conversations/{channel.pk}/", {"name": "RANDOM"}, content_type="application/json"
    )
    assert (response.status_code, response.json()["error"]) == (400, "invalid")


def test_public_channel_names_are_unique_regardless_of_case(alice, bob, client_of):
    make_channel(alice, name="General")
    for name in ("general", " GENERAL "):
        response = client_of(bob).post(
            "/api/conversations/", {"kind": "channel", "name": name}, content_type="application/json"
        )
        assert (response.status_code, response.json()["error"], response.json()["field"]) == (400, "invalid", "name")
    assert Conversation.objects.filter(kind="channel").count() == 1
    # The database holds the line too, for any writer that skips the service.
    with pytest.raises(IntegrityError), transaction.atomic():
        Conversation.objects.create(kind="channel", name="GENERAL")
    # Groups are not listed publicly: they may share names.
    make_group(alice, bob, name="general")
    make_group(bob, alice, name="General")


def test_usernames_are_matched_regardless_of_case(alice, bob, carol, client_of):
    client = client_of(alice)
    first = client.post("/api/conversations/", {"kind": "direct", "members": ["BOB"]}, content_type="application/json")
    again = client.post("/api/conversations/", {"kind": "direct", "members": ["bob"]}, content_type="application/json")
    assert (first.status_code, again.status_code, again.json()["id"]) == (201, 200, first.json()["id"])
    myself = client.post(
        "/api/conversations/", {"kind": "direct", "members": ["Alice"]}, content_type="application/json"
    )
    assert (myself.status_code, myself.json()["error"]) == (400, "invalid")
    group = client.post(
        "/api/conversations/",
        {"kind": "group", "name": "Team", "members": ["Bob", "ALICE", "bob"]},
        content_type="application/json",
    ).json()
    assert [m["username"] for m in group["members"]] == ["alice", "bob"]
    path = f"/api/conversations/{group['id']}/members/"
    assert client.post(path, {"username": "CaRoL"}, content_type="application/json").status_code == 201
    assert client.patch(f"{path}BOB/", {"role": "admin"}, content_type="application/json").status_code == 200
    assert client.delete(f"{path}Carol/").status_code == 204
    assert client_of(bob).delete(f"{path}Bob/").status_code == 204
    assert [m["username"] for m in client.get(f"/api/conversations/{group['id']}/").json()["members"]] == ["alice"]
    missing = client.post(path, {"username": "NOBODY"}, content_type="application/json").json()
    assert (missing["error"], missing["usernames"]) == ("not_found", ["NOBODY"])
    assert [u["username"] for u in client.get("/api/users/?q=BOB").json()] == ["bob"]
