"""Files, pictures, voice notes and video messages in headless Chromium against a real server.

Chromium runs with fake media devices (tests/conftest.py), so the microphone and the camera
record a test tone and a test pattern.
"""

import io
import random
import re

from django.core.files.storage import default_storage
from PIL import Image
from playwright.sync_api import expect

from chat.models import Attachment, Conversation
from tests.browser.test_chat import conversation_button, open_chat, signed_in_context
from tests.browser.test_e2e import PASSPHRASES, in_thread, set_up_encryption, start_direct, text_columns
from tests.chat.conftest import make_channel

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n" + random.randbytes(700_000)
MAGIC = {
    "webm": b"\x1a\x45\xdf\xa3",
    "ogg": b"OggS",
    "jpeg": b"\xff\xd8\xff",
    "png": b"\x89PNG",
    "gif": b"GIF8",
    "webp": b"RIFF",
    "pdf": b"%PDF",
}
# Reads a media element's state: the duration it reports and whether it is playing.
MEDIA_STATE = "media => ({duration: media.duration, time: media.currentTime, paused: media.paused})"
# Runs the sender's picture clean-up (static/chat/js/attachments.js) on the given JPEG bytes.
REDRAW = """async bytes => {
  const { redrawPicture } = await import("/static/chat/js/attachments.js");
  const picture = await redrawPicture(new Blob([new Uint8Array(bytes)], { type: "image/jpeg" }), "image/jpeg");
  return { bytes: Array.from(picture.bytes), width: picture.width };
}"""
FETCH_BYTES = "async url => Array.from(new Uint8Array(await (await fetch(url)).arrayBuffer()))"


def photo_with_exif(colour=(30, 120, 200), size=(800, 600)) -> bytes:
    image = Image.new("RGB", size, colour)
    for x in range(0, size[0], 40):
        for y in range(0, size[1], 40):
            image.putpixel((x, y), (255, 255, 255))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Inc."
    exif[0x0131] = "leaky-software 1.0"
    exif[0x8825] = {2: (48.0, 51.0, 30.0), 1: "N"}
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif, quality=92)
    return out.getvalue()


def stored_bytes(attachment: Attachment, field: str = "file") -> bytes:
    with default_storage.open(getattr(attachment, field).name, "rb") as stored:
        return stored.read()


def record(page, kind: str, seconds: float, artifacts_dir=None, screenshot: str | None = None):
    button = "Record a voice note" if kind == "voice" else "Record a video message"
    page.get_by_role("button", name=button).click()
    recorder = page.locator("#recorder")
    expect(recorder).to_be_visible()
    expect(page.locator("#recorder-status")).to_have_text(
        "Recording a voice note" if kind == "voice" else "Recording a video message"
    )
    expect(page.locator("#recorder-timer")).to_contain_text(re.compile(r"^0:0[1-9]"), timeout=5000)
    page.wait_for_timeout(int(seconds * 1000) - 1000)
    if screenshot:
        page.screenshot(path=str(artifacts_dir / screenshot))
    if kind == "voice":
        recorder.get_by_role("button", name="Send voice note").click()
    else:
        recorder.get_by_role("button", name="Stop").click()
        expect(page.locator("#recorder-status")).to_have_text("Your video message: send it?")
        expect(page.locator("#recorder-review")).to_be_visible()
        if screenshot:
            page.screenshot(path=str(artifacts_dir / screenshot.replace(".png", "-review.png")))
        recorder.get_by_role("button", name="Send video message").click()
    expect(recorder).to_be_hidden()


def loaded(image):
    """Wait for an image to have a source (set once known, or decrypted) and to finish loading it."""
    expect(image).to_have_attribute("src", re.compile(r"^(blob:|/api/attachments/)"))
    expect(image).to_have_js_property("complete", True)


