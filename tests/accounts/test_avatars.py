"""Profile pictures: metadata stripped, orientation honoured, bombs and impostors refused."""

import io
import resource
import struct
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import ExifTags, Image

pytestmark = pytest.mark.django_db

RED, BLUE = (220, 20, 20), (20, 20, 220)


def jpeg_bytes(image: Image.Image, exif: Image.Exif | None = None) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=95, **({"exif": exif} if exif is not None else {}))
    return out.getvalue()


def two_halves(width: int, height: int) -> Image.Image:
    """Return a picture red on its left half and blue on its right half."""
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width // 2, height))
    return image


def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 30.0, 26.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (0.0, 7.0, 39.0)
    return exif


def png_bomb(width: int, height: int) -> bytes:
    """Return a valid 1-bit PNG of the given size, compressed row by row to a few kilobytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    compressor = zlib.compressobj(9)
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte, then 1 bit a pixel
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def bomb() -> bytes:
    return png_bomb(20_000, 20_000)


def upload(client, name: str, content: bytes, content_type: str = "image/jpeg"):
    picture = SimpleUploadedFile(name, content, content_type=content_type)
    return client.post("/profile/", {"avatar": picture, "avatar_upload": "1"})


def stored_picture(user) -> Image.Image:
    user.refresh_from_db()
    with user.avatar.open("rb") as stored:
        image = Image.open(io.BytesIO(stored.read()))
        image.load()
    return image


def avatar_error(response) -> str:
    assert response.status_code == 400
    return " ".join(response.context["avatar_form"].errors["avatar"])


def test_gps_exif_is_stripped_from_the_stored_copy(client_of, alice):
    original = jpeg_bytes(two_halves(640, 480), gps_exif())
    # The upload really carries the location, so the check below means something.
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)

    response = upload(client_of(alice), "holiday.jpg", original)
    assert response.status_code == 302
    stored = stored_picture(alice)
    assert stored.format == "WEBP"
    assert stored.size == (256, 256)
    assert dict(stored.getexif()) == {}
    assert "exif" not in stored.info
    assert "xmp" not in stored.info
    alice.refresh_from_db()
    assert alice.avatar_version == 1


def test_exif_orientation_is_applied(client_of, alice):
    # Orientation 6 means "turn 90 degrees clockwise to view": the left (red) half ends up on top.
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    assert upload(client_of(alice), "sideways.jpg", jpeg_bytes(two_halves(400, 200), exif)).status_code == 302
    stored = stored_picture(alice).convert("RGB")
    top, bottom = stored.getpixel((128, 30)), stored.getpixel((128, 225))
    left, right = stored.getpixel((30, 128)), stored.getpixel((225, 128))
    assert top[0] > 180 and top[2] < 80, top
    assert bottom[2] > 180 and bottom[0] < 80, bottom
    assert left == pytest.approx(right, abs=30)  # no left/right split any more


def test_non_square_picture_is_cropped_to_the_centre(client_of, alice):
    wide = Image.new("RGB", (900, 300), BLUE)
    wide.paste(RED, (300, 0, 600, 300))
    assert upload(client_of(alice), "wide.png", png_of(wide), "image/png").status_code == 302
    stored = stored_picture(alice).convert("RGB")
    assert stored.getpixel((5, 5))[0] > 180  # only the red middle third is left
    assert stored.getpixel((250, 250))[0] > 180


def png_of(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_png_bomb_is_refused_without_decoding_it(client_of, alice, bomb):
    assert len(bomb) < 500_000
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    response = upload(client_of(alice), "bomb.png", bomb, "image/png")
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert "too big" in avatar_error(response)
    # Decoding 20000 x 20000 pixels would take 400 MB; refusing from the header takes next to nothing.
    assert peak_after - peak_before < 100_000
    alice.refresh_from_db()
    assert not alice.avatar


def test_picture_over_our_pixel_limit_is_refused(client_of, alice, settings):
    settings.AVATAR_MAX_PIXELS = 1_000_000
    response = upload(client_of(alice), "big.png", png_bomb(1_500, 1_000), "image/png")
    assert avatar_error(response) == "The picture is too big: 1500 x 1000 pixels."


def test_html_named_png_is_refused(client_of, alice):
    page = b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>"
    response = upload(client_of(alice), "cat.png", page, "image/png")
    assert avatar_error(response) == "Upload a JPEG, PNG, GIF or WebP picture."
    alice.refresh_from_db()
    assert not alice.avatar


def test_other_image_formats_are_refused(client_of, alice):
    out = io.BytesIO()
    Image.new("RGB", (64, 64), RED).save(out, format="BMP")
    response = upload(client_of(alice), "old.bmp", out.getvalue(), "image/bmp")
    assert avatar_error(response) == "Upload a JPEG, PNG, GIF or WebP picture."


def test_damaged_picture_is_refused(client_of, alice):
    whole = jpeg_bytes(two_halves(640, 480))
    response = upload(client_of(alice), "cut.jpg", whole[: len(whole) // 2])
    assert avatar_error(response) == "The picture could not be read; it may be damaged."


def test_oversized_file_is_refused(client_of, alice, settings):
    settings.AVATAR_MAX_BYTES = 2048
    picture = jpeg_bytes(Image.effect_noise((200, 200), 60).convert("RGB"))
    assert len(picture) > 2048
    response = upload(client_of(alice), "noisy.jpg", picture)
    assert avatar_error(response) == "The picture is too large: at most 2.0\xa0KB."


def test_empty_upload_is_a_form_error(client_of, alice):
    response = client_of(alice).post("/profile/", {"avatar_upload": "1"})
    assert avatar_error(response) == "This field is required."


def test_new_picture_replaces_the_old_file(client_of, alice, django_capture_on_commit_callbacks):
    client = client_of(alice)
    upload(client, "one.jpg", jpeg_bytes(two_halves(300, 300)))
    alice.refresh_from_db()
    first = alice.avatar.name
    storage = alice.avatar.storage
    with django_capture_on_commit_callbacks(execute=True):
        upload(client, "two.png", png_of(Image.new("RGB", (300, 300), BLUE)), "image/png")
    alice.refresh_from_db()
    assert alice.avatar.name != first
    assert alice.avatar_version == 2
    assert storage.exists(alice.avatar.name)
    assert not storage.exists(first)

    second = alice.avatar.name
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/profile/avatar/remove/").status_code == 302
    alice.refresh_from_db()
    assert not alice.avatar
    assert alice.avatar_version == 3
    assert not storage.exists(second)


def test_avatar_endpoint_serves_the_stored_picture(client_of, alice, bob):
    upload(client_of(alice), "me.jpg", jpeg_bytes(two_halves(300, 300)))
    alice.refresh_from_db()
    response = client_of(bob).get(alice.avatar_url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"
    assert Image.open(io.BytesIO(response.content)).size == (256, 256)


def test_default_avatar_is_an_svg_with_initials(client_of, alice, make_user):
    response = client_of(alice).get(alice.avatar_url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    svg = response.content.decode()
    assert svg.startswith("<svg ")
    assert ">AL</text>" in svg  # Alice Liddell
    # The picture may carry no script of its own; it is served with a locked-down policy.
    assert "default-src 'none'" in response["Content-Security-Policy"]
    single = make_user("zoe")
    assert ">ZO</text>" in client_of(alice).get(single.avatar_url).content.decode()


def test_default_avatar_keeps_markup_out_of_the_initials(client_of, alice, make_user):
    sneaky = make_user("sneaky", display_name="<script> &x")
    svg = client_of(alice).get(sneaky.avatar_url).content.decode()
    assert "<script" not in svg
    assert ">?</text>" in svg


def test_avatar_endpoint_needs_login(client, alice):
    response = client.get(alice.avatar_url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_avatar_of_unknown_user_is_404(client_of, alice):
    assert client_of(alice).get("/users/999999/avatar/").status_code == 404
