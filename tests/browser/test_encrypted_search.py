"""Search of an encrypted conversation, done in the browser: the server never sees the query.

Also measures the browser index (20,000 messages): build, seal and query times, sealed size.
"""

import json
import re

from playwright.sync_api import expect

from chat.models import Conversation, Membership, Message
from tests.browser.test_chat import conversation_button, open_chat, send, signed_in_context
from tests.browser.test_e2e import PASSPHRASES, set_up_encryption, start_direct
from tests.conftest import ROOT

SECRET_WORD = "treasure"

READ_SEARCH_DB = """async () => {
  const names = (await indexedDB.databases()).map((db) => db.name);
  if (!names.includes("chatterbox-search")) return null;
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open("chatterbox-search");
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const records = await new Promise((resolve) => {
    const request = db.transaction("indexes").objectStore("indexes").getAll();
    request.onsuccess = () => resolve(request.result);
  });
  db.close();
  return records.map((r) => ({
    ownerId: r.ownerId, conversationId: r.conversationId, count: r.count,
    size: r.sealed.length, latin1: Array.from(r.sealed, (b) => String.fromCharCode(b)).join(""),
  }));
}"""


def test_an_encrypted_direct_message_is_found_without_the_server_seeing_the_query(
    browser, live_url, alice, bob, artifacts_dir
):
    # A public channel also says the word: scoped to the encrypted conversation, it is not asked.
    channel = Conversation.objects.create(kind="channel", name="general", created_by=alice)
    Membership.objects.create(conversation=channel, user=bob, role="owner")
    Message.objects.create(conversation=channel, sender=bob, client_id="p", body="treasure hunt in the park")
    errors = []
    alice_page = open_chat(signed_in_context(browser, live_url, alice), live_url, errors, "alice")
    bob_context = signed_in_context(browser, live_url, bob)
    bob_page = open_chat(bob_context, live_url, errors, "bob")
    set_up_encryption(alice_page, PASSPHRASES["alice"])
    set_up_encryption(bob_page, PASSPHRASES["bob"])
    start_direct(alice_page, "Bob Builder", "bob")
    send(alice_page, "The **treasure** is under the old oak, by the well")
    send(alice_page, "Bring a shovel")
    conversation_button(bob_page, "Alice Liddell").click()
    texts = bob_page.locator("#messages .message-text")
    expect(texts).to_have_text(["The treasure is under the old oak, by the well", "Bring a shovel"])
    direct = Conversation.objects.get(kind="direct")
    assert direct.encrypted
    assert not Message.objects.filter(conversation=direct, ciphertext__contains=SECRET_WORD).exists()

    # From here on, record everything Bob's page sends: HTTP requests and socket frames.
    sent = []
    bob_page.on("request", lambda request: sent.append(f"{request.url} {request.post_data or ''}"))
    bob_page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(str(payload))))
    bob_page.keyboard.press("Control+Shift+F")
    dialog = bob_page.locator("#search-dialog")
    expect(dialog.get_by_label("Where")).to_have_value("here")
    expect(dialog.locator("[data-note]")).to_contain_text("the server never sees what you search for")
    dialog.get_by_label("Search for").fill("treasu")  # a prefix is enough
    hit = dialog.locator(".search-hit")
    expect(hit).to_have_count(1)
    expect(hit.locator(".search-hit-badge")).to_have_text("on this device")
    expect(hit.locator("mark")).to_have_text("treasure")
    expect(hit.locator(".search-hit-snippet")).to_have_text("The treasure is under the old oak, by the well")
    expect(hit.locator(".search-hit-who")).to_have_text("Alice Liddell")
    # Words that are not all in one message find nothing.
    dialog.get_by_label("Search for").fill("treasure shovel")
    expect(dialog.locator("[data-status]")).to_have_text("No messages found.")
    dialog.get_by_label("Search for").fill("shovel")
    expect(hit.locator("mark")).to_have_text("shovel")
    dialog.get_by_label("Search for").fill("oak treasure")
    expect(hit.locator("mark")).to_have_text(["treasure", "oak"])
    dialog.screenshot(path=str(artifacts_dir / "search-encrypted.png"))
    hit.click()
    expect(dialog).to_be_hidden()
    assert not [entry for entry in sent if SECRET_WORD in entry or "shovel" in entry or "treasu" in entry]

    # What the browser keeps is sealed: the words are not in IndexedDB in the clear.
    bob_page.wait_for_timeout(2000)  # the index is saved shortly after it changes
    records = bob_page.evaluate(READ_SEARCH_DB)
    assert [(r["ownerId"], r["conversationId"], r["count"]) for r in records] == [(str(bob.pk), direct.pk, 2)]
    assert SECRET_WORD not in records[0]["latin1"] and "shovel" not in records[0]["latin1"]

    # A new page opens the sealed index: found before the conversation is even opened.
    bob_page.goto(f"{live_url}/")
    expect(bob_page.locator("#chat-app")).to_be_visible()
    bob_page.keyboard.press("Control+Shift+F")
    dialog.get_by_label("Where").select_option("encrypted")
    expect(dialog.locator("[data-note]")).to_contain_text("the server never sees what you search for")
    dialog.get_by_label("Search for").fill("shovel")
    expect(hit).to_have_count(1)
    hit.click()
    expect(bob_page.locator("#pane-title")).to_have_text("Alice Liddell")
    shovel = Message.objects.filter(conversation=direct).order_by("id").last()
    expect(bob_page.locator(f"#message-{shovel.pk}")).to_have_class(re.compile(r"\bfound\b"))

    # Logging out deletes the indexes.
    bob_page.get_by_role("button", name="Log out").click()
    # Signed out, "/" is the landing page.
    expect(bob_page.get_by_role("link", name="Sign up, it is free")).to_be_visible()
    assert bob_page.evaluate(READ_SEARCH_DB) is None
    assert errors == []


MEASURE = (ROOT / "bench" / "search_index_measure.js").read_text()


def test_the_browser_index_of_20000_messages_is_fast_enough(browser, live_url, alice, artifacts_dir):
    page = open_chat(signed_in_context(browser, live_url, alice), live_url, [], "alice")
    figures = page.evaluate(MEASURE, 20_000)
    (artifacts_dir / "search-index-figures.json").write_text(json.dumps(figures, indent=2))
    print("browser search index, 20,000 messages:", json.dumps(figures))
    assert figures["documents"] == 20_000
    # The figures against the targets (build under 1 s, query under 50 ms) come from
    # bench/search_browser.py on a quiet machine (docs/performance.md). Here, on a machine shared
    # with other test runs, only a regression by an order of magnitude is caught.
    assert figures["buildMs"] < 10_000, figures
    assert figures["queryMedianMs"] < 500, figures
