"""The Python side of end-to-end encryption: envelopes, key backups, safety numbers, files."""

import base64
import inspect
import json

import nacl.hash
import nacl.pwhash
import pytest
from nacl.encoding import RawEncoder
from nacl.public import Box
from nacl.secret import SecretBox

from client import e2e

FAST = {"opslimit": e2e.OPSLIMIT_INTERACTIVE, "memlimit": e2e.MEMLIMIT_INTERACTIVE}


@pytest.fixture(scope="module")
def alice_key():
    return e2e.generate_key_pair()


@pytest.fixture(scope="module")
def bob_key():
    return e2e.generate_key_pair()


@pytest.fixture
def sealed(alice_key, bob_key):
    """A message from Alice (user 1) to Bob (user 2) in conversation 7, as Bob receives it."""
    envelope = e2e.seal_message(
        content={"text": "Meet at noon"},
        conversation=7,
        client_id="c-1",
        sender_private_key=alice_key,
        recipients={1: e2e.public_key_b64(alice_key), 2: e2e.public_key_b64(bob_key)},
    )
    return envelope, {
        "ciphertext": envelope["ciphertext"],
        "nonce": envelope["nonce"],
        "key": envelope["keys"]["2"],
        "conversation": 7,
        "client_id": "c-1",
    }


def bob_opens(message, alice_key, bob_key):
    return e2e.open_message(message, sender_public_key=alice_key.public_key, my_private_key=bob_key)


def flip_byte(value: str, index: int = -1) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_every_member_opens_the_same_content(sealed, alice_key, bob_key):
    envelope, message = sealed
    assert set(envelope["keys"]) == {"1", "2"}
    content = bob_opens(message, alice_key, bob_key)
    assert content == {"text": "Meet at noon", "v": 1, "conversation": 7, "client_id": "c-1"}
    own_copy = {**message, "key": envelope["keys"]["1"]}
    assert e2e.open_message(own_copy, sender_public_key=alice_key.public_key, my_private_key=alice_key) == content


def test_envelope_sizes_and_base64(sealed):
    envelope, _ = sealed
    assert len(base64.b64decode(envelope["nonce"], validate=True)) == 24
    assert len(base64.b64decode(envelope["keys"]["2"], validate=True)) == e2e.WRAPPED_KEY_BYTES == 104


@pytest.mark.parametrize("field", ["ciphertext", "nonce", "key"])
@pytest.mark.parametrize("index", [0, -1])
def test_tampered_field_does_not_open(sealed, alice_key, bob_key, field, index):
    _, message = sealed
    assert bob_opens({**message, field: flip_byte(message[field], index)}, alice_key, bob_key) is None


@pytest.mark.parametrize(("field", "value"), [("conversation", 8), ("conversation", "8"), ("client_id", "c-2")])
def test_replayed_elsewhere_does_not_open(sealed, alice_key, bob_key, field, value):
    _, message = sealed
    assert bob_opens({**message, field: value}, alice_key, bob_key) is None


def test_conversation_id_as_text_still_matches(sealed, alice_key, bob_key):
    _, message = sealed
    assert bob_opens({**message, "conversation": "7"}, alice_key, bob_key)["text"] == "Meet at noon"


@pytest.mark.parametrize(
    "broken",
    [
        {"ciphertext": "not base64!"},
        {"nonce": base64.b64encode(b"x" * 23).decode()},
        {"key": base64.b64encode(b"x" * 104).decode()},
        {"key": None},
        {"conversation": True},
    ],
)
def test_malformed_message_is_none_not_an_exception(sealed, alice_key, bob_key, broken):
    _, message = sealed
    assert bob_opens({**message, **broken}, alice_key, bob_key) is None


def test_missing_fields_and_wrong_types_are_none(sealed, alice_key, bob_key):
    _, message = sealed
    assert bob_opens({k: v for k, v in message.items() if k != "client_id"}, alice_key, bob_key) is None
    assert bob_opens("not a message", alice_key, bob_key) is None
    assert e2e.open_message(message, sender_public_key="short", my_private_key=bob_key) is None


