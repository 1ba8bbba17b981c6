"""End-to-end encryption in headless Chromium against a real Daphne server.

Alice, Bob and Carol set up keys in the chat page, exchange encrypted direct and group messages,
and the database holds only ciphertext; a removed member gets no key for what follows; Alice's
second device unlocks with her passphrase and reads the history; Bob resets his keys and Alice
is warned. The server runs with E2E_KDF_LIMITS=interactive (tests/conftest.py) to stay fast.
"""

import re
import threading

from django.apps import apps
from django.db import models
from playwright.sync_api import expect

from accounts.models import UserKey
from chat import services
from chat.models import Conversation, Message, MessageKey
from client import e2e
from tests.browser.test_chat import (
    HIDE_TAB,
    RECORD_NOTIFICATIONS,
    SHOW_TAB,
    conversation_button,
    message_texts,
    open_chat,
    send,
    signed_in_context,
)

PASSPHRASES = {
    "alice": "copper violin meadow sunrise",
    "bob": "granite otter lantern waltz",
    "carol": "velvet harbor pickle nebula",
}
# What the tests write; none of it may reach the server in the clear.
SECRETS = [
    "The treasure is under the old oak",
    "The treasure is under the old elm",
    "On my way with a shovel",
    "Meeting moved to Thursday",
    "Thursday works for me",
    "Carol must not read this",
]
UNDECRYPTABLE = "This message could not be decrypted."

# Reads this browser's key store (static/chat/js/keystore.js) for one user.
READ_KEYSTORE = """async ([ownerId, contactId]) => {
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open("chatterbox-keys");
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const get = (store, key) => new Promise((resolve) => {
    const request = db.transaction(store).objectStore(store).get(key);
    request.onsuccess = () => resolve(request.result ?? null);
  });
  const pair = await get("keypairs", ownerId);
  const pin = await get("contacts", [ownerId, contactId]);
  db.close();
  return {hasPrivateKey: Boolean(pair?.privateKey), pinned: pin?.publicKey ?? null, verified: pin?.verified ?? null};
}"""


def key_dialog(page, name):
    return page.get_by_role("dialog", name=name)


def set_up_encryption(page, passphrase):
    page.locator("#e2e-banner").get_by_role("button", name="Set up encryption").click()
    dialog = key_dialog(page, "Set up end-to-end encryption")
    dialog.get_by_label("Encryption passphrase").fill(passphrase)
    dialog.get_by_label("Type the passphrase again").fill(passphrase)
    dialog.get_by_role("button", name="Create key").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#chat-notice")).to_have_text("End-to-end encryption is set up.")
    expect(page.locator("#e2e-banner")).to_be_hidden()


def start_direct(page, name, username):
    page.get_by_role("button", name="New conversation").click()
    dialog = page.locator("#new-conversation-dialog")
    dialog.get_by_role("tab", name="Direct message").click()
    dialog.get_by_label("Find a person").fill(username)
    dialog.get_by_role("button", name=re.compile(rf"^Message {name} \(@{username}\)")).click()
    expect(page.locator("#pane-title")).to_have_text(name)


def in_thread(function, **kwargs):
    """Call a service from a thread of its own: Playwright's event loop holds this one."""
    from django.db import connection

    def run():
        try:
            function(**kwargs)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


def text_columns():
    """Yield (model, field name) for every text column of every table."""
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, (models.CharField, models.TextField)):
                yield model, field.name


