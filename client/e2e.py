"""End-to-end encryption for Chatterbox, the PyNaCl twin of static/chat/js/crypto.js.

Every envelope made here opens in the browser and the other way round; the formats are
described in docs/e2e.md. Binary values travel as standard base64 with padding.
"""

import base64
import binascii
import json
import os

import nacl.bindings
import nacl.exceptions
import nacl.hash
import nacl.pwhash
import nacl.utils
from nacl.encoding import RawEncoder
from nacl.public import Box, PrivateKey, PublicKey
from nacl.secret import SecretBox

CONTENT_VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 24
MAC_BYTES = 16
DIGEST_BYTES = 32
WRAPPED_KEY_BYTES = NONCE_BYTES + MAC_BYTES + KEY_BYTES + DIGEST_BYTES
SALT_BYTES = nacl.pwhash.argon2id.SALTBYTES
KDF_ALG = "argon2id13"
OPSLIMIT_INTERACTIVE = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT_INTERACTIVE = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
OPSLIMIT_MODERATE = nacl.pwhash.argon2id.OPSLIMIT_MODERATE
MEMLIMIT_MODERATE = nacl.pwhash.argon2id.MEMLIMIT_MODERATE
# Far above SENSITIVE; a backup asking for more would only exhaust the unlocking device.
OPSLIMIT_MAX = 16
MEMLIMIT_MAX = 1 << 30
SAFETY_NUMBER_BYTES = 60
FILE_CHUNK_BYTES = 64 * 1024
STREAM_ABYTES = nacl.bindings.crypto_secretstream_xchacha20poly1305_ABYTES
STREAM_TAG_MESSAGE = nacl.bindings.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
STREAM_TAG_FINAL = nacl.bindings.crypto_secretstream_xchacha20poly1305_TAG_FINAL


class WrongPassphrase(ValueError):
    """The passphrase does not unlock this key backup."""


def b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def b64decode(text: str, *, size: int | None = None) -> bytes:
    """Return the bytes of standard padded base64; ValueError if malformed or not `size` long."""
    if not isinstance(text, str):
        raise ValueError("expected base64 text")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("not standard base64") from None
    if size is not None and len(raw) != size:
        raise ValueError(f"expected {size} bytes, got {len(raw)}")
    return raw


def _private_key(key: PrivateKey | bytes | str) -> PrivateKey:
    if isinstance(key, PrivateKey):
        return key
    return PrivateKey(b64decode(key, size=KEY_BYTES) if isinstance(key, str) else key)


def _public_key(key: PublicKey | bytes | str) -> PublicKey:
    if isinstance(key, PublicKey):
        return key
    return PublicKey(b64decode(key, size=KEY_BYTES) if isinstance(key, str) else key)


def generate_key_pair() -> PrivateKey:
    """Return a fresh X25519 key pair (its `public_key` attribute is the public half)."""
    return PrivateKey.generate()


def public_key_b64(private_key: PrivateKey) -> str:
    return b64encode(bytes(private_key.public_key))


def _digest(ciphertext: bytes) -> bytes:
    return nacl.hash.blake2b(ciphertext, digest_size=DIGEST_BYTES, encoder=RawEncoder)


def seal_message(
    *,
    content: dict | str,
    conversation: int | str,
    client_id: str,
    sender_private_key: PrivateKey | bytes | str,
    recipients: dict,
) -> dict:
    """Return {ciphertext, nonce, keys} for a message; `recipients` maps user id to public key."""
    if isinstance(content, str):
        content = {"text": content}
    body = {**content, "v": CONTENT_VERSION, "conversation": conversation, "client_id": client_id}
    message_key = nacl.utils.random(KEY_BYTES)
    nonce = nacl.utils.random(NONCE_BYTES)
    ciphertext = SecretBox(message_key).encrypt(json.dumps(body).encode(), nonce).ciphertext
    secret = message_key + _digest(ciphertext)
    sender = _private_key(sender_private_key)
    keys = {
        str(user_id): b64encode(bytes(Box(sender, _public_key(public_key)).encrypt(secret)))
        for user_id, public_key in recipients.items()
    }
    return {"ciphertext": b64encode(ciphertext), "nonce": b64encode(nonce), "keys": keys}


def open_message(
    message: dict, *, sender_public_key: PublicKey | bytes | str, my_private_key: PrivateKey | bytes | str
) -> dict | None:
    """Return the decrypted content of a received message, or None if anything is off."""
    opened = _opened(message, sender_public_key, my_private_key)
    return opened[0] if opened else None


