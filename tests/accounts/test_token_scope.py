"""A token is a bot's API access, not a password: it counts on /api/ only, never on account pages."""

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.test import Client

from accounts import tokens
from accounts.models import ApiToken
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def secret(alice):
    _, raw = tokens.token_create(user=alice, name="bot")
    return raw


def bearer(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def assert_sent_to_login(response):
    assert response.status_code == 302, response.status_code
    assert response["Location"].startswith("/accounts/login/"), response["Location"]


def test_the_token_works_on_the_api(secret):
    assert Client().get("/api/me/", **bearer(secret)).json()["username"] == "alice"


@pytest.mark.parametrize(
    "path",
    [
        "/profile/",
        "/profile/tokens/",
        "/accounts/email/",
        "/accounts/password/change/",
        "/accounts/2fa/",
        "/accounts/2fa/totp/activate/",
        "/accounts/sessions/",
    ],
)
def test_a_token_is_anonymous_on_every_page(secret, path):
    assert_sent_to_login(Client().get(path, **bearer(secret)))


def test_a_token_gets_the_visitors_landing_page_not_the_chat(secret):
    page = Client().get("/", **bearer(secret))
    assert page.status_code == 200
    assert page.templates[0].name == "chat/landing.html"


def test_a_token_cannot_mint_list_or_revoke_tokens(alice, secret):
    client = Client()
    assert_sent_to_login(client.post("/profile/tokens/", {"name": "mine now"}, **bearer(secret)))
    token = ApiToken.objects.get(user=alice)
    assert_sent_to_login(client.post("/profile/tokens/", {"revoke": token.pk}, **bearer(secret)))
    assert list(ApiToken.objects.filter(user=alice).values_list("name", flat=True)) == ["bot"]


def test_a_token_cannot_change_credentials(alice, secret):
    client = Client()
    response = client.post("/accounts/email/", {"action_add": "", "email": "thief@example.com"}, **bearer(secret))
    assert_sent_to_login(response)
    assert not EmailAddress.objects.filter(email="thief@example.com").exists()

    new = {"oldpassword": PASSWORD, "password1": "a brand new secret 42", "password2": "a brand new secret 42"}
    assert_sent_to_login(client.post("/accounts/password/change/", new, **bearer(secret)))
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)

    assert_sent_to_login(client.post("/accounts/2fa/totp/activate/", {"code": "123456"}, **bearer(secret)))
    assert not Authenticator.objects.filter(user=alice).exists()
    assert_sent_to_login(client.post("/profile/", {"display_name": "Owned"}, **bearer(secret)))
    assert_sent_to_login(client.post("/profile/sessions/end/", **bearer(secret)))


def test_a_staff_token_does_not_open_the_admin(make_user):
    admin = make_user("root", is_staff=True, is_superuser=True)
    _, raw = tokens.token_create(user=admin, name="ops bot")
    response = Client().get("/admin/", **bearer(raw))
    assert response.status_code == 302 and "/login/" in response["Location"]
    response = Client().get("/admin/accounts/apitoken/", **bearer(raw))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_token_next_to_a_session_cookie_changes_nothing_on_pages(alice, bob, client_of):
    """A page is whoever its cookie says, even if a (foreign) token rides along."""
    _, bobs = tokens.token_create(user=bob, name="bob bot")
    response = client_of(alice).get("/profile/", **bearer(bobs))
    assert response.status_code == 200
    assert response.context["user"] == alice
