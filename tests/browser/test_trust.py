"""What a member sees when the server misbehaves or things change under them, in headless Chromium.

The server is the adversary here: it must not be able to turn an end-to-end encrypted
conversation into plaintext (docs/e2e.md, "The server does not get to decide what is private").
"""

import json
import re

import pytest
from playwright.sync_api import expect

from chat import services
from chat.models import Conversation, Membership, Message
from chatterbox.errors import Forbidden
from tests.browser.test_chat import conversation_button, message_texts, open_chat, send, signed_in_context
from tests.browser.test_e2e import PASSPHRASES, UNDECRYPTABLE, in_thread, set_up_encryption, start_direct
from tests.conftest import ServerProcess, server_env

pytestmark = pytest.mark.browser

DOWNGRADE_WARNING = "Security warning: this conversation was end-to-end encrypted, and the server now says it is not."


def dismiss_key_prompt(page):
    """Close the key dialog that opens by itself once a page where encrypted conversations need a key."""
    expect(page.locator("#key-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#key-dialog")).to_be_hidden()


def downgrade_responses(conversation_id: int):
    """Return a route handler that serves the conversation as plaintext, as a hostile server would."""

    def handle(route):
        response = route.fetch()
        data = response.json()
        if isinstance(data, list):
            for conversation in data:
                if conversation["id"] == conversation_id:
                    conversation["encrypted"] = False
                    conversation["last_message"] = None
        elif "messages" in data:
            for message in data["messages"]:
                for field in ("ciphertext", "nonce", "key"):
                    message.pop(field, None)
                message["body"] = ""
        elif data.get("id") == conversation_id:
            data["encrypted"] = False
        route.fulfill(response=response, body=json.dumps(data))

    return handle


def test_a_server_cannot_downgrade_an_encrypted_conversation(browser, live_url, alice, bob, make_user, artifacts_dir):
    root = make_user("root", is_staff=True, is_superuser=True)
    errors = []
    alice_context = signed_in_context(browser, live_url, alice)
    alice_page = open_chat(alice_context, live_url, errors, "alice")
    bob_page = open_chat(signed_in_context(browser, live_url, bob), live_url, errors, "bob")
    set_up_encryption(bob_page, PASSPHRASES["bob"])
    set_up_encryption(alice_page, PASSPHRASES["alice"])
    start_direct(alice_page, "Bob Builder", "bob")
    send(alice_page, "Only Bob may read this")
    conversation_button(bob_page, "Alice Liddell").click()
    expect(message_texts(bob_page)).to_have_text(["Only Bob may read this"])
    direct = Conversation.objects.get(kind="direct")

    # The admin's change form shows kind and encryption, but read-only.
    admin_page = signed_in_context(browser, live_url, root).new_page()
    admin_page.goto(f"{live_url}/admin/chat/conversation/{direct.pk}/change/")
    expect(admin_page.locator(".field-encrypted")).to_contain_text("Encrypted")
    expect(admin_page.locator("input[name=encrypted]")).to_have_count(0)
    expect(admin_page.locator("select[name=kind], input[name=kind]")).to_have_count(0)
    admin_page.screenshot(path=str(artifacts_dir / "trust-admin-read-only.png"), full_page=True)

    # Going around the admin, straight to the ORM, is refused as well.
    refused = []

    def downgrade():
        try:
            Conversation.objects.filter(pk=direct.pk).update(encrypted=False)
        except Forbidden as error:
            refused.append(str(error))

    in_thread(downgrade)
    assert refused == ["A conversation's kind and encryption never change after it is created."]
    assert Conversation.objects.get(pk=direct.pk).encrypted is True

    # A server that slips plaintext into an encrypted conversation does not get it shown as Alice's.
    def inject_plaintext(route):
        response = route.fetch()
        data = response.json()
        for message in data["messages"]:
            if message["kind"] == "text":
                message["body"] = "Injected by the server"
        route.fulfill(response=response, body=json.dumps(data))

    bob_page.route(re.compile(r"/api/conversations/\d+/messages/"), inject_plaintext)
    bob_page.reload()
    conversation_button(bob_page, "Alice Liddell").click()
    expect(message_texts(bob_page)).to_have_text([UNDECRYPTABLE])

    # A server that lies anyway: Alice's browser pinned the conversation as encrypted and believes that.
    alice_context.route(re.compile(r"/api/conversations/"), downgrade_responses(direct.pk))
    alice_page.reload()
    conversation_button(alice_page, "Bob Builder").click()
    notice = alice_page.locator("#encrypted-notice")
    expect(notice).to_contain_text(DOWNGRADE_WARNING)
    expect(alice_page.locator("#pane-subtitle")).to_have_text("Security warning: encryption was removed by the server")
    expect(alice_page.get_by_label("Message", exact=True)).to_be_disabled()
    expect(message_texts(alice_page)).to_have_text([UNDECRYPTABLE])
    expect(conversation_button(alice_page, "Bob Builder").locator(".lock.downgraded")).to_be_visible()
    alice_page.screenshot(path=str(artifacts_dir / "trust-downgrade-warning.png"))

    # Even a send forced past the disabled composer goes nowhere.
    before = Message.objects.exclude(kind="system").count()
    alice_page.evaluate(
        """() => {
          const input = document.getElementById("composer-input");
          input.disabled = false;
          input.value = "This must never reach the server in the clear";
          document.getElementById("composer").requestSubmit();
        }"""
    )
    expect(alice_page.locator("#chat-notice")).to_contain_text("Not sent: this conversation was end-to-end encrypted")
    alice_page.wait_for_timeout(500)
    assert Message.objects.exclude(kind="system").count() == before
    assert not Message.objects.filter(body__contains="in the clear").exists()
    assert errors == []


