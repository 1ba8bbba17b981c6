"""The chat page in headless Chromium, against a real Daphne server: two people, live."""

import json
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from playwright.sync_api import expect

from chat.models import Conversation, Membership, Message

PHONE = {"width": 390, "height": 844}


def signed_in_context(browser, live_url, user, **options):
    """Return a browser context whose session cookie signs in `user` (a session made in the test DB)."""
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.save()
    context = browser.new_context(viewport=options.pop("viewport", {"width": 1200, "height": 800}), **options)
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session.session_key, "url": live_url}])
    context.set_default_timeout(10_000)
    return context


def open_chat(context, live_url, errors, name):
    """Open the chat page, collecting console errors and uncaught exceptions under `name`."""
    page = context.new_page()
    page.on("console", lambda message: message.type == "error" and errors.append(f"{name}: {message.text}"))
    page.on("pageerror", lambda error: errors.append(f"{name}: {error}"))
    page.goto(f"{live_url}/")
    expect(page.locator("#chat-app")).to_be_visible()
    return page


def conversation_button(page, name):
    return page.locator("#conversation-list .conversation", has_text=name)


def send(page, text):
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_label("Message", exact=True).press("Enter")


def message_texts(page):
    return page.locator("#messages .message .message-text")


def test_chat_page_is_for_the_signed_in_and_hands_its_data_to_the_script(client, client_of, alice):
    landing = client.get("/")
    assert landing.status_code == 200
    assert b'id="chat-data"' not in landing.content and b"/accounts/signup/" in landing.content

    response = client_of(alice).get("/")
    assert response.status_code == 200
    html = response.content.decode()
    data = json.loads(re.search(r'<script id="chat-data" type="application/json">(.*?)</script>', html).group(1))
    assert data == {
        "user": {"id": alice.pk, "username": "alice", "display_name": "Alice Liddell", "avatar_url": alice.avatar_url},
        "ws_path": "/ws/",
        "limits": {
            "message_max_length": settings.CHAT_MESSAGE_MAX_CHARS,
            "group_max_members": settings.CHAT_GROUP_MAX_MEMBERS,
            "history_page": 50,
            "attachment_max_bytes": settings.ATTACHMENT_MAX_BYTES,
            "attachment_max_seconds": settings.ATTACHMENT_MAX_SECONDS,
        },
    }
    # The strict CSP holds: every script is a file or inert JSON, and no element has a style attribute.
    assert "script-src 'self'" in response["Content-Security-Policy"]
    scripts = re.findall(r"<script\b([^>]*)>", html)
    assert scripts and all("src=" in attributes or 'type="application/json"' in attributes for attributes in scripts)
    assert " style=" not in html


