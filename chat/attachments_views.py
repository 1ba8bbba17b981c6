"""Attachments over HTTP: the upload endpoint, members-only downloads, and the upload size guard.

Downloads never let user bytes act as part of the app: every response is `nosniff`, sandboxed
by its own Content-Security-Policy, and a download (`Content-Disposition: attachment`) unless
it is a picture the server re-encoded or a checked audio or video container.
"""

import json
import re

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from chat import events, services
from chat.services.attachments import INLINE_TYPES, request_limit, upload_limit, upload_too_large
from chatterbox.api import api_error, api_view
from chatterbox.errors import Invalid, TooLarge
from moderation import limits

UPLOAD_PATH = "/api/attachments/"
CHUNK_BYTES = 64 * 1024
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class UploadLimitHandler(FileUploadHandler):
    """Stop reading a file part as soon as it passes the limit (for bodies without a Content-Length)."""

    def __init__(self, request=None):
        super().__init__(request)
        self.received = 0
        self.exceeded = False

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > upload_limit(encrypted=True):
            self.exceeded = True
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size):
        return None


@csrf_exempt
def attachments(request):
    """POST a file (multipart `file`, `conversation`, optional `kind`, `duration`, `poster`): 201 and the attachment."""
    limiter = None
    if request.method == "POST" and request.user.is_authenticated:
        length = request.META.get("CONTENT_LENGTH") or ""
        try:
            # By the announced length, before the multipart body is parsed or a byte stored.
            if length.isdigit():
                services.upload_precheck(user=request.user, length=int(length))
        except TooLarge as error:
            return api_error(error.code, error.detail, **error.extra)
        limiter = UploadLimitHandler(request)
        request.upload_handlers.insert(0, limiter)
    # The CSRF check reads the form, so it runs only now that the limits are in place.
    return _attachment_upload(request, limiter)


@csrf_protect
@api_view("POST")
def _attachment_upload(request, limiter):
    upload = request.FILES.get("file")
    if limiter is not None and limiter.exceeded:
        raise upload_too_large()
    if upload is None:
        raise Invalid("Send the file as multipart form field `file`.", field="file")
    conversation = request.POST.get("conversation", "")
    if not conversation.isdigit() or not 1 <= int(conversation) <= services.ID_MAX:
        raise Invalid("conversation must be a conversation id.", field="conversation")
    limits.upload_rate_check(user=request.user, address=limits.client_address(request))
    attachment = services.attachment_create(
        uploader=request.user,
        conversation_id=int(conversation),
        upload=upload,
        kind=request.POST.get("kind") or "file",
        duration=request.POST.get("duration") or None,
        poster=request.FILES.get("poster"),
    )
    return JsonResponse(events.attachment_json(attachment), status=201)


@api_view("GET", "HEAD")
def attachment_file(request, attachment_id: int):
    attachment = services.attachment_readable(user=request.user, attachment_id=attachment_id)
    inline = attachment.content_type in INLINE_TYPES
    return _serve(request, attachment.file.name, attachment.content_type, attachment.name, inline=inline)


@api_view("GET", "HEAD")
def attachment_thumbnail(request, attachment_id: int):
    attachment = services.attachment_readable(user=request.user, attachment_id=attachment_id)
    if not attachment.thumbnail:
        return api_error("not_found", "This attachment has no thumbnail.")
    return _serve(request, attachment.thumbnail.name, "image/webp", "", inline=True)


def _serve(request, name: str, content_type: str, filename: str, *, inline: bool):
    disposition = content_disposition_header(not inline, filename or None) or ("inline" if inline else "attachment")
    if settings.ATTACHMENT_SIGNED_URL_SECONDS and settings.MEDIA_STORAGE == "s3":
        # The bucket serves the bytes from its own origin under a short-lived signature.
        url = default_storage.url(
            name,
            parameters={"ResponseContentType": content_type, "ResponseContentDisposition": disposition},
            expire=settings.ATTACHMENT_SIGNED_URL_SECONDS,
        )
        return _protect(HttpResponseRedirect(url))
    size = default_storage.size(name)
    byte_range = _byte_range(request.headers.get("Range"), size)
    if byte_range is False:
        response = api_error("invalid", "The requested range is outside the file.", status=416)
        response["Content-Range"] = f"bytes */{size}"
        return _protect(response)
    start, end = byte_range or (0, size - 1)
    if request.method == "HEAD":
        response = HttpResponse(status=206 if byte_range else 200)
    else:
        response = StreamingHttpResponse(_chunks(name, start, end), status=206 if byte_range else 200)
    response["Content-Type"] = content_type
    response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    if byte_range:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Disposition"] = disposition
    return _protect(response)


def _protect(response):
    response["X-Content-Type-Options"] = "nosniff"
    # Opened directly, the bytes get no origin and may run nothing.
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "private, max-age=300"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


def _byte_range(header: str | None, size: int):
    """Return (start, end) for a single satisfiable range, None to send it all, False to answer 416."""
    if not header:
        return None
    match = RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        # Several ranges, or another unit: the whole file is a valid answer.
        return None if header.strip().startswith("bytes=") and "," in header else False
    first, last = match.groups()
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            return False
        return max(0, size - suffix), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return False
    return start, end


def _chunks(name: str, start: int, end: int):
    with default_storage.open(name, "rb") as stored:
        stored.seek(start)
        remaining = end - start + 1
        while remaining > 0:
            chunk = stored.read(min(CHUNK_BYTES, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk


class UploadSizeGuard:
    """ASGI middleware: answer 413 to an upload whose Content-Length is past the limit, unread.

    Django's ASGI handler reads a whole body before any view runs; this refuses an oversized
    upload first, from its headers. (A proxy in front should cap bodies too: Daphne itself
    receives the body before the application sees the request.)
    """

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == UPLOAD_PATH:
            length = dict(scope.get("headers") or []).get(b"content-length", b"")
            if length.isdigit() and int(length) > request_limit():
                error = upload_too_large()
                body = json.dumps({"error": error.code, "detail": error.detail, **error.extra}).encode()
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ]
                await send({"type": "http.response.start", "status": 413, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.inner(scope, receive, send)