def wait_playing(page, locator, *, seconds: float = 0.3):
    """Wait until the media element reports a finite positive duration and its time moves on."""
    page.wait_for_function(
        "media => Number.isFinite(media.duration) && media.duration > 0", arg=locator.element_handle(), timeout=10_000
    )
    page.wait_for_function(
        f"media => !media.paused && media.currentTime > {seconds}", arg=locator.element_handle(), timeout=10_000
    )
    return locator.evaluate(MEDIA_STATE)


def test_plaintext_channel_pictures_files_and_voice(browser, live_url, alice, bob, artifacts_dir):
    in_thread(lambda: make_channel(alice, bob, name="general"))
    channel = Conversation.objects.get(name="general")
    errors = []
    alice_page = open_chat(signed_in_context(browser, live_url, alice), live_url, errors, "alice")
    bob_page = open_chat(signed_in_context(browser, live_url, bob), live_url, errors, "bob")
    for page in (alice_page, bob_page):
        conversation_button(page, "general").click()
        expect(page.locator("#pane-title")).to_have_text("general")

    # A photo with EXIF and GPS, and an HTML file, through the paperclip.
    photo = photo_with_exif()
    alice_page.locator("#file-input").set_input_files(
        [
            {"name": "holiday.jpg", "mimeType": "image/jpeg", "buffer": photo},
            {"name": "page.html", "mimeType": "text/html", "buffer": b"<script>alert(1)</script>"},
        ]
    )
    picture = bob_page.locator("#messages .attachment-picture")
    expect(picture).to_have_count(1)
    loaded(picture.locator("img"))
    assert picture.locator("img").evaluate("img => img.naturalWidth") > 100
    html_card = bob_page.locator("#messages .attachment-file", has_text="page.html")
    expect(html_card).to_contain_text("text/html")

    # The picture as stored and as served has no EXIF left.
    stored = Attachment.objects.get(conversation=channel, kind="picture")
    data = stored_bytes(stored)
    assert b"SpyCam" not in data and b"leaky-software" not in data
    assert not Image.open(io.BytesIO(data)).getexif()
    served = bob_page.evaluate(FETCH_BYTES, f"/api/attachments/{stored.pk}/file/")
    assert bytes(served) == data

    # The lightbox opens full size, closes with Escape, and gives focus back.
    picture.click()
    lightbox = bob_page.get_by_role("dialog", name="holiday.jpg")
    expect(lightbox).to_be_visible()
    loaded(lightbox.locator("img"))
    assert lightbox.locator("img").evaluate("img => img.naturalWidth") == 800
    bob_page.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()
    expect(picture).to_be_focused()

    # A recording that is cancelled sends nothing, and focus goes back to its button.
    alice_page.get_by_role("button", name="Record a voice note").click()
    expect(alice_page.locator("#recorder-timer")).to_contain_text("0:01", timeout=5000)
    alice_page.get_by_role("button", name="Cancel voice note").click()
    expect(alice_page.locator("#recorder")).to_be_hidden()
    expect(alice_page.get_by_role("button", name="Record a voice note")).to_be_focused()

    # A voice note, recorded and played on the other side.
    record(alice_page, "voice", 2.5)
    audio = bob_page.locator("#messages .attachment-voice audio")
    expect(audio).to_have_count(1)
    assert Attachment.objects.filter(conversation=channel, kind="voice").count() == 1
    bob_page.locator("#messages .attachment-voice").get_by_role("button", name="Play voice note").click()
    state = wait_playing(bob_page, audio)
    assert 1.5 < state["duration"] < 5
    expect(conversation_button(bob_page, "general")).to_contain_text("Alice Liddell: Voice note")
    voice = Attachment.objects.get(conversation=channel, kind="voice")
    assert voice.content_type in {"audio/webm", "audio/ogg"}
    assert 1.5 < voice.duration < 5
    assert stored_bytes(voice)[:4] in {MAGIC["webm"], MAGIC["ogg"]}
    bob_page.screenshot(path=str(artifacts_dir / "attachments-channel.png"))

    # An upload that fails can be tried again; one that is cancelled sends nothing.
    failures = []

    def fail_once(route):
        if not failures:
            failures.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    alice_page.route("**/api/attachments/", fail_once)
    alice_page.locator("#file-input").set_input_files(
        [{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"second try"}]
    )
    queue = alice_page.locator("#upload-queue")
    expect(queue.get_by_role("alert")).to_contain_text("Not sent: Cannot reach the server.")
    queue.get_by_role("button", name="Try sending notes.txt again").click()
    expect(queue).to_be_hidden()
    expect(bob_page.locator("#messages .attachment-file", has_text="notes.txt")).to_be_visible()
    alice_page.unroute("**/api/attachments/")
    assert len(failures) == 1
    # The browser logs the aborted request itself; that console error is expected.
    assert errors and all("ERR_FAILED" in error for error in errors), errors
    errors.clear()

    # Alice deletes the HTML file's message: it leaves Bob's screen and the storage.
    html_row = Attachment.objects.get(conversation=channel, name="page.html")
    html_name = html_row.file.name
    html_message = alice_page.locator("#messages .message", has_text="page.html")
    html_message.hover()
    html_message.get_by_role("button", name="Delete your message").click()
    alice_page.locator("#confirm-dialog").get_by_role("button", name="Delete").click()
    expect(bob_page.locator("#messages .attachment-file", has_text="page.html")).to_have_count(0)
    expect(bob_page.locator("#messages")).to_contain_text("This message was deleted.")
    assert not Attachment.objects.filter(pk=html_row.pk).exists()
    assert not default_storage.exists(html_name)

    # On a phone-sized screen the composer's buttons still fit and are reachable by keyboard.
    alice_page.set_viewport_size({"width": 390, "height": 780})
    for name in ("Attach files", "Record a voice note", "Record a video message", "Send"):
        button = alice_page.get_by_role("button", name=name, exact=True)
        expect(button).to_be_visible()
        box = button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, name
    alice_page.get_by_label("Message", exact=True).focus()
    alice_page.keyboard.press("Tab")
    expect(alice_page.get_by_role("button", name="Attach files")).to_be_focused()
    alice_page.screenshot(path=str(artifacts_dir / "attachments-phone.png"))
    assert errors == []


