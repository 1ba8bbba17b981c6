"""The server's side of encrypted conversations (issue 4, point 4), beyond test_services and test_consumer.

Every refusal: plaintext where ciphertext belongs, keys that do not cover exactly the current
members, malformed base64, sizes; each recipient gets only its own wrapped key on every path
(live, edit, sync, history); members carry their public key for the clients that encrypt.
"""

import base64
import json
import runpy

import pytest

from accounts import keys as account_keys
from chat import services
from chat.models import Message, MessageKey
from chatterbox.errors import Invalid, TooLarge
from client import e2e
from tests.chat.conftest import db, make_direct, make_group, user_messages
from tests.conftest import ROOT


def b64(size: int, fill: int = 1) -> str:
    return base64.b64encode(bytes([fill % 256]) * size).decode()


def sealed(*users, size: int = 48) -> dict:
    """The encrypted fields of a message for these members: opaque bytes, as the server sees them."""
    return {"ciphertext": b64(size), "nonce": b64(24), "keys": {str(u.pk): b64(104, u.pk) for u in users}}


def encrypted_send(sender, conversation, *members, client_id: str = "e", **overrides):
    fields = {**sealed(*members), **overrides}
    return services.message_send(sender=sender, conversation_id=conversation.pk, client_id=client_id, **fields)


def key_backup(user) -> str:
    """Store a real key backup for the user (Argon2id INTERACTIVE) and return the public key."""
    private_key = e2e.generate_key_pair()
    backup = e2e.backup_key_pair(
        private_key, "river stone lantern", opslimit=e2e.OPSLIMIT_INTERACTIVE, memlimit=e2e.MEMLIMIT_INTERACTIVE
    )
    account_keys.key_backup_store(user=user, **backup)
    return backup["public_key"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"ciphertext": base64.urlsafe_b64encode(b"\xfb\xff" * 30).decode()}, "ciphertext"),
        ({"ciphertext": b64(40).rstrip("=") + "A"}, "ciphertext"),
        ({"ciphertext": "é" * 64}, "ciphertext"),
        ({"ciphertext": b64(40)[:-4] + " " + b64(40)[-3:]}, "ciphertext"),
        ({"nonce": "not base64 at all!!!"}, "nonce"),
        ({"nonce": b64(23)}, "nonce"),
        ({"ciphertext": 1234}, "ciphertext"),
    ],
)
def test_malformed_ciphertext_and_nonce_are_refused(alice, bob, overrides, field):
    direct = make_direct(alice, bob)
    with pytest.raises(Invalid) as refused:
        encrypted_send(alice, direct, alice, bob, **overrides)
    assert refused.value.extra["field"] == field
    assert not Message.objects.exclude(kind="system").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("wrapped", "error"),
    [
        ("%%%%", Invalid),
        (base64.urlsafe_b64encode(b"\xfb\xff" * 52).decode(), Invalid),
        (b64(104).rstrip("="), Invalid),
        (104, Invalid),
        (b64(257), TooLarge),
    ],
)
def test_malformed_wrapped_keys_are_refused(alice, bob, wrapped, error):
    direct = make_direct(alice, bob)
    keys = {str(alice.pk): b64(104), str(bob.pk): wrapped}
    with pytest.raises(error) as refused:
        encrypted_send(alice, direct, keys=keys)
    assert refused.value.extra["field"] == "keys"
    assert not Message.objects.exclude(kind="system").exists() and not MessageKey.objects.exists()


@pytest.mark.django_db
def test_keys_must_follow_membership_changes(alice, bob, carol):
    group = make_group(alice, bob, carol, encrypted=True)
    services.membership_remove(actor=alice, conversation_id=group.pk, username="carol")
    # Still wrapping for Carol, who left: refused, naming her.
    with pytest.raises(Invalid) as refused:
        encrypted_send(alice, group, alice, bob, carol)
    assert (refused.value.extra["missing"], refused.value.extra["not_members"]) == ([], [carol.pk])
    # Forgetting one's own key is refused too: the sender is a recipient like the others.
    with pytest.raises(Invalid) as refused:
        encrypted_send(alice, group, bob)
    assert refused.value.extra["missing"] == [alice.pk]
    message, _ = encrypted_send(alice, group, alice, bob)
    assert set(message.keys.values_list("user_id", flat=True)) == {alice.pk, bob.pk}


@pytest.mark.django_db
def test_edits_in_encrypted_conversations_are_checked_like_sends(alice, bob, carol):
    group = make_group(alice, bob, encrypted=True)
    message, _ = encrypted_send(alice, group, alice, bob)
    original = (message.ciphertext, sorted(message.keys.values_list("user_id", "key")))
    with pytest.raises(Invalid):
        services.message_edit(editor=alice, message_id=message.pk, body="plaintext edit")
    with pytest.raises(Invalid) as refused:
        services.message_edit(editor=alice, message_id=message.pk, **sealed(alice, bob, carol))
    assert refused.value.extra["not_members"] == [carol.pk]
    with pytest.raises(Invalid) as refused:
        services.message_edit(editor=alice, message_id=message.pk, **{**sealed(alice, bob), "nonce": b64(16)})
    assert refused.value.extra["field"] == "nonce"
    message.refresh_from_db()
    assert (message.ciphertext, sorted(message.keys.values_list("user_id", "key"))) == original
    assert message.edited_at is None and message.body == ""


