"""Pictures from users, opened safely: checked by content, pixel bombs refused, metadata dropped.

Profile pictures and picture attachments both come through here, so one set of checks
guards every door that decodes an uploaded image.
"""

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

SAFE_FORMATS = {"JPEG", "PNG", "GIF", "WEBP"}
NOT_A_PICTURE = "Upload a JPEG, PNG, GIF or WebP picture."


class InvalidPicture(ValueError):
    """The upload is not a picture we accept; the message is fit to show the user."""


def picture_open(upload, *, max_pixels: int, draft_size: tuple[int, int] | None = None) -> Image.Image:
    """Return the decoded, upright picture of an upload, or raise InvalidPicture.

    Only the header is read before the size check, so a huge canvas costs nothing to refuse.
    """
    upload.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(upload)
            if image.format not in SAFE_FORMATS:
                raise InvalidPicture(NOT_A_PICTURE)
            width, height = image.size
            if width * height > max_pixels:
                raise InvalidPicture(f"The picture is too big: {width} x {height} pixels.")
            if draft_size:
                # A JPEG can decode straight to a smaller scale; no need for every pixel of a photo.
                image.draft(image.mode, draft_size)
            image.load()
            image_format = image.format
    except InvalidPicture:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own guard, for canvases far past ours, fires while opening.
        raise InvalidPicture("The picture is too big: it has far too many pixels.") from None
    except UnidentifiedImageError:
        raise InvalidPicture(NOT_A_PICTURE) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise InvalidPicture("The picture could not be read; it may be damaged.") from None
    image = ImageOps.exif_transpose(image)
    image.format = image_format
    return image


def picture_flatten(image: Image.Image) -> Image.Image:
    """Return the picture in RGB, or RGBA where it may have transparency (resizing needs either)."""
    return image.convert("RGBA" if image.mode in {"RGBA", "LA", "P", "PA"} else "RGB")


def picture_encode(image: Image.Image, *, image_format: str = "WEBP", quality: int = 85) -> bytes:
    """Return the picture freshly encoded: no EXIF, GPS or other metadata survives."""
    image = image.convert("RGB") if image_format == "JPEG" else picture_flatten(image)
    out = io.BytesIO()
    options = {"quality": quality}
    if image_format == "WEBP":
        options["method"] = 4
    image.save(out, format=image_format, **options)
    return out.getvalue()