def test_encrypted_messages_between_people_groups_and_devices(
    browser, live_url, alice, bob, make_user, client_of, artifacts_dir
):
    carol = make_user("carol", display_name="Carol Danvers")
    make_user("dave", display_name="Dave Keyless")
    moderator = make_user("moderator", is_staff=True, is_superuser=True)
    errors = []
    # Alice's socket, seen from the page's side: what she sends, and a switch to hide updates.
    alice_sent, hide_updates = [], threading.Event()

    def alice_socket(route):
        server = route.connect_to_server()
        route.on_message(lambda frame: (alice_sent.append(frame), server.send(frame)))
        server.on_message(
            lambda frame: None if hide_updates.is_set() and '"conversation.updated"' in frame else route.send(frame)
        )

    alice_context = signed_in_context(browser, live_url, alice)
    alice_context.route_web_socket(re.compile(r"/ws/$"), alice_socket)
    alice_page = open_chat(alice_context, live_url, errors, "alice")
    bob_context = signed_in_context(browser, live_url, bob)
    bob_context.add_init_script(RECORD_NOTIFICATIONS)
    bob_context.grant_permissions(["notifications"])
    bob_page = open_chat(bob_context, live_url, errors, "bob")
    carol_page = open_chat(signed_in_context(browser, live_url, carol), live_url, errors, "carol")

    # Alice chooses a passphrase: the meter and the checks refuse a weak or mistyped one.
    banner = alice_page.locator("#e2e-banner")
    expect(banner).to_contain_text("Set up end-to-end encryption for direct messages and private groups.")
    banner.get_by_role("button", name="Set up encryption").click()
    setup = key_dialog(alice_page, "Set up end-to-end encryption")
    passphrase = setup.get_by_label("Encryption passphrase")
    expect(passphrase).to_be_focused()
    passphrase.fill("sunshine")
    expect(setup.locator("meter")).to_have_attribute("value", "0")
    expect(setup.locator("#key-strength")).to_contain_text("Strength: very weak.")
    setup.get_by_role("button", name="Create key").click()
    expect(setup.get_by_role("alert")).to_have_text(
        "This passphrase is too weak (very weak). Add more unrelated words."
    )
    passphrase.fill(PASSPHRASES["alice"])
    expect(setup.locator("meter")).to_have_attribute("value", "4")
    expect(setup.locator("#key-strength")).to_have_text("Strength: strong.")
    setup.get_by_label("Type the passphrase again").fill(PASSPHRASES["alice"] + "!")
    setup.get_by_role("button", name="Create key").click()
    expect(setup.get_by_role("alert")).to_have_text("The two passphrases do not match.")
    setup.get_by_label("Type the passphrase again").fill(PASSPHRASES["alice"])
    alice_page.screenshot(path=str(artifacts_dir / "e2e-setup.png"))
    setup.get_by_role("button", name="Create key").click()
    expect(setup).to_be_hidden()
    expect(banner).to_be_hidden()
    backup = UserKey.objects.get(user=alice)
    assert backup.kdf == {
        "alg": "argon2id13",
        "opslimit": e2e.OPSLIMIT_INTERACTIVE,
        "memlimit": e2e.MEMLIMIT_INTERACTIVE,
    }
    # The server holds a backup it cannot open without the passphrase; the passphrase opens it.
    backup_json = {
        field: getattr(backup, field) for field in ("public_key", "encrypted_private_key", "salt", "nonce", "kdf")
    }
    assert e2e.public_key_b64(e2e.unlock_key_pair(backup_json, PASSPHRASES["alice"])) == backup.public_key

    # Bob does it with the keyboard alone; Carol the same way as Alice.
    bob_page.locator("#e2e-banner").get_by_role("button", name="Set up encryption").focus()
    bob_page.keyboard.press("Enter")
    expect(key_dialog(bob_page, "Set up end-to-end encryption").get_by_label("Encryption passphrase")).to_be_focused()
    bob_page.keyboard.type(PASSPHRASES["bob"])
    bob_page.keyboard.press("Tab")
    bob_page.keyboard.type(PASSPHRASES["bob"])
    bob_page.keyboard.press("Enter")
    expect(bob_page.locator("#e2e-banner")).to_be_hidden()
    set_up_encryption(carol_page, PASSPHRASES["carol"])

    # An encrypted direct message, a reply quoting it and an edit: each side reads the other.
    start_direct(alice_page, "Bob Builder", "bob")
    expect(alice_page.locator("#pane-subtitle")).to_contain_text("end-to-end encrypted")
    expect(alice_page.get_by_label("Message", exact=True)).to_be_focused()
    send(alice_page, SECRETS[0])
    expect(message_texts(alice_page)).to_have_text([SECRETS[0]])
    conversation_button(bob_page, "Alice Liddell").click()
    expect(message_texts(bob_page)).to_have_text([SECRETS[0]])
    bob_page.locator("#messages .message").first.hover()
    bob_page.get_by_role("button", name="Reply to Alice Liddell").click()
    expect(bob_page.locator("#reply-preview")).to_contain_text(f"Replying to Alice Liddell: {SECRETS[0]}")
    send(bob_page, SECRETS[2])
    reply = alice_page.locator("#messages .message", has_text=SECRETS[2])
    expect(reply.locator(".quote")).to_contain_text(f"Alice Liddell {SECRETS[0]}")
    original = alice_page.locator("#messages .message", has_text=SECRETS[0]).first
    original.hover()
    original.get_by_role("button", name="Edit your message").click()
    alice_page.get_by_label("Edit message").fill(SECRETS[1])
    alice_page.get_by_label("Edit message").press("Enter")
    edited = bob_page.locator("#messages .message", has_text=SECRETS[1])
    expect(edited.locator(".edited")).to_have_text("(edited)")
    expect(bob_page.locator("#messages .quote")).to_contain_text(SECRETS[1])
    expect(conversation_button(bob_page, "Alice Liddell")).to_contain_text(f"You: {SECRETS[2]}")
    bob_page.screenshot(path=str(artifacts_dir / "e2e-direct.png"))

    # A group: encrypted by default, for all three.
    alice_page.get_by_role("button", name="New conversation").click()
    dialog = alice_page.locator("#new-conversation-dialog")
    dialog.get_by_role("tab", name="Group").click()
    dialog.get_by_label("Group name").fill("Secret plans")
    for username, name in (("bob", "Bob Builder"), ("carol", "Carol Danvers")):
        dialog.get_by_label("Add people").fill(username)
        dialog.get_by_role("button", name=f"Add {name} (@{username}) to the group").click()
    expect(dialog.get_by_label("End-to-end encrypted")).to_be_checked()
    dialog.get_by_role("button", name="Create group").click()
    expect(alice_page.locator("#pane-subtitle")).to_have_text("3 members · end-to-end encrypted")
    send(alice_page, SECRETS[3])
    conversation_button(carol_page, "Secret plans").click()
    expect(message_texts(carol_page)).to_have_text([SECRETS[3]])
    # Bob looks away: by default a notification of an encrypted conversation names the sender only
    # (the "Notification previews" setting can show the text his own browser decrypted).
    expect(conversation_button(bob_page, "Secret plans")).to_contain_text(f"Alice Liddell: {SECRETS[3]}")
    bob_page.evaluate(HIDE_TAB)
    send(carol_page, SECRETS[4])
    expect(conversation_button(bob_page, "Secret plans")).to_contain_text(f"Carol Danvers: {SECRETS[4]}")
    assert bob_page.evaluate("window.shownNotifications") == [["Carol Danvers in Secret plans", "New message"]]
    bob_page.evaluate(SHOW_TAB)
    conversation_button(bob_page, "Secret plans").click()
    expect(message_texts(bob_page)).to_have_text([SECRETS[3], SECRETS[4]])
    expect(message_texts(alice_page)).to_have_text([SECRETS[3], SECRETS[4]])

    # Alice removes Carol; what Alice writes next is wrapped for Alice and Bob only.
    alice_page.get_by_role("button", name="Members").click()
    members = alice_page.locator("#members-dialog")
    expect(members.get_by_role("button", name="Safety number with Carol Danvers")).to_be_visible()
    alice_page.screenshot(path=str(artifacts_dir / "e2e-members.png"))
    members.get_by_label("Manage Carol Danvers").click()
    members.get_by_role("button", name="Remove Carol Danvers").click()
    # Removing someone asks first.
    alice_page.locator("#confirm-dialog").get_by_role("button", name="Remove").click()
    expect(members.locator(".members-list")).not_to_contain_text("Carol Danvers")
    alice_page.keyboard.press("Escape")
    expect(carol_page.get_by_role("alert")).to_have_text("You are no longer in Secret plans.")
    send(alice_page, SECRETS[5])
    expect(message_texts(bob_page).last).to_have_text(SECRETS[5])
    expect(message_texts(alice_page).last).to_have_text(SECRETS[5])
    group = Conversation.objects.get(name="Secret plans")
    after_removal = Message.objects.filter(conversation=group).latest("id")
    assert set(MessageKey.objects.filter(message=after_removal).values_list("user_id", flat=True)) == {alice.pk, bob.pk}
    assert carol_page.get_by_text(SECRETS[5]).count() == 0
    alice_page.screenshot(path=str(artifacts_dir / "e2e-group.png"))

    # Someone without a key cannot be written to yet, and the page says why.
    start_direct(alice_page, "Dave Keyless", "dave")
    expect(alice_page.locator("#encrypted-notice")).to_have_text(
        "Dave Keyless has not set up encryption yet. Messages can be sent here once they have."
    )
    expect(alice_page.get_by_label("Message", exact=True)).to_be_disabled()

    # The server stores ciphertext only: no message text in any text column, in its log or admin.
    # (The system lines, who joined and who left, are plaintext by design; the loop below checks them too.)
    encrypted = Message.objects.filter(conversation__encrypted=True, kind="text")
    assert encrypted.count() == 5
    assert not encrypted.exclude(body="").exists()
    assert not encrypted.filter(ciphertext="").exists()
    for secret in SECRETS:
        for model, field in text_columns():
            assert not model._default_manager.filter(**{f"{field}__contains": secret}).exists(), (model, field)
        assert secret not in (artifacts_dir / "daphne.log").read_text()
    admin = client_of(moderator)
    pages = [admin.get("/admin/chat/message/").content.decode()]
    pages += [admin.get(f"/admin/chat/message/{message.pk}/change/").content.decode() for message in encrypted]
    assert all("(end-to-end encrypted)" in page for page in pages)
    assert not [secret for secret in SECRETS for page in pages if secret in page]

    # Alice's second device: her passphrase unlocks the key there (a wrong one is refused).
    second_page = open_chat(signed_in_context(browser, live_url, alice), live_url, errors, "alice-2")
    unlock = key_dialog(second_page, "Unlock your encrypted messages")
    expect(unlock).to_be_visible()
    unlock.get_by_label("Encryption passphrase").fill(PASSPHRASES["bob"])
    unlock.get_by_role("button", name="Unlock").click()
    expect(unlock.get_by_role("alert")).to_have_text(
        "That passphrase does not unlock your key. Check it and try again."
    )
    second_page.screenshot(path=str(artifacts_dir / "e2e-unlock-refused.png"))
    unlock.get_by_label("Encryption passphrase").fill(PASSPHRASES["alice"])
    unlock.get_by_role("button", name="Unlock").click()
    expect(unlock).to_be_hidden()
    conversation_button(second_page, "Bob Builder").click()
    expect(message_texts(second_page)).to_have_text([SECRETS[1], SECRETS[2]])
    expect(second_page.locator("#messages .quote")).to_contain_text(SECRETS[1])
    conversation_button(second_page, "Secret plans").click()
    expect(message_texts(second_page)).to_have_text([SECRETS[3], SECRETS[4], SECRETS[5]])
    second_page.screenshot(path=str(artifacts_dir / "e2e-second-device.png"))

    # Carol is invited back through another door while Alice's page misses the news: the server
    # refuses keys that leave Carol out, and the page learns the members and seals again, once.
    hide_updates.set()
    in_thread(services.membership_add, actor=alice, conversation_id=group.pk, username="carol")
    conversation_button(alice_page, "Secret plans").click()
    send(alice_page, "Carol is back")
    expect(message_texts(bob_page).last).to_have_text("Carol is back")
    expect(message_texts(alice_page).last).to_have_text("Carol is back")
    expect(alice_page.locator("#messages .message.failed")).to_have_count(0)
    welcome = Message.objects.filter(conversation=group).latest("id")
    assert set(MessageKey.objects.filter(message=welcome).values_list("user_id", flat=True)) == {
        alice.pk,
        bob.pk,
        carol.pk,
    }
    attempts = [frame for frame in alice_sent if '"message.send"' in frame and welcome.client_id in frame]
    assert len(attempts) == 2
    assert errors == []


