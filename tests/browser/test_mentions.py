"""Mentions in headless Chromium: autocomplete, highlight, the mention badge, and muted conversations."""

from playwright.sync_api import expect

from chat.models import Conversation, Membership
from tests.browser.test_chat import (
    HIDE_TAB,
    RECORD_NOTIFICATIONS,
    conversation_button,
    open_chat,
    send,
    signed_in_context,
)


def test_mention_autocomplete_highlight_badge_and_muted_notifications(browser, live_url, alice, bob, make_user):
    make_user("carol", display_name="Carol Danvers")
    channel = Conversation.objects.create(kind="channel", name="general", created_by=alice)
    other = Conversation.objects.create(kind="channel", name="random", created_by=alice)
    for conversation in (channel, other):
        Membership.objects.create(conversation=conversation, user=alice, role="owner")
        Membership.objects.create(conversation=conversation, user=bob)
    Membership.objects.filter(conversation=channel, user=alice).update(muted=True)
    errors = []
    alice_context = signed_in_context(browser, live_url, alice)
    alice_context.add_init_script(RECORD_NOTIFICATIONS)
    alice_context.grant_permissions(["notifications"])
    alice_page = open_chat(alice_context, live_url, errors, "alice")
    bob_page = open_chat(signed_in_context(browser, live_url, bob), live_url, errors, "bob")
    conversation_button(alice_page, "random").click()
    conversation_button(bob_page, "general").click()
    alice_page.evaluate(HIDE_TAB)

    # Bob types "@al": the list offers Alice (by name or username), not @channel (he is no admin).
    composer = bob_page.get_by_label("Message", exact=True)
    composer.press_sequentially("Lunch? @al")
    options = bob_page.get_by_role("listbox", name="People to mention").get_by_role("option")
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("Alice Liddell")
    expect(options.first).to_have_attribute("aria-selected", "true")
    # (A textarea takes no aria-expanded; the highlighted option is its active descendant.)
    expect(composer).to_have_attribute("aria-activedescendant", "mention-option-0")
    composer.press("Enter")  # picks, does not send
    expect(composer).to_have_value("Lunch? @alice ")
    expect(composer).not_to_have_attribute("aria-activedescendant", "mention-option-0")
    expect(bob_page.get_by_role("listbox", name="People to mention")).to_be_hidden()
    composer.press_sequentially("at noon")
    composer.press("Enter")
    composer.press_sequentially("@ch")
    expect(bob_page.get_by_role("listbox", name="People to mention")).to_be_hidden()
    composer.fill("")

    # Alice's muted channel stays quiet for plain messages but shows the mention apart.
    send(bob_page, "plain chatter")
    row = conversation_button(alice_page, "general")
    expect(row.locator(".badge-mention")).to_have_text("@1")
    expect(row.locator(".badge-mention")).to_have_attribute("aria-label", "1 mention")
    expect(row.locator(".badge:not(.badge-mention)")).to_have_text("2")
    notifications = alice_page.evaluate("window.shownNotifications")
    assert notifications == [["Bob Builder mentioned you in general", "Lunch? @alice at noon"]]

    # Opened, the message is highlighted for Alice and the mention badge goes.
    row.click()
    mention = alice_page.locator("#messages .message.mentions-me")
    expect(mention).to_have_count(1)
    expect(mention.locator(".mention-me")).to_have_text("@alice")
    expect(row.locator(".badge-mention")).to_have_count(0)
    # Bob sees the mention, but not as his own.
    expect(bob_page.locator("#messages .mention")).to_have_text("@alice")
    expect(bob_page.locator("#messages .mention-me")).to_have_count(0)

    # @here from a member is refused by the server, and said so.
    send(bob_page, "@here anyone?")
    expect(bob_page.locator("#messages .message-status.error")).to_contain_text("owner and admins")
    assert [e for e in errors if "403" not in e] == []
