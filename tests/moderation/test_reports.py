"""Reports: plaintext and encrypted messages (evidence checked against the stored ciphertext), the queue."""

import base64

import pytest
from nacl.public import Box

from accounts import keys as account_keys
from chat import services
from chat.models import Message
from client import e2e
from moderation import services as moderation
from moderation.models import Report
from tests.chat.conftest import db, make_channel, make_group, send

pytestmark = pytest.mark.django_db


def post(client, body):
    return client.post("/api/reports/", body, content_type="application/json")


def with_key(user):
    """Give the user a real key pair (as the browser would) and return its private half."""
    private_key = e2e.generate_key_pair()
    backup = e2e.backup_key_pair(
        private_key, "river stone lantern", opslimit=e2e.OPSLIMIT_INTERACTIVE, memlimit=e2e.MEMLIMIT_INTERACTIVE
    )
    account_keys.key_backup_store(user=user, **backup)
    return private_key


def encrypted_message(sender, sender_key, conversation, recipients: dict, text: str, client_id: str = "enc-1"):
    """Seal and send a real encrypted message; return it and the wrapped keys."""
    sealed = e2e.seal_message(
        content=text,
        conversation=conversation.pk,
        client_id=client_id,
        sender_private_key=sender_key,
        recipients={user.pk: e2e.public_key_b64(key) for user, key in recipients.items()},
    )
    message, _ = services.message_send(sender=sender, conversation_id=conversation.pk, client_id=client_id, **sealed)
    return message, sealed["keys"]


def message_key(wrapped: str, reader_key, sender_key) -> str:
    """Unwrap K as the reader's browser does (crypto.js openMessageWithKey)."""
    secret = Box(reader_key, sender_key.public_key).decrypt(base64.b64decode(wrapped))
    return base64.b64encode(secret[:32]).decode()


@pytest.fixture
def encrypted(alice, bob, carol):
    keys = {alice: with_key(alice), bob: with_key(bob), carol: with_key(carol)}
    group = make_group(alice, bob, carol, encrypted=True)
    message, wrapped = encrypted_message(alice, keys[alice], group, keys, "you will regret this")
    return {"group": group, "message": message, "key": message_key(wrapped[str(bob.pk)], keys[bob], keys[alice])}


def test_a_report_of_a_plaintext_message_keeps_its_text(alice, bob, client_of):
    channel = make_channel(alice, bob)
    message = send(alice, channel, "buy cheap pills")
    response = post(client_of(bob), {"message": message.pk, "reason": "spam", "note": "again"})
    assert response.status_code == 201
    report = Report.objects.get()
    assert response.json() == {
        "id": report.pk,
        "status": "open",
        "reason": "spam",
        "message": message.pk,
        "resolution": "",
    }
    assert (report.reporter, report.reported_user, report.conversation) == (bob, alice, channel)
    assert (report.message_text, report.verification, report.note) == ("buy cheap pills", "plaintext", "again")
    # The same report twice is one report.
    assert post(client_of(bob), {"message": message.pk, "reason": "spam"}).status_code == 200
    assert Report.objects.count() == 1


def test_an_encrypted_report_is_verified_against_the_stored_ciphertext(bob, client_of, encrypted):
    evidence = {"text": "you will regret this", "key": encrypted["key"]}
    response = post(client_of(bob), {"message": encrypted["message"].pk, "reason": "violence", "evidence": evidence})
    assert response.status_code == 201, response.content
    report = Report.objects.get()
    assert (report.verification, report.message_text, report.verification_detail) == (
        "verified",
        "you will regret this",
        "",
    )


def test_a_forged_text_is_marked_unverified(bob, carol, client_of, encrypted):
    forged = {"text": "I will hurt you", "key": encrypted["key"]}
    response = post(client_of(bob), {"message": encrypted["message"].pk, "reason": "violence", "evidence": forged})
    assert response.status_code == 201
    report = Report.objects.get()
    assert report.verification == "unverified"
    assert report.message_text == "I will hurt you"
    assert report.verification_detail == "The reported text differs from the decrypted message."


