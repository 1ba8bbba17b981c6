"""The Tkinter desktop app under Xvfb, driven through its widgets, talking to a person in Chromium."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from playwright.sync_api import expect

from chat.models import Message as StoredMessage
from client import SyncClient
from client.keys import KeyStore
from tests.browser.test_chat import conversation_button, message_texts, open_chat, send, signed_in_context
from tests.browser.test_e2e import PASSPHRASES, set_up_encryption
from tests.client.test_browser_interop import channel_for, wait_for_image
from tests.client.test_library import FAST_KDF, fresh_totp, picture_bytes
from tests.conftest import PASSWORD


@pytest.fixture
def display(monkeypatch):
    """A virtual X display of this test's own (Xvfb), set as $DISPLAY."""
    xvfb = shutil.which("Xvfb")
    assert xvfb, "The desktop app's test needs Xvfb: apt-get install xvfb"
    number = next(n for n in range(90, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    server = subprocess.Popen(
        [xvfb, f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        assert server.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
        time.sleep(0.05)
    monkeypatch.setenv("DISPLAY", f":{number}")
    yield f":{number}"
    server.terminate()
    server.wait(10)


@pytest.fixture
def desktop(display, monkeypatch):
    """The app in a Tk window on the virtual display; closed at the end."""
    import tkinter as tk

    from client.desktop.app import ChatApp

    root = tk.Tk()
    apps = []

    def start(server):
        app = ChatApp(root, server=server)
        apps.append(app)
        root.update()
        return app

    yield start
    for app in apps:
        if app.chat is not None:
            app.chat.close()
    root.destroy()


def pump(app, condition, timeout=30.0, what="the app"):
    """Let Tk run until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: timed out; status: {app.status_label.cget('text')!r}"
        app.root.update()
        time.sleep(0.02)


def view_text(app):
    return app.message_view.get("1.0", "end")


def screenshot(app, display, path):
    from PIL import ImageGrab

    root = app.root
    root.update()
    box = (
        root.winfo_rootx(),
        root.winfo_rooty(),
        root.winfo_rootx() + root.winfo_width(),
        root.winfo_rooty() + root.winfo_height(),
    )
    ImageGrab.grab(bbox=box, xdisplay=display).save(path)


def react_in_browser(page, text: str, emoji: str) -> None:
    message = page.locator("#messages .message", has_text=text)
    message.hover()
    message.get_by_role("button", name="Add a reaction").click()
    page.get_by_role("dialog", name="Add a reaction").get_by_role("button", name=emoji).click()
    expect(message.locator(".reactions")).to_contain_text(emoji)


def test_desktop_app_signs_in_with_2fa_and_chats_with_the_browser(
    browser, own_server, alice, bob, token_for, desktop, display, artifacts_dir, tmp_path
):
    url = own_server.url
    errors = []
    channel = channel_for(alice, bob)
    secret = generate_totp_secret()
    TOTP.activate(alice, secret)
    # Alice has set up encryption before (in a browser, say); the desktop app unlocks her key.
    with SyncClient(url, token=token_for(alice), keystore=KeyStore()) as setup:
        setup.setup_encryption(PASSPHRASES["alice"], **FAST_KDF)
    bob_page = open_chat(signed_in_context(browser, url, bob), url, errors, "bob")
    set_up_encryption(bob_page, PASSPHRASES["bob"])

    app = desktop(url)
    # Sign in: the password first, then the app asks for the two-factor code.
    app.sign_in_button.invoke()
    assert app.login_error.cget("text") == "Give your username or email and your password."
    app.login_var.set("alice")
    app.password_var.set("not the password")
    app.sign_in_button.invoke()
    pump(app, lambda: "password" in app.login_error.cget("text").lower(), what="wrong password")
    app.password_var.set(PASSWORD)
    app.sign_in_button.invoke()
    pump(app, lambda: app.code_entry.winfo_ismapped(), what="2FA step")
    app.code_var.set(fresh_totp(secret))
    app.code_entry.event_generate("<Return>")
    pump(app, lambda: app.main_frame.winfo_ismapped(), what="sign-in")
    assert app.connection_label.cget("text") == "Connected"
    assert app.password_var.get() == ""

    # The channel: history, then Enter sends and the browser reads; the browser writes back.
    assert app.conversation_list.get(0, "end") == ("# general",)
    pump(app, lambda: app.online_list.get(0, "end") == ("● Bob Builder",), what="online list")
    app.conversation_list.selection_set(0)
    app.conversation_list.event_generate("<<ListboxSelect>>")
    pump(app, lambda: app.title_label.cget("text") == "general")
    assert app.subtitle_label.cget("text") == "public channel · 2 members · not encrypted"
    app.composer.focus_force()
    app.root.update()
    app.composer_var.set("Hello from the desktop")
    app.composer.event_generate("<Return>")
    pump(app, lambda: "Hello from the desktop" in view_text(app), what="own message")
    assert app.composer_var.get() == ""
    conversation_button(bob_page, "general").click()
    expect(message_texts(bob_page)).to_have_text(["Hello from the desktop"])
    send(bob_page, "Hello from Chromium")
    pump(app, lambda: "Hello from Chromium" in view_text(app), what="the browser's message")
    assert view_text(app).index("Hello from the desktop") < view_text(app).index("Hello from Chromium")
    # Bob reacts in the browser: the desktop shows it under the message.
    react_in_browser(bob_page, "Hello from the desktop", "👍")
    pump(app, lambda: "👍 1" in view_text(app), what="a reaction in the channel")

    # An encrypted direct message: unlock, open @bob, both ways.
    app.unlock(PASSPHRASES["alice"])
    pump(app, lambda: app.status_label.cget("text") == "End-to-end encryption is unlocked.", what="unlock")
    app.start_var.set("@bob")
    # Key events go to the widget with the focus, as they do when a person types.
    app.start_entry.focus_force()
    app.root.update()
    app.start_entry.event_generate("<Return>")
    pump(app, lambda: app.title_label.cget("text") == "Bob Builder", what="direct conversation")
    assert "end-to-end encrypted" in app.subtitle_label.cget("text")
    app.composer_var.set("A secret from the desktop")
    app.send_button.invoke()
    pump(app, lambda: "A secret from the desktop" in view_text(app), what="encrypted send")
    conversation_button(bob_page, "Alice Liddell").click()
    expect(message_texts(bob_page)).to_have_text(["A secret from the desktop"])
    send(bob_page, "A secret from Chromium")
    pump(app, lambda: "A secret from Chromium" in view_text(app), what="encrypted receive")
    # An encrypted reaction (a sealed message of its own) shows on the message it is for, not as one.
    react_in_browser(bob_page, "A secret from the desktop", "🎉")
    pump(app, lambda: "🎉 1" in view_text(app), what="an encrypted reaction")
    assert "could not be decrypted" not in view_text(app)
    # Both come back with the history: kept by the server in the channel, folded from the sealed ones here.
    app.conversation_list.selection_clear(0, "end")
    app.conversation_list.selection_set(app.rows.index(channel.pk))
    app.conversation_list.event_generate("<<ListboxSelect>>")
    pump(app, lambda: app.title_label.cget("text") == "general" and "👍 1" in view_text(app), what="channel history")
    app.start_var.set("@bob")
    app.start_entry.focus_force()
    app.root.update()
    app.start_entry.event_generate("<Return>")
    pump(app, lambda: "A secret from Chromium" in view_text(app) and "🎉 1" in view_text(app), what="direct history")
    sent = StoredMessage.objects.filter(sender=alice).latest("id")
    assert sent.conversation.encrypted and sent.body == ""
    # Pictures both ways, encrypted: sent with "File…", shown as thumbnails on both sides.
    photo = tmp_path / "desktop.png"
    photo.write_bytes(picture_bytes((30, 120, 200), (640, 400)))
    app.send_file(str(photo))
    wait_for_image(bob_page.locator("#messages .attachment-picture img"))
    bob_page.locator("#file-input").set_input_files(
        [{"name": "sunset.jpg", "mimeType": "image/jpeg", "buffer": picture_bytes((240, 120, 30), (800, 600), "JPEG")}]
    )
    pump(app, lambda: len(app.thumbnails) == 2, what="picture thumbnails")
    assert "sunset.jpg" in view_text(app) and "desktop.png" in view_text(app)
    # The channel shows an unread count for what arrives while another conversation is open.
    conversation_button(bob_page, "general").click()
    send(bob_page, "Are you there?")
    pump(app, lambda: "# general  (1)" in app.conversation_list.get(0, "end"), what="unread count")
    screenshot(app, display, artifacts_dir / "desktop-app.png")

    # The server goes away: the app says so and reconnects by itself when it is back.
    own_server.stop()
    pump(app, lambda: "unreachable" in app.connection_label.cget("text"), what="offline state")
    screenshot(app, display, artifacts_dir / "desktop-offline.png")
    own_server.restart()
    pump(app, lambda: app.connection_label.cget("text") == "Connected", timeout=60, what="reconnect")
    send(bob_page, "Back online")
    pump(app, lambda: "# general  (2)" in app.conversation_list.get(0, "end"), what="message after reconnect")
    assert os.path.getsize(artifacts_dir / "desktop-app.png") > 10_000
