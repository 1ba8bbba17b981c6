"""Every answer under /api/ is JSON {"error", "detail"}, whichever layer refused the request."""

import json

import pytest
from django.test import Client

from accounts import tokens

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(alice):
    _, raw = tokens.token_create(user=alice, name="bot")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def assert_json_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:200])
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == code and isinstance(body["detail"], str) and body["detail"], body
    return body


def test_a_body_over_the_size_limit_is_413_json(api, settings):
    body = json.dumps({"kind": "group", "name": "big", "members": ["x" * 1000] * 3000})
    assert len(body) > 3_000_000 > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = api.post("/api/conversations/", body, content_type="application/json")
    assert_json_error(response, 413, "too_large")


def test_a_form_body_over_the_size_limit_is_413_json_too(alice):
    """Here Django's CSRF check reads the form before any view does."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice, backend="django.contrib.auth.backends.ModelBackend")
    client.cookies["csrftoken"] = "k" * 32
    response = client.post("/api/conversations/", {"name": "x" * 3_000_000}, HTTP_X_CSRFTOKEN="k" * 32)
    assert_json_error(response, 413, "too_large")


@pytest.mark.parametrize("path", ["/api/nothing/", "/api/conversations/999999/", "/api/conversations/abc/"])
def test_unknown_urls_are_404_json(api, path):
    assert_json_error(api.get(path), 404, "not_found")


def test_unknown_urls_are_404_json_when_signed_out_and_in_debug(settings):
    settings.DEBUG = True
    assert_json_error(Client().get("/api/nothing/"), 404, "not_found")


def test_other_methods_are_405_json(api):
    response = api.put("/api/me/", "{}", content_type="application/json")
    assert_json_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, PATCH"


def test_csrf_failure_is_403_json(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice, backend="django.contrib.auth.backends.ModelBackend")
    response = client.post("/api/conversations/", {"kind": "group"}, content_type="application/json")
    body = assert_json_error(response, 403, "forbidden")
    assert "CSRF" in body["detail"]


def test_bad_json_is_400_json(api):
    response = api.post("/api/conversations/", "{nope", content_type="application/json")
    assert_json_error(response, 400, "invalid")


@pytest.mark.urls("tests.accounts.failing_urls")
def test_a_decorator_s_405_is_json(api):
    response = api.get("/api/test/post-only/")
    assert_json_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"


@pytest.mark.urls("tests.accounts.failing_urls")
@pytest.mark.parametrize("debug", [False, True])
def test_a_server_error_is_500_json(api, settings, debug):
    settings.DEBUG = debug
    api.raise_request_exception = False
    assert_json_error(api.get("/api/test/broken/"), 500, "server_error")


def test_pages_keep_their_html_errors(client_of, alice):
    response = client_of(alice).get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")
