"""Anti-abuse limits: per user, per client address, stricter for new accounts, with retry_after."""

from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.utils import timezone

from chatterbox.errors import RateLimited
from moderation import limits
from tests.chat.conftest import make_channel, make_group, send

pytestmark = pytest.mark.django_db


def post(client, path, body, **headers):
    return client.post(path, body, content_type="application/json", **headers)


@pytest.fixture
def tight(settings):
    settings.ABUSE_LIMITS = {
        "conversations": ("3/3600", "1/3600"),
        "invitations": ("3/3600", "1/3600"),
        "reports": ("2/600", "1/600"),
        "uploads": ("2/60", "1/60"),
    }
    settings.RATE_LIMIT_ADDRESS_FACTOR = 2
    settings.NEW_ACCOUNT_AGE_HOURS = 24
    return settings


def established(user):
    user.date_joined = timezone.now() - timedelta(days=30)
    user.save(update_fields=["date_joined"])
    return user


def test_conversation_creation_is_limited_with_retry_after(tight, alice, client_of):
    client = client_of(established(alice))
    for number in range(3):
        assert post(client, "/api/conversations/", {"kind": "channel", "name": f"c{number}"}).status_code == 201
    refused = post(client, "/api/conversations/", {"kind": "channel", "name": "c3"})
    assert refused.status_code == 429
    answer = refused.json()
    assert answer["error"] == "rate_limited"
    assert 1 <= answer["retry_after"] <= 3600
    assert refused["Retry-After"] == str(answer["retry_after"])
    assert answer["detail"].startswith("Too many new conversations: at most 3 every 1 h. Try again in ")


def test_new_accounts_get_the_stricter_limit(tight, alice, bob, client_of):
    client = client_of(alice)  # joined just now
    assert post(client, "/api/conversations/", {"kind": "channel", "name": "one"}).status_code == 201
    assert post(client, "/api/conversations/", {"kind": "channel", "name": "two"}).status_code == 429
    tight.NEW_ACCOUNT_AGE_HOURS = 0
    assert post(client, "/api/conversations/", {"kind": "channel", "name": "two"}).status_code == 201


def test_invitations_count_group_members_and_invites(tight, alice, bob, carol, make_user, client_of):
    client = client_of(established(alice))
    dave, erin = make_user("dave"), make_user("erin")
    group = post(client, "/api/conversations/", {"kind": "group", "name": "g", "members": ["bob", "carol"]}).json()
    assert post(client, f"/api/conversations/{group['id']}/members/", {"username": "dave"}).status_code == 201
    refused = post(client, f"/api/conversations/{group['id']}/members/", {"username": "erin"})
    assert refused.status_code == 429
    assert "Too many invitations" in refused.json()["detail"]
    assert erin.memberships.count() == 0 and dave.memberships.count() == 1


def test_reports_are_limited(tight, alice, bob, carol, client_of):
    client = client_of(established(bob))
    channel = make_channel(alice, bob)
    for number in range(2):
        message = send(alice, channel, f"m{number}")
        assert post(client, "/api/reports/", {"message": message.pk, "reason": "spam"}).status_code == 201
    message = send(alice, channel, "m3")
    assert post(client, "/api/reports/", {"message": message.pk, "reason": "spam"}).status_code == 429


def test_one_address_is_limited_across_users(tight, alice, bob, carol, client_of):
    for user in (alice, bob, carol):
        established(user)
    group = make_group(carol, alice, bob)
    messages = [send(carol, group, f"x{n}") for n in range(3)]
    # Reports: 2 per user, 4 per address. Alice and bob use theirs up from one address...
    for user in (alice, bob):
        for message in messages[:2]:
            assert post(client_of(user), "/api/reports/", {"message": message.pk, "reason": "spam"}).status_code == 201
    # ...so a third user there is refused, though carol has reported nothing yet.
    refused = post(client_of(carol), "/api/reports/", {"user": "alice", "reason": "spam"})
    assert refused.status_code == 429
    assert "at most 4 every 10 min" in refused.json()["detail"]
    # From another address (behind one trusted proxy) carol gets through.
    tight.TRUSTED_PROXY_COUNT = 1
    other = post(
        client_of(carol), "/api/reports/", {"user": "alice", "reason": "spam"}, HTTP_X_FORWARDED_FOR="198.51.100.4"
    )
    assert other.status_code == 201


def test_a_refusal_by_address_does_not_count_against_the_user(tight, alice, bob):
    established(alice)
    established(bob)
    for _ in range(2):
        limits.rate_check("uploads", user=bob, address="203.0.113.5")
    limits.rate_check("uploads", user=alice, address="203.0.113.5")
    limits.rate_check("uploads", user=alice, address="203.0.113.5")
    with pytest.raises(RateLimited) as refused:
        limits.upload_rate_check(user=alice, address="203.0.113.5")
    assert refused.value.extra["retry_after"] >= 1
    # From another address alice still has her own allowance: nothing was counted for her above.
    with pytest.raises(RateLimited):
        limits.upload_rate_check(user=alice, address="198.51.100.7")


def test_an_off_limit_counts_nothing(settings, alice):
    settings.ABUSE_LIMITS = {**settings.ABUSE_LIMITS, "uploads": ("off", "off")}
    for _ in range(50):
        limits.upload_rate_check(user=alice)


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "198.51.100.1", "10.0.0.9"),  # no proxy trusted: the header is the client's own claim
        (1, "198.51.100.1", "198.51.100.1"),
        (1, "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # a forged entry on the left is ignored
        (2, "6.6.6.6, 198.51.100.1, 10.1.1.1", "198.51.100.1"),
        (2, "198.51.100.1", "198.51.100.1"),
        (1, "", "10.0.0.9"),
        (1, "not-an-address", "10.0.0.9"),
        (1, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_the_client_address_is_read_from_the_right(settings, proxies, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR=forwarded)
    assert limits.client_address(request) == expected


def test_the_upload_endpoint_is_limited(tight, alice, client_of):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from chat.models import Attachment

    client = client_of(established(alice))
    channel = make_channel(alice)

    def upload():
        file = SimpleUploadedFile("notes.txt", b"hello", content_type="text/plain")
        return client.post("/api/attachments/", {"file": file, "conversation": channel.pk})

    assert [upload().status_code for _ in range(2)] == [201, 201]
    refused = upload()
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert Attachment.objects.count() == 2
