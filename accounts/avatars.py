"""Profile pictures: validated by content, stripped of metadata, cropped and re-encoded."""

import hashlib
import io
import warnings

from django.conf import settings
from django.core.files.base import ContentFile
from django.template.defaultfilters import filesizeformat
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = {"JPEG", "PNG", "GIF", "WEBP"}
NOT_A_PICTURE = "Upload a JPEG, PNG, GIF or WebP picture."
PALETTE = ["#7c3aed", "#2563eb", "#0891b2", "#059669", "#ca8a04", "#ea580c", "#dc2626", "#db2777"]


class InvalidAvatar(ValueError):
    """The upload is not a picture we accept; the message is fit to show the user."""


def avatar_process(upload) -> ContentFile:
    """Return a fixed-size WebP made from an uploaded picture, or raise InvalidAvatar."""
    if upload.size > settings.AVATAR_MAX_BYTES:
        raise InvalidAvatar(f"The picture is too large: at most {filesizeformat(settings.AVATAR_MAX_BYTES)}.")
    upload.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(upload)
            # Opening reads only the header: refuse huge canvases before decoding a pixel.
            if image.format not in ALLOWED_FORMATS:
                raise InvalidAvatar(NOT_A_PICTURE)
            width, height = image.size
            if width * height > settings.AVATAR_MAX_PIXELS:
                raise InvalidAvatar(f"The picture is too big: {width} x {height} pixels.")
            # A JPEG can decode straight to a smaller scale; no need for every pixel of a photo.
            image.draft(image.mode, (settings.AVATAR_SIZE, settings.AVATAR_SIZE))
            image.load()
    except InvalidAvatar:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own guard, for canvases far past ours, fires while opening.
        raise InvalidAvatar("The picture is too big: it has far too many pixels.") from None
    except UnidentifiedImageError:
        raise InvalidAvatar(NOT_A_PICTURE) from None
    except (OSError, SyntaxError, ValueError):
        raise InvalidAvatar("The picture could not be read; it may be damaged.") from None

    image = ImageOps.exif_transpose(image)
    image = image.convert("RGBA" if image.mode in {"RGBA", "LA", "P"} else "RGB")
    size = settings.AVATAR_SIZE
    image = ImageOps.fit(image, (size, size), method=Image.Resampling.LANCZOS)
    out = io.BytesIO()
    # A fresh encode carries no EXIF, GPS or other metadata from the original.
    image.save(out, format="WEBP", quality=85, method=4)
    digest = hashlib.sha256(out.getvalue()).hexdigest()[:16]
    return ContentFile(out.getvalue(), name=f"{digest}.webp")


def avatar_default_svg(*, initials: str, seed: str) -> str:
    """Return an SVG picture with the user's initials on a colour picked from the seed."""
    colour = PALETTE[int(hashlib.sha256(seed.encode()).hexdigest(), 16) % len(PALETTE)]
    text = "".join(ch for ch in initials if ch.isalnum())[:2] or "?"
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">'
        f'<rect width="64" height="64" fill="{colour}"/>'
        '<text x="32" y="32" dy=".35em" text-anchor="middle" fill="#fff" '
        f'font-family="system-ui, sans-serif" font-size="26" font-weight="600">{text}</text></svg>'
    )
