"""What a member sees when the server misbehaves or things change under them, in headless Chromium.

The server is the adversary here: it must not be able to turn an end-to-end encrypted
conversation into plaintext (docs/e2e.md, "The server does not get to decide what is private").
"""

import json
import re

import pytest
from playwright.sync_api import expect

from chat.models import Conversation, Message
from chatterbox.errors import Forbidden
from tests.browser.test_chat import conversation_button, message_texts, open_chat, send, signed_in_context
from tests.browser.test_e2e import PASSPHRASES, UNDECRYPTABLE, in_thread, set_up_encryption, start_direct

pytestmark = pytest.mark.browser

DOWNGRADE_WARNING = "Security warning: this conversation was end-to-end encrypted, and the server now says it is not."


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
    before = Message.objects.count()
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
    assert Message.objects.count() == before
    assert not Message.objects.filter(body__contains="in the clear").exists()
    assert errors == []
