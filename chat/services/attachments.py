"""Attachments: uploads checked and stored, claimed by one message, served to members, cleaned up.

In a plaintext conversation the server checks what it stores: pictures are decoded by
Pillow, stripped of metadata and re-encoded with a thumbnail; voice notes and video messages
must be the container they claim. In an encrypted conversation the upload is an opaque blob
(chat/static crypto.js pads and encrypts it) and the server records neither name nor type.
"""

import io
import logging
import re
import unicodedata
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Sum
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from PIL import Image, ImageOps

from accounts.models import User
from chat.models import Attachment, Conversation, Message
from chat.services.reads import member_check
from chatterbox.errors import Invalid, NotFound, TooLarge
from chatterbox.pictures import InvalidPicture, picture_encode, picture_open

log = logging.getLogger(__name__)

Kind = Attachment.Kind
OCTET_STREAM = "application/octet-stream"
# Pictures we decode and re-encode; served inline because the bytes are our own.
PICTURE_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}
PICTURE_TYPE_OF_FORMAT = {pil: mime for mime, pil in PICTURE_TYPES.items()}
PICTURE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp"}
# Containers a voice note or video message may be, by their first bytes.
CONTAINERS = {
    "webm": lambda head: head.startswith(b"\x1a\x45\xdf\xa3"),
    "ogg": lambda head: head.startswith(b"OggS"),
    "mp4": lambda head: head[4:8] == b"ftyp",
}
# Types served inline (rendered by <img>, <audio>, <video>): only ever stored after a check.
INLINE_TYPES = {
    *PICTURE_TYPES,
    *(f"{medium}/{container}" for medium in ("audio", "video") for container in CONTAINERS),
}
MIME_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")
NAME_MAX = 255
KINDS_FROM_CLIENT = {"file", "picture", "voice", "video"}


def quota_used(user: User) -> int:
    """Return the bytes the user's stored attachments take up."""
    return Attachment.objects.filter(uploader=user).aggregate(total=Sum("size"))["total"] or 0


# Room for the multipart framing and the form's other fields around the file.
MULTIPART_OVERHEAD = 16 * 1024
# secretstream adds this much to every 64 KiB chunk of an encrypted file.
STREAM_CHUNK_BYTES = 64 * 1024
STREAM_ABYTES = 17


