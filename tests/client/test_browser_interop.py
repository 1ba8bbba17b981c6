"""The Python client and a person in headless Chromium talk to each other, through a real Daphne.

A public channel and an encrypted direct message, both ways, with a server restart in the
middle (the client reconnects and syncs: nothing lost, nothing twice); the `chatterbox listen`
command prints what the browser sends; the example bot answers commands sent from the browser.
"""

import json
import os
import re
import select
import subprocess
import sys
import threading
import time

from playwright.sync_api import expect

from chat import services
from chat.models import Message as StoredMessage
from client import SyncClient
from client.keys import KeyStore
from tests.browser.test_chat import conversation_button, message_texts, open_chat, send, signed_in_context
from tests.browser.test_e2e import PASSPHRASES, set_up_encryption
from tests.client.test_cli import CHATTERBOX
from tests.client.test_library import FAST_KDF, messages_of, picture_bytes


def in_thread(function, **kwargs):
    """Call a service from a thread of its own (Playwright's event loop holds this one); return its result."""
    from django.db import connection

    result = {}

    def run():
        try:
            result["value"] = function(**kwargs)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return result.get("value")


def channel_for(alice, bob, name="general"):
    channel, _ = in_thread(services.conversation_create, creator=alice, kind="channel", name=name)
    in_thread(services.channel_join, user=bob, conversation_id=channel.pk)
    return channel


def test_python_and_browser_chat_both_ways_across_a_server_restart(
    browser, own_server, alice, bob, token_for, artifacts_dir
):
    url = own_server.url
    errors = []
    channel = channel_for(alice, bob)
    alice_page = open_chat(signed_in_context(browser, url, alice), url, errors, "alice")
    set_up_encryption(alice_page, PASSPHRASES["alice"])
    bob_chat = SyncClient(url, token=token_for(bob), keystore=KeyStore(), backoff_base=0.2, backoff_max=2)
    try:
        bob_chat.connect()
        bob_chat.setup_encryption(PASSPHRASES["bob"], **FAST_KDF)

        # The public channel: the browser writes, Python reads; Python writes, the browser reads.
        conversation_button(alice_page, "general").click()
        send(alice_page, "Hello from Chromium")
        [heard] = messages_of(bob_chat, channel.pk, 1)
        assert (heard.text, heard.sender["username"], heard.status) == ("Hello from Chromium", "alice", "plain")
        bob_chat.send("#general", "Hello from Python", reply_to=heard.id)
        expect(message_texts(alice_page)).to_have_text(["Hello from Chromium", "Hello from Python"])
        expect(
            alice_page.locator("#messages .message", has_text="Hello from Python").locator(".quote")
        ).to_contain_text("Hello from Chromium")

        # The encrypted direct message: Python starts it, the browser decrypts and answers.
        first = bob_chat.send("@alice", "A secret from Python")
        assert StoredMessage.objects.get(pk=first.id).body == ""
        alice_page.locator(f'#conversation-list [data-conversation-id="{first.conversation}"]').click()
        expect(alice_page.locator("#pane-subtitle")).to_contain_text("end-to-end encrypted")
        expect(message_texts(alice_page)).to_have_text(["A secret from Python"])
        send(alice_page, "A secret from Chromium")
        [answer] = messages_of(bob_chat, first.conversation, 1)
        assert (answer.text, answer.status, answer.encrypted) == ("A secret from Chromium", "ok", True)

        # The server restarts; while it is down Alice writes into her outbox and Bob into his.
        own_server.stop()
        bob_chat.wait_for(lambda e: e.type == "state" and e.data["state"] == "reconnecting", timeout=15)
        send(alice_page, "Written while the server was down")
        sent = {}
        sender = threading.Thread(
            target=lambda: sent.update(message=bob_chat.send(first.conversation, "Python, also while down"))
        )
        sender.start()
        time.sleep(0.5)
        own_server.restart()
        sender.join(60)
        assert "message" in sent, "the queued send was acknowledged after the restart"
        bob_chat.wait_for(lambda e: e.type == "state" and e.data["state"] == "connected", timeout=30)
        [caught_up] = messages_of(bob_chat, first.conversation, 1, timeout=45)
        assert caught_up.text == "Written while the server was down"
        # Both were queued while the server was down; whichever side reconnected first went first.
        expect(message_texts(alice_page)).to_have_count(4, timeout=45_000)
        texts = message_texts(alice_page).all_inner_texts()
        assert texts[:2] == ["A secret from Python", "A secret from Chromium"]
        assert sorted(texts[2:]) == ["Python, also while down", "Written while the server was down"]
        # After the restart, both ways again, in the channel too; nothing arrives twice.
        bob_chat.send("#general", "Back after the restart")
        conversation_button(alice_page, "general").click()
        expect(message_texts(alice_page)).to_have_text(
            ["Hello from Chromium", "Hello from Python", "Back after the restart"]
        )
        send(alice_page, "Welcome back")
        assert messages_of(bob_chat, channel.pk, 1)[0].text == "Welcome back"
        try:
            extra = bob_chat.wait_for(lambda e: e.type == "message" and e.user == alice.pk, timeout=2)
        except TimeoutError:
            extra = None
        assert extra is None, f"a message came twice: {extra}"
        assert StoredMessage.objects.filter(conversation=channel).exclude(kind="system").count() == 4
        assert StoredMessage.objects.filter(conversation_id=first.conversation).exclude(kind="system").count() == 4
        alice_page.screenshot(path=str(artifacts_dir / "client-interop-browser.png"))
    finally:
        bob_chat.close()
    # The page logs its failed reconnection attempts while the server is down; nothing else.
    unexpected = [error for error in errors if "WebSocket" not in error and "ERR_CONNECTION_REFUSED" not in error]
    assert unexpected == []


