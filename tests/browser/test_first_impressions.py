"""First impressions: the landing page for visitors, flash messages as toasts."""

from playwright.sync_api import expect

from tests.browser.test_accessibility import assert_accessible
from tests.browser.test_chat import PHONE
from tests.conftest import PASSWORD


def test_anonymous_visitors_see_a_landing_page(page, live_url, artifacts_dir):
    page.goto(f"{live_url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Talk freely. Keep it private.")
    expect(page.locator("main")).to_contain_text("end-to-end encrypted")
    page.screenshot(path=str(artifacts_dir / "landing-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(artifacts_dir / "landing-phone.png"), full_page=True)
    page.get_by_role("link", name="Sign up, it is free").click()
    expect(page).to_have_url(f"{live_url}/accounts/signup/")
    page.go_back()
    page.locator("main").get_by_role("link", name="Log in").click()
    expect(page).to_have_url(f"{live_url}/accounts/login/")


def test_flash_messages_are_toasts_that_can_be_dismissed(browser, live_url, alice, artifacts_dir):
    context = browser.new_context(base_url=live_url, viewport={"width": 1280, "height": 800}, bypass_csp=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.get_by_label("Username or email").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    toast = page.locator("#toasts .toast", has_text="Successfully signed in as alice.")
    expect(toast).to_be_visible()
    # It floats above the chat: the layout starts right under the header as it does without it.
    # (Asked once the stylesheet is in: a box can be laid out before render-blocking CSS arrives.)
    page.wait_for_load_state("load")
    expect(page.locator("#toasts")).to_have_css("position", "fixed")
    assert_accessible(page, "chat page with a toast")
    header_bottom = page.locator(".topbar").bounding_box()["y"] + page.locator(".topbar").bounding_box()["height"]
    assert abs(page.locator("#main").bounding_box()["y"] - header_bottom) < 1
    page.screenshot(path=str(artifacts_dir / "toast-desktop.png"))
    toast.get_by_role("button", name="Dismiss notification").click()
    expect(page.locator("#toasts")).to_have_count(0)

    # On a phone it sits at the bottom, and the keyboard closes it too.
    page.set_viewport_size(PHONE)
    page.goto("/profile/")
    page.get_by_label("Status").fill("Reading")
    page.get_by_role("button", name="Save profile").click()
    toast = page.locator("#toasts .toast", has_text="Your profile was saved.")
    expect(toast).to_be_visible()
    box = toast.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    page.screenshot(path=str(artifacts_dir / "toast-phone.png"))
    toast.get_by_role("button", name="Dismiss notification").focus()
    page.keyboard.press("Escape")
    expect(page.locator("#toasts")).to_have_count(0)
    context.close()