def test_encrypted_direct_voice_video_picture_and_pdf(browser, live_url, alice, bob, artifacts_dir):
    errors = []
    alice_context = signed_in_context(browser, live_url, alice)
    alice_page = open_chat(alice_context, live_url, errors, "alice")
    bob_context = signed_in_context(browser, live_url, bob, accept_downloads=True)
    bob_page = open_chat(bob_context, live_url, errors, "bob")
    set_up_encryption(alice_page, PASSPHRASES["alice"])
    set_up_encryption(bob_page, PASSPHRASES["bob"])
    start_direct(alice_page, "Bob Builder", "bob")
    expect(alice_page.get_by_role("button", name="Record a voice note")).to_be_enabled()

    # A voice note and a video message, recorded with the fake devices.
    record(alice_page, "voice", 2.5, artifacts_dir, "composer-recording-voice.png")
    record(alice_page, "video", 2.5, artifacts_dir, "composer-recording-video.png")

    expect(alice_page.locator("#messages .attachment")).to_have_count(2, timeout=15_000)
    expect(alice_page.locator("#upload-queue")).to_be_hidden()

    # A picture with EXIF and a PDF; the upload is slowed down so that its progress shows.
    photo = photo_with_exif((200, 60, 40))
    cdp = alice_context.new_cdp_session(alice_page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 150 * 1024},
    )
    alice_page.locator("#file-input").set_input_files(
        [
            {"name": "holiday.jpg", "mimeType": "image/jpeg", "buffer": photo},
            {"name": "report.pdf", "mimeType": "application/pdf", "buffer": PDF},
        ]
    )
    queue = alice_page.locator("#upload-queue")
    expect(queue.locator(".upload")).to_have_count(2)
    expect(queue.locator("progress").first).to_be_visible()
    expect(queue).to_contain_text(re.compile(r"Uploading… [1-9]\d?%"), timeout=10_000)
    alice_page.screenshot(path=str(artifacts_dir / "composer-upload-progress.png"))
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    expect(queue).to_be_hidden(timeout=20_000)

    # Bob opens the conversation: everything decrypts and plays.
    conversation_button(bob_page, "Alice Liddell").click()
    messages = bob_page.locator("#messages")
    expect(messages.locator(".attachment")).to_have_count(4)
    audio = messages.locator(".attachment-voice audio")
    messages.locator(".attachment-voice").get_by_role("button", name="Play voice note").click()
    voice_state = wait_playing(bob_page, audio)
    assert 1.5 < voice_state["duration"] < 5
    assert audio.evaluate("media => media.currentSrc").startswith("blob:")
    video = messages.locator("video.video-message")
    expect(video).to_have_attribute("poster", re.compile(r"^blob:"))
    video.evaluate("media => { media.muted = true; return media.play(); }")
    video_state = wait_playing(bob_page, video)
    assert 1.5 < video_state["duration"] < 5
    assert video.evaluate("media => media.videoWidth") > 0

    picture = messages.locator(".attachment-picture")
    loaded(picture.locator("img"))
    assert picture.locator("img").evaluate("img => img.naturalWidth") == 320
    bob_page.screenshot(path=str(artifacts_dir / "attachments-encrypted.png"))
    picture.click()
    lightbox = bob_page.get_by_role("dialog", name="holiday.jpg")
    loaded(lightbox.locator("img"))
    assert lightbox.locator("img").evaluate("img => img.naturalWidth") == 800
    assert lightbox.locator("img").get_attribute("src").startswith("blob:")
    bob_page.screenshot(path=str(artifacts_dir / "attachments-lightbox.png"))
    bob_page.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()
    expect(picture).to_be_focused()
    # Before encrypting, the sender's browser redrew the picture: the pixels stay, the EXIF goes.
    redrawn = alice_page.evaluate(REDRAW, list(photo))
    image = Image.open(io.BytesIO(bytes(redrawn["bytes"])))
    assert (image.format, image.size) == ("JPEG", (800, 600))
    assert not image.getexif() and b"SpyCam" not in bytes(redrawn["bytes"])
    assert abs(image.getpixel((20, 20))[0] - 200) < 20
    assert redrawn["width"] == 800

    expect(conversation_button(bob_page, "Alice Liddell")).to_contain_text(
        re.compile(r"Alice Liddell: (Picture|File: report.pdf)")
    )
    card = messages.locator(".attachment-file", has_text="report.pdf")
    expect(card).to_contain_text("application/pdf")
    with bob_page.expect_download() as download_info:
        card.get_by_role("button", name="Download report.pdf").click()
    download = download_info.value
    assert download.suggested_filename == "report.pdf"
    with open(download.path(), "rb") as downloaded:
        assert downloaded.read() == PDF

    # The server holds opaque blobs: no known file starts them, and no name or type is recorded.
    rows = list(Attachment.objects.filter(conversation__kind="direct"))
    assert len(rows) == 4
    for row in rows:
        assert (row.name, row.content_type, row.kind, row.thumbnail.name) == (
            "",
            "application/octet-stream",
            "encrypted",
            "",
        )
        blob = stored_bytes(row)
        assert not any(blob.startswith(magic) for magic in MAGIC.values()), row
        assert blob[4:8] != b"ftyp"
        assert b"SpyCam" not in blob and b"%PDF" not in blob
    for model, field in text_columns():
        for name in ("holiday.jpg", "report.pdf", "voice-note", "video-message", "SpyCam"):
            assert not model.objects.filter(**{f"{field}__contains": name}).exists(), (model, field, name)
    assert errors == []
