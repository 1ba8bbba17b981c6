"""Moderation in headless Chromium against a real Daphne server: a ban from the admin cuts an
open chat page, an encrypted message is reported and the moderator reads its verified text, and
the owner's members dialog mutes a member live (and a blocked user's message stays folded)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from chat.models import Conversation, Membership, Message
from moderation.models import AuditEntry, Block, Report
from tests.browser.test_chat import PHONE, open_chat, send, signed_in_context
from tests.browser.test_e2e import PASSPHRASES, set_up_encryption, start_direct

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def moderator(make_user):
    return make_user("mod", display_name="Moderator", is_staff=True, is_superuser=True)


def admin_page(browser, live_url, moderator):
    context = signed_in_context(browser, live_url, moderator, viewport={"width": 1440, "height": 900})
    return context, context.new_page()


def make_group(owner, *members, name="Crew"):
    """A plaintext group made directly in the database, before any page is open (nothing to broadcast)."""
    group = Conversation.objects.create(kind="group", name=name, encrypted=False, created_by=owner)
    Membership.objects.create(conversation=group, user=owner, role="owner")
    for user, role in members:
        Membership.objects.create(conversation=group, user=user, role=role)
    return group


def message_item(page, text):
    return page.locator("#messages .message", has_text=text)


def test_a_ban_from_the_admin_cuts_the_users_open_chat(browser, live_url, alice, bob, moderator, artifacts_dir):
    group = make_group(bob, (alice, "member"))
    errors = []
    alice_context = signed_in_context(browser, live_url, alice)
    alice_page = open_chat(alice_context, live_url, errors, "alice")
    alice_page.locator("#conversation-list .conversation", has_text="Crew").click()
    send(alice_page, "before the ban")
    expect(message_item(alice_page, "before the ban")).not_to_have_class("message mine pending")
    expect(message_item(alice_page, "before the ban").locator(".message-status")).to_have_count(0)

    admin_context, admin = admin_page(browser, live_url, moderator)
    admin.goto(f"{live_url}/admin/accounts/user/")
    admin.locator(f'input[name="_selected_action"][value="{alice.pk}"]').check()
    admin.locator('select[name="action"]').select_option("ban_users")
    admin.get_by_role("button", name="Run").or_(admin.get_by_role("button", name="Go")).click()
    admin.get_by_label("Reason").fill("Threats in Crew")
    admin.get_by_role("button", name="Ban 1 user").click()
    expect(admin.locator(".messagelist")).to_contain_text("Banned 1 user(s).")

    # At once, without a reload: the socket is closed with 4403 and the page says so.
    expect(alice_page.locator("#connection-banner")).to_be_visible()
    expect(alice_page.locator("#connection-text")).to_have_text("This account was disabled.")
    # The composer is closed: nothing more can be written from this page.
    expect(alice_page.get_by_label("Message", exact=True)).to_be_disabled()
    assert not group.messages.filter(sender=alice).exclude(body="before the ban").exists()
    alice_page.screenshot(path=str(artifacts_dir / "moderation-banned-page.png"))
    # The session is gone too: a reload shows the page for visitors, with no chat.
    alice_page.reload()
    expect(alice_page.get_by_role("link", name="Log in").first).to_be_visible()
    expect(alice_page.locator("#messages")).to_have_count(0)
    entry = AuditEntry.objects.get(action="user.banned")
    assert (entry.actor, entry.target_user, entry.reason) == (moderator, alice, "Threats in Crew")
    alice_context.close()
    admin_context.close()
    assert errors == []


def test_a_reported_encrypted_message_reaches_the_moderator_verified(
    browser, live_url, alice, bob, moderator, artifacts_dir
):
    errors = []
    alice_context = signed_in_context(browser, live_url, alice)
    bob_context = signed_in_context(browser, live_url, bob)
    alice_page = open_chat(alice_context, live_url, errors, "alice")
    bob_page = open_chat(bob_context, live_url, errors, "bob")
    set_up_encryption(alice_page, PASSPHRASES["alice"])
    set_up_encryption(bob_page, PASSPHRASES["bob"])
    start_direct(alice_page, "Bob Builder", "bob")
    send(alice_page, "You will regret this, Bob")
    bob_page.locator("#conversation-list .conversation", has_text="Alice Liddell").click()
    reported = message_item(bob_page, "You will regret this, Bob")
    expect(reported).to_be_visible()

    reported.hover()
    reported.get_by_role("button", name="Report this message from Alice Liddell").click()
    dialog = bob_page.get_by_role("dialog", name="Report message")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("this one message from Alice Liddell")
    dialog.get_by_role("button", name="Send report").click()
    expect(dialog.locator("[data-error]")).to_have_text("Choose what is wrong with the message.")
    dialog.get_by_label("Violence or threats").check()
    dialog.get_by_label("Anything the moderators should know (optional)").fill("She means it.")
    dialog.screenshot(path=str(artifacts_dir / "moderation-report-dialog.png"))
    dialog.get_by_role("button", name="Send report").click()
    expect(dialog).to_be_hidden()
    expect(bob_page.locator("#chat-notice")).to_have_text("Thank you. The moderators will look at it.")

    report = Report.objects.get()
    assert (report.verification, report.message_text) == ("verified", "You will regret this, Bob")

    admin_context, admin = admin_page(browser, live_url, moderator)
    admin.goto(f"{live_url}/admin/moderation/report/?status__exact=open")
    expect(admin.locator("#result_list")).to_contain_text("Violence or threats")
    admin.screenshot(path=str(artifacts_dir / "moderation-admin-report-queue.png"), full_page=True)
    admin.locator("#result_list a", has_text=str(report.pk)).first.click()
    expect(admin.locator(".report-text")).to_have_text("You will regret this, Bob")
    expect(admin.locator(".report-verified")).to_have_text("verified from the stored ciphertext")
    expect(admin.locator(".report-context mark")).to_contain_text("You will regret this, Bob")
    admin.screenshot(path=str(artifacts_dir / "moderation-admin-report.png"), full_page=True)
    admin.get_by_role("button", name="Delete the message").click()
    expect(admin.locator(".messagelist")).to_contain_text("the reporters were told")

    # Bob hears of it, and the message is gone from both pages.
    expect(bob_page.locator("#chat-notice")).to_contain_text("The moderators acted on your report.")
    expect(bob_page.locator("#messages .deleted-text")).to_have_count(1)
    expect(alice_page.locator("#messages .deleted-text")).to_have_count(1)
    for context in (alice_context, bob_context, admin_context):
        context.close()
    assert errors == []


def test_the_owner_mutes_a_member_from_the_members_dialog(browser, live_url, alice, bob, make_user, artifacts_dir):
    carol = make_user("carol", display_name="Carol Danvers")
    group = make_group(alice, (bob, "admin"), (carol, "member"))
    # Alice blocked bob: his message in the shared group arrives folded on her page.
    Block.objects.create(blocker=alice, blocked=bob)
    Message.objects.create(conversation=group, sender=bob, client_id="b-1", body="Bob says hi")
    errors = []
    alice_context = signed_in_context(browser, live_url, alice)
    carol_context = signed_in_context(browser, live_url, carol)
    alice_page = open_chat(alice_context, live_url, errors, "alice")
    carol_page = open_chat(carol_context, live_url, errors, "carol")
    for page in (alice_page, carol_page):
        page.locator("#conversation-list .conversation", has_text="Crew").click()

    folded = alice_page.locator("#messages .message", has_text="Message from a blocked user.")
    expect(folded).to_have_count(1)
    expect(alice_page.locator("#messages")).not_to_contain_text("Bob says hi")
    folded.get_by_role("button", name="Show the message from a blocked user").click()
    expect(alice_page.locator("#messages")).to_contain_text("Bob says hi")
    expect(carol_page.locator("#messages")).to_contain_text("Bob says hi")

    bobs_message = carol_page.locator("#messages .message", has_text="Bob says hi")
    react_button = bobs_message.locator(".message-actions button[aria-label='Add a reaction']")
    expect(react_button).to_have_count(1)

    alice_page.get_by_role("button", name="Members").click()
    dialog = alice_page.locator("#members-dialog")
    expect(dialog.locator(".members-list .person", has_text="Bob Builder").locator(".role")).to_have_text("admin")
    dialog.get_by_label("Manage Carol Danvers").click()
    dialog.get_by_label("How long to mute Carol Danvers").select_option(label="1 hour")
    dialog.get_by_role("button", name="Mute Carol Danvers").click()
    carol_row = dialog.locator(".members-list .person", has_text="Carol Danvers")
    expect(carol_row.locator(".muted-role")).to_have_text("muted")
    dialog.screenshot(path=str(artifacts_dir / "moderation-members-dialog.png"))
    alice_page.set_viewport_size(PHONE)
    alice_page.screenshot(path=str(artifacts_dir / "moderation-members-dialog-phone.png"))
    alice_page.set_viewport_size({"width": 1200, "height": 800})

    # Carol's open page closes the composer at once, and the history says why.
    expect(carol_page.locator("#encrypted-notice")).to_contain_text("An admin muted you here until")
    expect(carol_page.get_by_label("Message", exact=True)).to_be_disabled()
    muted_line = carol_page.locator("#messages .system-message").last
    expect(muted_line).to_contain_text("You were muted by Alice Liddell until")
    # Nor does she get to react or reply meanwhile; reporting stays.
    expect(react_button).to_have_count(0)
    expect(bobs_message.locator(".message-actions button[aria-label^='Reply to']")).to_have_count(0)
    expect(bobs_message.locator(".message-actions button[aria-label^='Report this message']")).to_have_count(1)
    # A mute that runs out gives them back without a reload (here: two seconds left).
    Membership.objects.filter(conversation=group, user=carol).update(muted_until=timezone.now() + timedelta(seconds=2))
    carol_page.reload()
    carol_page.locator("#conversation-list .conversation", has_text="Crew").click()
    expect(carol_page.get_by_label("Message", exact=True)).to_be_disabled()
    expect(react_button).to_have_count(0)
    expect(react_button).to_have_count(1, timeout=10_000)
    expect(carol_page.get_by_label("Message", exact=True)).to_be_enabled()

    # Renaming from the settings shows on both pages.
    dialog.get_by_label("Conversation name").fill("Deck crew")
    dialog.get_by_role("button", name="Save settings").click()
    expect(carol_page.locator("#pane-title")).to_have_text("Deck crew")
    for context in (alice_context, carol_context):
        context.close()
    assert errors == []
