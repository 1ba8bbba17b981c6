"""Finding your way in headless Chromium: the quick switcher, the first unread message, Up to edit,
per-conversation notification level and the notification privacy setting."""

from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from chat.models import Conversation, Membership, Message
from tests.browser.test_chat import (
    HIDE_TAB,
    RECORD_NOTIFICATIONS,
    conversation_button,
    open_chat,
    send,
    signed_in_context,
)


def connected(page):
    """Open "ops" and wait for the socket's hello (it brings who is online): live frames flow from here."""
    conversation_button(page, "ops").click()
    expect(page.locator("#online-heading")).to_have_text("Online — 2")


def channel_with(name, owner, *members):
    channel = Conversation.objects.create(kind="channel", name=name, created_by=owner)
    Membership.objects.create(conversation=channel, user=owner, role="owner")
    for member in members:
        Membership.objects.create(conversation=channel, user=member)
    return channel


def test_quick_switcher_opens_conversations_and_people(browser, live_url, alice, bob, make_user, artifacts_dir):
    make_user("carol", display_name="Carol Danvers")
    channel_with("design", alice, bob)
    channel_with("deploys", alice)
    channel_with("random", alice)
    errors = []
    page = open_chat(signed_in_context(browser, live_url, alice), live_url, errors, "alice")
    expect(conversation_button(page, "random")).to_be_visible()

    page.keyboard.press("Control+k")
    switcher = page.get_by_role("dialog", name="Jump to a conversation or person")
    expect(switcher).to_be_visible()
    field = switcher.get_by_role("combobox")
    expect(field).to_be_focused()
    field.fill("de")
    options = switcher.get_by_role("option")
    expect(options).to_have_count(2)
    expect(options.first).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowDown")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    switcher.screenshot(path=str(artifacts_dir / "quick-switcher.png"))
    chosen = options.nth(1).inner_text()
    page.keyboard.press("Enter")
    expect(switcher).to_be_hidden()
    expect(page.locator("#pane-title")).to_have_text(chosen.strip())

    # A person without a conversation yet: Enter starts the direct message.
    page.keyboard.press("Control+k")
    field.fill("carol")
    expect(options.filter(has_text="Carol Danvers")).to_have_count(1)
    expect(options.first).to_contain_text("new message")
    page.keyboard.press("Enter")
    expect(page.locator("#pane-title")).to_have_text("Carol Danvers")
    # Direct messages are encrypted: the key dialog asks first; put it off.
    page.get_by_role("dialog", name="Set up end-to-end encryption").press("Escape")
    # Escape closes it and nothing changes.
    page.keyboard.press("Control+k")
    field.fill("zzz")
    expect(switcher.get_by_text("Nothing matches.")).to_be_visible()
    page.keyboard.press("Escape")
    expect(switcher).to_be_hidden()
    assert errors == []


def test_opening_shows_the_first_unread_and_up_edits_the_last_message(browser, live_url, alice, bob):
    channel = channel_with("history", alice, bob)
    start = timezone.now() - timedelta(hours=2)
    for n in range(80):
        Message.objects.create(
            conversation=channel,
            sender=alice,
            client_id=f"a{n}",
            body=f"old {n}",
            created_at=start + timedelta(seconds=n),
        )
    newest_read = Message.objects.filter(conversation=channel).latest("id")
    Membership.objects.filter(conversation=channel, user=bob).update(last_read_message_id=newest_read.pk)
    for n in range(60):  # more unread than one page of history
        Message.objects.create(
            conversation=channel,
            sender=alice,
            client_id=f"b{n}",
            body=f"new {n}",
            created_at=start + timedelta(minutes=5, seconds=n),
        )
    errors = []
    page = open_chat(signed_in_context(browser, live_url, bob), live_url, errors, "bob")
    row = conversation_button(page, "history")
    expect(row.locator(".badge")).to_have_text("60")
    row.click()
    divider = page.locator("#unread-divider")
    expect(divider).to_have_text("New messages")
    expect(divider).to_be_in_viewport()
    first_unread = page.locator("#unread-divider + li")
    expect(first_unread.locator(".message-text")).to_have_text("new 0")

    # Up in the empty composer edits Bob's last message; Escape leaves it as it was.
    send(page, "first draft")
    send(page, "second draft")
    composer = page.get_by_label("Message", exact=True)
    expect(page.locator("#messages .message.mine")).to_have_count(2)
    expect(page.locator("#messages .message.pending")).to_have_count(0)  # both stored: Up edits stored ones
    composer.press("ArrowUp")
    editor = page.get_by_label("Edit message")
    expect(editor).to_be_focused()
    expect(editor).to_have_value("second draft")
    editor.fill("second, edited")
    editor.press("Enter")
    expect(page.locator("#messages .message.mine .message-text").last).to_have_text("second, edited")
    # Up with text in the composer moves the caret as usual.
    composer.fill("typing")
    composer.press("ArrowUp")
    expect(page.get_by_label("Edit message")).to_have_count(0)
    assert errors == []