def open_message_and_key(
    message: dict, *, sender_public_key: PublicKey | bytes | str, my_private_key: PrivateKey | bytes | str
) -> tuple[dict, str] | None:
    """open_message, with the message key K (base64) that opened it (a report's evidence), or None."""
    opened = _opened(message, sender_public_key, my_private_key)
    return (opened[0], b64encode(opened[1])) if opened else None


def _opened(message: dict, sender_public_key, my_private_key) -> tuple[dict, bytes] | None:
    try:
        return _open_message(message, _public_key(sender_public_key), _private_key(my_private_key))
    except (ValueError, TypeError, KeyError, AttributeError, nacl.exceptions.CryptoError):
        return None


def _open_message(message: dict, sender: PublicKey, me: PrivateKey) -> tuple[dict, bytes] | None:
    ciphertext = b64decode(message["ciphertext"])
    nonce = b64decode(message["nonce"], size=NONCE_BYTES)
    wrapped = b64decode(message["key"], size=WRAPPED_KEY_BYTES)
    secret = Box(me, sender).decrypt(wrapped)
    message_key, digest = secret[:KEY_BYTES], secret[KEY_BYTES:]
    # The digest stops another member, who also knows the key, from swapping the body.
    if not nacl.bindings.sodium_memcmp(digest, _digest(ciphertext)):
        return None
    content = json.loads(SecretBox(message_key).decrypt(ciphertext, nonce))
    if not isinstance(content, dict) or not _same_id(content.get("v"), CONTENT_VERSION):
        return None
    # Inside the encryption, so the server cannot replay it into another conversation.
    if not _same_id(content.get("conversation"), message["conversation"]):
        return None
    if not isinstance(content.get("client_id"), str) or content["client_id"] != message["client_id"]:
        return None
    return content, message_key


def _same_id(ours, theirs) -> bool:
    """Compare ids as JavaScript's String() would, refusing anything but whole numbers and text."""
    kinds_ok = all(isinstance(value, int | str) and not isinstance(value, bool) for value in (ours, theirs))
    return kinds_ok and str(ours) == str(theirs)


def _check_limits(opslimit: int, memlimit: int) -> None:
    for value in (opslimit, memlimit):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError("Argon2 limits must be integers.")
    if opslimit < OPSLIMIT_INTERACTIVE or memlimit < MEMLIMIT_INTERACTIVE:
        raise ValueError("Argon2 limits below INTERACTIVE are too weak for a key backup.")
    if opslimit > OPSLIMIT_MAX or memlimit > MEMLIMIT_MAX:
        raise ValueError("Argon2 limits are unreasonably high.")


