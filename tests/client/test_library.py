"""The Python client library against a real Daphne server: login, the API, the live socket, errors."""

import io
import threading
import time

import pyotp
import pytest
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

from accounts.models import ApiToken
from accounts.services import user_ban
from chat import services
from chat.models import Attachment, MessageKey, Reaction
from chat.models import Message as StoredMessage
from client import SyncClient, e2e, errors
from client.api import HttpApi
from client.errors import error_from
from client.keys import KeyStore
from moderation.models import Report
from tests.conftest import PASSWORD

FAST_KDF = {"opslimit": e2e.OPSLIMIT_INTERACTIVE, "memlimit": e2e.MEMLIMIT_INTERACTIVE}


def fresh_totp(secret: str) -> str:
    """Return the current TOTP code, waiting for the next 30-second step if this one ends within 5 s.

    The server runs in its own process with allauth's default tolerance (the current step only),
    so a code read just before a step boundary would reach it stale.
    """
    totp = pyotp.TOTP(secret)
    left = totp.interval - time.time() % totp.interval
    if left < 5:
        time.sleep(left + 0.1)
    return totp.now()


def messages_of(chat, conversation_id, count, timeout=15):
    """Collect `count` messages of one conversation from others (not system lines), in the order they came."""
    got = []
    me = chat.me["id"]

    def wanted(event):
        is_text = event.type == "message" and event.message.kind != "system"
        return is_text and event.conversation == conversation_id and event.user != me

    while len(got) < count:
        event = chat.wait_for(wanted, timeout=timeout)
        got.append(event.message)
    return got


@pytest.fixture
def general(alice, bob):
    channel, _ = services.conversation_create(creator=alice, kind="channel", name="general", topic="Anything")
    services.channel_join(user=bob, conversation_id=channel.pk)
    return channel


def test_every_protocol_error_code_maps_to_a_named_exception():
    codes = {
        "invalid": errors.InvalidError,
        "not_found": errors.NotFoundError,
        "forbidden": errors.ForbiddenError,
        "not_member": errors.NotMemberError,
        "rate_limited": errors.RateLimitedError,
        "too_large": errors.TooLargeError,
        "unauthorized": errors.UnauthorizedError,
        "method_not_allowed": errors.MethodNotAllowedError,
        "conflict": errors.ConflictError,
    }
    for code, cls in codes.items():
        error = error_from({"type": "error", "code": code, "detail": "why", "retry_after": 3}, status=400)
        assert type(error) is cls and error.code == code and error.detail == "why" and error.retry_after == 3
    unknown = error_from({"error": "teapot", "detail": "short and stout"})
    assert type(unknown) is errors.ServerError and unknown.code == "teapot"


def test_token_client_lists_searches_sends_and_receives_live(live_url, alice, bob, general, connect_as):
    alice_chat = connect_as(live_url, alice)
    bob_chat = connect_as(live_url, bob)
    assert alice_chat.me["username"] == "alice"
    assert [c["name"] for c in alice_chat.list_conversations()] == ["general"]
    assert [u["username"] for u in alice_chat.search_users("bo")] == ["bob"]

    sent = alice_chat.send("#general", "Hello from Python")
    assert sent.id > 0 and sent.text == "Hello from Python"
    [received] = messages_of(bob_chat, general.pk, 1)
    assert (received.id, received.text, received.status) == (sent.id, "Hello from Python", "plain")
    assert received.sender["username"] == "alice"
    assert StoredMessage.objects.get(pk=sent.id).body == "Hello from Python"

    # A reply, an edit and a delete reach the other side as events.
    reply = bob_chat.send(general.pk, "Hello back", reply_to=sent.id)
    assert messages_of(alice_chat, general.pk, 1)[0].reply_to == sent.id
    bob_chat.edit(reply, "Hello back, Alice")
    edited = alice_chat.wait_for(lambda e: e.type == "edited")
    assert edited.message.text == "Hello back, Alice" and edited.message.edited_at
    bob_chat.delete(reply.id)
    assert alice_chat.wait_for(lambda e: e.type == "deleted").data == {"id": reply.id}

    # Typing, read markers and presence.
    bob_chat.typing("#general")
    assert alice_chat.wait_for(lambda e: e.type == "typing").user == bob.pk
    alice_chat.mark_read("#general", reply.id)
    assert bob_chat.wait_for(lambda e: e.type == "read").data["up_to"] == reply.id
    assert bob.pk in alice_chat.online
    bob_chat.close()
    assert alice_chat.wait_for(lambda e: e.type == "presence").data == {"online": False}
    assert bob.pk not in alice_chat.online