def test_a_wrong_key_is_marked_unverified(bob, client_of, encrypted):
    wrong = {"text": "you will regret this", "key": base64.b64encode(bytes(32)).decode()}
    post(client_of(bob), {"message": encrypted["message"].pk, "reason": "hate", "evidence": wrong})
    report = Report.objects.get()
    assert report.verification == "unverified"
    assert report.verification_detail == "The key does not open the ciphertext the server stored."


def test_content_sealed_for_another_message_is_unverified(alice, bob, carol, client_of):
    keys = {alice: with_key(alice), bob: with_key(bob)}
    group = make_group(alice, bob, encrypted=True)
    other = make_group(alice, bob, encrypted=True, name="Other")
    # Alice's message in the other group, replayed by a (hypothetical) server into this one.
    sealed = e2e.seal_message(
        content="hello",
        conversation=other.pk,
        client_id="enc-2",
        sender_private_key=keys[alice],
        recipients={user.pk: e2e.public_key_b64(key) for user, key in keys.items()},
    )
    message, _ = services.message_send(sender=alice, conversation_id=group.pk, client_id="enc-2", **sealed)
    key = message_key(sealed["keys"][str(bob.pk)], keys[bob], keys[alice])
    post(client_of(bob), {"message": message.pk, "reason": "other", "evidence": {"text": "hello", "key": key}})
    assert Report.objects.get().verification_detail == "The decrypted content belongs to another conversation."


def test_an_encrypted_report_without_evidence_has_no_text(bob, client_of, encrypted):
    assert post(client_of(bob), {"message": encrypted["message"].pk, "reason": "spam"}).status_code == 201
    report = Report.objects.get()
    assert (report.verification, report.message_text) == ("none", "")


def test_a_user_can_be_reported(alice, bob, client_of):
    response = post(client_of(bob), {"user": "alice", "reason": "harassment"})
    assert response.status_code == 201
    report = Report.objects.get()
    assert (report.reported_user, report.message, report.verification) == (alice, None, "none")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"reason": "spam"}, 400, None),
        ({"user": "alice"}, 400, "reason"),
        ({"user": "alice", "reason": "boring"}, 400, "reason"),
        ({"user": "alice", "reason": "spam", "note": "x" * 1001}, 400, "note"),
        ({"user": "bob", "reason": "spam"}, 400, "user"),
        ({"user": "nobody", "reason": "spam"}, 404, None),
        ({"message": "1", "reason": "spam"}, 400, "message"),
        ({"message": True, "reason": "spam"}, 400, "message"),
        ({"message": 999999, "reason": "spam"}, 404, None),
        ({"user": "alice", "reason": "spam", "evidence": {"text": "x", "key": "AA=="}}, 400, "evidence"),
    ],
)
def test_bad_reports_are_refused(alice, bob, client_of, body, status, field):
    response = post(client_of(bob), body)
    assert response.status_code == status, response.content
    assert response.json().get("field") == field
    assert not Report.objects.exists()


def test_messages_one_cannot_read_or_report_are_refused(alice, bob, carol, client_of, encrypted):
    channel = make_channel(alice, bob)
    mine = send(bob, channel, "mine")
    elsewhere = send(alice, make_group(alice, name="Private"), "not for carol")
    deleted = send(alice, channel, "gone")
    services.message_delete(actor=alice, message_id=deleted.pk)
    assert post(client_of(bob), {"message": mine.pk, "reason": "spam"}).json()["field"] == "message"
    assert post(client_of(carol), {"message": elsewhere.pk, "reason": "spam"}).status_code == 404
    assert post(client_of(bob), {"message": deleted.pk, "reason": "spam"}).json()["detail"] == (
        "This message was already deleted."
    )
    plaintext_evidence = {"message": send(alice, channel, "hi").pk, "reason": "spam", "evidence": {"text": "hi"}}
    assert post(client_of(bob), plaintext_evidence).json()["field"] == "evidence"
    bad_key = {"text": "x", "key": "short"}
    response = post(client_of(bob), {"message": encrypted["message"].pk, "reason": "spam", "evidence": bad_key})
    assert response.json()["field"] == "evidence"


