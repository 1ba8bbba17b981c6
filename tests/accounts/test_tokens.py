"""API tokens: made on the profile page, shown once, accepted as a bearer token, revocable."""

import re

import pytest
from django.test import Client

from accounts.models import ApiToken

pytestmark = pytest.mark.django_db


def create_token(client, name="Build bot") -> str:
    response = client.post("/profile/tokens/", {"name": name})
    assert response.status_code == 200
    match = re.search(r'id="new-token" type="text" readonly value="(cbx_[^"]+)"', response.content.decode())
    assert match, "the new token is shown on the page"
    return match.group(1)


def test_token_is_shown_once_and_stored_only_as_a_hash(alice, client_of):
    client = client_of(alice)
    secret = create_token(client)
    token = ApiToken.objects.get(user=alice)
    assert secret not in token.key_hash and token.prefix == secret[:12]
    page = client.get("/profile/tokens/").content.decode()
    assert secret not in page and "Build bot" in page


def test_bearer_token_reads_and_writes_without_csrf(alice, client_of):
    secret = create_token(client_of(alice))
    api = Client(enforce_csrf_checks=True)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    assert api.get("/api/me/", **auth).json()["username"] == "alice"
    response = api.patch("/api/me/", {"status": "on a bot"}, content_type="application/json", **auth)
    assert response.status_code == 200
    alice.refresh_from_db()
    assert alice.status == "on a bot"
    assert ApiToken.objects.get(user=alice).last_used_at is not None


@pytest.mark.parametrize("header", ["Bearer cbx_not-a-real-token", "Bearer ", "Basic YWxpY2U6eA==", "Bearer x" * 50])
def test_bad_tokens_are_refused(alice, header):
    response = Client().get("/api/me/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_revoked_token_and_banned_user_are_refused(alice, bob, client_of):
    alice_client = client_of(alice)
    alice_secret = create_token(alice_client)
    bob_secret = create_token(client_of(bob))
    token = ApiToken.objects.get(user=alice)
    response = alice_client.post("/profile/tokens/", {"revoke": token.pk})
    assert response.status_code == 302
    assert Client().get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {alice_secret}").status_code == 401

    bob.is_active = False
    bob.save()
    assert Client().get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {bob_secret}").status_code == 401


def test_cannot_revoke_someone_elses_token(alice, bob, client_of):
    create_token(client_of(bob))
    token = ApiToken.objects.get(user=bob)
    client_of(alice).post("/profile/tokens/", {"revoke": token.pk})
    assert ApiToken.objects.filter(pk=token.pk).exists()


@pytest.mark.parametrize("name", ["", "   ", "x" * 65])
def test_token_needs_a_sensible_name(alice, client_of, name):
    response = client_of(alice).post("/profile/tokens/", {"name": name})
    assert response.status_code == 400
    assert "1 to 64 characters" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_token_page_requires_login():
    response = Client().get("/profile/tokens/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