def test_history_pages_back_and_forth(live_url, alice, bob, general, connect_as, settings):
    settings.CHAT_RATE_LIMIT = "off"
    for number in range(1, 121):
        services.message_send(sender=bob, conversation_id=general.pk, client_id=f"m{number}", body=f"number {number}")
    alice_chat = connect_as(live_url, alice)
    newest, has_more = alice_chat.history("#general", limit=50)
    assert [m.text for m in newest] == [f"number {n}" for n in range(71, 121)] and has_more
    older, has_more = alice_chat.history("#general", before=newest[0].id, limit=100)
    # The channel's history opens with the lines that say who created and joined it.
    assert [m.kind for m in older[:-70]] == ["system"] * (len(older) - 70)
    assert [m.text for m in older[-70:]] == [f"number {n}" for n in range(1, 71)] and not has_more
    after, has_more = alice_chat.history(general.pk, after=older[-1].id, limit=10)
    assert [m.text for m in after] == [f"number {n}" for n in range(71, 81)] and has_more


def test_bad_input_gets_named_errors(live_url, alice, bob, general, connect_as, token_for):
    alice_chat = connect_as(live_url, alice)
    with pytest.raises(errors.InvalidError) as empty:
        alice_chat.send("#general", "")
    assert "empty" in empty.value.detail.lower() or empty.value.field == "body"
    with pytest.raises(errors.TooLargeError):
        alice_chat.send("#general", "x" * 4001)
    with pytest.raises(errors.NotFoundError):
        alice_chat.send("#no-such-channel", "hi")
    with pytest.raises(errors.NotFoundError) as unknown:
        alice_chat.send("@nobody", "hi")
    assert unknown.value.usernames == ["nobody"]
    with pytest.raises(errors.InvalidError):
        alice_chat.send("general", "no # or @")
    private, _ = services.conversation_create(creator=bob, kind="group", name="secret plans", encrypted=False)
    with pytest.raises(errors.NotMemberError):
        alice_chat.send(private.pk, "let me in")
    # A direct conversation is end-to-end encrypted: without an unlocked key nothing is sent.
    with pytest.raises(errors.EncryptionLocked):
        alice_chat.send("@bob", "in the clear?")
    with pytest.raises(errors.UnauthorizedError):
        HttpApi(live_url, token="cbx_not-a-token").me()
    with pytest.raises(errors.ConnectionFailed):
        HttpApi("http://127.0.0.1:9").me()


def test_rate_limit_is_a_named_error_with_retry_after(own_server, alice, general, connect_as):
    # A server of its own: the embedded server's rate-limit counters live in its memory.
    alice_chat = connect_as(own_server.url, alice)
    with pytest.raises(errors.RateLimitedError) as limited:
        for number in range(30):
            alice_chat.send("#general", f"spam {number}")
    assert limited.value.retry_after > 0


def test_revoked_token_closes_the_socket_for_good(live_url, alice, general, token_for):
    chat = SyncClient(live_url, token=token_for(alice, "short-lived"), keystore=KeyStore(), backoff_base=0.2)
    chat.connect()
    ApiToken.objects.filter(user=alice).delete()
    # The server re-checks credentials when the socket reconnects: a revoked token is 4401.
    chat.call_soon(chat.client.socket.drop)
    event = chat.wait_for(lambda e: e.type == "state" and e.data["state"] in {"signed_out", "banned"}, timeout=20)
    assert event.data["state"] == "signed_out"
    with pytest.raises(errors.NotConnected):
        chat.send("#general", "still there?")
    chat.close()


def test_banned_user_is_closed_and_not_reconnected(live_url, alice, general, connect_as, settings):
    chat = connect_as(live_url, alice)
    shared_layer = "redis" in settings.CHANNEL_LAYERS["default"]["BACKEND"].lower()
    user_ban(user=alice)
    if not shared_layer:
        # The embedded server's in-memory layer does not hear this process's ban; the next
        # handshake is refused instead (a banned user's token counts as no credentials: 4401).
        chat.call_soon(chat.client.socket.drop)
    ended = {"banned", "signed_out"}
    event = chat.wait_for(lambda e: e.type == "state" and e.data["state"] in ended, timeout=20)
    # With Redis the server closes the open socket at once with 4403.
    assert event.data["state"] == ("banned" if shared_layer else "signed_out")
    with pytest.raises(errors.NotConnected):
        chat.send("#general", "still there?")
    assert chat.state == event.data["state"]


