"""JSON endpoints for end-to-end encryption keys: /api/keys/ and /api/keys/USERNAME/."""

from django.http import JsonResponse

from accounts import keys
from accounts.models import UserKey
from chatterbox.api import api_view, json_body
from chatterbox.errors import Invalid, NotFound

BACKUP_FIELDS = ("public_key", "encrypted_private_key", "salt", "nonce", "kdf")


def backup_json(key: UserKey) -> dict:
    return {
        **{field: getattr(key, field) for field in BACKUP_FIELDS},
        "updated_at": key.updated_at.isoformat(),
    }


def _backup_fields(body: dict) -> dict:
    unknown = sorted(set(body) - set(BACKUP_FIELDS))
    if unknown:
        raise Invalid(f"Unknown fields: {', '.join(unknown)}.")
    missing = [field for field in BACKUP_FIELDS if field not in body]
    if missing:
        raise Invalid(f"Missing fields: {', '.join(missing)}.")
    return body


@api_view("GET", "PUT")
def own_key(request):
    if request.method == "PUT":
        key = keys.key_backup_store(user=request.user, **_backup_fields(json_body(request)))
        return JsonResponse(backup_json(key))
    key = UserKey.objects.filter(user=request.user).first()
    if key is None:
        raise NotFound("You have no key backup yet.")
    return JsonResponse(backup_json(key))


@api_view("GET")
def public_key(request, username: str):
    key = UserKey.objects.of_username(username).first()
    if key is None:
        raise NotFound("No such user, or that user has no encryption key yet.")
    return JsonResponse(
        {"public_key": key.public_key, "user_id": key.user_id, "updated_at": key.updated_at.isoformat()}
    )