def upload_limit(*, encrypted: bool) -> int:
    """Return the largest upload: a file of ATTACHMENT_MAX_BYTES, or its blob once padded and encrypted."""
    limit = settings.ATTACHMENT_MAX_BYTES
    if not encrypted:
        return limit
    # The browser pads to a Padmé bucket (client/e2e.py padded_size), then encrypts in chunks.
    length = limit + 1
    exponent = length.bit_length() - 1
    mask = (1 << (exponent - exponent.bit_length())) - 1
    padded = (length + mask) & ~mask
    return padded + STREAM_ABYTES * (padded // STREAM_CHUNK_BYTES + 1)


def request_limit() -> int:
    """Return the largest request body an upload may have (its Content-Length)."""
    return upload_limit(encrypted=True) + MULTIPART_OVERHEAD


def upload_precheck(*, user: User, length: int) -> None:
    """Refuse an upload by the length its request announces, before its body is read."""
    if length > request_limit():
        raise upload_too_large()
    _quota_check(user, max(0, length - MULTIPART_OVERHEAD))


def upload_too_large() -> TooLarge:
    limit = settings.ATTACHMENT_MAX_BYTES
    return TooLarge(f"A file may be at most {filesizeformat(limit)}.", limit=limit)


def _quota_check(user: User, size: int) -> None:
    quota = settings.ATTACHMENT_QUOTA_BYTES
    if quota and quota_used(user) + size > quota:
        raise TooLarge(
            f"Your files may take up at most {filesizeformat(quota)}; delete some messages with files first.",
            quota=True,
            limit=quota,
        )


def attachment_create(
    *,
    uploader: User,
    conversation_id: int,
    upload,
    kind: str = "file",
    duration: float | None = None,
    poster=None,
) -> Attachment:
    """Check and store an upload for a conversation the uploader belongs to; nothing is kept on failure."""
    member_check(user=uploader, conversation_id=conversation_id)
    conversation = Conversation.objects.get(pk=conversation_id)
    if upload.size > upload_limit(encrypted=conversation.encrypted):
        raise upload_too_large()
    if upload.size == 0:
        raise Invalid("The file is empty.", field="file")
    _quota_check(uploader, upload.size)
    if kind not in KINDS_FROM_CLIENT:
        raise Invalid("kind must be file, picture, voice or video.", field="kind")
    attachment = Attachment(conversation=conversation, uploader=uploader)
    if conversation.encrypted:
        # An opaque blob: its name, type and duration are inside the message's encrypted content.
        attachment.kind = Kind.ENCRYPTED
        files = {"file": upload}
        attachment.size = upload.size
    else:
        files = _plaintext_prepare(attachment, upload, kind=kind, duration=duration, poster=poster)
    return _attachment_store(attachment, files)


def _plaintext_prepare(attachment: Attachment, upload, *, kind: str, duration, poster=None) -> dict:
    """Fill in the attachment's fields from a checked plaintext upload; return the files to store."""
    attachment.name = _file_name(getattr(upload, "name", ""))
    declared = _declared_type(getattr(upload, "content_type", ""))
    is_picture = kind == "picture" or declared in PICTURE_TYPES
    if kind == "file" and declared == "" and _suffix(attachment.name) in PICTURE_SUFFIXES:
        is_picture = True
    if is_picture and kind in {"file", "picture"}:
        return _picture_prepare(attachment, upload)
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    container = next((name for name, test in CONTAINERS.items() if test(head)), None)
    if kind in {"voice", "video"}:
        if container is None:
            raise Invalid("A voice note or video message must be WebM, Ogg or MP4.", field="file")
        attachment.kind = Kind.VOICE if kind == "voice" else Kind.VIDEO
        attachment.content_type = f"{'audio' if kind == 'voice' else 'video'}/{container}"
        attachment.duration = _duration_check(duration)
        if kind == "video" and poster is not None:
            # A frame the browser took while recording: checked and re-encoded like any picture.
            attachment.size = upload.size
            return {"file": upload, "thumbnail": ContentFile(_thumbnail(_picture_open(poster)), name="poster")}
    else:
        attachment.kind = Kind.FILE
        if declared in INLINE_TYPES and declared.split("/")[1] != container:
            # It claims to be something a page would render; it is not, so it is only a download.
            declared = OCTET_STREAM
        attachment.content_type = declared or OCTET_STREAM
    attachment.size = upload.size
    return {"file": upload}


def _picture_open(upload, field: str = "poster") -> Image.Image:
    if upload.size > settings.ATTACHMENT_MAX_BYTES:
        raise upload_too_large()
    try:
        return picture_open(upload, max_pixels=settings.ATTACHMENT_MAX_PIXELS)
    except InvalidPicture as error:
        raise Invalid(str(error), field=field) from None


def _thumbnail(image: Image.Image) -> bytes:
    box = settings.ATTACHMENT_THUMBNAIL_SIZE
    return picture_encode(ImageOps.contain(image, (box, box), Image.Resampling.LANCZOS), quality=75)


def _picture_prepare(attachment: Attachment, upload) -> dict:
    image = _picture_open(upload, field="file")
    image_format = image.format
    # A fresh encode in the same format: the pixels survive, EXIF and GPS do not.
    picture = _picture_bytes(image, image_format)
    thumbnail = _thumbnail(image)
    attachment.kind = Kind.PICTURE
    attachment.content_type = PICTURE_TYPE_OF_FORMAT[image_format]
    attachment.width, attachment.height = image.size
    attachment.size = len(picture)
    return {"file": ContentFile(picture, name="picture"), "thumbnail": ContentFile(thumbnail, name="thumbnail")}


def _picture_bytes(image: Image.Image, image_format: str) -> bytes:
    if image_format == "GIF":
        # Keep an animation's frames; a fresh encode drops comments and other extensions.
        out = io.BytesIO()
        image.info.clear()
        image.save(out, format="GIF", save_all=getattr(image, "n_frames", 1) > 1)
        return out.getvalue()
    if image_format == "PNG":
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=True)
        return out.getvalue()
    return picture_encode(image, image_format=image_format, quality=90)