def test_system_lines_show_who_joined_and_a_quiet_addition_is_flagged(
    browser, live_url, alice, bob, make_user, artifacts_dir
):
    make_user("carol", display_name="Carol Danvers")
    mallory = make_user("mallory", display_name="Mallory Quiet")
    errors = []

    created = []
    in_thread(
        lambda: created.append(
            services.conversation_create(
                creator=alice, kind="group", name="Plans", members=["bob", "carol"], encrypted=True
            )[0]
        )
    )
    (group,) = created
    alice_page = open_chat(signed_in_context(browser, live_url, alice), live_url, errors, "alice")
    dismiss_key_prompt(alice_page)
    conversation_button(alice_page, "Plans").click()
    system_lines = alice_page.locator("#messages .system-message:not(.membership-warning) > span")
    expect(system_lines).to_have_text(
        ["You created this group", "Bob Builder was added by you", "Carol Danvers was added by you"]
    )
    expect(conversation_button(alice_page, "Plans")).to_contain_text("Carol Danvers was added by you")

    # Alice removes Carol, after a confirmation; the line shows for her and in Bob's history.
    alice_page.get_by_role("button", name="Members").click()
    members_dialog = alice_page.locator("#members-dialog")
    members_dialog.get_by_label("Manage Carol Danvers").click()
    members_dialog.get_by_role("button", name="Remove Carol Danvers").click()
    confirm = alice_page.locator("#confirm-dialog")
    expect(confirm).to_contain_text("Remove Carol Danvers?")
    confirm.get_by_role("button", name="Cancel").click()
    expect(members_dialog).to_contain_text("Carol Danvers")
    members_dialog.get_by_role("button", name="Remove Carol Danvers").click()
    confirm.get_by_role("button", name="Remove").click()
    expect(system_lines.last).to_have_text("Carol Danvers was removed by you")
    members_dialog.get_by_role("button", name="Close").click()

    # The server slips Mallory in without a line, as the Django admin's member list could.
    in_thread(lambda: Membership.objects.create(conversation=group, user=mallory))
    alice_page.reload()
    dismiss_key_prompt(alice_page)
    conversation_button(alice_page, "Plans").click()
    warning = alice_page.locator("#messages .membership-warning")
    expect(warning).to_contain_text(
        "Security warning: Mallory Quiet is a member, but no line in this conversation says who added them."
    )
    alice_page.screenshot(path=str(artifacts_dir / "trust-system-lines.png"))
    bob_page = open_chat(signed_in_context(browser, live_url, bob), live_url, errors, "bob")
    dismiss_key_prompt(bob_page)
    conversation_button(bob_page, "Plans").click()
    expect(bob_page.locator("#messages .system-message:not(.membership-warning) > span")).to_have_text(
        [
            "Alice Liddell created this group",
            "You were added by Alice Liddell",
            "Carol Danvers was added by Alice Liddell",
            "Carol Danvers was removed by Alice Liddell",
        ]
    )
    expect(bob_page.locator("#messages .membership-warning")).to_contain_text("Mallory Quiet")
    assert errors == []


def test_a_contacts_first_key_unblocks_the_conversation_live(browser, live_url, alice, bob, artifacts_dir):
    errors = []
    alice_page = open_chat(signed_in_context(browser, live_url, alice), live_url, errors, "alice")
    bob_page = open_chat(signed_in_context(browser, live_url, bob), live_url, errors, "bob")
    set_up_encryption(alice_page, PASSPHRASES["alice"])
    start_direct(alice_page, "Bob Builder", "bob")
    notice = alice_page.locator("#encrypted-notice")
    expect(notice).to_have_text("Bob Builder has not set up encryption yet. Messages can be sent here once they have.")
    expect(alice_page.get_by_label("Message", exact=True)).to_be_disabled()
    alice_page.screenshot(path=str(artifacts_dir / "trust-waiting-for-key.png"))

    # Bob sets up encryption; Alice's page hears of it at once, without a reload.
    set_up_encryption(bob_page, PASSPHRASES["bob"])
    expect(notice).to_be_hidden()
    expect(alice_page.get_by_label("Message", exact=True)).to_be_enabled()
    alice_page.screenshot(path=str(artifacts_dir / "trust-first-key-live.png"))
    send(alice_page, "Now we can talk")
    conversation_button(bob_page, "Alice Liddell").click()
    expect(message_texts(bob_page)).to_have_text(["Now we can talk"])
    assert errors == []


