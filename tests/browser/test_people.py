"""People in the chat page: profile cards, status next to names, inviting with the search."""

from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from chat.models import Conversation, Membership, Message
from tests.browser.test_chat import PHONE, conversation_button, open_chat, signed_in_context


def make_team(alice, bob):
    team = Conversation.objects.create(kind="group", name="Team", created_by=alice)
    Membership.objects.create(conversation=team, user=alice, role="owner")
    Membership.objects.create(conversation=team, user=bob)
    Message.objects.create(conversation=team, sender=bob, client_id="hello", body="Hello team")
    return team


def test_profile_card_opens_from_a_name_or_picture_and_messages_the_person(
    browser, live_url, alice, bob, artifacts_dir
):
    bob.status = "Building a shed"
    bob.bio = "Can we fix it? Yes we can."
    bob.last_seen_at = timezone.now() - timedelta(minutes=5)
    bob.save()
    make_team(alice, bob)
    errors = []
    context = signed_in_context(browser, live_url, alice)
    page = open_chat(context, live_url, errors, "alice")
    conversation_button(page, "Team").click()
    message = page.locator("#messages .message", has_text="Hello team")
    expect(message).to_be_visible()

    # The sender's name opens the card: names, status, bio, when he was last here.
    message.get_by_role("button", name="Bob Builder", exact=True).click()
    card = page.locator("#profile-dialog")
    expect(card).to_be_visible()
    expect(card.get_by_role("heading", name="Bob Builder")).to_be_visible()
    expect(card).to_contain_text("@bob")
    expect(card.locator(".profile-status")).to_have_text("Building a shed")
    expect(card.locator(".profile-bio")).to_have_text("Can we fix it? Yes we can.")
    expect(card.locator(".profile-presence")).to_have_text("Last seen 5 minutes ago")
    expect(card.locator("[data-key-state]")).to_have_text("Has not set up encryption yet.")
    page.screenshot(path=str(artifacts_dir / "people-profile-card.png"))
    page.keyboard.press("Escape")
    expect(card).to_be_hidden()

    # His picture does the same; "Message" opens (creating) the direct conversation with him.
    message.locator("img.avatar").click()
    expect(card).to_be_visible()
    card.get_by_role("button", name="Message").click()
    expect(card).to_be_hidden()
    expect(page.locator("#pane-title")).to_have_text("Bob Builder")
    # The header of a direct conversation shows his status next to his presence.
    expect(page.locator("#pane-subtitle")).to_contain_text("Building a shed")
    assert (
        Conversation.objects.filter(kind="direct", memberships__user=bob).filter(memberships__user=alice).count() == 1
    )
    page.screenshot(path=str(artifacts_dir / "people-direct-header.png"))

    # The DM is encrypted: the key dialog asks to set up encryption first; not now.
    page.locator("#key-dialog").get_by_role("button", name="Not now").click()
    # The DM's title opens the card too; one's own card offers the profile page instead.
    page.locator("#pane-title").click()
    expect(card.get_by_role("heading", name="Bob Builder")).to_be_visible()
    page.keyboard.press("Escape")
    page.locator("#online-list").get_by_role("button", name="Alice Liddell").click()
    expect(card.get_by_role("link", name="Edit your profile")).to_be_visible()
    expect(card.get_by_role("button", name="Message")).to_have_count(0)
    context.close()
    assert errors == []


def test_profile_card_on_a_phone(browser, live_url, alice, bob, artifacts_dir):
    bob.status = "Building a shed"
    bob.save()
    make_team(alice, bob)
    errors = []
    context = signed_in_context(browser, live_url, alice, viewport=PHONE, is_mobile=True, has_touch=True)
    page = open_chat(context, live_url, errors, "alice-phone")
    conversation_button(page, "Team").click()
    page.locator("#messages .message").get_by_role("button", name="Bob Builder", exact=True).click()
    card = page.locator("#profile-dialog")
    expect(card.get_by_role("button", name="Message")).to_be_visible()
    box = card.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    # Without a bio nothing stands in its place.
    expect(card.locator(".profile-bio")).to_have_count(0)
    assert "null" not in card.inner_text()
    page.screenshot(path=str(artifacts_dir / "people-profile-card-phone.png"))
    context.close()
    assert errors == []