def test_notification_level_and_privacy(browser, live_url, alice, bob):
    channel = channel_with("ops", alice, bob)
    errors = []
    alice_context = signed_in_context(browser, live_url, alice)
    alice_context.add_init_script(RECORD_NOTIFICATIONS)
    alice_context.grant_permissions(["notifications"])
    alice_page = open_chat(alice_context, live_url, errors, "alice")
    bob_page = open_chat(signed_in_context(browser, live_url, bob), live_url, errors, "bob")
    conversation_button(bob_page, "ops").click()
    conversation_button(alice_page, "ops").click()

    # Alice sets "mentions only" in the conversation's Members dialog: the server keeps it.
    alice_page.get_by_role("button", name="Members").click()
    level = alice_page.get_by_label("Notifications for this conversation")
    expect(level).to_have_value("all")
    level.select_option("mentions")
    alice_page.keyboard.press("Escape")
    expect(conversation_button(alice_page, "ops")).to_have_class("conversation active muted")
    assert Membership.objects.get(conversation=channel, user=alice).muted is True
    alice_page.evaluate(HIDE_TAB)
    send(bob_page, "quiet please")
    expect(conversation_button(alice_page, "ops").locator(".badge")).to_have_count(0)  # active conversation
    bob_page.wait_for_timeout(300)
    assert alice_page.evaluate("window.shownNotifications") == []
    alice_page.reload()
    connected(alice_page)
    alice_page.evaluate(HIDE_TAB)
    alice_page.get_by_role("button", name="Members").click()
    expect(alice_page.get_by_label("Notifications for this conversation")).to_have_value("mentions")
    alice_page.get_by_label("Notifications for this conversation").select_option("all")
    alice_page.keyboard.press("Escape")
    expect(conversation_button(alice_page, "ops")).to_have_class("conversation active")

    # Privacy: the default shows the text of a plaintext conversation, the sender only of an encrypted one.
    privacy = alice_page.get_by_label("Notification previews")
    expect(privacy).to_have_value("auto")
    defaults = alice_page.evaluate(
        """async () => {
          const { privacyFor } = await import("/static/chat/js/notifications.js");
          const plain = { encrypted: false };
          const sealed = { encrypted: true };
          return [privacyFor(plain), privacyFor(sealed), privacyFor(sealed, "text")];
        }"""
    )
    assert defaults == ["text", "sender", "text"]
    send(bob_page, "the build is green")
    alice_page.wait_for_function("() => window.shownNotifications.length === 1")
    assert alice_page.evaluate("window.shownNotifications") == [["Bob Builder in ops", "the build is green"]]
    # "Sender only" hides the text; "nothing" hides the sender too; the choice survives a reload.
    privacy.select_option("sender")
    send(bob_page, "secret plans")
    alice_page.wait_for_function("() => window.shownNotifications.length === 2")
    assert alice_page.evaluate("window.shownNotifications")[1] == ["Bob Builder in ops", "New message"]
    privacy.select_option("nothing")
    alice_page.reload()
    expect(alice_page.get_by_label("Notification previews")).to_have_value("nothing")
    connected(alice_page)
    alice_page.evaluate(HIDE_TAB)
    send(bob_page, "more secrets")
    alice_page.wait_for_function("() => window.shownNotifications.length === 1")
    shown = alice_page.evaluate("window.shownNotifications")
    assert shown == [["Chatterbox", "New message"]]
    assert errors == []