def test_cli_listen_and_the_bot_answer_what_the_browser_sends(browser, live_url, alice, bob, make_user, token_for):
    errors = []
    dicebot = make_user("dicebot", display_name="Dice Bot")
    channel = channel_for(alice, bob)
    in_thread(services.channel_join, user=dicebot, conversation_id=channel.pk)
    alice_page = open_chat(signed_in_context(browser, live_url, alice), live_url, errors, "alice")
    set_up_encryption(alice_page, PASSPHRASES["alice"])
    env = {**os.environ, "CHATTERBOX_SERVER": live_url}
    listener = subprocess.Popen(
        [CHATTERBOX, "listen", "--json", "--count", "1", "#general"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "CHATTERBOX_TOKEN": token_for(bob)},
    )
    bot_token = token_for(dicebot, "Dice bot")
    # The bot account's key is made here with the fast Argon2 limits; the bot unlocks it.
    with SyncClient(live_url, token=bot_token, keystore=KeyStore()) as bot_chat:
        bot_chat.setup_encryption("dice bot passphrase", **FAST_KDF)
    bot_env = {**env, "CHATTERBOX_TOKEN": bot_token, "CHATTERBOX_PASSPHRASE": "dice bot passphrase"}
    bot = subprocess.Popen(
        [sys.executable, "-m", "client.bots.dicebot"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=bot_env,
    )
    try:
        # Both say when they are connected.
        read_until(listener, listener.stderr, "Listening")
        read_until(bot, bot.stdout, "Answering /time and /roll as dicebot")
        conversation_button(alice_page, "general").click()
        send(alice_page, "Hello, terminal")
        out, err = listener.communicate(timeout=30)
        assert listener.returncode == 0, err
        line = json.loads(out)
        assert (line["sender"], line["text"], line["conversation"]) == ("alice", "Hello, terminal", channel.pk)

        # The bot answers in the channel, as a reply...
        send(alice_page, "/roll 3d6")
        reply = alice_page.locator("#messages .message", has_text="🎲 3d6:")
        expect(reply).to_be_visible(timeout=20_000)
        expect(reply.locator(".quote")).to_contain_text("/roll 3d6")
        # ...and in an encrypted direct message, once it has made its key.
        alice_page.get_by_role("button", name="New conversation").click()
        dialog = alice_page.locator("#new-conversation-dialog")
        dialog.get_by_role("tab", name="Direct message").click()
        dialog.get_by_label("Find a person").fill("dicebot")
        dialog.get_by_role("button", name="Message Dice Bot (@dicebot)").click()
        expect(alice_page.locator("#pane-subtitle")).to_contain_text("end-to-end encrypted")
        send(alice_page, "/time")
        expect(message_texts(alice_page).last).to_contain_text(" UTC on ", timeout=20_000)
        direct_reply = StoredMessage.objects.filter(sender=dicebot).latest("id")
        assert direct_reply.conversation.encrypted and direct_reply.body == ""
    finally:
        listener.kill()
        bot.terminate()
        bot.communicate(timeout=10)
    assert errors == [], errors


def read_until(process, stream, marker, timeout=30.0):
    """Read a process's output line by line until a line holds `marker`; return what was read."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.2)
        if ready:
            line = stream.readline()
            if not line and process.poll() is not None:
                break
            lines.append(line)
            if marker in line:
                return "".join(lines)
    raise AssertionError(f"{marker!r} did not appear; got: {''.join(lines)!r}")


def test_attachments_both_ways_between_python_and_the_browser(browser, live_url, alice, bob, token_for, tmp_path):
    errors = []
    channel = channel_for(alice, bob)
    alice_page = open_chat(signed_in_context(browser, live_url, alice), live_url, errors, "alice")
    set_up_encryption(alice_page, PASSPHRASES["alice"])
    bob_chat = SyncClient(live_url, token=token_for(bob), keystore=KeyStore())
    try:
        bob_chat.connect()
        bob_chat.setup_encryption(PASSPHRASES["bob"], **FAST_KDF)
        photo = tmp_path / "from-python.png"
        photo.write_bytes(picture_bytes((250, 180, 0), (800, 500)))

        # The channel: a picture from Python shows in the page; a file from the page reaches Python.
        conversation_button(alice_page, "general").click()
        bob_chat.send_file("#general", photo, "a picture from Python")
        picture = alice_page.locator("#messages .attachment-picture img")
        expect(picture).to_have_attribute("src", re.compile(r"^/api/attachments/"))
        wait_for_image(picture)
        alice_page.locator("#file-input").set_input_files(
            [{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"notes from the browser\n"}]
        )
        [notes] = messages_of(bob_chat, channel.pk, 1)
        assert notes.attachment["name"] == "notes.txt"
        assert bob_chat.download(notes) == b"notes from the browser\n"

        # The encrypted DM: Python's picture opens in the page (its thumbnail and the full blob),
        # and the page's encrypted file opens in Python.
        sealed = bob_chat.send_file("@alice", photo, "an encrypted picture")
        alice_page.locator(f'#conversation-list [data-conversation-id="{sealed.conversation}"]').click()
        expect(message_texts(alice_page)).to_have_text(["an encrypted picture"])
        encrypted_picture = alice_page.locator("#messages .attachment-picture img")
        wait_for_image(encrypted_picture)
        assert encrypted_picture.evaluate("img => img.naturalWidth") == 320
        encrypted_picture.click()
        full = alice_page.get_by_role("dialog", name="from-python.png").locator("img")
        wait_for_image(full)
        assert full.evaluate("img => img.naturalWidth") == 800
        alice_page.keyboard.press("Escape")
        alice_page.locator("#file-input").set_input_files(
            [{"name": "report.pdf", "mimeType": "application/pdf", "buffer": PDF}]
        )
        [report] = messages_of(bob_chat, sealed.conversation, 1)
        assert (report.attachment["name"], report.attachment["type"]) == ("report.pdf", "application/pdf")
        assert report.attachment["encrypted"] and bob_chat.download(report) == PDF
    finally:
        bob_chat.close()
    assert errors == [], errors


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def wait_for_image(image, timeout=15.0):
    """Wait until an <img> has loaded its picture."""
    deadline = time.monotonic() + timeout
    while not image.evaluate("img => img.complete && img.naturalWidth > 0"):
        assert time.monotonic() < deadline, "the picture did not load"
        time.sleep(0.1)