def test_inviting_to_a_group_finds_people_by_name(browser, live_url, alice, bob, make_user, artifacts_dir):
    make_user("carol", display_name="Carol Danvers", status="On call")
    make_team(alice, bob)
    errors = []
    context = signed_in_context(browser, live_url, alice)
    page = open_chat(context, live_url, errors, "alice")
    conversation_button(page, "Team").click()
    page.get_by_role("button", name="Members").click()
    members = page.locator("#members-dialog")
    expect(members.locator(".members-list")).to_contain_text("Bob Builder")

    # Typing part of a display name finds Carol (members already in are not offered).
    members.get_by_label("Invite people").fill("dan")
    found = members.get_by_role("button", name="Invite Carol Danvers (@carol)")
    expect(found).to_be_visible()
    expect(found).to_contain_text("On call")
    members.get_by_label("Invite people").fill("Builder")
    expect(members.locator("[data-invite-results]")).to_have_text("Nobody found to invite.")
    members.get_by_label("Invite people").fill("Carol")
    page.screenshot(path=str(artifacts_dir / "people-invite-search.png"))
    members.get_by_role("button", name="Invite Carol Danvers (@carol)").click()
    expect(members.locator(".members-list")).to_contain_text("Carol Danvers")
    expect(members.locator(".members-list")).to_contain_text("On call")
    expect(members.get_by_label("Invite people")).to_have_value("")
    assert Membership.objects.filter(conversation__name="Team", user__username="carol").exists()

    # Archived, the group takes no newcomers: the invite form goes until it is unarchived.
    members.get_by_role("button", name="Archive").click()
    expect(members.get_by_role("button", name="Unarchive")).to_be_visible()
    expect(members.get_by_label("Invite people")).to_be_hidden()
    assert Conversation.objects.get(name="Team").archived
    members.get_by_role("button", name="Unarchive").click()
    expect(members.get_by_label("Invite people")).to_be_visible()
    context.close()
    assert errors == []


def test_profile_card_tells_where_the_safety_number_stands(browser, live_url, alice, bob, artifacts_dir):
    from tests.browser.test_accessibility import assert_accessible
    from tests.browser.test_e2e import PASSPHRASES, set_up_encryption, start_direct

    errors = []
    alice_page = open_chat(signed_in_context(browser, live_url, alice, bypass_csp=True), live_url, errors, "alice")
    bob_page = open_chat(signed_in_context(browser, live_url, bob), live_url, errors, "bob")
    set_up_encryption(alice_page, PASSPHRASES["alice"])
    set_up_encryption(bob_page, PASSPHRASES["bob"])
    start_direct(alice_page, "Bob Builder", "bob")
    alice_page.get_by_label("Message", exact=True).fill("Hi Bob")
    alice_page.get_by_label("Message", exact=True).press("Enter")
    conversation_button(bob_page, "Alice Liddell").click()
    bob_page.get_by_label("Message", exact=True).fill("Hi Alice")
    bob_page.get_by_label("Message", exact=True).press("Enter")
    message = alice_page.locator("#messages .message", has_text="Hi Alice")
    expect(message).to_be_visible()

    message.get_by_role("button", name="Bob Builder", exact=True).click()
    card = alice_page.locator("#profile-dialog")
    expect(card.locator("[data-key-state]")).to_have_text("Safety number not verified yet.")
    expect(card.locator(".profile-presence")).to_have_text("Online")
    assert_accessible(alice_page, "profile card with a key")

    # Its Safety number button leads to the comparison; once verified, the card says so.
    card.get_by_role("button", name="Safety number with Bob Builder").click()
    safety = alice_page.get_by_role("dialog", name="Safety number with Bob Builder")
    expect(safety).to_be_visible()
    assert_accessible(alice_page, "safety number dialog")
    safety.get_by_role("button", name="Mark as verified").click()
    expect(safety.locator(".safety-state")).to_have_text("You have verified Bob Builder.")
    safety.get_by_role("button", name="Close").last.click()
    expect(card.locator("[data-key-state]")).to_contain_text("You compared safety numbers.")
    alice_page.screenshot(path=str(artifacts_dir / "people-profile-card-verified.png"))
    assert errors == []
