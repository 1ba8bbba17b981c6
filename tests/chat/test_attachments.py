"""Attachments: upload, checks, limits, members-only serving, claiming by a message, clean-up."""

import base64
import io
import json
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone
from PIL import Image

from chat import services
from chat.models import Attachment
from tests.chat.conftest import db, make_channel, make_direct, make_group, send

pytestmark = pytest.mark.django_db

WEBM = b"\x1a\x45\xdf\xa3" + b"\x00" * 60
OGG = b"OggS" + b"\x00" * 60
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 60


def upload(client, conversation, content: bytes, name="notes.txt", content_type="text/plain", **fields):
    file = SimpleUploadedFile(name, content, content_type=content_type)
    return client.post("/api/attachments/", {"file": file, "conversation": conversation.pk, **fields})


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response.json()["error"] == code, response.json()
    return response.json()


def jpeg_with_exif(size=(640, 480)) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Inc."  # Make
    exif[0x0131] = "secret-software"  # Software
    exif[0x8825] = {2: (48.0, 51.0, 30.0), 1: "N"}  # GPS
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def stored_files() -> list[str]:
    folders, files = default_storage.listdir("attachments") if default_storage.exists("attachments") else ([], [])
    names = list(files)
    for folder in folders:
        names += default_storage.listdir(f"attachments/{folder}")[1]
    return names


def test_member_uploads_and_downloads_a_file(alice, bob, client_of):
    group = make_group(alice, bob)
    response = upload(client_of(alice), group, b"hello, file", name="../../etc/notes.txt")
    assert response.status_code == 201, response.content
    attachment = response.json()
    assert attachment == {
        "id": attachment["id"],
        "url": f"/api/attachments/{attachment['id']}/file/",
        "content_type": "text/plain",
        "size": 11,
        "name": "notes.txt",
        "thumbnail_url": None,
        "width": None,
        "height": None,
        "duration": None,
    }
    # The uploader sees it before sending; others only once it is in a message.
    assert body_of(client_of(alice).get(attachment["url"])) == b"hello, file"
    assert client_of(bob).get(attachment["url"]).status_code == 404
    send_with(alice, group, attachment["id"])
    download = client_of(bob).get(attachment["url"])
    assert download.status_code == 200
    assert body_of(download) == b"hello, file"
    assert download["Content-Disposition"] == 'attachment; filename="notes.txt"'
    assert download["X-Content-Type-Options"] == "nosniff"
    assert download["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert download["Cache-Control"].startswith("private")
    # The stored name is random: the user's file name never reaches storage.
    assert "notes" not in Attachment.objects.get().file.name


def send_with(user, conversation, attachment_id, body="", client_id=None):
    message, _ = services.message_send(
        sender=user,
        conversation_id=conversation.pk,
        client_id=client_id or f"a-{attachment_id}",
        body=body,
        attachment=attachment_id,
    )
    return message


def test_non_member_and_removed_member_get_404(alice, bob, carol, client_of):
    group = make_group(alice, bob)
    attachment = upload(client_of(alice), group, b"team only").json()
    send_with(alice, group, attachment["id"])
    assert error_of(client_of(carol).get(attachment["url"]), 404, "not_found")
    assert client_of(bob).get(attachment["url"]).status_code == 200
    services.membership_remove(actor=alice, conversation_id=group.pk, username="bob")
    assert error_of(client_of(bob).get(attachment["url"]), 404, "not_found")
    assert client_of(alice).get("/api/attachments/999999/file/").status_code == 404
    assert client_of(alice).post("/api/attachments/", {}).status_code == 400


def test_upload_refusals(alice, bob, carol, client_of):
    group = make_group(alice, bob)
    error_of(upload(client_of(carol), group, b"x"), 403, "not_member")
    error_of(client_of(alice).post("/api/attachments/", {"conversation": group.pk}), 400, "invalid")
    assert error_of(upload(client_of(alice), group, b""), 400, "invalid")["field"] == "file"
    error_of(
        client_of(alice).post("/api/attachments/", {"file": SimpleUploadedFile("a.txt", b"x"), "conversation": "nine"}),
        400,
        "invalid",
    )
    error_of(upload(client_of(alice), group, b"x", kind="script"), 400, "invalid")
    anonymous = client_of(alice)
    anonymous.logout()
    error_of(upload(anonymous, group, b"x"), 401, "unauthorized")
    assert not Attachment.objects.exists()


def test_oversize_upload_refused_and_nothing_stored(alice, bob, client_of, settings):
    settings.ATTACHMENT_MAX_BYTES = 1000
    group = make_group(alice, bob)
    detail = error_of(upload(client_of(alice), group, b"x" * 1001), 413, "too_large")
    assert "quota" not in detail
    assert upload(client_of(alice), group, b"x" * 1000).status_code == 201
    assert Attachment.objects.count() == 1
    assert len(stored_files()) == 1


async def test_oversize_upload_refused_from_content_length_before_the_body(settings):
    """The ASGI application answers 413 from the headers alone: no body is ever sent here."""
    from chatterbox.asgi import application

    settings.ATTACHMENT_MAX_BYTES = 1000
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/attachments/",
        "raw_path": b"/api/attachments/",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"multipart/form-data; boundary=x"),
            (b"content-length", str(50 * 1024 * 1024).encode()),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }
    app = ApplicationCommunicator(application, scope)
    start = await app.receive_output(timeout=5)
    assert start["status"] == 413
    body = json.loads((await app.receive_output(timeout=5))["body"])
    assert body["error"] == "too_large"
    assert body["limit"] == 1000
    await app.wait(timeout=5)


