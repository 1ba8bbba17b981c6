"""Searching in headless Chromium: the results pane, and jumping to a hit deep in the history."""

from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from chat.models import Conversation, Membership, Message
from tests.browser.test_chat import conversation_button, open_chat, signed_in_context


def test_search_a_public_channel_and_jump_to_an_old_message(browser, live_url, alice, bob, artifacts_dir):
    channel = Conversation.objects.create(kind="channel", name="planning", created_by=alice)
    Membership.objects.create(conversation=channel, user=alice, role="owner")
    Membership.objects.create(conversation=channel, user=bob)
    start = timezone.now() - timedelta(hours=3)
    target = Message.objects.create(
        conversation=channel,
        sender=bob,
        client_id="q",
        body="The **quarterly** numbers are in the shared drive",
        created_at=start,
    )
    for n in range(120):  # more than two pages of history above the hit
        Message.objects.create(
            conversation=channel,
            sender=bob if n % 2 else alice,
            client_id=f"m{n}",
            body=f"chatter number {n}",
            created_at=start + timedelta(minutes=1 + n),
        )
    Message.objects.create(conversation=channel, sender=alice, client_id="q2", body="quarterly review moved")
    errors = []
    page = open_chat(signed_in_context(browser, live_url, alice), live_url, errors, "alice")
    conversation_button(page, "planning").click()
    expect(page.locator("#messages .message-text").last).to_have_text("quarterly review moved")

    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.keyboard.press("Control+Shift+F")
    dialog = page.locator("#search-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Search for").fill("quarterly numbers")
    hits = dialog.locator(".search-hit")
    expect(hits).to_have_count(1)
    expect(hits.first.locator(".search-hit-where")).to_have_text("planning")
    expect(hits.first.locator(".search-hit-who")).to_have_text("Bob Builder")
    expect(hits.first.locator("mark")).to_have_text(["quarterly", "numbers"])
    expect(dialog.locator("[data-status]")).to_have_text("1 result")
    assert any("/api/search/?q=quarterly+numbers" in url for url in requests)

    # A single word finds both, best first; the pane is what the screenshot shows.
    dialog.get_by_label("Search for").fill("quarterly")
    expect(hits).to_have_count(2)
    dialog.screenshot(path=str(artifacts_dir / "search-pane.png"))

    hits.filter(has_text="shared drive").click()
    expect(dialog).to_be_hidden()
    found = page.locator(f"#message-{target.pk}")
    expect(found).to_be_in_viewport()
    expect(found).to_have_class("message found")
    expect(found.locator("strong")).to_have_text("quarterly")

    # Filters narrow it: Alice never wrote "drive"; Bob did.
    page.keyboard.press("Control+Shift+F")
    dialog.locator("summary").click()
    dialog.get_by_label("From (username)").fill("alice")
    dialog.get_by_label("Search for").fill("drive")
    dialog.get_by_role("button", name="Search", exact=True).click()
    expect(dialog.locator("[data-status]")).to_have_text("No messages found.")
    dialog.get_by_label("From (username)").fill("bob")
    dialog.get_by_label("From (username)").press("Enter")
    expect(hits).to_have_count(1)
    assert errors == []