def test_two_people_chat_live_and_catch_up_after_going_offline(browser, live_url, alice, bob, artifacts_dir):
    errors = []
    alice_context = signed_in_context(browser, live_url, alice)
    bob_context = signed_in_context(browser, live_url, bob)
    alice_page = open_chat(alice_context, live_url, errors, "alice")
    bob_page = open_chat(bob_context, live_url, errors, "bob")
    expect(alice_page.get_by_text("No conversations yet.")).to_be_visible()

    # Alice creates a public channel; an empty name is refused with a clear message first.
    alice_page.get_by_role("button", name="New conversation").click()
    dialog = alice_page.locator("#new-conversation-dialog")
    dialog.get_by_role("tab", name="Channels").click()
    dialog.get_by_role("button", name="Create channel").click()
    expect(dialog.get_by_role("alert")).to_have_text("Give the channel a name.")
    dialog.get_by_label("Channel name").fill("general")
    dialog.get_by_label("Topic").fill("Anything goes")
    dialog.get_by_role("button", name="Create channel").click()
    expect(dialog).to_be_hidden()
    expect(alice_page.locator("#pane-title")).to_have_text("general")
    expect(alice_page.get_by_label("Message", exact=True)).to_be_focused()

    # Bob browses the public channels and joins it.
    bob_page.get_by_role("button", name="New conversation").click()
    bob_dialog = bob_page.locator("#new-conversation-dialog")
    bob_dialog.get_by_role("tab", name="Channels").click()
    expect(bob_dialog.locator(".channel-row")).to_contain_text("Anything goes · 1 member")
    bob_dialog.get_by_role("button", name="Join general").click()
    expect(bob_dialog).to_be_hidden()
    expect(bob_page.locator("#pane-title")).to_have_text("general")

    # Typing shows on the other side, and goes away when the message arrives.
    bob_input = bob_page.get_by_label("Message", exact=True)
    bob_input.press_sequentially("Hello Al")
    expect(alice_page.locator("#typing-line")).to_have_text("Bob Builder is typing…")
    bob_input.fill("Hello Alice, the notes are at https://example.com/notes.")
    bob_input.press("Enter")
    expect(message_texts(alice_page)).to_have_text(["Hello Alice, the notes are at https://example.com/notes."])
    expect(alice_page.locator("#typing-line")).to_have_text("")
    link = alice_page.locator("#messages a", has_text="https://example.com/notes")
    expect(link).to_have_attribute("href", "https://example.com/notes")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener noreferrer")

    # Alice replies to it; the quote shows above her composer and in the message Bob gets.
    alice_page.locator("#messages .message").first.hover()
    alice_page.get_by_role("button", name="Reply to Bob Builder").click()
    expect(alice_page.locator("#reply-preview")).to_contain_text("Replying to Bob Builder: Hello Alice")
    send(alice_page, "Thanks, Bob!")
    expect(alice_page.locator("#reply-preview")).to_be_hidden()
    reply = bob_page.locator("#messages .message", has_text="Thanks, Bob!")
    expect(reply.locator(".quote")).to_contain_text("Bob Builder Hello Alice, the notes are at")

    # Markup in a message is text, never HTML.
    send(bob_page, '<img src=x onerror="window.hacked=1"> <b>bold</b>')
    expect(message_texts(alice_page).last).to_have_text('<img src=x onerror="window.hacked=1"> <b>bold</b>')
    assert alice_page.locator("#messages img[src=x], #messages b").count() == 0

    # Alice edits her reply and Bob deletes his markup message; both sides see it.
    alice_message = alice_page.locator("#messages .message", has_text="Thanks, Bob!")
    alice_message.hover()
    alice_message.get_by_role("button", name="Edit your message").click()
    editor = alice_page.get_by_label("Edit message")
    editor.fill("Thanks a lot, Bob!")
    editor.press("Enter")
    expect(reply).to_have_count(0)
    edited = bob_page.locator("#messages .message", has_text="Thanks a lot, Bob!")
    expect(edited.locator(".edited")).to_have_text("(edited)")
    markup = bob_page.locator("#messages .message", has_text="<b>bold</b>")
    markup.hover()
    markup.get_by_role("button", name="Delete your message").click()
    bob_page.locator("#confirm-dialog").get_by_role("button", name="Delete").click()
    expect(alice_page.locator("#messages .deleted-text")).to_have_text("This message was deleted.")

    # Unread badge: Bob is looking at another channel when Alice writes in general.
    bob_page.get_by_role("button", name="New conversation").click()
    bob_dialog.get_by_role("tab", name="Channels").click()
    bob_dialog.get_by_label("Channel name").fill("random")
    bob_dialog.get_by_role("button", name="Create channel").click()
    expect(bob_page.locator("#pane-title")).to_have_text("random")
    send(alice_page, "Are you there?")
    general_on_bob = conversation_button(bob_page, "general")
    expect(general_on_bob.locator(".badge")).to_have_text("1")
    expect(general_on_bob).to_contain_text("Alice Liddell: Are you there?")
    general_on_bob.click()
    expect(message_texts(bob_page).last).to_have_text("Are you there?")
    expect(general_on_bob.locator(".badge")).to_have_count(0)

    # Bob goes offline: the banner says so, his message waits in the outbox, Alice keeps writing.
    bob_context.set_offline(True)
    expect(bob_page.locator("#connection-banner")).to_contain_text("You are offline")
    send(bob_page, "Written while offline")
    expect(bob_page.locator("#messages .message.pending")).to_contain_text("Sending…")
    bob_page.screenshot(path=str(artifacts_dir / "chat-offline.png"))
    for number in range(1, 4):
        send(alice_page, f"Catch-up {number}")
    expect(message_texts(alice_page).last).to_have_text("Catch-up 3")

    # Back online: everything arrives exactly once, in order, and the outbox is delivered once.
    bob_context.set_offline(False)
    expect(bob_page.locator("#connection-banner")).to_be_hidden()
    expected = [
        "Hello Alice, the notes are at https://example.com/notes.",
        "Thanks a lot, Bob!",
        "This message was deleted.",
        "Are you there?",
        "Catch-up 1",
        "Catch-up 2",
        "Catch-up 3",
        "Written while offline",
    ]
    expect(message_texts(bob_page)).to_have_text(expected)
    expect(message_texts(alice_page)).to_have_text(expected)
    expect(bob_page.locator("#messages .message.pending")).to_have_count(0)
    assert Message.objects.filter(body="Written while offline").count() == 1

    # Bob's new socket came online in general: each sees the other in the online list.
    expect(alice_page.locator("#online-list")).to_contain_text("Bob Builder")
    expect(alice_page.locator("#online-heading")).to_have_text("Online — 2")
    expect(bob_page.locator("#online-list")).to_contain_text("Alice Liddell")
    alice_page.screenshot(path=str(artifacts_dir / "chat-desktop.png"))

    # On a phone the list and the conversation are two screens.
    phone_context = signed_in_context(browser, live_url, bob, viewport=PHONE, is_mobile=True, has_touch=True)
    phone = open_chat(phone_context, live_url, errors, "bob-phone")
    expect(phone.locator(".sidebar")).to_be_visible()
    expect(phone.locator(".pane")).to_be_hidden()
    expect(conversation_button(phone, "general")).to_be_visible()
    phone.screenshot(path=str(artifacts_dir / "chat-phone-list.png"))
    conversation_button(phone, "general").click()
    expect(phone.locator(".sidebar")).to_be_hidden()
    expect(message_texts(phone).last).to_have_text("Written while offline")
    # No hover on a touch screen: tapping a message shows its actions.
    phone_message = phone.locator("#messages .message").last
    expect(phone_message.get_by_role("button", name="Delete your message")).to_be_hidden()
    phone_message.locator(".message-text").tap()
    expect(phone_message.get_by_role("button", name="Delete your message")).to_be_visible()
    phone.screenshot(path=str(artifacts_dir / "chat-phone-conversation.png"))
    phone.get_by_role("button", name="Back to conversations").click()
    expect(phone.locator(".sidebar")).to_be_visible()

    # When Bob's last tab closes, Alice sees him go offline.
    phone_context.close()
    bob_context.close()
    expect(alice_page.locator("#online-list")).not_to_contain_text("Bob Builder")
    alice_context.close()
    assert errors == []