def test_over_quota_refused_with_quota_flag(alice, bob, client_of, settings):
    settings.ATTACHMENT_QUOTA_BYTES = 1500
    group = make_group(alice, bob)
    assert upload(client_of(alice), group, b"x" * 1000).status_code == 201
    detail = error_of(upload(client_of(alice), group, b"y" * 600), 413, "too_large")
    assert detail["quota"] is True
    # Another user's quota is their own.
    assert upload(client_of(bob), group, b"y" * 600).status_code == 201
    assert Attachment.objects.count() == 2
    assert len(stored_files()) == 2


@pytest.mark.parametrize(
    ("name", "content_type", "content"),
    [
        ("page.html", "text/html", b"<html><script>alert(document.cookie)</script></html>"),
        (
            "logo.svg",
            "image/svg+xml",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        ),
        ("fake.png", "video/webm", b"<script>alert(1)</script>"),
    ],
)
def test_active_content_is_only_ever_a_sandboxed_download(alice, bob, client_of, name, content_type, content):
    channel = make_channel(alice, bob)
    attachment = upload(client_of(alice), channel, content, name=name, content_type=content_type).json()
    send_with(alice, channel, attachment["id"])
    response = client_of(bob).get(attachment["url"])
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert body_of(response) == content
    assert attachment["content_type"] != "video/webm"


def test_pixel_bomb_refused(alice, bob, client_of):
    channel = make_channel(alice, bob)
    bomb = io.BytesIO()
    # Tiny on disk, 400 million pixels once decoded.
    Image.new("1", (20_000, 20_000)).save(bomb, format="PNG")
    response = upload(client_of(alice), channel, bomb.getvalue(), name="bomb.png", content_type="image/png")
    assert "too big" in error_of(response, 400, "invalid")["detail"]
    not_a_picture = upload(client_of(alice), channel, b"GIF89a but not really", name="x.gif", content_type="image/gif")
    error_of(not_a_picture, 400, "invalid")
    assert not Attachment.objects.exists()
    assert stored_files() == []


def test_plaintext_picture_loses_its_exif_and_gains_a_thumbnail(alice, bob, client_of):
    channel = make_channel(alice, bob)
    original = jpeg_with_exif()
    assert Image.open(io.BytesIO(original)).getexif()  # the test's own premise
    attachment = upload(client_of(alice), channel, original, name="holiday.jpg", content_type="image/jpeg").json()
    assert attachment["content_type"] == "image/jpeg"
    assert (attachment["width"], attachment["height"]) == (640, 480)
    send_with(alice, channel, attachment["id"])
    picture = client_of(bob).get(attachment["url"])
    assert picture["Content-Disposition"] == 'inline; filename="holiday.jpg"'
    data = body_of(picture)
    assert b"SpyCam" not in data and b"secret-software" not in data
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    assert not image.getexif()
    assert image.getpixel((10, 10))[0] > 150
    thumbnail = client_of(bob).get(attachment["thumbnail_url"])
    assert thumbnail["Content-Type"] == "image/webp"
    assert thumbnail["Content-Disposition"] == "inline"
    assert thumbnail["X-Content-Type-Options"] == "nosniff"
    small = Image.open(io.BytesIO(body_of(thumbnail)))
    assert max(small.size) <= 480


