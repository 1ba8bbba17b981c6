"""Reactions in headless Chromium: the picker by mouse and keyboard, live on the other side, encrypted too."""

import re

from playwright.sync_api import expect

from chat.models import Conversation, Membership, Message, Reaction
from tests.browser.test_chat import conversation_button, open_chat, send, signed_in_context
from tests.browser.test_e2e import PASSPHRASES, set_up_encryption, start_direct


def last_message(page):
    return page.locator("#messages .message").last


def test_react_in_a_channel_and_see_it_live(browser, live_url, alice, bob, artifacts_dir):
    channel = Conversation.objects.create(kind="channel", name="lunch", created_by=alice)
    Membership.objects.create(conversation=channel, user=alice, role="owner")
    Membership.objects.create(conversation=channel, user=bob)
    errors = []
    alice_page = open_chat(signed_in_context(browser, live_url, alice), live_url, errors, "alice")
    bob_page = open_chat(signed_in_context(browser, live_url, bob), live_url, errors, "bob")
    conversation_button(alice_page, "lunch").click()
    conversation_button(bob_page, "lunch").click()
    send(alice_page, "Pizza at noon?")
    expect(last_message(bob_page).locator(".message-text")).to_have_text("Pizza at noon?")

    # Bob opens the picker with the keyboard: focus lands on the first emoji, arrows move, Enter picks.
    last_message(bob_page).hover()
    react = last_message(bob_page).get_by_role("button", name="Add a reaction")
    react.focus()
    bob_page.keyboard.press("Enter")
    picker = bob_page.get_by_role("dialog", name="Add a reaction")
    expect(picker).to_be_visible()
    expect(picker.get_by_role("button", name="👍")).to_be_focused()
    bob_page.screenshot(path=str(artifacts_dir / "reaction-picker.png"))
    bob_page.keyboard.press("ArrowRight")
    bob_page.keyboard.press("ArrowRight")
    expect(picker.get_by_role("button", name="😂")).to_be_focused()
    bob_page.keyboard.press("Escape")
    expect(picker).to_be_hidden()
    expect(react).to_be_focused()
    bob_page.keyboard.press("Enter")
    bob_page.keyboard.press("ArrowRight")
    bob_page.keyboard.press("Enter")
    expect(picker).to_be_hidden()

    # Alice sees it live, with who reacted; she adds hers by clicking it.
    alice_reaction = last_message(alice_page).locator(".reaction", has_text="❤️")
    expect(alice_reaction).to_have_attribute("aria-label", "❤️ 1: Bob Builder. React with ❤️")
    expect(alice_reaction).to_have_attribute("aria-pressed", "false")
    expect(alice_reaction).to_have_attribute("title", "Reacted with ❤️: Bob Builder")
    alice_reaction.click()
    expect(alice_reaction).to_have_attribute("aria-pressed", "true")
    expect(alice_reaction.locator(".reaction-count")).to_have_text("2")
    bob_reaction = last_message(bob_page).locator(".reaction", has_text="❤️")
    expect(bob_reaction).to_have_attribute("aria-label", "❤️ 2: you and Alice Liddell. Remove your reaction")

    # Recently used emoji come first in the picker; removing goes live too.
    last_message(alice_page).hover()
    last_message(alice_page).get_by_role("button", name="Add a reaction").click()
    alice_picker = alice_page.get_by_role("dialog", name="Add a reaction")
    alice_picker.get_by_role("button", name="🎉").click()
    expect(last_message(bob_page).locator(".reaction")).to_have_count(2)
    bob_reaction.click()
    expect(last_message(alice_page).locator(".reaction", has_text="❤️").locator(".reaction-count")).to_have_text("1")
    assert sorted(Reaction.objects.values_list("user__username", "emoji")) == [("alice", "❤️"), ("alice", "🎉")]

    # A reload shows them from history.
    bob_page.reload()
    conversation_button(bob_page, "lunch").click()
    expect(last_message(bob_page).locator(".reaction")).to_have_count(2)
    assert errors == []


def test_an_encrypted_reaction_is_opaque_to_the_server(browser, live_url, alice, bob):
    errors = []
    alice_page = open_chat(signed_in_context(browser, live_url, alice), live_url, errors, "alice")
    bob_page = open_chat(signed_in_context(browser, live_url, bob), live_url, errors, "bob")
    set_up_encryption(alice_page, PASSPHRASES["alice"])
    set_up_encryption(bob_page, PASSPHRASES["bob"])
    start_direct(alice_page, "Bob Builder", "bob")
    send(alice_page, "Keys are under the mat")
    conversation_button(bob_page, "Alice Liddell").click()
    expect(last_message(bob_page).locator(".message-text")).to_have_text("Keys are under the mat")
    last_message(bob_page).hover()
    last_message(bob_page).get_by_role("button", name="Add a reaction").click()
    bob_page.get_by_role("dialog", name="Add a reaction").get_by_role("button", name="👀").click()

    reaction = last_message(alice_page).locator(".reaction")
    expect(reaction).to_have_attribute("aria-label", "👀 1: Bob Builder. React with 👀")
    expect(last_message(bob_page).locator(".reaction")).to_have_attribute("aria-pressed", "true")
    # One message of kind reaction, not listed as a message, and the server holds no emoji.
    expect(alice_page.locator("#messages .message")).to_have_count(1)
    stored = Message.objects.get(kind="reaction")
    assert stored.body == "" and stored.ciphertext and stored.reply_to_id is None
    assert not Reaction.objects.exists()
    # It does not count as unread, and taking it back folds away too.
    expect(conversation_button(alice_page, "Bob Builder").locator(".badge")).to_have_count(0)
    last_message(bob_page).locator(".reaction").click()
    expect(last_message(alice_page).locator(".reaction")).to_have_count(0)
    assert Message.objects.filter(kind="reaction").count() == 2
    assert [e for e in errors if not re.search("favicon", e)] == []
