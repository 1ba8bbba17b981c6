"""Sign-up, login, logout, password reset and email verification through allauth's own forms."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new and unusual passphrase"


def signed_in_user(client: Client):
    """Return the user the client's session belongs to, or None when anonymous."""
    response = client.get("/api/me/")
    return response.json()["username"] if response.status_code == 200 else None


def log_in(client: Client, login: str, password: str = PASSWORD):
    return client.post("/accounts/login/", {"login": login, "password": password})


def link_in(message, path_prefix: str) -> str:
    """Return the path of the first link in an email that starts with path_prefix."""
    match = re.search(rf"https?://[^/\s]+({re.escape(path_prefix)}\S+)", message.body)
    assert match, f"no {path_prefix} link in:\n{message.body}"
    return match.group(1)


def test_signup_creates_the_user_and_signs_them_in(client):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "carol",
            "email": "carol@example.com",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302
    user = get_user_model().objects.get(username="carol")
    assert user.email == "carol@example.com"
    assert user.check_password(NEW_PASSWORD)
    assert signed_in_user(client) == "carol"


def test_signup_refuses_a_taken_username_and_mismatched_passwords(client, alice):
    response = client.post(
        "/accounts/signup/",
        {"username": "alice", "email": "other@example.com", "password1": NEW_PASSWORD, "password2": "different"},
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "username" in errors
    assert "password2" in errors
    assert signed_in_user(client) is None


@pytest.mark.parametrize("login", ["alice", "alice@example.com", "ALICE@example.com"])
def test_login_by_username_or_email(client, alice, login):
    response = log_in(client, login)
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert signed_in_user(client) == "alice"


def test_wrong_password_is_a_form_error_and_does_not_sign_in(client, alice):
    response = log_in(client, "alice", "not the password")
    assert response.status_code == 200
    assert "The username and/or password you specified are not correct." in response.content.decode()
    assert signed_in_user(client) is None


def failures_allowed_per_login(rate: str) -> int:
    """Return N from allauth's rate string, e.g. 5 from "10/m/ip,5/5m/key"."""
    return next(int(part.split("/")[0]) for part in rate.split(",") if part.endswith("/key"))


def test_login_is_rate_limited_after_repeated_failures(client, settings, alice, bob):
    # The configured limit, counted by allauth in the cache (Redis on the PostgreSQL path).
    allowed = failures_allowed_per_login(settings.ACCOUNT_RATE_LIMITS["login_failed"])
    for _ in range(allowed):
        response = log_in(client, "alice", "wrong guess")
        assert "are not correct" in response.content.decode()
    response = log_in(client, "alice", PASSWORD)
    assert response.status_code == 200
    assert "Too many failed login attempts. Try again later." in response.content.decode()
    assert signed_in_user(client) is None
    # The limit is per login name: another account from the same address still signs in.
    other = Client()
    assert log_in(other, "bob").status_code == 302


def test_logout_ends_the_session(client, alice):
    log_in(client, "alice")
    assert signed_in_user(client) == "alice"
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert signed_in_user(client) is None


def test_logout_needs_a_post(client, alice):
    # A GET shows a confirmation page rather than signing out (no logout by <img src>).
    log_in(client, "alice")
    response = client.get("/accounts/logout/")
    assert response.status_code == 200
    assert signed_in_user(client) == "alice"


def test_password_reset_mail_and_link_set_a_new_password(client, alice):
    response = client.post("/accounts/password/reset/", {"email": "alice@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@example.com"]
    link = link_in(mail.outbox[0], "/accounts/password/reset/key/")

    # allauth moves the key from the URL into the session, then shows the form.
    response = client.get(link, follow=True)
    assert response.status_code == 200
    form_url = response.redirect_chain[-1][0] if response.redirect_chain else link
    response = client.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)

    assert log_in(Client(), "alice", PASSWORD).status_code == 200
    fresh = Client()
    assert log_in(fresh, "alice", NEW_PASSWORD).status_code == 302
    # The link is single-use.
    response = Client().get(link, follow=True)
    assert "The password reset link was invalid" in response.content.decode()


def test_password_reset_for_an_unknown_address_sends_no_reset_link(client):
    response = client.post("/accounts/password/reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert all("/accounts/password/reset/key/" not in message.body for message in mail.outbox)


def test_mandatory_email_verification_holds_back_the_session(client, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    response = client.post(
        "/accounts/signup/",
        {"username": "dave", "email": "dave@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    assert signed_in_user(client) is None
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["dave@example.com"]

    # Logging in before confirming only resends the mail.
    assert log_in(client, "dave", NEW_PASSWORD)["Location"] == "/accounts/confirm-email/"
    assert signed_in_user(client) is None

    link = link_in(mail.outbox[0], "/accounts/confirm-email/")
    assert client.get(link).status_code == 200
    assert client.post(link).status_code == 302
    user = get_user_model().objects.get(username="dave")
    assert user.emailaddress_set.get().verified
    assert log_in(client, "dave", NEW_PASSWORD).status_code == 302
    assert signed_in_user(client) == "dave"


def test_account_emails_use_the_site_name_not_the_host(client, settings, alice):
    settings.SITE_NAME = "Acme Chat"
    client.post("/accounts/password/reset/", {"email": "alice@example.com"})
    (email,) = mail.outbox
    assert email.subject.startswith("[Acme Chat] ")
    assert "Hello from Acme Chat!" in email.body
    assert "testserver" not in email.subject and "Hello from testserver" not in email.body


def test_password_reset_pages_offer_help_only_when_the_site_has_an_address(client, settings):
    settings.SUPPORT_EMAIL = ""
    for path in ("/accounts/password/reset/", "/accounts/password/reset/done/"):
        page = client.get(path).content.decode()
        assert "contact us" not in page.lower() and "mailto:" not in page
    settings.SUPPORT_EMAIL = "help@example.com"
    for path in ("/accounts/password/reset/", "/accounts/password/reset/done/"):
        assert '<a href="mailto:help@example.com">help@example.com</a>' in client.get(path).content.decode()
