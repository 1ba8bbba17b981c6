"""Formatted messages in headless Chromium: rendered as DOM nodes, never as markup from the sender."""

import json

from playwright.sync_api import expect

from chat.models import Conversation, Membership
from tests.browser.test_chat import conversation_button, open_chat, send, signed_in_context
from tests.markdown.test_markdown import HERE

FORMATTED = (
    "**Release** is _today_, run `make ship`:\n\n- check [the notes](https://example.com/notes)\n- tag it\n\n"
    "> ship it\n\n```\n<b>not bold</b>\n```"
)


def test_a_formatted_message_renders_the_same_for_both_sides(browser, live_url, alice, bob, artifacts_dir):
    channel = Conversation.objects.create(kind="channel", name="releases", created_by=alice)
    Membership.objects.create(conversation=channel, user=alice, role="owner")
    Membership.objects.create(conversation=channel, user=bob)
    errors = []
    alice_page = open_chat(signed_in_context(browser, live_url, alice), live_url, errors, "alice")
    bob_page = open_chat(signed_in_context(browser, live_url, bob), live_url, errors, "bob")
    conversation_button(alice_page, "releases").click()
    conversation_button(bob_page, "releases").click()
    send(alice_page, FORMATTED)

    for page in (alice_page, bob_page):
        text = page.locator("#messages .message .message-text").last
        expect(text.locator("strong")).to_have_text("Release")
        expect(text.locator("em")).to_have_text("today")
        expect(text.locator("p code")).to_have_text("make ship")
        expect(text.locator("ul li")).to_have_text(["check the notes", "tag it"])
        link = text.get_by_role("link", name="the notes")
        expect(link).to_have_attribute("href", "https://example.com/notes")
        expect(link).to_have_attribute("rel", "noopener noreferrer")
        expect(text.locator("blockquote")).to_have_text("ship it")
        # The code block shows the tags as text; no <b> element was made.
        expect(text.locator("pre code")).to_have_text("<b>not bold</b>")
        expect(text.locator("b")).to_have_count(0)
    bob_page.locator("#messages .message").last.screenshot(path=str(artifacts_dir / "formatted-message.png"))
    assert errors == []


def test_the_xss_corpus_renders_inert_in_chromium(browser, live_url, alice):
    """Render every hostile input with the app's own module; nothing runs, nothing becomes markup."""
    page = open_chat(signed_in_context(browser, live_url, alice), live_url, [], "alice")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    corpus = json.loads((HERE / "xss.json").read_text())
    report = page.evaluate(
        """async (corpus) => {
          const { render } = await import("/static/chat/js/markdown.js");
          const allowed = new Set(["P", "STRONG", "EM", "CODE", "PRE", "BLOCKQUOTE", "UL", "OL", "LI", "A"]);
          const problems = [];
          for (const source of corpus) {
            const box = document.createElement("div");
            box.append(render(source));
            document.body.append(box);
            for (const node of box.querySelectorAll("*")) {
              if (!allowed.has(node.tagName)) problems.push(`${source}: <${node.tagName}>`);
              for (const { name, value } of node.attributes) {
                const safeLink = name === "href" && /^(https?:\\/\\/|mailto:)/i.test(value);
                const ok = safeLink || ["target", "rel", "start"].includes(name);
                if (!ok) problems.push(`${source}: ${name}=${value}`);
              }
            }
            // Clicking every link must not run script either (they open new tabs to http(s) only).
            box.remove();
          }
          await new Promise((resolve) => setTimeout(resolve, 300));
          return problems;
        }""",
        corpus,
    )
    assert report == []
    assert dialogs == []