def test_the_context_shows_encrypted_text_only_where_verified(alice, bob, carol, client_of, encrypted):
    group = encrypted["group"]
    post(
        client_of(bob),
        {
            "message": encrypted["message"].pk,
            "reason": "violence",
            "evidence": {"text": "you will regret this", "key": encrypted["key"]},
        },
    )
    report = Report.objects.get()
    neighbour = Message.objects.create(conversation=group, sender=carol, client_id="n", ciphertext="AAAA", nonce="A")
    context = moderation.message_context(report)
    # Before the reported message: the plaintext lines that say who made the group and who is in it.
    assert [message.kind for message, _ in context[:-2]] == ["system"] * (len(context) - 2)
    assert [text for _, text in context[:-2]] == [message.body for message, _ in context[:-2]]
    assert [text for _, text in context[-2:]] == ["you will regret this", "(end-to-end encrypted)"]
    assert neighbour.pk > report.message_id


def test_resolving_a_report_acts_and_refuses_twice(alice, bob, make_user):
    moderator = make_user("mod", is_staff=True)
    channel = make_channel(alice, bob)
    message = send(alice, channel, "nasty")
    report, _ = moderation.report_create(reporter=bob, message_id=message.pk, reason="hate")
    with pytest.raises(moderation.Forbidden):
        moderation.report_resolve(moderator=bob, report_id=report.pk, action="dismiss")
    with pytest.raises(moderation.Invalid, match="action must be"):
        moderation.report_resolve(moderator=moderator, report_id=report.pk, action="shrug")
    moderation.report_resolve(moderator=moderator, report_id=report.pk, action="delete_message")
    report.refresh_from_db()
    message.refresh_from_db()
    assert (report.status, report.handled_by, message.deleted) == ("acted", moderator, True)
    with pytest.raises(moderation.Invalid, match="already acted on"):
        moderation.report_resolve(moderator=moderator, report_id=report.pk, action="dismiss")

    second, _ = moderation.report_create(reporter=bob, username="alice", reason="spam")
    moderation.report_resolve(moderator=moderator, report_id=second.pk, action="ban_user")
    alice.refresh_from_db()
    assert not alice.is_active


def test_the_admin_queue_shows_the_verified_text_and_acts(admin_client, alice, bob, client_of, encrypted):
    evidence = {"text": "you will regret this", "key": encrypted["key"]}
    post(client_of(bob), {"message": encrypted["message"].pk, "reason": "violence", "evidence": evidence})
    report = Report.objects.get()
    queue = admin_client.get("/admin/moderation/report/?status__exact=open").content.decode()
    assert f"/admin/moderation/report/{report.pk}/change/" in queue
    page = admin_client.get(f"/admin/moderation/report/{report.pk}/change/").content.decode()
    assert "you will regret this" in page and "verified from the stored ciphertext" in page
    response = admin_client.post(f"/admin/moderation/report/{report.pk}/resolve/", {"action": "dismiss"}, follow=True)
    assert "the reporters were told" in response.content.decode()
    report.refresh_from_db()
    assert report.status == "dismissed"
    assert "Dismissed" in client_of(bob).get("/profile/").content.decode()


def test_admin_actions_handle_the_selected_reports(admin_client, alice, bob):
    channel = make_channel(alice, bob)
    report, _ = moderation.report_create(reporter=bob, message_id=send(alice, channel, "x").pk, reason="spam")
    data = {"action": "delete_reported_messages", "_selected_action": [report.pk]}
    admin_client.post("/admin/moderation/report/", data, follow=True)
    report.refresh_from_db()
    assert (report.status, report.message.deleted) == ("acted", True)


@pytest.mark.django_db(transaction=True)
async def test_the_reporter_hears_when_the_report_is_handled(alice, bob, make_user, connect):
    moderator = await db(make_user)("mod", is_staff=True)
    report, _ = await db(moderation.report_create)(reporter=bob, username="alice", reason="spam")
    socket = await connect(bob)
    await db(moderation.report_resolve)(moderator=moderator, report_id=report.pk, action="dismiss")
    frame = await socket.receive_type("report.handled")
    assert frame["report"] == {
        "id": report.pk,
        "status": "dismissed",
        "reason": "spam",
        "message": None,
        "resolution": "No action was taken.",
    }
