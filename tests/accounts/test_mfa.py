"""Two-factor authentication through allauth's own views: TOTP, recovery codes, the admin."""

import html
import re

import pyotp
import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

AUTHENTICATE_URL = "/accounts/2fa/authenticate/"


@pytest.fixture(autouse=True)
def _totp_tolerance(settings):
    # Accept the neighbouring 30-second step too, so a code computed just before a step
    # boundary is not refused by the server a moment later.
    settings.MFA_TOTP_TOLERANCE = 1


def signed_in_user(client: Client):
    response = client.get("/api/me/")
    return response.json()["username"] if response.status_code == 200 else None


def password_step(client: Client, login: str, *, next_url: str | None = None):
    fields = {"login": login, "password": PASSWORD}
    if next_url:
        fields["next"] = next_url
    return client.post("/accounts/login/", fields)


def reauthenticate(client: Client):
    """Confirm the password again: allauth asks before any change to the authenticators."""
    response = client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    assert response.status_code == 302


def code_step(client: Client, code: str):
    return client.post(AUTHENTICATE_URL, {"code": code})


def input_value(page: str, element_id: str) -> str:
    match = re.search(rf'<input[^>]*\bid="{element_id}"[^>]*>', page)
    assert match, f"no #{element_id} on the page"
    value = re.search(r'\bvalue="([^"]*)"', match.group(0))
    return html.unescape(value.group(1))


def recovery_codes_on(page: str) -> list[str]:
    match = re.search(r'<textarea[^>]*\bid="recovery_codes"[^>]*>(.*?)</textarea>', page, re.S)
    assert match, "no recovery codes on the page"
    return match.group(1).split()