def test_voice_and_video_are_checked_by_container_and_carry_duration(alice, bob, client_of):
    channel = make_channel(alice, bob)
    voice = upload(client_of(alice), channel, OGG, name="v.ogg", content_type="audio/ogg", kind="voice", duration="3.5")
    assert voice.status_code == 201, voice.content
    assert voice.json()["content_type"] == "audio/ogg"
    assert voice.json()["duration"] == 3.5
    video = upload(client_of(alice), channel, MP4, name="v.mp4", content_type="video/mp4", kind="video", duration="2")
    assert video.json()["content_type"] == "video/mp4"
    webm = upload(client_of(alice), channel, WEBM, name="v.webm", content_type="audio/webm", kind="voice", duration=1)
    assert webm.json()["content_type"] == "audio/webm"
    # What the bytes are decides, not what the client says.
    fake = upload(client_of(alice), channel, b"MZ\x90\x00" * 20, name="v.webm", kind="voice", duration="2")
    assert "WebM, Ogg or MP4" in error_of(fake, 400, "invalid")["detail"]
    for duration in ("", "0", "-1", "nan", "99999", "abc"):
        response = upload(client_of(alice), channel, WEBM, kind="voice", duration=duration)
        assert error_of(response, 400, "invalid")["field"] == "duration", duration
    assert Attachment.objects.count() == 3


def test_video_message_poster_becomes_its_checked_thumbnail(alice, bob, client_of):
    channel = make_channel(alice, bob)
    client = client_of(alice)
    poster = SimpleUploadedFile("poster.jpg", jpeg_with_exif((320, 240)), content_type="image/jpeg")
    video = SimpleUploadedFile("v.webm", WEBM, content_type="video/webm")
    form = {"file": video, "poster": poster, "conversation": channel.pk, "kind": "video", "duration": "4.2"}
    attachment = client.post("/api/attachments/", form).json()
    assert attachment["content_type"] == "video/webm"
    thumbnail = body_of(client.get(attachment["thumbnail_url"]))
    assert Image.open(io.BytesIO(thumbnail)).format == "WEBP"
    assert b"SpyCam" not in thumbnail
    bad = SimpleUploadedFile("poster.jpg", b"<svg/>", content_type="image/jpeg")
    video = SimpleUploadedFile("v.webm", WEBM, content_type="video/webm")
    form = {"file": video, "poster": bad, "conversation": channel.pk, "kind": "video", "duration": "4.2"}
    assert error_of(client.post("/api/attachments/", form), 400, "invalid")["field"] == "poster"


def test_encrypted_conversation_stores_an_opaque_blob_without_name_or_type(alice, bob, client_of):
    direct = make_direct(alice, bob)
    group = make_group(alice, bob, encrypted=True, name="secret")
    for conversation in (direct, group):
        blob = bytes(range(256)) * 8
        response = upload(client_of(alice), conversation, blob, name="passport.jpg", content_type="image/jpeg")
        assert response.status_code == 201, response.content
        attachment = response.json()
        assert attachment["name"] == ""
        assert attachment["content_type"] == "application/octet-stream"
        assert attachment["thumbnail_url"] is None
        row = Attachment.objects.get(pk=attachment["id"])
        assert (row.name, row.kind, row.width) == ("", "encrypted", None)
        download = client_of(alice).get(attachment["url"])
        assert body_of(download) == blob
        assert download["Content-Disposition"] == "attachment"


def test_range_requests(alice, bob, client_of):
    channel = make_channel(alice, bob)
    content = bytes(range(256)) * 4 + WEBM
    content = WEBM + bytes(range(256)) * 4
    attachment = upload(
        client_of(alice), channel, content, name="v.webm", content_type="video/webm", kind="video", duration="1"
    ).json()
    send_with(alice, channel, attachment["id"])
    client = client_of(bob)
    whole = client.get(attachment["url"])
    assert whole.status_code == 200
    assert whole["Accept-Ranges"] == "bytes"
    assert whole["Content-Disposition"].startswith("inline")
    size = len(content)
    part = client.get(attachment["url"], HTTP_RANGE="bytes=10-19")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 10-19/{size}"
    assert part["Content-Length"] == "10"
    assert body_of(part) == content[10:20]
    tail = client.get(attachment["url"], HTTP_RANGE="bytes=-5")
    assert body_of(tail) == content[-5:]
    assert tail["Content-Range"] == f"bytes {size - 5}-{size - 1}/{size}"
    rest = client.get(attachment["url"], HTTP_RANGE=f"bytes={size - 3}-")
    assert body_of(rest) == content[-3:]
    past_end = client.get(attachment["url"], HTTP_RANGE=f"bytes=0-{size + 100}")
    assert past_end.status_code == 206 and body_of(past_end) == content
    for bad in (f"bytes={size}-", "bytes=20-10", "bytes=-0", "items=1-2", "bytes=x-y"):
        refused = client.get(attachment["url"], HTTP_RANGE=bad)
        assert refused.status_code == 416, bad
        assert refused["Content-Range"] == f"bytes */{size}"
    # Several ranges at once: the whole file is a valid answer.
    assert client.get(attachment["url"], HTTP_RANGE="bytes=0-1,4-5").status_code == 200