def test_a_ban_disables_the_open_page_and_shows_the_user_offline(
    browser, live_url, alice, bob, make_user, artifacts_dir
):
    root = make_user("root", is_staff=True, is_superuser=True)
    errors = []
    in_thread(
        lambda: services.conversation_create(creator=alice, kind="group", name="Crew", members=["bob"], encrypted=False)
    )
    alice_page = open_chat(signed_in_context(browser, live_url, alice), live_url, errors, "alice")
    bob_context = signed_in_context(browser, live_url, bob)

    def bob_socket(route):
        # Bob's sends are held back, so one is still pending when the ban lands.
        server = route.connect_to_server()
        route.on_message(lambda frame: None if '"message.send"' in frame else server.send(frame))
        server.on_message(route.send)

    bob_context.route_web_socket(re.compile(r"/ws/$"), bob_socket)
    bob_page = open_chat(bob_context, live_url, errors, "bob")
    conversation_button(bob_page, "Crew").click()
    conversation_button(alice_page, "Crew").click()
    expect(alice_page.locator("#online-list")).to_contain_text("Bob Builder")
    send(bob_page, "Still sending this")
    expect(bob_page.locator("#messages .message.pending")).to_contain_text("Sending…")

    # The admin bans Bob in the Django admin: the server process itself relays the ban.
    admin_page = signed_in_context(browser, live_url, root).new_page()
    admin_page.goto(f"{live_url}/admin/accounts/user/")
    admin_page.locator(f"input[name=_selected_action][value='{bob.pk}']").check()
    admin_page.locator("select[name=action]").select_option("ban_users")
    admin_page.get_by_role("button", name="Go").click()
    # A ban asks for its reason first.
    admin_page.get_by_label("Reason").fill("Spam in Crew")
    admin_page.get_by_role("button", name="Ban 1 user").click()
    expect(admin_page.locator(".messagelist")).to_be_visible()
    expect(bob_page.locator("#connection-banner")).to_contain_text("This account was disabled.")
    expect(bob_page.locator("#login-link")).to_be_visible()
    expect(bob_page.locator("#encrypted-notice")).to_contain_text("This account was disabled.")
    expect(bob_page.locator("#encrypted-notice").get_by_role("link", name="Log in again")).to_be_visible()
    expect(bob_page.get_by_label("Message", exact=True)).to_be_disabled()
    failed = bob_page.locator("#messages .message.failed")
    expect(failed).to_contain_text("Not sent: This account was disabled.")
    expect(failed.get_by_role("button", name="Try again")).to_have_count(0)
    bob_page.screenshot(path=str(artifacts_dir / "trust-account-disabled.png"))
    expect(alice_page.locator("#online-list")).not_to_contain_text("Bob Builder")
    assert not Message.objects.filter(body="Still sending this").exists()
    # The browser logs the closed socket's failed reconnect, if any; nothing else may go wrong.
    assert [error for error in errors if "WebSocket" not in error] == []


def test_previews_and_order_survive_a_reload(browser, live_url, alice, bob, make_user, artifacts_dir):
    make_user("carol", display_name="Carol Danvers")
    errors = []
    alice_page = open_chat(signed_in_context(browser, live_url, alice), live_url, errors, "alice")
    bob_page = open_chat(signed_in_context(browser, live_url, bob), live_url, errors, "bob")
    set_up_encryption(bob_page, PASSPHRASES["bob"])
    set_up_encryption(alice_page, PASSPHRASES["alice"])
    in_thread(lambda: services.conversation_create(creator=alice, kind="group", name="Quiet", members=["carol"]))
    start_direct(alice_page, "Bob Builder", "bob")
    send(alice_page, "The encrypted one, newest")
    expect(conversation_button(bob_page, "Alice Liddell")).to_contain_text("Alice Liddell: The encrypted one, newest")

    bob_page.reload()
    # Nothing was opened after the reload: the list alone carries the decrypted preview.
    expect(conversation_button(bob_page, "Alice Liddell")).to_contain_text("Alice Liddell: The encrypted one, newest")
    alice_page.reload()
    rows = alice_page.locator("#conversation-list .conversation")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("You: The encrypted one, newest")
    expect(rows.nth(1)).to_contain_text("Quiet")
    expect(rows.nth(1)).to_contain_text("Carol Danvers was added by you")
    alice_page.screenshot(path=str(artifacts_dir / "trust-previews-after-reload.png"))
    assert errors == []