@pytest.fixture
def alice_with_totp(alice):
    """Alice, signed in by password, after activating TOTP through allauth's pages."""
    client = Client()
    assert password_step(client, "alice").status_code == 302
    response = client.get("/accounts/2fa/totp/activate/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/reauthenticate/")
    reauthenticate(client)
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    secret = input_value(page.content.decode(), "authenticator_secret")
    assert secret == client.session["mfa.totp.secret"]

    assert client.post("/accounts/2fa/totp/activate/", {"code": "000000"}).status_code == 200
    assert not Authenticator.objects.filter(user=alice, type=Authenticator.Type.TOTP).exists()

    response = client.post("/accounts/2fa/totp/activate/", {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302
    # allauth makes recovery codes along with the first authenticator and shows them next.
    assert response["Location"] == "/accounts/2fa/recovery-codes/"
    assert Authenticator.objects.filter(user=alice, type=Authenticator.Type.TOTP).exists()
    return client, pyotp.TOTP(secret)


def test_totp_activation_page_shows_a_qr_code_and_the_secret(client, alice):
    password_step(client, "alice")
    reauthenticate(client)
    page = client.get("/accounts/2fa/totp/activate/").content.decode()
    secret = input_value(page, "authenticator_secret")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert 'src="data:image/svg+xml;base64,' in page


def test_wrong_code_does_not_activate_totp(client, alice):
    password_step(client, "alice")
    reauthenticate(client)
    client.get("/accounts/2fa/totp/activate/")
    response = client.post("/accounts/2fa/totp/activate/", {"code": "123456"})
    assert "Incorrect code." in response.content.decode()
    assert not Authenticator.objects.filter(user=alice).exists()


def test_login_with_totp_needs_the_code_step(alice_with_totp):
    _, totp = alice_with_totp
    client = Client()
    response = password_step(client, "alice")
    assert response.status_code == 302
    assert response["Location"] == AUTHENTICATE_URL
    assert signed_in_user(client) is None

    response = code_step(client, "000000" if totp.now() != "000000" else "111111")
    assert response.status_code == 200
    assert "Incorrect code." in response.content.decode()
    assert signed_in_user(client) is None

    code = totp.now()
    assert code_step(client, code).status_code == 302
    assert signed_in_user(client) == "alice"

    # A code is good for one login only, even inside its time step.
    replay = Client()
    password_step(replay, "alice")
    assert "Incorrect code." in code_step(replay, code).content.decode()
    assert signed_in_user(replay) is None


def test_login_by_email_also_asks_for_the_code(alice_with_totp):
    client = Client()
    assert password_step(client, "alice@example.com")["Location"] == AUTHENTICATE_URL
    assert signed_in_user(client) is None


def test_recovery_code_signs_in_once(alice_with_totp):
    manager, _ = alice_with_totp
    codes = recovery_codes_on(manager.get("/accounts/2fa/recovery-codes/").content.decode())
    assert len(codes) == 10
    assert len(set(codes)) == 10

    client = Client()
    password_step(client, "alice")
    assert code_step(client, codes[0]).status_code == 302
    assert signed_in_user(client) == "alice"

    again = Client()
    password_step(again, "alice")
    assert "Incorrect code." in code_step(again, codes[0]).content.decode()
    assert signed_in_user(again) is None
    # The other codes still work, and the page now counts one used.
    assert code_step(again, codes[1]).status_code == 302
    page = manager.get("/accounts/2fa/recovery-codes/").content.decode()
    assert "There are 8 out of 10 recovery codes available." in page


def test_generating_new_recovery_codes_voids_the_old_ones(alice_with_totp):
    manager, _ = alice_with_totp
    old = recovery_codes_on(manager.get("/accounts/2fa/recovery-codes/").content.decode())
    assert manager.get("/accounts/2fa/recovery-codes/generate/").status_code == 200
    response = manager.post("/accounts/2fa/recovery-codes/generate/")
    assert response.status_code == 302
    new = recovery_codes_on(manager.get("/accounts/2fa/recovery-codes/").content.decode())
    assert set(new).isdisjoint(old)

    client = Client()
    password_step(client, "alice")
    assert "Incorrect code." in code_step(client, old[0]).content.decode()
    assert code_step(client, new[0]).status_code == 302


def test_security_page_lists_the_authenticators(alice_with_totp):
    manager, _ = alice_with_totp
    page = manager.get("/accounts/2fa/").content.decode()
    assert "Authenticator App" in page
    assert "Recovery Codes" in page
    assert "Security Keys" in page


# The admin signs in through allauth (secure_admin_login in chatterbox/urls.py).


@pytest.fixture
def staff_with_totp(make_user):
    secret = pyotp.random_base32()
    staff = make_user("root", is_staff=True, is_superuser=True)
    TOTP.activate(staff, secret)
    return staff, pyotp.TOTP(secret)


def test_admin_login_redirects_to_allauth(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    response = client.get(response["Location"])
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Fadmin%2F"


def test_admin_login_form_cannot_skip_the_second_factor(client, staff_with_totp):
    # Posting straight to Django's own admin login form must not sign in.
    response = client.post("/admin/login/?next=/admin/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert client.get("/admin/").status_code == 302


def test_staff_with_totp_reaches_the_admin_only_after_the_code(client, staff_with_totp):
    _, totp = staff_with_totp
    response = password_step(client, "root", next_url="/admin/")
    assert response["Location"] == AUTHENTICATE_URL
    assert client.get("/admin/").status_code == 302

    response = code_step(client, totp.now())
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    page = client.get("/admin/")
    assert page.status_code == 200
    assert "Chatterbox administration" in page.content.decode()


def test_non_staff_user_is_refused_by_the_admin(client, alice):
    password_step(client, "alice")
    assert client.get("/admin/login/").status_code == 403


def test_code_step_takes_recovery_codes_and_offers_security_keys_only_to_their_owners(alice_with_totp):
    client = Client()
    password_step(client, "alice")
    page = client.get(AUTHENTICATE_URL).content.decode()
    assert "A recovery code works in the same box." in page
    assert "Authenticator or recovery code" in page
    # Alice has no security key: nothing offers one.
    assert "security key" not in page.lower()
    codes = recovery_codes_on(alice_with_totp[0].get("/accounts/2fa/recovery-codes/").content.decode())
    assert code_step(client, codes[0]).status_code == 302
    assert signed_in_user(client) == "alice"


def test_security_page_says_to_verify_the_email_first_and_resends_it(client, make_user, mailoutbox):
    from allauth.account.models import EmailAddress

    carol = make_user("carol")
    EmailAddress.objects.create(user=carol, email=carol.email, primary=True, verified=False)
    password_step(client, "carol")
    page = client.get("/accounts/2fa/").content.decode()
    assert "Verify your email address first." in page and "carol@example.com" in page
    assert 'href="/accounts/2fa/totp/activate/"' not in page

    response = client.post("/accounts/email/", {"email": "carol@example.com", "action_send": ""})
    assert response.status_code == 302
    assert [message.to for message in mailoutbox] == [["carol@example.com"]]

    EmailAddress.objects.filter(user=carol).update(verified=True)
    page = client.get("/accounts/2fa/").content.decode()
    assert "Verify your email address first." not in page
    assert 'href="/accounts/2fa/totp/activate/"' in page
