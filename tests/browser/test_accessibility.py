"""Accessibility in real Chromium: axe-core on every page and dialog, and the keyboard path.

axe-core comes from npm (package.json); it is injected into each page by a context that
bypasses the strict Content-Security-Policy (only the test's own script needs that).
"""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from chat.models import Conversation, Membership, Message
from tests.browser.test_chat import PHONE, conversation_button, open_chat, signed_in_context
from tests.conftest import PASSWORD, ROOT

AXE_SOURCE = (ROOT / "node_modules" / "axe-core" / "axe.min.js").read_text()
DESKTOP = {"width": 1280, "height": 800}
RUN_AXE = """async (selector) => {
  const result = await axe.run(selector ? document.querySelector(selector) : document, {resultTypes: ["violations"]});
  return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help}\\n    ` +
    v.nodes.slice(0, 4).map((node) => `${node.target.join(" ")} :: ${node.html.slice(0, 160)}`).join("\\n    "));
}"""


def axe_violations(page, selector=None) -> list[str]:
    """Run axe-core on the page (or one element of it) and return its violations as text."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_SOURCE)
    return page.evaluate(RUN_AXE, selector)


def assert_accessible(page, where: str, selector=None) -> None:
    violations = axe_violations(page, selector)
    assert violations == [], f"{where}:\n" + "\n".join(violations)


@pytest.fixture
def team(alice, bob, make_user):
    """A plaintext group of Alice, Bob and Carol with 100 messages, Bob's status set."""
    carol = make_user("carol", display_name="Carol Danvers")
    bob.status = "Building a shed"
    bob.bio = "Can we fix it?"
    bob.save()
    group = Conversation.objects.create(kind="group", name="Team", created_by=alice)
    Membership.objects.create(conversation=group, user=alice, role="owner")
    Membership.objects.create(conversation=group, user=bob)
    Membership.objects.create(conversation=group, user=carol)
    start = timezone.now() - timedelta(days=1)
    Message.objects.bulk_create(
        Message(
            conversation=group,
            sender=(alice, bob, carol)[number % 3],
            client_id=f"seed-{number}",
            body=f"Message number {number} about https://example.com/{number}",
            created_at=start + timedelta(minutes=20 * number),
        )
        for number in range(100)
    )
    return group


def check_dialog(page, label, opener, selector, where, artifacts_dir):
    """Open a dialog, run axe on the page with it open (every tab of a tabbed one), close it."""
    opener()
    dialog = page.locator(selector)
    expect(dialog).to_be_visible()
    if label == "profile card":
        expect(dialog).to_contain_text("Can we fix it?")
    if label == "new conversation":
        for tab in ("Group", "Channels", "Direct message"):
            dialog.get_by_role("tab", name=tab).click()
            assert_accessible(page, f"{label} dialog, {tab} tab ({where})")
    assert_accessible(page, f"{label} dialog ({where})")
    page.screenshot(path=str(artifacts_dir / f"a11y-dialog-{label.replace(' ', '-')}-{where}.png"))
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def check_chat(page, where, artifacts_dir):
    phone = where == "phone"
    assert_accessible(page, f"conversation list ({where})")
    conversation_button(page, "Team").click()
    # The first page (50); the view may already have asked for the older one, while it laid out.
    expect(page.locator("#messages .message").nth(49)).to_be_visible()
    assert_accessible(page, f"conversation ({where})")
    # Showing the first unread message scrolls the history only, never the page out of view.
    assert page.evaluate("document.scrollingElement.scrollTop") == 0
    page.screenshot(path=str(artifacts_dir / f"a11y-chat-{where}.png"))

    # A message selected (tapped or focused) shows its toolbar, inside the history.
    message = page.locator("#messages .message").nth(-2)
    message.locator(".message-text").click(position={"x": 5, "y": 5})
    toolbar = message.locator(".message-actions")
    expect(toolbar).to_be_visible()
    box, scroller = toolbar.bounding_box(), page.locator("#messages-scroll").bounding_box()
    assert box["x"] >= scroller["x"] and box["x"] + box["width"] <= scroller["x"] + scroller["width"] + 0.5
    assert box["y"] >= scroller["y"] - 0.5, "the toolbar sticks out above the history"
    page.screenshot(path=str(artifacts_dir / f"a11y-message-toolbar-{where}.png"))

    # In the conversation: its members, a profile card, the confirmation "Leave group" asks for.
    members_button = page.get_by_role("button", name="Members")
    check_dialog(page, "members", members_button.click, "#members-dialog", where, artifacts_dir)
    sender = page.locator("#messages .sender", has_text="Bob Builder").first
    check_dialog(page, "profile card", sender.click, "#profile-dialog", where, artifacts_dir)
    members_button.click()
    page.get_by_role("button", name="Leave group").click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    assert_accessible(page, f"confirmation dialog ({where})")
    page.locator("#confirm-dialog").get_by_role("button", name="Cancel").click()
    page.keyboard.press("Escape")
    expect(page.locator("#members-dialog")).to_be_hidden()

    # From the sidebar (the other screen on a phone): a new conversation, the encryption set-up.
    if phone:
        page.get_by_role("button", name="Back to conversations").click()
    new = page.get_by_role("button", name="New conversation")
    check_dialog(page, "new conversation", new.click, "#new-conversation-dialog", where, artifacts_dir)
    encryption = page.get_by_role("button", name="Encryption", exact=True)
    check_dialog(page, "encryption", encryption.click, "#key-dialog", where, artifacts_dir)


