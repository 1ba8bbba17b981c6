"""The user admin: list, search, filters, and the ban action."""

import pytest
from django.test import Client

from accounts.signals import user_banned
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

USERS_URL = "/admin/accounts/user/"


@pytest.fixture
def root(make_user):
    return make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(client_of, root):
    return client_of(root)


def listed_usernames(response) -> list[str]:
    return [user.username for user in response.context["cl"].result_list]


def test_user_list_renders_with_search_and_filters(admin_client, alice, bob, make_user):
    make_user("mallory", is_active=False)
    response = admin_client.get(USERS_URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Alice Liddell" in page
    assert f'src="{alice.avatar_url}"' in page
    assert "By active" in page and "By staff status" in page
    assert listed_usernames(response) == ["alice", "bob", "mallory", "root"]

    assert listed_usernames(admin_client.get(USERS_URL, {"q": "builder"})) == ["bob"]
    assert listed_usernames(admin_client.get(USERS_URL, {"is_active__exact": "0"})) == ["mallory"]


def test_user_change_page_shows_the_profile(admin_client, alice):
    page = admin_client.get(f"{USERS_URL}{alice.pk}/change/").content.decode()
    assert "Profile" in page
    assert 'name="display_name"' in page and 'name="status"' in page


def test_user_list_is_refused_to_non_staff(client_of, alice):
    assert client_of(alice).get(USERS_URL).status_code == 302


def ban(admin_client, *users, reason="Spam"):
    """Run the ban action as a moderator would: pick the users, then confirm with a reason."""
    selected = {"action": "ban_users", "_selected_action": [user.pk for user in users]}
    asked = admin_client.post(USERS_URL, selected)
    assert asked.status_code == 200 and 'name="reason"' in asked.content.decode()
    return admin_client.post(USERS_URL, {**selected, "confirm_ban": "1", "reason": reason}, follow=True)


def test_ban_action_asks_for_a_reason_before_banning(admin_client, bob):
    selected = {"action": "ban_users", "_selected_action": [bob.pk]}
    page = admin_client.post(USERS_URL, selected).content.decode()
    assert "These accounts will be deactivated" in page and "<li>bob (Bob Builder)</li>" in page
    bob.refresh_from_db()
    assert bob.is_active is True  # asking is not banning

    # No reason: the same page again, with the error, and still no ban.
    page = admin_client.post(USERS_URL, {**selected, "confirm_ban": "1", "reason": "  "}).content.decode()
    assert "This field is required." in page
    bob.refresh_from_db()
    assert bob.is_active is True

    ban(admin_client, bob, reason="Posted phishing links in #general")
    bob.refresh_from_db()
    assert (bob.is_active, bob.ban_reason) == (False, "Posted phishing links in #general")
    assert bob.banned_at is not None
    change_page = admin_client.get(f"{USERS_URL}{bob.pk}/change/").content.decode()
    assert "Posted phishing links in #general" in change_page


def test_admin_groups_account_models_under_accounts(admin_client):
    page = admin_client.get("/admin/")
    sections = {app["name"]: [model["object_name"] for model in app["models"]] for app in page.context["app_list"]}
    assert set(sections) == {"Accounts", "Chat", "Moderation"}
    assert {"User", "ApiToken", "Group", "EmailAddress", "Authenticator", "UserSession"} <= set(sections["Accounts"])
    assert 'rel="icon"' in page.content.decode()


def test_ban_action_deactivates_and_signals_the_socket_layer(
    admin_client, root, bob, django_capture_on_commit_callbacks
):
    banned = []

    def record(sender, user_id, **kwargs):
        banned.append(user_id)

    user_banned.connect(record)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = ban(admin_client, bob, root)
    finally:
        user_banned.disconnect(record)
    assert "Banned 1 user(s)." in response.content.decode()
    bob.refresh_from_db()
    root.refresh_from_db()
    assert bob.is_active is False
    assert root.is_active is True  # an admin cannot ban themselves by accident
    assert banned == [bob.pk]


def test_banned_user_cannot_log_in_and_loses_open_sessions(admin_client, client_of, bob):
    open_session = client_of(bob)
    assert open_session.get("/api/me/").status_code == 200
    ban(admin_client, bob)

    assert open_session.get("/api/me/").status_code == 401
    client = Client()
    response = client.post("/accounts/login/", {"login": "bob", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/inactive/"
    assert client.get("/api/me/").status_code == 401
    response = client.post("/accounts/login/", {"login": "bob@example.com", "password": PASSWORD})
    assert client.get("/api/me/").status_code == 401


def test_unban_lets_the_user_back_in(admin_client, bob):
    ban(admin_client, bob)
    response = admin_client.post(USERS_URL, {"action": "unban_users", "_selected_action": [bob.pk]}, follow=True)
    assert "Ban lifted." in response.content.decode()
    client = Client()
    assert client.post("/accounts/login/", {"login": "bob", "password": PASSWORD}).status_code == 302
    assert client.get("/api/me/").json()["username"] == "bob"


def test_unticking_active_on_the_change_page_is_a_ban(admin_client, bob, django_capture_on_commit_callbacks):
    banned = []

    def record(sender, user_id, **kwargs):
        banned.append(user_id)

    # The change form as the browser would send it, with "Active" unticked.
    fields = {"username": "bob", "email": bob.email, "display_name": bob.display_name, "status": "", "bio": ""}
    user_banned.connect(record)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(f"{USERS_URL}{bob.pk}/change/", fields)
    finally:
        user_banned.disconnect(record)
    assert response.status_code == 302, response.context["adminform"].form.errors
    bob.refresh_from_db()
    assert bob.is_active is False
    assert banned == [bob.pk]