def test_key_reset_warns_contacts_and_safety_numbers_match(browser, live_url, alice, bob, artifacts_dir):
    errors = []
    alice_page = open_chat(signed_in_context(browser, live_url, alice), live_url, errors, "alice")
    bob_page = open_chat(signed_in_context(browser, live_url, bob), live_url, errors, "bob")
    set_up_encryption(alice_page, PASSPHRASES["alice"])
    set_up_encryption(bob_page, PASSPHRASES["bob"])
    start_direct(alice_page, "Bob Builder", "bob")
    send(alice_page, "Before the reset")
    conversation_button(bob_page, "Alice Liddell").click()
    send(bob_page, "Bob before the reset")
    expect(message_texts(alice_page)).to_have_text(["Before the reset", "Bob before the reset"])

    # Both see the same safety number, the one Python computes; Alice marks Bob as verified.
    alice_page.get_by_role("button", name="Safety number").click()
    safety = alice_page.get_by_role("dialog", name="Safety number with Bob Builder")
    expected = e2e.safety_number(UserKey.objects.get(user=alice).public_key, UserKey.objects.get(user=bob).public_key)
    expect(safety.locator(".safety-number")).to_have_text(expected.replace(" ", ""))
    assert safety.locator(".safety-number span").all_inner_texts() == expected.split()
    bob_page.get_by_role("button", name="Safety number").click()
    bob_safety = bob_page.get_by_role("dialog", name="Safety number with Alice Liddell")
    assert bob_safety.locator(".safety-number span").all_inner_texts() == expected.split()
    bob_page.keyboard.press("Escape")
    expect(safety.locator(".safety-state")).to_have_text("Bob Builder is not verified yet.")
    safety.get_by_role("button", name="Mark as verified").click()
    expect(safety.locator(".safety-state")).to_have_text("You have verified Bob Builder.")
    alice_page.screenshot(path=str(artifacts_dir / "e2e-safety-number.png"))
    safety.get_by_role("button", name="Close").last.click()
    expect(alice_page.locator("#pane-title .verified-badge")).to_have_text("Verified")

    # Bob resets his keys, past a clear warning; his own old messages can no longer be read.
    old_key = UserKey.objects.get(user=bob).public_key
    bob_page.get_by_role("button", name="Encryption").click()
    manage = key_dialog(bob_page, "End-to-end encryption")
    manage.get_by_role("button", name="Reset encryption keys…").click()
    reset = key_dialog(bob_page, "Reset your encryption keys")
    expect(reset).to_contain_text("Messages encrypted for your current key can no longer be read")
    reset.get_by_label("Encryption passphrase").fill("brand new lighthouse cactus")
    reset.get_by_label("Type the passphrase again").fill("brand new lighthouse cactus")
    reset.get_by_role("button", name="Reset keys").click()
    expect(reset.get_by_role("alert")).to_have_text("Tick the box to confirm that you understand what a reset does.")
    reset.get_by_label("I understand that my old encrypted messages become unreadable").check()
    bob_page.screenshot(path=str(artifacts_dir / "e2e-reset.png"))
    reset.get_by_role("button", name="Reset keys").click()
    expect(reset).to_be_hidden()
    expect(bob_page.locator("#chat-notice")).to_contain_text("Your encryption keys were reset.")
    assert UserKey.objects.get(user=bob).public_key != old_key
    expect(message_texts(bob_page)).to_have_text([UNDECRYPTABLE, UNDECRYPTABLE])

    # Alice is told, is no longer "verified", and cannot write until she accepts the new key.
    notice = alice_page.locator("#encrypted-notice")
    expect(notice).to_contain_text("Bob Builder's key changed.")
    expect(alice_page.get_by_label("Message", exact=True)).to_be_disabled()
    expect(alice_page.locator("#pane-title .verified-badge")).to_have_count(0)
    send(bob_page, "Bob after the reset")
    expect(message_texts(alice_page).last).to_have_text(
        "Sent with Bob Builder's new key. Accept the new key to read it."
    )
    # Bob's earlier messages still open with the key Alice pinned before.
    expect(message_texts(alice_page)).to_contain_text(["Bob before the reset"])
    alice_page.screenshot(path=str(artifacts_dir / "e2e-key-changed.png"))
    notice.get_by_role("button", name="Accept Bob Builder's new key").click()
    expect(notice).to_be_hidden()
    expect(message_texts(alice_page).last).to_have_text("Bob after the reset")
    expect(message_texts(alice_page)).to_have_text(["Before the reset", "Bob before the reset", "Bob after the reset"])
    send(alice_page, "Welcome back, Bob")
    expect(message_texts(bob_page).last).to_have_text("Welcome back, Bob")

    # Logging out forgets Alice's private key in this browser; the pinned contact keys stay.
    new_key = UserKey.objects.get(user=bob).public_key
    stored = alice_page.evaluate(READ_KEYSTORE, [str(alice.pk), str(bob.pk)])
    assert stored == {"hasPrivateKey": True, "pinned": new_key, "verified": False}
    alice_page.get_by_role("button", name="Log out").click()
    # Signed out, "/" is the landing page.
    expect(alice_page.get_by_role("link", name="Sign up, it is free")).to_be_visible()
    stored = alice_page.evaluate(READ_KEYSTORE, [str(alice.pk), str(bob.pk)])
    assert stored == {"hasPrivateKey": False, "pinned": new_key, "verified": False}
    assert errors == []