def _duration_check(duration) -> float:
    # The client measures the recording; the server can only check the figure is plausible.
    if isinstance(duration, str):
        try:
            duration = float(duration)
        except ValueError:
            duration = None
    limit = settings.ATTACHMENT_MAX_SECONDS
    if not isinstance(duration, int | float) or isinstance(duration, bool) or not 0 < duration <= limit:
        raise Invalid(f"duration must be a number of seconds above 0 and at most {limit}.", field="duration")
    return round(float(duration), 3)


def _declared_type(value: str) -> str:
    value = (value or "").split(";")[0].strip().lower()
    return value if MIME_TYPE.match(value) and value != OCTET_STREAM else ""


def _file_name(value: str) -> str:
    """Return a file name fit to show: no folders, no control characters, not too long."""
    name = re.split(r"[\\/]", value or "")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    return name[-NAME_MAX:] or "file"


def _suffix(name: str) -> str:
    return "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""


def _attachment_store(attachment: Attachment, files: dict) -> Attachment:
    """Save the files, then the row; if anything fails, remove what was saved."""
    saved = []
    try:
        for field, content in files.items():
            getattr(attachment, field).save("upload", content, save=False)
            saved.append(getattr(attachment, field).name)
        attachment.save()
    except BaseException:
        for name in saved:
            default_storage.delete(name)
        raise
    return attachment


def attachment_claim(*, sender: User, conversation: Conversation, attachment_id: int | None, message: Message) -> None:
    """Tie an upload to the message being stored: the sender's own, for this conversation, used once."""
    if attachment_id is None:
        # Known to have none: message_json then needs no query to find out.
        Message.attachment.related.set_cached_value(message, None)
        return
    attachment = Attachment.objects.select_for_update().filter(pk=attachment_id, uploader=sender).first()
    if attachment is None:
        raise NotFound("No such attachment.", field="attachment")
    if attachment.conversation_id != conversation.pk:
        raise Invalid("This attachment was uploaded for another conversation.", field="attachment")
    if attachment.message_id is not None:
        raise Invalid("This attachment was already sent in a message.", field="attachment")
    attachment.message = message
    attachment.save(update_fields=["message"])


def attachment_discard(*, message: Message) -> None:
    """Delete a deleted message's attachment; its files go when the transaction commits."""
    Attachment.objects.filter(message=message).delete()


def attachment_readable(*, user: User, attachment_id: int) -> Attachment:
    """Return an attachment the user may fetch now, or raise NotFound (never saying why)."""
    attachment = Attachment.objects.readable_by(user).filter(pk=attachment_id).first()
    if attachment is None:
        raise NotFound("No such attachment.")
    return attachment


def attachments_cleanup(*, older_than_seconds: int | None = None) -> int:
    """Delete uploads never sent in a message within the allowed time; return how many."""
    seconds = settings.ATTACHMENT_ORPHAN_SECONDS if older_than_seconds is None else older_than_seconds
    cutoff = timezone.now() - timedelta(seconds=seconds)
    deleted = 0
    for attachment_id in list(Attachment.objects.orphaned(older_than=cutoff).values_list("pk", flat=True)):
        with transaction.atomic():
            # Locked and checked again: one claimed meanwhile is no orphan.
            orphan = Attachment.objects.select_for_update().filter(pk=attachment_id, message__isnull=True).first()
            if orphan is not None:
                orphan.delete()
                deleted += 1
    return deleted


@receiver(post_delete, sender=Attachment)
def _files_delete(sender, instance: Attachment, **kwargs) -> None:
    """However a row goes (message deleted, conversation deleted, clean-up), its files go after the commit."""
    names = [name for name in (instance.file.name, instance.thumbnail.name) if name]

    def delete():
        for name in names:
            try:
                default_storage.delete(name)
            except OSError:
                log.exception("Could not delete attachment file %s", name)

    transaction.on_commit(delete)
