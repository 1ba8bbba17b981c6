"""Server-side search of plaintext conversations, on whichever database the suite runs on."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from chat import search, services
from chat.models import Message
from tests.chat.conftest import make_channel, make_group
from tests.chat.conftest import send as send_with_id

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_rate_limit(no_rate_limit):
    pass


def send(user, conversation, body, *, client_id=None):
    return send_with_id(user, conversation, body, client_id=client_id or f"c-{len(body)}-{abs(hash(body))}")


def search_as(client, **params):
    response = client.get("/api/search/", params)
    assert response.status_code == 200, response.content
    return response.json()


def error_of(response, status, code):
    assert response.status_code == status, response.content
    assert response.json()["error"] == code
    return response.json()


def test_hits_are_ranked_stemmed_and_snippets_mark_the_matched_words(alice, bob, client_of):
    channel = make_channel(alice, bob, name="ops")
    once = send(bob, channel, "We talked about the deploy yesterday and then went for lunch at noon")
    twice = send(alice, channel, "Deploying tonight: the deploy checklist is ready")
    send(alice, channel, "Nothing to see here")

    found = search_as(client_of(alice), q="deploy")
    assert [hit["message"]["id"] for hit in found["results"]] == [twice.pk, once.pk]
    assert found["has_more"] is False
    best = found["results"][0]
    assert best["conversation"] == {"id": channel.pk, "kind": "channel", "name": "ops"}
    assert best["message"]["body"] == "Deploying tonight: the deploy checklist is ready"
    assert best["message"]["sender"]["username"] == "alice"
    marked = [best["snippet"][start:end] for start, end in best["highlights"]]
    # Stemming finds "Deploying" as well as "deploy".
    assert marked == ["Deploying", "deploy"]
    assert "\x02" not in best["snippet"] and "\x03" not in best["snippet"]


def test_every_word_must_match_and_query_syntax_is_plain_text(alice, client_of):
    channel = make_channel(alice, name="general")
    both = send(alice, channel, "red apples and green pears")
    send(alice, channel, "red cars")
    client = client_of(alice)
    assert [hit["message"]["id"] for hit in search_as(client, q="red pears")["results"]] == [both.pk]
    # Operators of either engine are just words here: no error, no widening.
    for tricky in ['red OR cars"', "pears*", "NEAR(red pears)", "-red & !pears", "body:red"]:
        hits = search_as(client, q=tricky)["results"]
        assert all("red" in hit["message"]["body"] for hit in hits), tricky


def test_a_non_member_never_sees_a_hit(alice, bob, carol, client_of):
    channel = make_channel(alice, bob, name="private-ish")
    group = make_group(alice, bob, name="Plans")
    send(alice, channel, "the secret launch date is friday")
    send(alice, group, "the secret budget is small")
    assert search_as(client_of(carol), q="secret")["results"] == []
    assert len(search_as(client_of(bob), q="secret")["results"]) == 2
    # Asking for a conversation you are not in is refused, not answered empty.
    error_of(client_of(carol).get("/api/search/", {"q": "secret", "conversation": channel.pk}), 403, "not_member")
    # A member who leaves stops finding it.
    services.membership_remove(actor=bob, conversation_id=group.pk, username="bob")
    assert [hit["conversation"]["id"] for hit in search_as(client_of(bob), q="secret")["results"]] == [channel.pk]


def test_encrypted_and_deleted_messages_are_never_searched(alice, bob, client_of):
    encrypted = make_group(alice, bob, encrypted=True, name="Sealed")
    channel = make_channel(alice, bob)
    gone = send(alice, channel, "password reset link")
    services.message_delete(actor=alice, message_id=gone.pk)
    # Even a body smuggled into an encrypted conversation's row is not searched.
    Message.objects.create(conversation=encrypted, sender=alice, client_id="x", body="password hunter2")
    assert search_as(client_of(bob), q="password")["results"] == []
    detail = error_of(client_of(bob).get("/api/search/", {"q": "x", "conversation": encrypted.pk}), 400, "invalid")
    assert "browser" in detail["detail"]


def test_edits_update_the_index(alice, client_of):
    channel = make_channel(alice)
    message = send(alice, channel, "meeting on monday")
    services.message_edit(editor=alice, message_id=message.pk, body="meeting on tuesday")
    client = client_of(alice)
    assert search_as(client, q="monday")["results"] == []
    assert [hit["message"]["id"] for hit in search_as(client, q="tuesday")["results"]] == [message.pk]


def test_filters_by_conversation_sender_and_date(alice, bob, client_of):
    general = make_channel(alice, bob, name="general")
    random = make_channel(alice, bob, name="random")
    a = send(alice, general, "coffee break")
    b = send(bob, general, "coffee please")
    c = send(bob, random, "coffee machine broke")
    Message.objects.filter(pk=a.pk).update(created_at=timezone.now() - timedelta(days=10))
    client = client_of(alice)

    def ids(**params):
        return sorted(hit["message"]["id"] for hit in search_as(client, q="coffee", **params)["results"])

    assert ids() == sorted([a.pk, b.pk, c.pk])
    assert ids(conversation=general.pk) == sorted([a.pk, b.pk])
    assert ids(sender="BOB") == sorted([b.pk, c.pk])
    assert ids(sender="nobody") == []
    week_ago = (timezone.now() - timedelta(days=7)).isoformat()
    assert ids(before=week_ago) == [a.pk]
    assert ids(after=week_ago) == sorted([b.pk, c.pk])
    assert ids(after=(timezone.now() - timedelta(days=11)).date().isoformat(), sender="alice") == [a.pk]


def test_pages(alice, client_of, settings):
    channel = make_channel(alice)
    for n in range(search.PAGE_SIZE + 3):
        send(alice, channel, f"status report number {n}", client_id=f"r{n}")
    client = client_of(alice)
    first = search_as(client, q="report")
    second = search_as(client, q="report", page=2)
    assert len(first["results"]) == search.PAGE_SIZE and first["has_more"] is True
    assert len(second["results"]) == 3 and second["has_more"] is False
    seen = [hit["message"]["id"] for hit in first["results"] + second["results"]]
    assert len(set(seen)) == search.PAGE_SIZE + 3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "!!! ???"}, "q"),
        ({"q": "x" * (search.QUERY_MAX + 1)}, "q"),
        ({"q": "a", "page": "0"}, "page"),
        ({"q": "a", "page": "two"}, "page"),
        ({"q": "a", "page": str(search.PAGE_MAX + 1)}, "page"),
        ({"q": "a", "conversation": "abc"}, "conversation"),
        ({"q": "a", "before": "yesterday"}, "before"),
        ({"q": "a", "after": "2026-13-45"}, "after"),
    ],
)
def test_bad_searches_get_a_clear_error(alice, client_of, params, field):
    body = error_of(client_of(alice).get("/api/search/", params), 400, "invalid")
    assert body["field"] == field and body["detail"]


def test_search_needs_sign_in_and_get(client, alice, client_of):
    error_of(client.get("/api/search/", {"q": "x"}), 401, "unauthorized")
    error_of(client_of(alice).post("/api/search/", {"q": "x"}), 405, "method_not_allowed")


def test_the_index_is_the_engines_own(alice, client_of):
    """On PostgreSQL the query uses the GIN expression index; on SQLite the FTS5 table holds the rows."""
    channel = make_channel(alice)
    send(alice, channel, "indexed words here")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [search.POSTGRES_INDEX])
            assert "to_tsvector('english'::regconfig, body)" in cursor.fetchone()[0]
            cursor.execute("SET enable_seqscan = off")
            cursor.execute(
                "EXPLAIN SELECT id FROM chat_message"
                " WHERE to_tsvector('english', body) @@ plainto_tsquery('english', 'x')"
            )
            plan = " ".join(row[0] for row in cursor.fetchall())
            cursor.execute("SET enable_seqscan = on")
            assert search.POSTGRES_INDEX in plan
        else:
            cursor.execute(f"SELECT rowid FROM {search.FTS_TABLE} WHERE {search.FTS_TABLE} MATCH 'indexed'")
            assert len(cursor.fetchall()) == 1


def test_sqlite_triggers_come_back_after_a_table_rebuild(alice, client_of):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only: its schema editor rebuilds tables and drops their triggers")
    channel = make_channel(alice)
    send(alice, channel, "before the rebuild")
    with connection.cursor() as cursor:
        for trigger in search.SQLITE_TRIGGERS:
            cursor.execute(f"DROP TRIGGER {trigger}")
    send(alice, channel, "written while the triggers were gone")
    from django.core.management import call_command

    call_command("migrate", verbosity=0)  # post_migrate puts them back and refills the index
    client = client_of(alice)
    assert len(search_as(client, q="triggers gone")["results"]) == 1
    send(alice, channel, "after the repair")
    assert len(search_as(client, q="repair")["results"]) == 1