def test_group_members_panel_and_encrypted_direct_message(browser, live_url, alice, bob, make_user, artifacts_dir):
    make_user("carol", display_name="Carol Danvers")
    errors = []
    alice_context = signed_in_context(browser, live_url, alice)
    page = open_chat(alice_context, live_url, errors, "alice")

    # A group with Bob, found by searching; groups are encrypted unless the box is unticked.
    page.get_by_role("button", name="New conversation").click()
    dialog = page.locator("#new-conversation-dialog")
    dialog.get_by_role("tab", name="Group").click()
    dialog.get_by_label("Group name").fill("Project X")
    dialog.get_by_label("Add people").fill("bob")
    dialog.get_by_role("button", name="Add Bob Builder (@bob) to the group").click()
    expect(dialog.locator("#group-chosen")).to_contain_text("Bob Builder")
    expect(dialog.get_by_label("End-to-end encrypted")).to_be_checked()
    dialog.get_by_label("End-to-end encrypted").uncheck()
    dialog.get_by_role("button", name="Create group").click()
    expect(page.locator("#pane-title")).to_have_text("Project X")
    expect(page.locator("#pane-subtitle")).to_have_text("2 members")

    # The members panel: an unknown username is refused, Carol is invited and removed again.
    page.get_by_role("button", name="Members").click()
    members = page.locator("#members-dialog")
    members.get_by_label("Invite people").fill("nobody-here")
    members.get_by_role("button", name="Invite").click()
    expect(members.get_by_role("alert")).to_have_text("No such user: nobody-here.")
    # The browser itself logs the refused request; that one console error is expected.
    assert errors.pop().endswith("status of 404 (Not Found)")
    members.get_by_label("Invite people").fill("carol")
    members.get_by_role("button", name="Invite").click()
    expect(members.locator(".members-list")).to_contain_text("Carol Danvers")
    members.get_by_label("Manage Carol Danvers").click()
    members.get_by_role("button", name="Remove Carol Danvers").click()
    # Removing someone asks first.
    page.locator("#confirm-dialog").get_by_role("button", name="Remove").click()
    expect(members.locator(".members-list")).not_to_contain_text("Carol Danvers")
    page.keyboard.press("Escape")
    expect(members).to_be_hidden()

    # A message over the length limit is refused in the composer, before it reaches the server.
    too_long = "x" * (settings.CHAT_MESSAGE_MAX_CHARS + 1)
    page.get_by_label("Message", exact=True).fill(too_long)
    page.get_by_label("Message", exact=True).press("Enter")
    expect(page.locator("#composer-error")).to_contain_text("too long")

    # Shift+Enter starts a new line; Enter sends.
    composer = page.get_by_label("Message", exact=True)
    composer.fill("First line")
    composer.press("Shift+Enter")
    composer.press_sequentially("second line")
    composer.press("Enter")
    expect(message_texts(page)).to_have_text(["First line\nsecond line"])
    expect(composer).to_have_value("")

    # Direct messages are end-to-end encrypted: opening one asks Alice to set up her key; put
    # off, the composer says what is missing (tests/browser/test_e2e.py goes on from here).
    page.get_by_role("button", name="New conversation").click()
    dialog.get_by_role("tab", name="Direct message").click()
    dialog.get_by_label("Find a person").fill("car")
    dialog.get_by_role("button", name="Message Carol Danvers (@carol)").click()
    expect(page.locator("#pane-title")).to_have_text("Carol Danvers")
    key_dialog = page.get_by_role("dialog", name="Set up end-to-end encryption")
    expect(key_dialog).to_be_visible()
    expect(key_dialog.get_by_label("Encryption passphrase")).to_be_focused()
    page.keyboard.press("Escape")
    expect(key_dialog).to_be_hidden()
    expect(page.locator("#encrypted-notice")).to_contain_text("Set up end-to-end encryption to write here.")
    expect(page.locator("#encrypted-notice").get_by_role("button", name="Set up encryption")).to_be_visible()
    expect(page.get_by_label("Message", exact=True)).to_be_disabled()

    # Leaving the group takes it off the list.
    conversation_button(page, "Project X").click()
    page.get_by_role("button", name="Members").click()
    members.get_by_role("button", name="Leave group").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Leave group").click()
    expect(conversation_button(page, "Project X")).to_have_count(0)
    expect(page.get_by_role("alert")).to_have_text("You are no longer in Project X.")
    page.screenshot(path=str(artifacts_dir / "chat-group.png"))
    alice_context.close()
    assert errors == []