def _passphrase_key(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(KEY_BYTES, passphrase.encode(), salt, opslimit=opslimit, memlimit=memlimit)


def backup_key_pair(
    private_key: PrivateKey | bytes | str,
    passphrase: str,
    *,
    opslimit: int = OPSLIMIT_MODERATE,
    memlimit: int = MEMLIMIT_MODERATE,
) -> dict:
    """Return the body for PUT /api/keys/: the private key sealed under the passphrase."""
    _check_limits(opslimit, memlimit)
    if not passphrase:
        raise ValueError("The passphrase is empty.")
    key = _private_key(private_key)
    salt, nonce = os.urandom(SALT_BYTES), nacl.utils.random(NONCE_BYTES)
    sealed = SecretBox(_passphrase_key(passphrase, salt, opslimit, memlimit)).encrypt(bytes(key), nonce)
    return {
        "public_key": public_key_b64(key),
        "encrypted_private_key": b64encode(sealed.ciphertext),
        "salt": b64encode(salt),
        "nonce": b64encode(nonce),
        "kdf": {"alg": KDF_ALG, "opslimit": opslimit, "memlimit": memlimit},
    }


def unlock_key_pair(backup: dict, passphrase: str) -> PrivateKey:
    """Return the key pair in a backup; WrongPassphrase if it does not open, ValueError if malformed."""
    kdf = backup.get("kdf")
    if not isinstance(kdf, dict) or kdf.get("alg") != KDF_ALG:
        raise ValueError(f"The backup's kdf must be {KDF_ALG}.")
    _check_limits(kdf.get("opslimit"), kdf.get("memlimit"))
    salt = b64decode(backup.get("salt"), size=SALT_BYTES)
    nonce = b64decode(backup.get("nonce"), size=NONCE_BYTES)
    sealed = b64decode(backup.get("encrypted_private_key"), size=KEY_BYTES + MAC_BYTES)
    public_key = b64decode(backup.get("public_key"), size=KEY_BYTES)
    key = _passphrase_key(passphrase, salt, kdf["opslimit"], kdf["memlimit"])
    try:
        private_key = PrivateKey(SecretBox(key).decrypt(sealed, nonce))
    except nacl.exceptions.CryptoError:
        raise WrongPassphrase("Wrong passphrase: this key backup does not open with it.") from None
    if bytes(private_key.public_key) != public_key:
        raise ValueError("The backup's private key does not match its public key.")
    return private_key


def safety_number(public_key_a: PublicKey | bytes | str, public_key_b: PublicKey | bytes | str) -> str:
    """Return twelve space-separated 5-digit groups, the same whichever side computes it."""
    lower, higher = sorted([bytes(_public_key(public_key_a)), bytes(_public_key(public_key_b))])
    digest = nacl.hash.blake2b(lower + higher, digest_size=SAFETY_NUMBER_BYTES, encoder=RawEncoder)
    chunks = (digest[start : start + 5] for start in range(0, SAFETY_NUMBER_BYTES, 5))
    return " ".join(f"{int.from_bytes(chunk, 'big') % 100000:05d}" for chunk in chunks)


def encrypt_file(data: bytes) -> dict:
    """Return {blob, key, header}: the file under a fresh secretstream key, 64 KiB per chunk."""
    key = nacl.bindings.crypto_secretstream_xchacha20poly1305_keygen()
    state = nacl.bindings.crypto_secretstream_xchacha20poly1305_state()
    header = nacl.bindings.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    starts = range(0, len(data), FILE_CHUNK_BYTES) if data else [0]
    parts = []
    for start in starts:
        final = start + FILE_CHUNK_BYTES >= len(data)
        tag = STREAM_TAG_FINAL if final else STREAM_TAG_MESSAGE
        chunk = data[start : start + FILE_CHUNK_BYTES]
        parts.append(nacl.bindings.crypto_secretstream_xchacha20poly1305_push(state, chunk, tag=tag))
    return {"blob": b"".join(parts), "key": b64encode(key), "header": b64encode(header)}


def decrypt_file(blob: bytes, key: str, header: str) -> bytes | None:
    """Return the file's bytes, or None if the blob was altered, cut short or extended."""
    try:
        state = nacl.bindings.crypto_secretstream_xchacha20poly1305_state()
        nacl.bindings.crypto_secretstream_xchacha20poly1305_init_pull(
            state, b64decode(header, size=24), b64decode(key, size=KEY_BYTES)
        )
        parts, position, tag = [], 0, None
        step = FILE_CHUNK_BYTES + STREAM_ABYTES
        while position < len(blob) and tag != STREAM_TAG_FINAL:
            plain, tag = nacl.bindings.crypto_secretstream_xchacha20poly1305_pull(
                state, blob[position : position + step]
            )
            parts.append(plain)
            position += step
    except (ValueError, TypeError, nacl.exceptions.CryptoError):
        return None
    # A missing final tag means the end was cut off; bytes after it were appended.
    if tag != STREAM_TAG_FINAL or position < len(blob):
        return None
    return b"".join(parts)


# Attachments: padded to a size bucket before encryption, so a blob's length says little.

PAD_MIN_BYTES = 256


def padded_size(size: int) -> int:
    """Return the bucket a file of `size` bytes is padded to (Padmé: at most ~12% larger).

    A bucket keeps the top bits of the length and rounds the rest up, so the server learns
    only the order of magnitude of a file, not its exact size. The marker byte counts too.
    """
    length = max(size + 1, PAD_MIN_BYTES)
    exponent = length.bit_length() - 1
    low_bits = exponent - exponent.bit_length()
    mask = (1 << low_bits) - 1
    return (length + mask) & ~mask


def pad_file(data: bytes) -> bytes:
    """Return data || 0x80 || zeros, up to its bucket (ISO/IEC 7816-4 padding)."""
    return data + b"\x80" + bytes(padded_size(len(data)) - len(data) - 1)


def unpad_file(padded: bytes) -> bytes | None:
    """Return the data without its padding, or None if the padding is malformed."""
    end = len(padded.rstrip(b"\x00"))
    if end == 0 or padded[end - 1] != 0x80:
        return None
    return padded[: end - 1]


def seal_file(data: bytes) -> dict:
    """Return {blob, key, header} for an attachment: padded, then encrypted (encrypt_file)."""
    return encrypt_file(pad_file(data))


def open_file(blob: bytes, key: str, header: str) -> bytes | None:
    """Return an attachment's bytes from its blob, or None if anything is wrong; never raises."""
    padded = decrypt_file(blob, key, header)
    return None if padded is None else unpad_file(padded)