@pytest.mark.django_db(transaction=True)
async def test_each_recipient_gets_only_its_own_key_on_every_path(alice, bob, carol, connect):
    group = await db(make_group)(alice, bob, carol, encrypted=True)
    alice_socket, bob_socket = await connect(alice), await connect(bob)
    content = sealed(alice, bob, carol)
    await alice_socket.send({"type": "message.send", "conversation": group.pk, "client_id": "k1", **content})
    ack = await alice_socket.receive_type("message.ack")
    live = (await bob_socket.receive_type("message.new"))["message"]
    assert live["key"] == content["keys"][str(bob.pk)] and "keys" not in live and "body" not in live

    # An edit replaces the keys; each member again gets only their own.
    edit = sealed(alice, bob, carol, size=60)
    await alice_socket.send({"type": "message.edit", "id": ack["id"], **edit})
    updated = (await bob_socket.receive_type("message.updated"))["message"]
    assert (updated["key"], updated["ciphertext"]) == (edit["keys"][str(bob.pk)], edit["ciphertext"])
    assert "keys" not in updated

    # Catching up over the socket and over HTTP: the same, and never another member's key.
    await bob_socket.send({"type": "sync", "conversation": group.pk, "after": 0})
    synced = user_messages((await bob_socket.receive_type("sync.result"))["messages"])
    assert [(m["id"], m["key"]) for m in synced] == [(ack["id"], edit["keys"][str(bob.pk)])]
    frames = json.dumps(synced) + json.dumps(live) + json.dumps(updated)
    for other in (alice, carol):
        assert content["keys"][str(other.pk)] not in frames and edit["keys"][str(other.pk)] not in frames


@pytest.mark.django_db
def test_members_carry_their_public_key(alice, bob, carol, client_of):
    group = make_group(alice, bob, carol, encrypted=True)
    alice_key = key_backup(alice)
    bob_key = key_backup(bob)
    listing = client_of(alice).get("/api/conversations/").json()
    assert {m["username"]: m["public_key"] for m in listing[0]["members"]} == {
        "alice": alice_key,
        "bob": bob_key,
        "carol": None,
    }
    one = client_of(bob).get(f"/api/conversations/{group.pk}/").json()
    assert {m["username"]: m["public_key"] for m in one["members"]} == {
        "alice": alice_key,
        "bob": bob_key,
        "carol": None,
    }


@pytest.mark.django_db(transaction=True)
async def test_membership_events_carry_public_keys(alice, bob, carol, connect):
    group = await db(make_group)(alice, bob, encrypted=True)
    carol_key = await db(key_backup)(carol)
    alice_socket, carol_socket = await connect(alice), await connect(carol)
    await db(services.membership_add)(actor=alice, conversation_id=group.pk, username="carol")
    added = (await carol_socket.receive_type("conversation.added"))["conversation"]
    updated = (await alice_socket.receive_type("conversation.updated"))["conversation"]
    for conversation in (added, updated):
        assert {m["username"]: m["public_key"] for m in conversation["members"]} == {
            "alice": None,
            "bob": None,
            "carol": carol_key,
        }


@pytest.mark.django_db
def test_member_keys_of_a_new_group_take_one_query(alice, bob, carol, django_assert_max_num_queries):
    from chat import events
    from chat.models import Membership

    key_backup(bob)
    group = make_group(alice, bob, carol, encrypted=True)
    # Memberships without their users' keys loaded (as bulk_create leaves them): one query for all.
    members = list(Membership.objects.filter(conversation=group).select_related("user").order_by("id"))
    with django_assert_max_num_queries(1):
        shaped = events.conversation_json(group, members)
    assert [m["public_key"] is not None for m in shaped["members"]] == [False, True, False]


@pytest.mark.django_db
def test_chat_page_tells_the_key_flow_what_it_needs(alice, client_of, settings):
    def e2e_data():
        html = client_of(alice).get("/").content.decode()
        start = html.index('<script id="e2e-data" type="application/json">') + len(
            '<script id="e2e-data" type="application/json">'
        )
        return json.loads(html[start : html.index("</script>", start)])

    settings.E2E_KDF_LIMITS = "moderate"
    assert e2e_data() == {"public_key": None, "kdf_limits": "moderate"}
    public_key = key_backup(alice)
    assert e2e_data() == {"public_key": public_key, "kdf_limits": "moderate"}


def settings_under(monkeypatch, **variables) -> dict:
    for name in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "E2E_KDF_LIMITS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "chatterbox" / "settings.py"))


def test_kdf_limits_default_to_moderate_and_interactive_is_for_tests_only(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    assert settings_under(monkeypatch)["E2E_KDF_LIMITS"] == "moderate"
    assert settings_under(monkeypatch, E2E_KDF_LIMITS="interactive")["E2E_KDF_LIMITS"] == "interactive"
    with pytest.raises(ImproperlyConfigured, match="moderate"):
        settings_under(monkeypatch, E2E_KDF_LIMITS="weak")
    production = {"DEBUG": "0", "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "chat.example.com"}
    assert settings_under(monkeypatch, **production)["E2E_KDF_LIMITS"] == "moderate"
    with pytest.raises(ImproperlyConfigured, match="tests only"):
        settings_under(monkeypatch, E2E_KDF_LIMITS="interactive", **production)


@pytest.mark.django_db(transaction=True)
async def test_an_edit_frame_error_names_its_client_id(alice, bob, carol, connect):
    """The browser tags encrypted edits so that it can seal one again when the members changed."""
    group = await db(make_group)(alice, bob, encrypted=True)
    message, _ = await db(encrypted_send)(alice, group, alice, bob)
    await db(services.membership_add)(actor=alice, conversation_id=group.pk, username="carol")
    socket = await connect(alice)
    await socket.send({"type": "message.edit", "id": message.pk, "client_id": "edit-1", **sealed(alice, bob)})
    error = await socket.receive_type("error")
    assert (error["code"], error["client_id"], error["missing"]) == ("invalid", "edit-1", [carol.pk])
