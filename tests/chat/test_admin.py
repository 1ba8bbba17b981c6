"""The chat admin as moderators see it: conversations named so they can be told apart."""

import pytest
from django.db import connection
from django.forms import MultiWidget
from django.test.utils import CaptureQueriesContext

from moderation.models import AuditEntry
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


def unchanged_post(page) -> dict:
    """The data the admin change form on `page` posts when nothing is changed, inlines included."""
    data = {}
    forms = [page.context["adminform"].form]
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({bound.html_name: bound.value() for bound in management})
        forms += inline.formset.forms
    for form in forms:
        for bound in form:
            value = bound.value()
            if isinstance(bound.field.widget, MultiWidget):
                parts = bound.field.widget.decompress(value)
                data.update({f"{bound.html_name}_{i}": "" if part is None else part for i, part in enumerate(parts)})
            elif value is not None and value is not False:
                data[bound.html_name] = value
    return data


def test_members_added_in_the_admin_are_announced_and_listed_read_only(admin_client, alice, bob, carol):
    group = make_group(alice, bob, name="Team")
    path = f"/admin/chat/conversation/{group.pk}/change/"
    page = admin_client.get(path)
    data = unchanged_post(page)
    [shown, adding] = [inline.formset.prefix for inline in page.context["inline_admin_formsets"]]
    # An attempt to change a role through the listing is ignored: roles change through the services.
    data[f"{shown}-1-role"] = "owner"
    data.update({f"{adding}-TOTAL_FORMS": "1", f"{adding}-0-user": str(carol.pk)})
    answer = admin_client.post(path, data)
    assert answer.status_code == 302, answer.context and answer.context["adminform"].form.errors
    roles = dict(group.memberships.values_list("user__username", "role"))
    assert roles == {"alice": "owner", "bob": "member", "carol": "member"}
    # As an invitation would: a system line the members' clients read, and an audit row.
    line = group.messages.filter(kind="system").latest("id")
    assert (line.system["event"], line.system["user"]) == ("member.added", carol.pk)
    assert AuditEntry.objects.filter(action="member.added", target_user=carol).exists()

    # What the service refuses is said, not saved: a direct conversation has two members.
    direct = make_direct(alice, bob)
    path = f"/admin/chat/conversation/{direct.pk}/change/"
    page = admin_client.get(path)
    data = unchanged_post(page)
    adding = page.context["inline_admin_formsets"][1].formset.prefix
    data.update({f"{adding}-TOTAL_FORMS": "1", f"{adding}-0-user": str(carol.pk)})
    followed = admin_client.post(path, data, follow=True)
    assert "exactly two members" in followed.content.decode()
    assert direct.memberships.count() == 2
