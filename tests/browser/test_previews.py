"""Link previews in headless Chromium, from a server allowed to fetch from a local test site."""

import pytest
from playwright.sync_api import expect

from chat.models import Conversation, Membership
from tests.browser.test_chat import conversation_button, open_chat, send, signed_in_context
from tests.chat.test_previews import HTML, PAGE, Site
from tests.conftest import ServerProcess, server_env


@pytest.fixture(scope="module")
def preview_server(django_db_setup, django_db_blocker, artifacts_dir, tmp_path_factory):
    with django_db_blocker.unblock():
        env = server_env(tmp_path_factory.mktemp("media"))
    env["LINK_PREVIEW_TEST_NETWORKS"] = "127.0.0.1/32"
    server = ServerProcess(env, artifacts_dir / "daphne-previews.log", "previews")
    yield server
    server.stop()


def test_a_link_gets_a_preview_unless_the_sender_opted_out(
    browser, preview_server, transactional_db, alice, bob, artifacts_dir
):
    site = Site()
    site.routes["/doc"] = (200, HTML, PAGE)
    try:
        live_url = preview_server.url
        channel = Conversation.objects.create(kind="channel", name="links", created_by=alice)
        Membership.objects.create(conversation=channel, user=alice, role="owner")
        Membership.objects.create(conversation=channel, user=bob)
        errors = []
        alice_page = open_chat(signed_in_context(browser, live_url, alice), live_url, errors, "alice")
        bob_page = open_chat(signed_in_context(browser, live_url, bob), live_url, errors, "bob")
        conversation_button(alice_page, "links").click()
        conversation_button(bob_page, "links").click()

        send(alice_page, f"Spec is at {site.url}/doc")
        card = bob_page.locator("#messages .message").last.locator(".link-preview")
        expect(card.locator(".link-preview-title")).to_have_text("The & Title")
        expect(card.locator(".link-preview-title")).to_have_attribute("href", f"{site.url}/doc")
        expect(card.locator(".link-preview-site")).to_have_text("Example Site")
        expect(card.locator(".link-preview-description")).to_have_text("What the page is about.")
        bob_page.locator("#messages .message").last.screenshot(path=str(artifacts_dir / "link-preview.png"))

        send(alice_page, f"No card for <{site.url}/doc> please")
        last = bob_page.locator("#messages .message").last
        expect(last.locator(".message-text")).to_have_text(f"No card for {site.url}/doc please")
        expect(last.get_by_role("link")).to_have_attribute("href", f"{site.url}/doc")
        bob_page.wait_for_timeout(500)
        expect(last.locator(".link-preview")).to_have_count(0)
        # The server fetched the page once for both readers and both messages (cached).
        assert site.hits == ["/doc"]
        assert errors == []
    finally:
        site.close()