def test_wrong_sender_or_outsider_cannot_open(sealed, alice_key, bob_key):
    _, message = sealed
    mallory = e2e.generate_key_pair()
    assert e2e.open_message(message, sender_public_key=mallory.public_key, my_private_key=bob_key) is None
    assert e2e.open_message(message, sender_public_key=alice_key.public_key, my_private_key=mallory) is None


def test_member_cannot_swap_the_body_under_the_senders_key(sealed, alice_key, bob_key):
    """Bob knows K, but a new body under K no longer matches the digest Alice boxed."""
    _, message = sealed
    box_opened = Box(bob_key, alice_key.public_key).decrypt(base64.b64decode(message["key"]))
    forged_body = json.dumps({"v": 1, "conversation": 7, "client_id": "c-1", "text": "Pay Bob"}).encode()
    forged = SecretBox(box_opened[:32]).encrypt(forged_body, base64.b64decode(message["nonce"])).ciphertext
    assert bob_opens({**message, "ciphertext": base64.b64encode(forged).decode()}, alice_key, bob_key) is None


def test_plain_text_content_and_attachment_round_trip(alice_key, bob_key):
    attachment = {"id": 5, "key": "k", "header": "h", "name": "plan.pdf", "type": "application/pdf", "size": 3}
    envelope = e2e.seal_message(
        content={"text": "see file", "attachment": attachment},
        conversation="12",
        client_id="c-9",
        sender_private_key=bytes(alice_key),
        recipients={"2": bytes(bob_key.public_key)},
    )
    message = {**envelope, "key": envelope["keys"]["2"], "conversation": 12, "client_id": "c-9"}
    assert bob_opens(message, alice_key, bob_key)["attachment"] == attachment
    text_only = e2e.seal_message(
        content="héllo ✓",
        conversation=1,
        client_id="x",
        sender_private_key=alice_key,
        recipients={2: bob_key.public_key},
    )
    message = {**text_only, "key": text_only["keys"]["2"], "conversation": 1, "client_id": "x"}
    assert bob_opens(message, alice_key, bob_key)["text"] == "héllo ✓"


def test_backup_unlocks_with_the_right_passphrase_only(alice_key):
    backup = e2e.backup_key_pair(alice_key, "purple monkey dishwasher", **FAST)
    assert backup["public_key"] == e2e.public_key_b64(alice_key)
    assert backup["kdf"] == {"alg": "argon2id13", **FAST}
    assert [len(base64.b64decode(backup[f])) for f in ("salt", "nonce", "encrypted_private_key")] == [16, 24, 48]
    assert bytes(e2e.unlock_key_pair(backup, "purple monkey dishwasher")) == bytes(alice_key)
    with pytest.raises(e2e.WrongPassphrase, match="Wrong passphrase"):
        e2e.unlock_key_pair(backup, "purple monkey dishwasher!")


def test_backup_defaults_to_moderate_limits():
    defaults = inspect.signature(e2e.backup_key_pair).parameters
    assert defaults["opslimit"].default == nacl.pwhash.argon2id.OPSLIMIT_MODERATE
    assert defaults["memlimit"].default == nacl.pwhash.argon2id.MEMLIMIT_MODERATE