def test_message_carries_its_attachment_and_deleting_the_message_deletes_the_file(
    alice, bob, client_of, django_capture_on_commit_callbacks
):
    channel = make_channel(alice, bob)
    attachment = upload(client_of(alice), channel, b"report", name="r.pdf", content_type="application/pdf").json()
    message = send_with(alice, channel, attachment["id"], body="see attached")
    page, _ = services.history_page(user=bob, conversation_id=channel.pk)
    assert page[-1]["attachment"] == attachment
    assert page[-1]["body"] == "see attached"
    assert stored_files()
    with django_capture_on_commit_callbacks(execute=True):
        services.message_delete(actor=alice, message_id=message.pk)
    page, _ = services.history_page(user=bob, conversation_id=channel.pk)
    assert page[-1]["attachment"] is None
    assert not Attachment.objects.exists()
    assert stored_files() == []
    assert client_of(alice).get(attachment["url"]).status_code == 404


def test_text_message_without_attachment_has_null_and_empty_body_still_refused(alice, bob):
    channel = make_channel(alice, bob)
    send(alice, channel, "plain")
    page, _ = services.history_page(user=bob, conversation_id=channel.pk)
    assert page[-1]["attachment"] is None
    with pytest.raises(services.attachments.Invalid):
        services.message_send(sender=alice, conversation_id=channel.pk, client_id="empty", body="")


def test_leaving_or_deleting_an_account_keeps_files_others_see(alice, bob, carol, client_of):
    group = make_group(alice, bob, carol)
    attachment = upload(client_of(bob), group, b"keep me").json()
    send_with(bob, group, attachment["id"])
    services.membership_remove(actor=bob, conversation_id=group.pk, username="bob")
    assert body_of(client_of(carol).get(attachment["url"])) == b"keep me"
    bob.delete()
    assert body_of(client_of(carol).get(attachment["url"])) == b"keep me"
    assert Attachment.objects.get().uploader is None


def test_deleting_a_conversation_deletes_its_files(alice, bob, client_of, django_capture_on_commit_callbacks):
    group = make_group(alice, bob)
    upload(client_of(alice), group, b"a")
    assert stored_files()
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_delete(conversation=group)
    assert stored_files() == []


def test_orphan_cleanup_deletes_only_old_unsent_uploads(alice, bob, client_of, django_capture_on_commit_callbacks):
    channel = make_channel(alice, bob)
    old_unsent = upload(client_of(alice), channel, b"old unsent").json()["id"]
    old_sent = upload(client_of(alice), channel, b"old sent").json()["id"]
    new_unsent = upload(client_of(alice), channel, b"new unsent").json()["id"]
    send_with(alice, channel, old_sent)
    long_ago = timezone.now() - timedelta(days=2)
    Attachment.objects.filter(pk__in=[old_unsent, old_sent]).update(created_at=long_ago)
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("attachments_cleanup", stdout=out)
    assert "Deleted 1 unsent attachment(s)." in out.getvalue()
    assert set(Attachment.objects.values_list("pk", flat=True)) == {old_sent, new_unsent}
    assert len(stored_files()) == 2
    assert services.attachments_cleanup(older_than_seconds=0) == 1
    assert list(Attachment.objects.values_list("pk", flat=True)) == [old_sent]


def test_admin_lists_attachments(alice, bob, client_of, make_user):
    channel = make_channel(alice, bob)
    upload(client_of(alice), channel, b"abc", name="list-me.txt")
    admin = make_user("moderator", is_staff=True, is_superuser=True)
    page = client_of(admin).get("/admin/chat/attachment/")
    assert page.status_code == 200
    assert b"list-me.txt" in page.content and b"3\xc2\xa0bytes" in page.content


# Claiming over the socket


