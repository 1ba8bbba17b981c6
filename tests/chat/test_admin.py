"""The chat admin as moderators see it: conversations named so they can be told apart."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.chat.conftest import make_channel, make_direct, make_group

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client_of, make_user):
    return client_of(make_user("root", is_staff=True, is_superuser=True))


def test_direct_conversations_are_listed_by_their_participants(admin_client, alice, bob, carol):
    direct = make_direct(bob, alice)
    make_direct(alice, carol)
    make_group(alice, bob, name="Team")
    make_channel(alice, name="general")
    assert str(direct) == "alice & bob"

    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get("/admin/chat/conversation/").content.decode()
    assert "alice &amp; bob" in page and "alice &amp; carol" in page and "Team" in page and "general" in page
    # The names come from one prefetch, not a query per conversation.
    assert len(queries) < 12

    change = admin_client.get(f"/admin/chat/conversation/{direct.pk}/change/").content.decode()
    assert "alice &amp; bob" in change


def test_message_list_names_direct_conversations_by_participants(admin_client, alice, bob):
    direct = make_direct(alice, bob)
    # The line that says who started it is a message of the conversation, listed like any other.
    assert direct.messages.count() == 1
    page = admin_client.get("/admin/chat/message/").content.decode()
    assert "alice &amp; bob" in page