@pytest.mark.parametrize(
    "limits",
    [
        {"opslimit": 1, "memlimit": e2e.MEMLIMIT_INTERACTIVE},
        {"opslimit": 2, "memlimit": e2e.MEMLIMIT_INTERACTIVE // 2},
        {"opslimit": 2, "memlimit": 4 << 30},
        {"opslimit": 2.5, "memlimit": e2e.MEMLIMIT_INTERACTIVE},
    ],
)
def test_backup_refuses_weak_or_absurd_limits(alice_key, limits):
    with pytest.raises(ValueError, match="Argon2 limits"):
        e2e.backup_key_pair(alice_key, "a passphrase", **limits)


def test_unlock_refuses_a_malformed_or_mismatched_backup(alice_key, bob_key):
    backup = e2e.backup_key_pair(alice_key, "pass phrase", **FAST)
    with pytest.raises(ValueError, match="kdf"):
        e2e.unlock_key_pair({**backup, "kdf": {**backup["kdf"], "alg": "scrypt"}}, "pass phrase")
    with pytest.raises(ValueError, match="too weak"):
        e2e.unlock_key_pair({**backup, "kdf": {**backup["kdf"], "memlimit": 8192}}, "pass phrase")
    with pytest.raises(ValueError, match="16 bytes"):
        e2e.unlock_key_pair({**backup, "salt": base64.b64encode(b"s" * 8).decode()}, "pass phrase")
    with pytest.raises(ValueError, match="does not match"):
        e2e.unlock_key_pair({**backup, "public_key": e2e.public_key_b64(bob_key)}, "pass phrase")


def test_safety_number_is_symmetric_and_twelve_groups_of_five(alice_key, bob_key):
    number = e2e.safety_number(alice_key.public_key, bob_key.public_key)
    groups = number.split(" ")
    assert len(groups) == 12
    assert all(len(group) == 5 and group.isdigit() for group in groups)
    assert e2e.safety_number(e2e.public_key_b64(bob_key), bytes(alice_key.public_key)) == number
    assert e2e.safety_number(alice_key.public_key, e2e.generate_key_pair().public_key) != number


def test_safety_number_known_answer():
    """Pin the arithmetic: BLAKE2b-480 of the two ordered keys, 5-byte big-endian chunks mod 100000."""
    low, high = bytes(32), bytes([1] * 32)
    digest = nacl.hash.blake2b(low + high, digest_size=60, encoder=RawEncoder)
    expected = " ".join(f"{int.from_bytes(digest[i : i + 5], 'big') % 100000:05d}" for i in range(0, 60, 5))
    assert e2e.safety_number(high, low) == expected


@pytest.mark.parametrize("size", [0, 1, 65536, 65536 * 2 + 100])
def test_file_round_trip(size):
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    sealed = e2e.encrypt_file(data)
    chunks = max(1, -(-size // 65536))
    assert len(sealed["blob"]) == size + chunks * 17
    assert e2e.decrypt_file(sealed["blob"], sealed["key"], sealed["header"]) == data


def test_file_tampering_truncation_and_extension_fail():
    data = b"x" * (65536 + 10)
    sealed = e2e.encrypt_file(data)
    blob, key, header = sealed["blob"], sealed["key"], sealed["header"]
    flipped = bytearray(blob)
    flipped[100] ^= 1
    assert e2e.decrypt_file(bytes(flipped), key, header) is None
    assert e2e.decrypt_file(blob[: 65536 + 17], key, header) is None
    assert e2e.decrypt_file(blob + b"more", key, header) is None
    assert e2e.decrypt_file(blob, e2e.encrypt_file(b"")["key"], header) is None
    assert e2e.decrypt_file(blob, key, "bad header") is None


@pytest.mark.parametrize("size", [0, 1, 255, 256, 1000, 65_535, 65_536, 200_001])
def test_sealed_files_are_padded_to_a_bucket_and_open(size):
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    sealed = e2e.seal_file(data)
    padded = e2e.padded_size(size)
    assert padded > size and padded <= max(256, size * 1.13)
    chunks = padded // e2e.FILE_CHUNK_BYTES + (1 if padded % e2e.FILE_CHUNK_BYTES else 0)
    assert len(sealed["blob"]) == padded + 17 * max(chunks, 1)
    assert e2e.open_file(sealed["blob"], sealed["key"], sealed["header"]) == data


def test_files_of_nearby_sizes_give_blobs_of_one_size():
    sizes = {len(e2e.seal_file(b"x" * size)["blob"]) for size in range(200_800, 204_700, 300)}
    assert len(sizes) == 1


def test_malformed_padding_is_refused():
    assert e2e.unpad_file(b"abc\x00\x00") is None
    assert e2e.unpad_file(b"") is None
    unpadded = e2e.encrypt_file(b"no padding here")
    assert e2e.open_file(unpadded["blob"], unpadded["key"], unpadded["header"]) is None