@pytest.mark.django_db(transaction=True)
async def test_attachment_claim_rules_over_the_socket(alice, bob, carol, connect, client_of, no_rate_limit):
    group = await db(make_group)(alice, bob)
    other = await db(make_group)(alice, carol, name="Other")
    first = (await db(upload)(client_of(alice), group, b"one")).json()["id"]
    bobs = (await db(upload)(client_of(bob), group, b"bob's")).json()["id"]
    socket = await connect(alice)
    frame = {"type": "message.send", "conversation": other.pk, "client_id": "x1", "attachment": first}
    await socket.send(frame)
    error = await socket.receive_type("error")
    assert (error["code"], error["field"], error["client_id"]) == ("invalid", "attachment", "x1")
    assert "another conversation" in error["detail"]
    await socket.send({**frame, "conversation": group.pk, "client_id": "x2", "attachment": bobs})
    assert (await socket.receive_type("error"))["code"] == "not_found"
    await socket.send({**frame, "conversation": group.pk, "client_id": "x3", "attachment": "7"})
    assert (await socket.receive_type("error"))["field"] == "attachment"
    await socket.send({**frame, "conversation": group.pk, "client_id": "ok"})
    frames = {frame["type"]: frame for frame in [await socket.receive(), await socket.receive()]}
    assert frames["message.new"]["message"]["attachment"]["id"] == first
    assert frames["message.new"]["message"]["body"] == ""
    assert frames["message.ack"]["client_id"] == "ok"
    await socket.send({**frame, "conversation": group.pk, "client_id": "again"})
    error = await socket.receive_type("error")
    assert "already sent" in error["detail"]
    # Refused sends stored nothing.
    assert await db(lambda: list(Attachment.objects.filter(message__isnull=False).values_list("pk", flat=True)))() == [
        first
    ]


@pytest.mark.django_db(transaction=True)
async def test_encrypted_message_with_attachment(alice, bob, connect, client_of, no_rate_limit):
    direct = await db(make_direct)(alice, bob)
    blob = (await db(upload)(client_of(alice), direct, b"\x00opaque" * 10)).json()
    sealed = {
        "ciphertext": base64.b64encode(b"c" * 64).decode(),
        "nonce": base64.b64encode(b"n" * 24).decode(),
        "keys": {str(u.pk): base64.b64encode(b"k" * 104).decode() for u in (alice, bob)},
    }
    bobs = await connect(bob)
    alices = await connect(alice)
    await alices.send(
        {"type": "message.send", "conversation": direct.pk, "client_id": "e1", **sealed, "attachment": blob["id"]}
    )
    new = await bobs.receive_type("message.new")
    assert new["message"]["attachment"] == blob
    assert new["message"]["attachment"]["name"] == ""


def test_encrypted_blob_of_a_largest_file_fits_and_one_byte_more_does_not(alice, bob, client_of, settings):
    from client import e2e

    settings.ATTACHMENT_MAX_BYTES = 200_000
    direct = make_direct(alice, bob)
    blob = e2e.seal_file(b"\x01" * 200_000)["blob"]
    assert len(blob) > 200_000
    assert upload(client_of(alice), direct, blob, name="blob").status_code == 201
    too_big = e2e.seal_file(b"\x01" * 250_000)["blob"]
    error_of(upload(client_of(alice), direct, too_big, name="blob"), 413, "too_large")


def test_members_can_be_redirected_to_a_short_lived_signed_bucket_url(alice, bob, carol, client_of, settings):
    """With MEDIA_STORAGE=s3 the bucket serves the bytes; signing a URL needs no network."""
    channel = make_channel(alice, bob)
    message = send(alice, channel, "see attached")
    attachment = Attachment.objects.create(
        conversation=channel,
        uploader=alice,
        message=message,
        file=f"attachments/{channel.pk}/0123abcd",
        name="report.pdf",
        content_type="application/pdf",
        size=3,
    )
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "chat-files",
                "endpoint_url": "https://s3.example.com",
                "region_name": "us-east-1",
                "access_key": "AKIDEXAMPLE",
                "secret_key": "not-a-real-secret",
                "default_acl": "private",
                "querystring_auth": True,
            },
        },
    }
    settings.MEDIA_STORAGE = "s3"
    settings.ATTACHMENT_SIGNED_URL_SECONDS = 60
    url = f"/api/attachments/{attachment.pk}/file/"
    response = client_of(bob).get(url)
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"https://s3.example.com/chat-files/attachments/{channel.pk}/0123abcd?")
    query = parse_qs(urlsplit(location).query)
    if "X-Amz-Expires" in query:  # signature version 4
        assert query["X-Amz-Expires"] == ["60"] and query["X-Amz-Signature"]
    else:
        assert 0 < int(query["Expires"][0]) - time.time() <= 61 and query["Signature"]
    assert query["response-content-disposition"] == ['attachment; filename="report.pdf"']
    assert response["Cache-Control"].startswith("private")
    assert client_of(carol).get(url).status_code == 404