def test_joining_a_channel_shows_who_is_online_there(browser, live_url, alice, bob):
    channel = Conversation.objects.create(kind="channel", name="general", created_by=alice)
    Membership.objects.create(conversation=channel, user=alice, role="owner")
    errors = []
    alice_context = signed_in_context(browser, live_url, alice)
    bob_context = signed_in_context(browser, live_url, bob)
    alice_page = open_chat(alice_context, live_url, errors, "alice")
    bob_page = open_chat(bob_context, live_url, errors, "bob")
    conversation_button(alice_page, "general").click()
    bob_page.get_by_role("button", name="New conversation").click()
    bob_page.locator("#new-conversation-dialog").get_by_role("tab", name="Channels").click()
    bob_page.get_by_role("button", name="Join general").click()
    expect(bob_page.locator("#pane-title")).to_have_text("general")
    try:
        expect(alice_page.locator("#online-list")).to_contain_text("Bob Builder", timeout=2000)
        expect(bob_page.locator("#online-list")).to_contain_text("Alice Liddell", timeout=2000)
    finally:
        alice_context.close()
        bob_context.close()
    assert errors == []


@pytest.fixture
def long_channel(alice, bob):
    """A channel with 120 messages from Alice and Bob, half of them sent yesterday."""
    # Plain rows, not services: Playwright's event loop runs in this thread, and the services'
    # broadcasts would need one of their own. Nobody is connected yet to hear them anyway.
    channel = Conversation.objects.create(kind="channel", name="history", created_by=alice)
    Membership.objects.create(conversation=channel, user=alice, role="owner")
    Membership.objects.create(conversation=channel, user=bob)
    # Fixed hours of UTC days, so the day separators do not depend on when the test runs.
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    Message.objects.bulk_create(
        Message(
            conversation=channel,
            sender=alice if number % 3 else bob,
            client_id=f"seed-{number}",
            body=f"Message number {number}",
            created_at=today - timedelta(days=1 if number < 60 else 0) + timedelta(hours=1, minutes=number),
        )
        for number in range(120)
    )
    return channel