def test_password_login_mints_a_token_with_the_session(live_url, alice, general):
    api = HttpApi(live_url)
    with pytest.raises(errors.LoginFailed):
        api.login("alice", "wrong password")
    me = api.login("alice@example.com", PASSWORD)
    assert me["username"] == "alice"
    token = api.create_token("Python CLI")
    assert token.startswith("cbx_") and ApiToken.objects.get(user=alice).name == "Python CLI"
    assert HttpApi(live_url, token=token).me()["username"] == "alice"
    # Minting needs the session: a token alone cannot reach the profile page.
    with pytest.raises(errors.LoginFailed):
        HttpApi(live_url, token=token).create_token("from a token")


def test_two_factor_login_with_totp_and_recovery_code(live_url, alice, general):
    secret = generate_totp_secret()
    TOTP.activate(alice, secret)
    codes = RecoveryCodes.activate(alice).get_unused_codes()
    with pytest.raises(errors.TwoFactorRequired):
        HttpApi(live_url).login("alice", PASSWORD)
    with pytest.raises(errors.LoginFailed) as wrong:
        HttpApi(live_url).login("alice", PASSWORD, code="000000" if fresh_totp(secret) != "000000" else "111111")
    assert "Incorrect code" in wrong.value.detail

    asked = []
    chat = SyncClient.login(
        live_url, "alice", PASSWORD, code=lambda: asked.append(1) or fresh_totp(secret), keystore=KeyStore()
    )
    try:
        assert asked == [1]
        chat.connect()
        assert chat.send("#general", "signed in with two factors").id
    finally:
        chat.close()
    assert HttpApi(live_url).login("alice", PASSWORD, code=codes[0])["username"] == "alice"


def test_encrypted_direct_messages_between_python_clients(live_url, alice, bob, connect_as):
    alice_chat = connect_as(live_url, alice)
    bob_chat = connect_as(live_url, bob)
    alice_chat.setup_encryption("alice passphrase words", **FAST_KDF)
    bob_chat.setup_encryption("bob passphrase words", **FAST_KDF)
    with pytest.raises(errors.WrongPassphraseError):
        alice_chat.unlock("not my passphrase")
    alice_chat.unlock("alice passphrase words")

    sent = alice_chat.send("@bob", "for Bob's eyes only")
    stored = StoredMessage.objects.get(pk=sent.id)
    assert stored.body == "" and "Bob" not in stored.ciphertext
    [received] = messages_of(bob_chat, sent.conversation, 1)
    assert (received.text, received.status, received.encrypted) == ("for Bob's eyes only", "ok", True)
    back = bob_chat.send(sent.conversation, "read you")
    assert messages_of(alice_chat, sent.conversation, 1)[0].text == "read you"
    alice_chat.edit(sent, "for Bob's eyes only (edited)")
    assert bob_chat.wait_for(lambda e: e.type == "edited").message.text == "for Bob's eyes only (edited)"
    history, _ = bob_chat.history("@alice")
    assert [m.text for m in history if m.kind != "system"] == ["for Bob's eyes only (edited)", "read you"]
    assert back.id > sent.id

    # Bob resets his key: Alice is told, refuses to send until she accepts, then writes again.
    bob_chat.setup_encryption("bob's new passphrase", **FAST_KDF)
    change = alice_chat.wait_for(lambda e: e.type == "key.changed", timeout=15)
    assert change.user == bob.pk and change.data["pinned"] != change.data["public_key"]
    with pytest.raises(errors.KeyChanged):
        alice_chat.send("@bob", "still you?")
    assert alice_chat.safety_number(bob.pk) == e2e.safety_number(
        alice_chat.keyring.public_key, change.data["public_key"]
    )
    alice_chat.accept_key(bob.pk)
    again = alice_chat.send("@bob", "welcome back")
    assert messages_of(bob_chat, sent.conversation, 1)[0].id == again.id


def next_reaction(chat) -> tuple:
    """The next reaction event's conversation, user and data."""
    event = chat.wait_for(lambda e: e.type == "reaction")
    return event.conversation, event.user, event.data