def test_chat_page_and_every_dialog_pass_axe_on_desktop_and_phone(browser, live_url, alice, bob, team, artifacts_dir):
    errors = []
    for where, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        touch = where == "phone"
        context = signed_in_context(
            browser, live_url, alice, viewport=viewport, bypass_csp=True, is_mobile=touch, has_touch=touch
        )
        check_chat(open_chat(context, live_url, errors, f"alice-{where}"), where, artifacts_dir)
        context.close()
    assert errors == []


def test_axe_finds_what_it_should(browser, live_url):
    """The harness itself: a picture without alt text on the landing page is a violation."""
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.goto(f"{live_url}/")
    page.evaluate("() => document.querySelector('main').append(document.createElement('img'))")
    assert any(violation.startswith("image-alt") for violation in axe_violations(page))
    context.close()


def test_account_pages_pass_axe(browser, live_url, alice, artifacts_dir):
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser.new_context(base_url=live_url, viewport=viewport, bypass_csp=True)
        context.set_default_timeout(10_000)
        page = context.new_page()
        for path in ["/", "/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"]:
            page.goto(path)
            assert_accessible(page, f"{path} ({name}, signed out)")
        page.goto("/accounts/login/")
        page.get_by_label("Username or email").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("Password").press("Enter")
        expect(page.locator("#header-avatar")).to_be_visible()
        for path in [
            "/profile/",
            "/profile/tokens/",
            "/accounts/2fa/",
            "/accounts/email/",
            "/accounts/password/change/",
        ]:
            page.goto(path)
            assert_accessible(page, f"{path} ({name})")
        context.close()