def test_history_loads_older_pages_when_scrolling_up(browser, live_url, bob, long_channel):
    # Bob has read it all: with unread messages the conversation would open at the first of
    # them (test_finding_your_way.py), loading older pages by itself.
    newest = Message.objects.filter(conversation=long_channel).latest("id").pk
    Membership.objects.filter(conversation=long_channel, user=bob).update(last_read_message_id=newest)
    errors = []
    context = signed_in_context(browser, live_url, bob, timezone_id="UTC")
    page = open_chat(context, live_url, errors, "bob")
    conversation_button(page, "history").click()
    texts = message_texts(page)
    expect(texts.last).to_have_text("Message number 119")
    expect(texts).to_have_count(50)
    expect(page.locator(".day-separator")).to_have_text(["Today"])

    # Scrolling to the top loads the rest, page by page, without moving what is on screen.
    while page.locator("#history-status").inner_text() != "This is the beginning of the conversation.":
        count = texts.count()
        page.locator("#messages-scroll").evaluate("scroller => { scroller.scrollTop = 0; }")
        expect(texts).not_to_have_count(count)
    expect(texts).to_have_count(120)
    expect(texts.first).to_have_text("Message number 0")
    expect(page.locator(".day-separator")).to_have_text(["Yesterday", "Today"])
    context.close()
    assert errors == []


# Headless Chromium reports every page as visible and focused, so a tab in the background is
# simulated: visibilityState and hasFocus are overridden and visibilitychange is fired.
HIDE_TAB = """() => {
  Object.defineProperty(document, "visibilityState", {value: "hidden", configurable: true});
  Object.defineProperty(document, "hidden", {value: true, configurable: true});
  document.hasFocus = () => false;
  document.dispatchEvent(new Event("visibilitychange"));
}"""
SHOW_TAB = """() => {
  delete document.visibilityState;
  delete document.hidden;
  delete document.hasFocus;
  document.dispatchEvent(new Event("visibilitychange"));
}"""
# Records each desktop notification while still showing it through the real API.
RECORD_NOTIFICATIONS = """
window.shownNotifications = [];
const RealNotification = window.Notification;
window.Notification = class extends RealNotification {
  constructor(title, options) {
    super(title, options);
    window.shownNotifications.push([title, options.body]);
  }
};
"""


