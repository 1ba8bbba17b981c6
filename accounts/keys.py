"""Writes to end-to-end encryption keys: the one door for storing a user's key backup."""

import base64
import binascii

import nacl.pwhash
from django.db import transaction

from accounts.models import User, UserKey
from accounts.signals import user_key_changed
from chatterbox.errors import Invalid

# Byte sizes of the decoded fields: X25519 key, Argon2 salt, secretbox nonce, sealed key + MAC.
FIELD_BYTES = {"public_key": 32, "encrypted_private_key": 32 + 16, "salt": 16, "nonce": 24}
KDF_ALG = "argon2id13"
OPSLIMIT_MIN = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT_MIN = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
# Far above SENSITIVE: a backup asking for more would only exhaust the device that unlocks it.
OPSLIMIT_MAX = 16
MEMLIMIT_MAX = 1 << 30


def _decoded_size(field: str, value) -> int:
    if not isinstance(value, str):
        raise Invalid(f"{field} must be base64 text.", field=field)
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise Invalid(f"{field} is not standard base64 (with + / and = padding).", field=field) from None
    return len(raw)


def _check_field(field: str, value) -> None:
    size = _decoded_size(field, value)
    if size != FIELD_BYTES[field]:
        raise Invalid(f"{field} must be {FIELD_BYTES[field]} bytes, not {size}.", field=field)


def _check_limit(kdf: dict, name: str, low: int, high: int) -> None:
    value = kdf.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise Invalid(f"kdf.{name} must be an integer.", field="kdf")
    if value < low:
        raise Invalid(f"kdf.{name} must be at least {low} (Argon2id INTERACTIVE).", field="kdf")
    if value > high:
        raise Invalid(f"kdf.{name} must be at most {high}.", field="kdf")


def _check_kdf(kdf) -> None:
    if not isinstance(kdf, dict):
        raise Invalid("kdf must be an object {alg, opslimit, memlimit}.", field="kdf")
    unknown = sorted(set(kdf) - {"alg", "opslimit", "memlimit"})
    if unknown:
        raise Invalid(f"kdf has unknown fields: {', '.join(unknown)}.", field="kdf")
    if kdf.get("alg") != KDF_ALG:
        raise Invalid(f'kdf.alg must be "{KDF_ALG}".', field="kdf")
    _check_limit(kdf, "opslimit", OPSLIMIT_MIN, OPSLIMIT_MAX)
    _check_limit(kdf, "memlimit", MEMLIMIT_MIN, MEMLIMIT_MAX)


@transaction.atomic
def key_backup_store(
    *, user: User, public_key: str, encrypted_private_key: str, salt: str, nonce: str, kdf: dict
) -> UserKey:
    """Store or replace the user's key backup; a new public key (first or reset) is announced on commit."""
    fields = {"public_key": public_key, "encrypted_private_key": encrypted_private_key, "salt": salt, "nonce": nonce}
    for field, value in fields.items():
        _check_field(field, value)
    _check_kdf(kdf)
    # Lock the user row so two first uploads cannot race to create two keys.
    User.objects.select_for_update().only("pk").get(pk=user.pk)
    key = UserKey.objects.filter(user=user).first() or UserKey(user=user)
    previous = key.public_key or None
    for field, value in {**fields, "kdf": kdf}.items():
        setattr(key, field, value)
    key.save()
    if previous != public_key:
        # A first key too: contacts waiting to write to this user can go ahead at once.
        transaction.on_commit(
            lambda: user_key_changed.send(
                sender=UserKey, user_id=user.pk, public_key=public_key, previous_public_key=previous
            )
        )
    return key