def test_reactions_reports_and_blocks_in_the_clear_and_encrypted(live_url, alice, bob, general, connect_as):
    alice_chat = connect_as(live_url, alice)
    bob_chat = connect_as(live_url, bob)
    # In a channel the server keeps the reaction and tells every member; a bad one is a named error.
    asked = alice_chat.send("#general", "ship it?")
    [seen] = messages_of(bob_chat, general.pk, 1)
    bob_chat.react("#general", asked.id, "👍")
    assert next_reaction(alice_chat) == (general.pk, bob.pk, {"message": asked.id, "emoji": "👍", "on": True})
    with pytest.raises(errors.InvalidError) as error:
        bob_chat.react("#general", asked.id, "not an emoji")
    assert error.value.extra["field"] == "emoji"
    history, _ = alice_chat.history("#general")
    assert [m.reactions for m in history if m.id == asked.id] == [{"👍": [bob.pk]}]
    bob_chat.react("#general", asked.id, "👍", on=False)
    assert next_reaction(alice_chat)[2]["on"] is False
    assert not Reaction.objects.exists()
    assert Report.objects.get(pk=bob_chat.report(seen, reason="spam")["id"]).verification == "plaintext"

    # Encrypted: the reaction is a sealed message the server cannot read, folded into its target.
    alice_chat.setup_encryption("alice passphrase words", **FAST_KDF)
    bob_chat.setup_encryption("bob passphrase words", **FAST_KDF)
    secret = alice_chat.send("@bob", "the launch code is 0000")
    [received] = messages_of(bob_chat, secret.conversation, 1)
    bob_chat.react("@alice", secret.id, "🎉")
    assert next_reaction(alice_chat) == (secret.conversation, bob.pk, {"message": secret.id, "emoji": "🎉", "on": True})
    stored = StoredMessage.objects.get(kind="reaction")
    assert stored.body == "" and "🎉" not in stored.ciphertext
    # A report of an encrypted message carries the text and key, which the server checks.
    report = Report.objects.get(pk=bob_chat.report(received, reason="other", note="odd")["id"])
    assert (report.verification, report.message_text) == ("verified", "the launch code is 0000")

    # Alice blocks Bob: he can no longer write to her directly, until she unblocks him.
    alice_chat.block("bob")
    assert [b["user"]["username"] for b in alice_chat.blocks()] == ["bob"]
    with pytest.raises(errors.ForbiddenError):
        bob_chat.send("@alice", "hello?")
    alice_chat.unblock("bob")
    assert alice_chat.blocks() == []
    assert bob_chat.send("@alice", "hello again").id > secret.id


def test_server_restart_loses_nothing_and_repeats_nothing(own_server, alice, bob, general, connect_as):
    alice_chat = connect_as(own_server.url, alice)
    bob_chat = connect_as(own_server.url, bob)
    before = alice_chat.send("#general", "before the restart")
    assert messages_of(bob_chat, general.pk, 1)[0].id == before.id

    own_server.stop()
    bob_chat.wait_for(lambda e: e.type == "state" and e.data["state"] == "reconnecting", timeout=15)
    # Written while every socket is down: straight into the database, and from Alice's outbox.
    while_down = [
        services.message_send(sender=alice, conversation_id=general.pk, client_id=f"down-{n}", body=f"down {n}")[0]
        for n in range(3)
    ]
    # Alice sends while the server is down: it waits in her outbox and goes once it is back.
    sent = {}
    sender = threading.Thread(target=lambda: sent.update(queued=alice_chat.send("#general", "sent while down")))
    sender.start()
    time.sleep(0.5)
    own_server.restart()
    sender.join(60)
    queued = sent["queued"]
    bob_chat.wait_for(lambda e: e.type == "state" and e.data["state"] == "connected", timeout=30)
    got = messages_of(bob_chat, general.pk, 4, timeout=30)
    assert [m.text for m in got] == ["down 0", "down 1", "down 2", "sent while down"]
    assert [m.id for m in got] == [*(m.pk for m in while_down), queued.id]
    # Nothing more comes: no message twice.
    with pytest.raises(TimeoutError):
        bob_chat.wait_for(lambda e: e.type == "message", timeout=2)
    assert StoredMessage.objects.filter(conversation=general, body="sent while down").count() == 1


