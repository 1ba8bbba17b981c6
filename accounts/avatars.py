"""Profile pictures: validated by content, stripped of metadata, cropped and re-encoded."""

import hashlib

from django.conf import settings
from django.core.files.base import ContentFile
from django.template.defaultfilters import filesizeformat
from PIL import Image, ImageOps

from chatterbox.pictures import NOT_A_PICTURE, InvalidPicture, picture_encode, picture_flatten, picture_open

__all__ = ["NOT_A_PICTURE", "InvalidAvatar", "avatar_default_svg", "avatar_process"]
PALETTE = ["#7c3aed", "#2563eb", "#0891b2", "#059669", "#ca8a04", "#ea580c", "#dc2626", "#db2777"]


class InvalidAvatar(ValueError):
    """The upload is not a picture we accept; the message is fit to show the user."""


def avatar_process(upload) -> ContentFile:
    """Return a fixed-size WebP made from an uploaded picture, or raise InvalidAvatar."""
    if upload.size > settings.AVATAR_MAX_BYTES:
        raise InvalidAvatar(f"The picture is too large: at most {filesizeformat(settings.AVATAR_MAX_BYTES)}.")
    size = settings.AVATAR_SIZE
    try:
        image = picture_open(upload, max_pixels=settings.AVATAR_MAX_PIXELS, draft_size=(size, size))
    except InvalidPicture as error:
        raise InvalidAvatar(str(error)) from None
    image = picture_flatten(image)
    image = ImageOps.fit(image, (size, size), method=Image.Resampling.LANCZOS)
    picture = picture_encode(image, image_format="WEBP", quality=85)
    digest = hashlib.sha256(picture).hexdigest()[:16]
    return ContentFile(picture, name=f"{digest}.webp")


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
