from django.conf import settings
from django.shortcuts import render

from accounts.api import user_json
from accounts.models import UserKey

# Messages per history request: enough to fill a tall window, well under the API's 100.
HISTORY_PAGE = 50


def home(request):
    """Render the chat page for the signed-in, a short landing page for everyone else."""
    if not request.user.is_authenticated:
        return render(request, "chat/landing.html")
    return _chat(request)


def _chat(request):
    """Render the chat page; its script reads the data below from a JSON block."""
    chat_data = {
        "user": user_json(request.user),
        "ws_path": "/ws/",
        "limits": {
            "message_max_length": settings.CHAT_MESSAGE_MAX_CHARS,
            "group_max_members": settings.CHAT_GROUP_MAX_MEMBERS,
            "history_page": HISTORY_PAGE,
            "attachment_max_bytes": settings.ATTACHMENT_MAX_BYTES,
            "attachment_max_seconds": settings.ATTACHMENT_MAX_SECONDS,
        },
    }
    return render(request, "chat/home.html", {"chat_data": chat_data, "e2e_data": _e2e_data(request.user)})


def _e2e_data(user) -> dict:
    """Return what the key flow needs at start-up, so that it never has to probe for a 404.

    `public_key` is null until the user has a key backup; a browser whose stored key pair has
    another public key holds a key that was reset elsewhere and must unlock the new one.
    """
    key = UserKey.objects.filter(user=user).values_list("public_key", flat=True).first()
    return {"public_key": key, "kdf_limits": settings.E2E_KDF_LIMITS}