def test_members_without_keys_block_and_a_stale_member_list_is_sealed_again(
    live_url, alice, bob, make_user, connect_as
):
    carol = make_user("carol", display_name="Carol Danvers")
    make_user("dave")
    chats = {user.username: connect_as(live_url, user) for user in (alice, bob, carol)}
    for name, chat in chats.items():
        chat.setup_encryption(f"{name} passphrase words", **FAST_KDF)
    alice_chat = chats["alice"]
    with pytest.raises(errors.MissingKeys) as missing:
        alice_chat.send("@dave", "you have no key yet")
    assert "dave" in missing.value.detail

    group = alice_chat.create_group("plans", ["bob", "carol"])
    assert group["encrypted"]
    # Alice's copy of the member list misses Carol, as if the news had not reached her yet: the
    # server refuses keys that leave Carol out, and the client loads the members and seals again.
    members = [member for member in group["members"] if member["id"] != carol.pk]
    alice_chat.call_soon(lambda: alice_chat.client.conversations[group["id"]].update(members=members))
    sent = alice_chat.send(group["id"], "for all three of us")
    keys = set(MessageKey.objects.filter(message_id=sent.id).values_list("user_id", flat=True))
    assert keys == {alice.pk, bob.pk, carol.pk}
    assert messages_of(chats["carol"], group["id"], 1)[0].text == "for all three of us"
    assert messages_of(chats["bob"], group["id"], 1)[0].text == "for all three of us"


def picture_bytes(colour=(200, 40, 90), size=(640, 400), fmt="PNG") -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, fmt)
    return out.getvalue()


def test_attachments_in_a_channel_and_encrypted_both_ways(live_url, alice, bob, general, connect_as, tmp_path):
    alice_chat = connect_as(live_url, alice)
    bob_chat = connect_as(live_url, bob)
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"line one\nline two\n")

    # A plaintext channel: the server keeps the name and type, and makes a thumbnail of a picture.
    sent = alice_chat.send_file("#general", notes, "the notes")
    [got] = messages_of(bob_chat, general.pk, 1)
    assert (got.id, got.text, got.attachment["name"]) == (sent.id, "the notes", "notes.txt")
    assert bob_chat.download(got) == b"line one\nline two\n"
    picture = tmp_path / "square.png"
    picture.write_bytes(picture_bytes())
    bob_chat.send_file(general.pk, picture)
    [photo] = messages_of(alice_chat, general.pk, 1)
    assert photo.text == "" and photo.attachment["content_type"] == "image/png" and photo.attachment["thumbnail_url"]
    assert alice_chat.download(photo).startswith(b"\x89PNG")
    assert len(alice_chat.download(photo, thumbnail=True)) > 0

    # An encrypted DM: the server stores an opaque, padded blob without name or type.
    alice_chat.setup_encryption("alice passphrase words", **FAST_KDF)
    bob_chat.setup_encryption("bob passphrase words", **FAST_KDF)
    secret_picture = tmp_path / "secret.png"
    secret_picture.write_bytes(picture_bytes((10, 200, 10)))
    sealed = alice_chat.send_file("@bob", secret_picture, "just for you")
    stored = Attachment.objects.get(pk=sealed.attachment["id"])
    assert stored.name == "" and stored.content_type == "application/octet-stream"
    assert stored.size > secret_picture.stat().st_size
    [opened] = messages_of(bob_chat, sealed.conversation, 1)
    assert (opened.text, opened.attachment["name"], opened.attachment["type"]) == (
        "just for you",
        "secret.png",
        "image/png",
    )
    assert (opened.attachment["width"], opened.attachment["height"]) == (640, 400)
    assert bob_chat.download(opened) == secret_picture.read_bytes()
    assert bob_chat.download(opened, thumbnail=True).startswith(b"\xff\xd8")  # the JPEG inside the content
    reply = bob_chat.send_file(sealed.conversation, notes)
    [back] = messages_of(alice_chat, sealed.conversation, 1)
    assert back.id == reply.id and alice_chat.download(back) == notes.read_bytes()

    # A message whose encrypted content names another upload than it carries is refused.
    forged = dict(opened.raw, attachment={**opened.raw["attachment"], "id": opened.raw["attachment"]["id"] + 1000})
    assert bob_chat.reveal(forged).status == "failed" and bob_chat.reveal(forged).attachment is None
