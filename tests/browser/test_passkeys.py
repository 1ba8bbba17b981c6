"""Add a passkey and sign in with it, with Chromium's virtual authenticator standing in for the device."""

import pytest
from allauth.mfa.models import Authenticator
from playwright.sync_api import expect

from tests.conftest import PASSWORD


@pytest.fixture
def origin(live_url) -> str:
    # WebAuthn wants a domain as relying-party id, not an IP address; http://localhost is a
    # secure context and reaches the same server.
    return live_url.replace("127.0.0.1", "localhost")


@pytest.fixture
def passkey_page(browser, origin):
    """A page whose browser has a virtual platform authenticator with user verification."""
    context = browser.new_context(base_url=origin, viewport={"width": 1200, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    yield page, cdp, authenticator["authenticatorId"]
    context.close()


def sign_in_with_password(page, login: str):
    page.goto("/accounts/login/")
    page.get_by_label("Username or email").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In", exact=True).click()
    expect(page.locator("#header-avatar")).to_be_visible()


def test_add_a_passkey_and_sign_in_with_it(passkey_page, alice, artifacts_dir):
    page, cdp, authenticator_id = passkey_page
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    sign_in_with_password(page, "alice")

    page.goto("/accounts/2fa/webauthn/add/")
    # allauth asks for the password again before adding an authenticator.
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    page.get_by_label("Name").fill("Laptop")
    page.get_by_label("Passwordless").check()
    page.get_by_role("button", name="Add", exact=True).click()
    # The first authenticator comes with recovery codes, which allauth shows next.
    expect(page.get_by_role("heading", name="Recovery Codes")).to_be_visible()

    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]
    assert len(credentials) == 1
    assert credentials[0]["isResidentCredential"] is True
    assert credentials[0]["rpId"] == "localhost"
    key = Authenticator.objects.get(user=alice, type=Authenticator.Type.WEBAUTHN)
    assert key.wrap().name == "Laptop"
    assert key.wrap().is_passwordless is True

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("navigation", name="Account").get_by_role("link", name="Log in")).to_be_visible()

    page.goto("/accounts/login/")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.locator("#header-avatar")).to_be_visible()
    assert page.request.get("/api/me/").json()["username"] == "alice"
    # The authenticator really signed: its counter moved past the registration.
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]
    assert credentials[0]["signCount"] >= 1
    page.screenshot(path=str(artifacts_dir / "passkey-signed-in.png"), full_page=True)
    assert errors == []


def test_passkey_login_without_a_key_stays_signed_out(passkey_page, alice):
    page, _, _ = passkey_page
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto("/accounts/login/")
    page.get_by_role("button", name="Sign in with a passkey").click()
    # The authenticator has no credential for this site, so the ceremony fails in the browser.
    expect(page.get_by_role("alert")).to_contain_text("passkey")
    assert page.request.get("/api/me/").status == 401
    assert errors == []  # reported on the page instead of the console
