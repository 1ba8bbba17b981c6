"""The admin for moderators in Chromium: one Accounts section, a ban with a reason, DMs by name."""

from playwright.sync_api import expect

from chat.models import Conversation, Membership
from tests.browser.test_chat import signed_in_context


def test_moderator_bans_with_a_reason_and_sees_direct_conversations_by_name(
    browser, live_url, alice, bob, make_user, artifacts_dir
):
    root = make_user("root", is_staff=True, is_superuser=True)
    for number in range(12):
        make_user(f"member{number:02}", display_name=f"A rather long display name {number}")
    direct = Conversation.objects.create(kind="direct", encrypted=True, direct_key=f"{alice.pk}:{bob.pk}")
    Membership.objects.create(conversation=direct, user=alice)
    Membership.objects.create(conversation=direct, user=bob)
    context = signed_in_context(browser, live_url, root, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.on("console", lambda message: message.type == "error" and print(message.text))

    page.goto(f"{live_url}/admin/")
    sections = page.locator("#content-main .module caption").all_inner_texts()
    assert [section.strip().lower() for section in sections] == ["accounts", "chat", "moderation"]
    assert page.locator('link[rel="icon"]').get_attribute("href").endswith("favicon.svg")
    page.screenshot(path=str(artifacts_dir / "admin-index.png"), full_page=True)

    # The user list fits a 1280 px window without sideways scrolling.
    page.goto(f"{live_url}/admin/accounts/user/")
    assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0
    results = page.locator("#changelist .results")
    assert results.evaluate("(table) => table.scrollWidth - table.clientWidth") <= 0, "the user list scrolls sideways"
    page.screenshot(path=str(artifacts_dir / "admin-users.png"))

    # Banning asks which accounts and why; nothing happens until confirmed with a reason.
    page.locator(f'input[name="_selected_action"][value="{bob.pk}"]').check()
    page.locator('select[name="action"]').select_option("ban_users")
    page.get_by_role("button", name="Go").click()
    expect(page.get_by_text("These accounts will be deactivated")).to_be_visible()
    expect(page.locator("#content li")).to_contain_text(["bob (Bob Builder)"])
    page.screenshot(path=str(artifacts_dir / "admin-ban-confirm.png"))
    bob.refresh_from_db()
    assert bob.is_active
    page.get_by_label("Reason").fill("Sent spam to everyone")
    page.get_by_role("button", name="Ban 1 user").click()
    expect(page.get_by_text("Banned 1 user(s).")).to_be_visible()
    bob.refresh_from_db()
    assert (bob.is_active, bob.ban_reason) == (False, "Sent spam to everyone")
    page.goto(f"{live_url}/admin/accounts/user/{bob.pk}/change/")
    expect(page.locator(".field-ban_reason")).to_contain_text("Sent spam to everyone")

    # Direct conversations are named by the two people in them.
    page.goto(f"{live_url}/admin/chat/conversation/")
    expect(page.locator("#result_list")).to_contain_text("alice & bob")
    page.screenshot(path=str(artifacts_dir / "admin-conversations.png"))
    context.close()
