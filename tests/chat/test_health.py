"""GET /health/: 200 when the database and the channel layer answer, 503 naming what failed."""

import json
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def get_health(server) -> tuple[int, dict]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(server.url + "/health/", timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_health_answers_ok(client):
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "channel_layer": "ok"}
    assert "no-cache" in response["Cache-Control"]
    assert client.post("/health/").status_code == 405


def test_health_names_an_unreachable_database(server_factory):
    server = server_factory("no-db", DATABASE_URL="postgresql://postgres@127.0.0.1:9/none")
    status, body = get_health(server)
    assert status == 503
    assert body["database"].startswith("failed") and body["channel_layer"] == "ok"


def test_health_names_an_unreachable_channel_layer(server_factory):
    server = server_factory("no-redis", REDIS_URL="redis://127.0.0.1:9/0")
    status, body = get_health(server)
    assert status == 503
    assert body["channel_layer"].startswith("failed") and body["database"] == "ok"