@pytest.fixture(scope="module")
def rate_limited_server(django_db_setup, django_db_blocker, artifacts_dir, tmp_path_factory):
    """A server that lets each user send 3 messages every 5 seconds."""
    with django_db_blocker.unblock():
        env = server_env(tmp_path_factory.mktemp("media"))
    env["CHAT_RATE_LIMIT"] = "3/5"
    server = ServerProcess(env, artifacts_dir / "daphne-rate-limited.log", "rate-limited")
    yield server
    server.stop()


def test_rate_limited_messages_go_out_by_themselves_when_the_window_allows(
    browser, rate_limited_server, transactional_db, alice, artifacts_dir
):
    live_url = rate_limited_server.url
    errors = []
    in_thread(lambda: services.conversation_create(creator=alice, kind="channel", name="burst"))
    page = open_chat(signed_in_context(browser, live_url, alice), live_url, errors, "alice")
    conversation_button(page, "burst").click()
    texts = [f"Burst message {i}" for i in range(1, 6)]
    for text in texts:
        send(page, text)
    # Three go through; the other two wait, shown as sending, not as failed.
    expect(page.locator("#messages .message:not(.pending) .message-text")).to_have_text(texts[:3])
    pending = page.locator("#messages .message.pending")
    expect(pending).to_have_count(2)
    expect(pending.locator(".message-status")).to_have_text(["Sending…", "Sending…"])
    expect(page.locator("#messages .message.failed")).to_have_count(0)
    page.screenshot(path=str(artifacts_dir / "trust-rate-limited-pending.png"))
    # Then they go out on their own, in order.
    expect(page.locator("#messages .message:not(.pending) .message-text")).to_have_text(texts, timeout=15_000)
    expect(page.locator("#messages .message.failed")).to_have_count(0)
    stored = list(Message.objects.filter(kind="text").order_by("id").values_list("body", flat=True))
    assert stored == texts
    assert errors == []


def test_read_markers_sit_under_messages_the_reader_did_not_send_and_leave_with_them(
    browser, live_url, alice, bob, make_user, artifacts_dir
):
    carol = make_user("carol", display_name="Carol Danvers")
    errors = []
    created = []
    in_thread(
        lambda: created.append(
            services.conversation_create(
                creator=alice, kind="group", name="Crew", members=["bob", "carol"], encrypted=False
            )[0]
        )
    )
    (group,) = created
    alice_page = open_chat(signed_in_context(browser, live_url, alice), live_url, errors, "alice")
    carol_page = open_chat(signed_in_context(browser, live_url, carol), live_url, errors, "carol")
    conversation_button(alice_page, "Crew").click()
    send(alice_page, "From Alice")
    expect(message_texts(alice_page)).to_have_text(["From Alice"])
    conversation_button(carol_page, "Crew").click()
    seen = alice_page.locator("#messages .seen")
    expect(alice_page.locator("#messages .message", has_text="From Alice").locator(".seen")).to_have_text(
        "Seen by Carol Danvers"
    )
    # Carol writes: her marker moves onto her own message, but shows under the last one she did not send.
    send(carol_page, "From Carol")
    expect(message_texts(alice_page)).to_have_text(["From Alice", "From Carol"])
    expect(carol_page.locator("#messages .message.pending")).to_have_count(0)
    own = Message.objects.get(body="From Carol").pk
    for _ in range(50):  # Carol's page reports her own message read; wait until the server has it
        if Membership.objects.get(conversation=group, user=carol).last_read_message_id == own:
            break
        alice_page.wait_for_timeout(100)
    assert Membership.objects.get(conversation=group, user=carol).last_read_message_id == own
    alice_page.wait_for_timeout(300)  # and until its read event reached Alice
    expect(seen).to_have_count(1)
    expect(alice_page.locator("#messages .message", has_text="From Alice").locator(".seen")).to_have_text(
        "Seen by Carol Danvers"
    )
    alice_page.screenshot(path=str(artifacts_dir / "trust-read-markers.png"))
    # Carol leaves: the line says so, and her marker goes.
    carol_page.get_by_role("button", name="Members").click()
    carol_page.locator("#members-dialog").get_by_role("button", name="Leave group").click()
    carol_page.locator("#confirm-dialog").get_by_role("button", name="Leave group").click()
    expect(alice_page.locator("#messages .system-message > span").last).to_have_text("Carol Danvers left")
    expect(seen).to_have_count(0)
    assert [error for error in errors if "carol" not in error] == []
