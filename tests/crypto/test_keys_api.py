"""PUT/GET /api/keys/ and GET /api/keys/USERNAME/: storing key backups and handing out public keys."""

import base64
import json
import os

import pytest
from django.test import Client

from accounts import keys
from accounts.models import UserKey
from accounts.signals import user_key_changed
from chatterbox.errors import Invalid
from client import e2e

pytestmark = pytest.mark.django_db
INTERACTIVE = {"alg": "argon2id13", "opslimit": e2e.OPSLIMIT_INTERACTIVE, "memlimit": e2e.MEMLIMIT_INTERACTIVE}


def b64(size: int) -> str:
    return base64.b64encode(os.urandom(size)).decode()


def backup_body(**changes) -> dict:
    """A well-formed backup of random bytes: the server checks shapes, it cannot check contents."""
    body = {"public_key": b64(32), "encrypted_private_key": b64(48), "salt": b64(16), "nonce": b64(24)}
    return {**body, "kdf": dict(INTERACTIVE), **changes}


def put(client, body) -> tuple[int, dict]:
    response = client.put("/api/keys/", json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


@pytest.fixture
def key_changes():
    seen = []

    def receiver(sender, signal, **kwargs):
        seen.append(kwargs)

    user_key_changed.connect(receiver)
    yield seen
    user_key_changed.disconnect(receiver)


def test_a_real_backup_round_trips_through_the_server(alice, bob, client_of):
    private_key = e2e.generate_key_pair()
    backup = e2e.backup_key_pair(private_key, "river stone lantern", opslimit=2, memlimit=INTERACTIVE["memlimit"])
    status, stored = put(client_of(alice), backup)
    assert status == 200
    assert {field: stored[field] for field in backup} == backup

    fetched = client_of(alice).get("/api/keys/").json()
    assert bytes(e2e.unlock_key_pair(fetched, "river stone lantern")) == bytes(private_key)
    public = client_of(bob).get("/api/keys/alice/")
    assert public.status_code == 200
    assert public.json()["public_key"] == e2e.public_key_b64(private_key)
    assert public.json()["user_id"] == alice.pk


def test_own_backup_missing_is_404_json(alice, client_of):
    response = client_of(alice).get("/api/keys/")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_public_key_of_unknown_keyless_or_banned_user_is_404(alice, bob, make_user, client_of):
    assert client_of(alice).get("/api/keys/nobody/").json()["error"] == "not_found"
    assert client_of(alice).get("/api/keys/bob/").status_code == 404
    carol = make_user("carol")
    keys.key_backup_store(user=carol, **backup_body())
    assert client_of(alice).get("/api/keys/carol/").status_code == 200
    carol.is_active = False
    carol.save(update_fields=["is_active"])
    assert client_of(alice).get("/api/keys/carol/").status_code == 404


@pytest.mark.parametrize(("method", "path"), [("get", "/api/keys/"), ("put", "/api/keys/"), ("get", "/api/keys/bob/")])
def test_anonymous_is_401(client, bob, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_other_methods_are_405(alice, client_of):
    assert client_of(alice).post("/api/keys/").status_code == 405
    assert client_of(alice).put("/api/keys/alice/").status_code == 405


def test_put_without_csrf_token_is_refused_and_with_it_accepted(alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice, backend="django.contrib.auth.backends.ModelBackend")
    status, answer = put(browser, backup_body())
    assert (status, answer["error"]) == (403, "forbidden")
    assert "CSRF" in answer["detail"]
    assert not UserKey.objects.filter(user=alice).exists()

    browser.get("/")
    token = browser.cookies["csrftoken"].value
    response = browser.put(
        "/api/keys/", json.dumps(backup_body()), content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 200
    assert UserKey.objects.filter(user=alice).exists()


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        ({"public_key": "not base64!"}, "public_key is not standard base64"),
        ({"public_key": b64(32).rstrip("=")}, "public_key is not standard base64"),
        ({"public_key": base64.urlsafe_b64encode(b"\xff" * 32).decode()}, "public_key is not standard base64"),
        ({"public_key": 12345}, "public_key must be base64 text"),
        ({"public_key": "ï" * 44}, "public_key is not standard base64"),
        ({"public_key": b64(31)}, "public_key must be 32 bytes, not 31"),
        ({"public_key": b64(33)}, "public_key must be 32 bytes, not 33"),
        ({"encrypted_private_key": b64(32)}, "encrypted_private_key must be 48 bytes, not 32"),
        ({"salt": b64(8)}, "salt must be 16 bytes, not 8"),
        ({"nonce": b64(12)}, "nonce must be 24 bytes, not 12"),
        ({"kdf": "argon2id13"}, "kdf must be an object"),
        ({"kdf": {**INTERACTIVE, "alg": "scrypt"}}, 'kdf.alg must be "argon2id13"'),
        ({"kdf": {**INTERACTIVE, "opslimit": 1}}, "kdf.opslimit must be at least 2"),
        ({"kdf": {**INTERACTIVE, "memlimit": 8 << 20}}, "kdf.memlimit must be at least 67108864"),
        ({"kdf": {**INTERACTIVE, "opslimit": 1000}}, "kdf.opslimit must be at most 16"),
        ({"kdf": {**INTERACTIVE, "memlimit": 8 << 30}}, "kdf.memlimit must be at most 1073741824"),
        ({"kdf": {**INTERACTIVE, "opslimit": "3"}}, "kdf.opslimit must be an integer"),
        ({"kdf": {**INTERACTIVE, "memlimit": True}}, "kdf.memlimit must be an integer"),
        ({"kdf": {**INTERACTIVE, "parallelism": 4}}, "kdf has unknown fields: parallelism"),
        ({"kdf": {"alg": "argon2id13"}}, "kdf.opslimit must be an integer"),
        ({"extra": 1}, "Unknown fields: extra"),
    ],
)
def test_put_refuses_malformed_backups(alice, client_of, changes, detail):
    status, answer = put(client_of(alice), backup_body(**changes))
    assert (status, answer["error"]) == (400, "invalid")
    assert detail in answer["detail"]
    assert not UserKey.objects.filter(user=alice).exists()


def test_put_refuses_missing_fields_and_non_objects(alice, client_of):
    body = backup_body()
    del body["salt"]
    assert put(client_of(alice), body) == (400, {"error": "invalid", "detail": "Missing fields: salt."})
    assert put(client_of(alice), [body])[1]["detail"] == "Send a JSON object."
    response = client_of(alice).put("/api/keys/", "{nope", content_type="application/json")
    assert (response.status_code, response.json()["error"]) == (400, "invalid")


def test_refusal_names_the_field(alice, client_of):
    _, answer = put(client_of(alice), backup_body(nonce=b64(23)))
    assert answer["field"] == "nonce"


def test_new_passphrase_keeps_the_key_and_sends_no_signal(
    alice, client_of, key_changes, django_capture_on_commit_callbacks
):
    first = backup_body()
    put(client_of(alice), first)
    with django_capture_on_commit_callbacks(execute=True):
        status, _ = put(client_of(alice), {**backup_body(), "public_key": first["public_key"]})
    assert status == 200
    assert UserKey.objects.filter(user=alice).count() == 1
    assert key_changes == []


def test_key_reset_replaces_the_backup_and_signals_on_commit(
    alice, client_of, key_changes, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = backup_body()
        put(client_of(alice), first)
    # A first key is announced too, without a previous one: contacts waiting for it go ahead.
    assert key_changes == [{"user_id": alice.pk, "public_key": first["public_key"], "previous_public_key": None}]
    key_changes.clear()

    second = backup_body()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        put(client_of(alice), second)
    assert key_changes == []  # nothing before commit
    for callback in callbacks:
        callback()
    assert key_changes == [
        {"user_id": alice.pk, "public_key": second["public_key"], "previous_public_key": first["public_key"]}
    ]
    stored = client_of(alice).get("/api/keys/").json()
    assert stored["public_key"] == second["public_key"] and stored["salt"] == second["salt"]


def test_service_refuses_the_same_way_for_every_door(alice):
    with pytest.raises(Invalid, match="salt must be 16 bytes"):
        keys.key_backup_store(user=alice, **backup_body(salt=b64(15)))