def test_keyboard_reaches_the_composer_in_a_few_tabs_and_arrows_walk_the_messages(
    browser, live_url, alice, team, artifacts_dir
):
    errors = []
    context = signed_in_context(browser, live_url, alice, viewport=DESKTOP)
    page = open_chat(context, live_url, errors, "alice")
    conversation_button(page, "Team").click()
    messages = page.locator("#messages .message")
    expect(messages.nth(49)).to_be_visible()  # 50, or already 100 (see check_chat)
    page.locator("#messages-scroll").evaluate("(scroller) => { scroller.scrollTop = 0; }")
    expect(messages).to_have_count(100)

    # From the conversation in the sidebar to the composer: a handful of Tab presses, not one per button.
    conversation_button(page, "Team").focus()
    presses, path = 0, []
    composer = page.get_by_label("Message", exact=True)
    while not composer.evaluate("(field) => field === document.activeElement") and presses < 30:
        page.keyboard.press("Tab")
        presses += 1
        path.append(
            page.evaluate("() => document.activeElement.getAttribute('aria-label') || document.activeElement.id")
        )
    assert presses <= 6, f"{presses} Tab presses from the sidebar to the composer: {path}"

    # Back into the history: one Tab stop, on the newest message.
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    focused = "() => document.activeElement.closest('#messages > li')?.textContent"
    assert "Message number 99" in page.evaluate(focused)
    page.keyboard.press("ArrowUp")
    assert "Message number 98" in page.evaluate(focused)
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowDown")
    assert "Message number 98" in page.evaluate(focused)
    page.keyboard.press("Home")
    assert "Message number 0" in page.evaluate(focused)
    page.keyboard.press("End")
    assert "Message number 99" in page.evaluate(focused)
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    assert "Message number 97" in page.evaluate(focused)  # Bob's

    # Enter steps into the message's own controls; its toolbar is there; Escape comes back.
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.tagName") in ("A", "BUTTON")
    reply = page.locator("#messages .message", has_text="Message number 97").get_by_role(
        "button", name="Reply to Bob Builder"
    )
    for _ in range(5):
        if reply.evaluate("(button) => button === document.activeElement"):
            break
        page.keyboard.press("Tab")
    expect(reply).to_be_focused()
    page.screenshot(path=str(artifacts_dir / "a11y-keyboard-toolbar.png"))
    page.keyboard.press("Enter")
    expect(page.locator("#reply-preview")).to_contain_text("Replying to Bob Builder: Message number 97")
    expect(composer).to_be_focused()
    context.close()
    assert errors == []


def test_security_pages_for_unverified_email_and_the_two_factor_step(browser, live_url, make_user, artifacts_dir):
    from allauth.account.models import EmailAddress
    from allauth.mfa.totp.internal.auth import TOTP

    carol = make_user("carol")
    address = EmailAddress.objects.create(user=carol, email=carol.email, primary=True, verified=False)
    for where, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser.new_context(base_url=live_url, viewport=viewport, bypass_csp=True)
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.goto("/accounts/login/")
        page.get_by_label("Username or email").fill("carol")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("Password").press("Enter")
        expect(page.locator("#header-avatar")).to_be_visible()

        # Unverified: the Security page says why nothing can be added yet, and resends the link.
        page.goto("/accounts/2fa/")
        expect(page.locator("#verify-first")).to_contain_text("Verify your email address first.")
        expect(page.get_by_role("link", name="Activate")).to_have_count(0)
        assert_accessible(page, f"security page, email unverified ({where})")
        page.screenshot(path=str(artifacts_dir / f"security-unverified-{where}.png"), full_page=True)
        if where == "desktop":  # allauth sends one verification email per address every few minutes
            page.get_by_role("button", name="Send the verification email again").click()
            expect(page.locator("#toasts")).to_contain_text("carol@example.com")
        context.close()

    # With an authenticator app, the code step takes recovery codes and offers no security key.
    address.verified = True
    address.save()
    TOTP.activate(carol, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    for where, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser.new_context(base_url=live_url, viewport=viewport, bypass_csp=True)
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.goto("/accounts/login/")
        page.get_by_label("Username or email").fill("carol")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("Password").press("Enter")
        expect(page.get_by_label("Authenticator or recovery code")).to_be_visible()
        expect(page.locator("#main")).to_contain_text("A recovery code works in the same box.")
        expect(page.get_by_role("button", name="Use a security key")).to_have_count(0)
        assert_accessible(page, f"two-factor step ({where})")
        page.screenshot(path=str(artifacts_dir / f"two-factor-step-{where}.png"), full_page=True)
        context.close()
