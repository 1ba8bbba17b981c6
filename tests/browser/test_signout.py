"""Signed out elsewhere: the chat page says so at once and offers to log in, instead of retrying."""

import re

from playwright.sync_api import expect

from tests.browser.test_chat import signed_in_context

NEW_PASSWORD = "a brand new secret 42"


def open_chat_with_socket(context, live_url, errors, name):
    """Open the chat page and return it once its socket said hello."""
    page = context.new_page()
    frames = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(payload)))
    page.on("pageerror", lambda error: errors.append(f"{name}: {error}"))
    page.goto(f"{live_url}/")
    expect(page.locator("#chat-app")).to_be_visible()
    for _ in range(200):
        if any('"type": "hello"' in frame for frame in frames if isinstance(frame, str)):
            return page
        page.wait_for_timeout(50)
    raise AssertionError(f"{name}: no hello on the socket")


def expect_signed_out(page):
    banner = page.locator("#connection-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("You were signed out.")
    expect(page.get_by_role("link", name="Log in again")).to_be_visible()
    expect(page.locator("#reconnect-button")).to_be_hidden()


def test_password_change_and_logout_sign_out_the_other_pages(browser, live_url, alice):
    errors = []
    here = signed_in_context(browser, live_url, alice)
    elsewhere = signed_in_context(browser, live_url, alice)
    try:
        chat_here = open_chat_with_socket(here, live_url, errors, "here")
        chat_elsewhere = open_chat_with_socket(elsewhere, live_url, errors, "elsewhere")

        # A password change in one browser signs the other one out, and its open chat says so.
        settings_page = here.new_page()
        settings_page.goto(f"{live_url}/accounts/password/change/")
        settings_page.get_by_label("Current Password").fill("correct horse battery staple")
        settings_page.get_by_label("New Password", exact=True).fill(NEW_PASSWORD)
        settings_page.get_by_label("New Password (again)").fill(NEW_PASSWORD)
        settings_page.get_by_role("button", name="Change Password").click()
        expect(settings_page.get_by_text("Password successfully changed.")).to_be_visible()
        expect_signed_out(chat_elsewhere)
        # The browser that made the change stays signed in, its chat connected.
        expect(chat_here.locator("#connection-banner")).to_be_hidden()
        chat_elsewhere.get_by_role("link", name="Log in again").click()
        expect(chat_elsewhere).to_have_url(re.compile(r"/accounts/login/"))

        # Logging out in one tab ends the chat in another tab of the same browser.
        settings_page.get_by_role("button", name="Log out").click()
        expect(settings_page.get_by_role("link", name="Log in").first).to_be_visible()
        expect_signed_out(chat_here)
        # It stays signed out: no reconnect loop.
        chat_here.wait_for_timeout(1500)
        expect_signed_out(chat_here)
    finally:
        here.close()
        elsewhere.close()
    assert errors == []