def test_hidden_tab_counts_messages_in_title_and_notifies(browser, live_url, alice, bob):
    team = Conversation.objects.create(kind="group", name="Team", created_by=alice)
    Membership.objects.create(conversation=team, user=alice, role="owner")
    Membership.objects.create(conversation=team, user=bob)
    errors = []
    alice_context = signed_in_context(browser, live_url, alice)
    alice_context.add_init_script(RECORD_NOTIFICATIONS)
    bob_context = signed_in_context(browser, live_url, bob)
    alice_page = open_chat(alice_context, live_url, errors, "alice")
    bob_page = open_chat(bob_context, live_url, errors, "bob")

    # Notifications are asked for from a button, never on load.
    enable = alice_page.get_by_role("button", name="Enable desktop notifications")
    expect(enable).to_be_visible()
    alice_context.grant_permissions(["notifications"])
    enable.click()
    expect(enable).to_be_hidden()

    conversation_button(alice_page, "Team").click()
    conversation_button(bob_page, "Team").click()
    expect(alice_page).to_have_title("Chatterbox")
    alice_page.evaluate(HIDE_TAB)
    send(bob_page, "First while you were away")
    send(bob_page, "Second while you were away")
    expect(alice_page).to_have_title("(2) Chatterbox")
    assert alice_page.evaluate("window.shownNotifications") == [
        ["Bob Builder in Team", "First while you were away"],
        ["Bob Builder in Team", "Second while you were away"],
    ]
    # Nothing is reported read while the tab is hidden...
    assert Membership.objects.get(conversation=team, user=alice).last_read_message_id == 0
    expect(bob_page.locator("#messages .seen")).to_have_count(0)

    # ...and once Alice looks again, Bob sees her read marker under his last message.
    alice_page.evaluate(SHOW_TAB)
    expect(alice_page).to_have_title("Chatterbox")
    seen = bob_page.locator("#messages .message", has_text="Second while you were away").locator(".seen")
    expect(seen).to_have_text("Seen by Alice Liddell")
    newest = Message.objects.filter(conversation=team).latest("id").pk
    assert Membership.objects.get(conversation=team, user=alice).last_read_message_id == newest
    alice_context.close()
    bob_context.close()
    assert errors == []


def test_conversation_rows_are_updated_in_place_so_a_click_mid_update_lands(browser, live_url, alice, bob):
    """A new message updates its row and moves it to the top without rebuilding the other rows."""
    first = Conversation.objects.create(kind="channel", name="first", created_by=alice)
    second = Conversation.objects.create(kind="channel", name="second", created_by=alice)
    for conversation in (first, second):
        Membership.objects.create(conversation=conversation, user=alice, role="owner")
        Membership.objects.create(conversation=conversation, user=bob)
    errors = []
    alice_context = signed_in_context(browser, live_url, alice)
    bob_context = signed_in_context(browser, live_url, bob)
    try:
        alice_page = open_chat(alice_context, live_url, errors, "alice")
        bob_page = open_chat(bob_context, live_url, errors, "bob")
        expect(alice_page.locator("#conversation-list .conversation")).to_have_count(2)
        # Mark the row elements: a rebuilt row would lose the mark.
        alice_page.evaluate(
            """document.querySelectorAll('#conversation-list li').forEach((item) => {
                item.rowMark = item.querySelector('.conversation-name').textContent;
            })"""
        )
        conversation_button(bob_page, "first").click()
        send(bob_page, "moves **first** to the top")
        # The preview shows the message as plain text, without its Markdown markers.
        expect(conversation_button(alice_page, "first")).to_contain_text("Bob Builder: moves first to the top")
        rows = alice_page.evaluate(
            """[...document.querySelectorAll('#conversation-list li')].map(
                (item) => [item.rowMark ?? null, item.querySelector('.conversation-name').textContent]
            )"""
        )
        assert rows == [["first", "first"], ["second", "second"]]
        conversation_button(alice_page, "second").click()
        expect(alice_page.locator("#pane-title")).to_have_text("second")
        expect(conversation_button(alice_page, "second")).to_have_attribute("aria-current", "true")
        expect(conversation_button(alice_page, "first")).not_to_have_attribute("aria-current", "true")
    finally:
        alice_context.close()
        bob_context.close()
    assert errors == []
