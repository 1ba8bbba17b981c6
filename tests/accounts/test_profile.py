"""The profile page and the JSON API: /api/me/ and /api/users/."""

import json

import pytest
from django.test import Client

from chat.presence import presence_connect

pytestmark = pytest.mark.django_db


def patch_me(client: Client, body, **headers):
    payload = body if isinstance(body, str) else json.dumps(body)
    return client.patch("/api/me/", payload, content_type="application/json", **headers)


# The profile page.


def test_profile_page_needs_login(client):
    response = client.get("/profile/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_profile_form_saves_the_fields(client_of, alice):
    client = client_of(alice)
    page = client.get("/profile/")
    assert page.status_code == 200
    assert 'value="Alice Liddell"' in page.content.decode()

    response = client.post("/profile/", {"display_name": "  Alice L.  ", "status": "In Wonderland", "bio": "Curious."})
    assert response.status_code == 302
    alice.refresh_from_db()
    assert (alice.display_name, alice.status, alice.bio) == ("Alice L.", "In Wonderland", "Curious.")
    assert "Your profile was saved." in client.get("/profile/").content.decode()


def test_profile_form_refuses_too_long_text(client_of, alice):
    client = client_of(alice)
    response = client.post("/profile/", {"display_name": "x" * 65, "status": "", "bio": ""})
    assert response.status_code == 400
    assert "display_name" in response.context["form"].errors
    alice.refresh_from_db()
    assert alice.display_name == "Alice Liddell"


def test_profile_form_ignores_fields_it_does_not_offer(client_of, alice):
    client = client_of(alice)
    client.post("/profile/", {"display_name": "A", "status": "", "bio": "", "is_staff": "on", "username": "root"})
    alice.refresh_from_db()
    assert (alice.username, alice.is_staff) == ("alice", False)


# GET/PATCH /api/me/


def test_me_answers_the_profile(client_of, alice):
    body = client_of(alice).get("/api/me/").json()
    assert body == {
        "id": alice.pk,
        "username": "alice",
        "display_name": "Alice Liddell",
        "avatar_url": f"/users/{alice.pk}/avatar/?v=0",
        "bio": "",
        "status": "",
    }


def test_me_display_name_falls_back_to_the_username(client_of, make_user):
    carol = make_user("carol")
    assert client_of(carol).get("/api/me/").json()["display_name"] == "carol"


def test_patch_me_changes_the_given_fields_only(client_of, alice):
    client = client_of(alice)
    response = patch_me(client, {"status": "  Reading  ", "bio": "Down the rabbit hole."})
    assert response.status_code == 200
    assert response.json()["status"] == "Reading"
    assert response.json()["display_name"] == "Alice Liddell"
    alice.refresh_from_db()
    assert (alice.status, alice.bio, alice.display_name) == ("Reading", "Down the rabbit hole.", "Alice Liddell")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"username": "root"}, "username", "This field cannot be changed here."),
        ({"is_staff": True}, "is_staff", "This field cannot be changed here."),
        ({"display_name": 42}, "display_name", "Must be text."),
        ({"bio": None}, "bio", "Must be text."),
        ({"status": ["a"]}, "status", "Must be text."),
        ({"display_name": "x" * 65}, "display_name", "At most 64 characters."),
        ({"status": "x" * 101}, "status", "At most 100 characters."),
        ({"bio": "x" * 501}, "bio", "At most 500 characters."),
    ],
)
def test_patch_me_refuses_bad_fields(client_of, alice, body, field, message):
    client = client_of(alice)
    response = patch_me(client, {"status": "changed", **body})
    assert response.status_code == 400
    answer = response.json()
    assert answer["error"] == "invalid"
    assert answer["fields"] == {field: message}
    assert field in answer["detail"]
    alice.refresh_from_db()
    assert alice.status == ""  # nothing was saved, not even the good field


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '"text"'])
def test_patch_me_needs_a_json_object(client_of, alice, body):
    response = patch_me(client_of(alice), body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"


def test_me_is_401_json_for_anonymous(client):
    for response in (client.get("/api/me/"), patch_me(client, {"status": "x"})):
        assert response.status_code == 401
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"] == "unauthorized"


def test_me_refuses_other_methods(client_of, alice):
    response = client_of(alice).post("/api/me/", {})
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert response["Allow"] == "GET, PATCH"


def test_patch_me_with_a_session_needs_the_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice, backend="django.contrib.auth.backends.ModelBackend")
    response = patch_me(client, {"status": "forged"})
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    alice.refresh_from_db()
    assert alice.status == ""

    client.get("/profile/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = patch_me(client, {"status": "genuine"}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    alice.refresh_from_db()
    assert alice.status == "genuine"


# GET /api/users/?q=


def test_user_search_matches_username_and_display_name(client_of, alice, bob, make_user):
    make_user("robert", display_name="Rob")
    make_user("zed", display_name="Bobby Tables")
    client = client_of(alice)
    found = client.get("/api/users/", {"q": "bob"}).json()
    assert sorted(user["username"] for user in found) == ["bob", "zed"]
    found = client.get("/api/users/", {"q": "LIDDELL"}).json()
    assert [user["username"] for user in found] == ["alice"]


def test_user_search_excludes_inactive_users(client_of, alice, make_user):
    make_user("bobby", is_active=False)
    assert client_of(alice).get("/api/users/", {"q": "bobby"}).json() == []


def test_user_search_answers_contract_users_with_status_and_online(client_of, alice, bob):
    bob.status = "Building"
    bob.save()
    presence_connect(bob.pk)
    found = client_of(alice).get("/api/users/").json()
    assert found == [
        {
            "id": alice.pk,
            "username": "alice",
            "display_name": "Alice Liddell",
            "avatar_url": alice.avatar_url,
            "status": "",
            "online": False,
        },
        {
            "id": bob.pk,
            "username": "bob",
            "display_name": "Bob Builder",
            "avatar_url": bob.avatar_url,
            "status": "Building",
            "online": True,
        },
    ]


def test_user_search_is_capped(client_of, alice, make_user):
    for number in range(25):
        make_user(f"user{number:02}")
    assert len(client_of(alice).get("/api/users/", {"q": "user"}).json()) == 20


def test_user_search_refuses_long_queries_and_anonymous(client, client_of, alice):
    response = client_of(alice).get("/api/users/", {"q": "x" * 65})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    response = client.get("/api/users/", {"q": "alice"})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


# One person's profile: /api/users/USERNAME/.


def test_user_profile_answers_status_bio_and_presence(client_of, alice, bob):
    bob.status, bob.bio = "Fixing it", "Can we fix it? Yes we can."
    bob.save()
    response = client_of(alice).get("/api/users/bob/")
    assert response.status_code == 200
    assert response.json() == {
        "id": bob.pk,
        "username": "bob",
        "display_name": "Bob Builder",
        "avatar_url": bob.avatar_url,
        "bio": "Can we fix it? Yes we can.",
        "status": "Fixing it",
        "online": False,
        "last_seen": None,
    }


def test_user_profile_says_when_an_offline_user_was_last_seen(client_of, alice, bob):
    from accounts.services import users_seen

    users_seen(user_ids=[bob.pk])
    bob.refresh_from_db()
    answer = client_of(alice).get("/api/users/BOB/").json()
    assert answer["online"] is False
    assert answer["last_seen"] == bob.last_seen_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    presence_connect(bob.pk)
    answer = client_of(alice).get("/api/users/bob/").json()
    assert (answer["online"], answer["last_seen"]) == (True, None)


def test_user_profile_is_404_for_unknown_and_banned_users(client, client_of, alice, make_user):
    make_user("carol", is_active=False)
    for name in ("nobody", "carol"):
        response = client_of(alice).get(f"/api/users/{name}/")
        assert response.status_code == 404
        assert response.json() == {"error": "not_found", "detail": f"There is no user @{name}."}
    assert client.get("/api/users/alice/").status_code == 401
    assert client_of(alice).post("/api/users/alice/").status_code == 405
