"""crypto.js in real Chromium against client/e2e.py: every envelope opens on the other side."""

import base64
import re

import pytest
from django.template.loader import render_to_string

from client import e2e

CRYPTO = "/static/chat/js/crypto.js"
KEYSTORE = "/static/chat/js/keystore.js"
FAST = {"opslimit": e2e.OPSLIMIT_INTERACTIVE, "memlimit": e2e.MEMLIMIT_INTERACTIVE}


def flip_byte(value: str, index: int = -1) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.fixture
def page_errors(page):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    return errors


def load_crypto(page) -> None:
    """Add the sodium partial's scripts to the page and import crypto.js as window.e2e."""
    for src in re.findall(r'src="([^"]+)"', render_to_string("chat/partials/sodium.html")):
        page.add_script_tag(url=src)
    page.evaluate(f"async () => {{ window.e2e = await import('{CRYPTO}'); }}")


@pytest.fixture
def crypto_page(page, live_url, page_errors):
    """A page of the app with libsodium and crypto.js loaded."""
    page.goto(f"{live_url}/accounts/login/")
    load_crypto(page)
    return page


def test_browser_envelope_opens_in_python(crypto_page, page_errors):
    bob = e2e.generate_key_pair()
    sealed = crypto_page.evaluate(
        """([bobPublic]) => {
            const alice = e2e.generateKeyPair();
            const envelope = e2e.sealMessage({
                content: {text: "Grüße from the browser ✓", attachment: {name: "a.txt"}},
                conversation: 41, clientId: "b-1", senderPrivateKey: alice.privateKey,
                recipients: {"1": e2e.toBase64(alice.publicKey), "2": bobPublic},
            });
            const own = e2e.openMessage({...envelope, key: envelope.keys["1"], conversation: 41, client_id: "b-1"},
                                        alice.publicKey, alice.privateKey);
            return {envelope, own, alicePublic: e2e.toBase64(alice.publicKey)};
        }""",
        [e2e.public_key_b64(bob)],
    )
    envelope = sealed["envelope"]
    assert set(envelope["keys"]) == {"1", "2"}
    message = {**envelope, "key": envelope["keys"]["2"], "conversation": 41, "client_id": "b-1"}
    content = e2e.open_message(message, sender_public_key=sealed["alicePublic"], my_private_key=bob)
    expected = {"text": "Grüße from the browser ✓", "attachment": {"name": "a.txt"}}
    assert content == {**expected, "v": 1, "conversation": 41, "client_id": "b-1"}
    assert sealed["own"] == content
    assert (
        e2e.open_message({**message, "client_id": "b-2"}, sender_public_key=sealed["alicePublic"], my_private_key=bob)
        is None
    )
    assert page_errors == []


def test_python_envelope_opens_in_browser_and_tampering_fails_cleanly(crypto_page, page_errors):
    alice, bob = e2e.generate_key_pair(), e2e.generate_key_pair()
    envelope = e2e.seal_message(
        content="from Python",
        conversation=9,
        client_id="p-1",
        sender_private_key=alice,
        recipients={alice_id: e2e.public_key_b64(key) for alice_id, key in ((1, alice), (2, bob))},
    )
    message = {**envelope, "key": envelope["keys"]["2"], "conversation": 9, "client_id": "p-1"}
    variants = {
        "intact": message,
        "ciphertext": {**message, "ciphertext": flip_byte(message["ciphertext"])},
        "ciphertext_start": {**message, "ciphertext": flip_byte(message["ciphertext"], 0)},
        "nonce": {**message, "nonce": flip_byte(message["nonce"])},
        "key": {**message, "key": flip_byte(message["key"])},
        "key_nonce": {**message, "key": flip_byte(message["key"], 0)},
        "other_members_key": {**message, "key": envelope["keys"]["1"]},
        "conversation": {**message, "conversation": 10},
        "client_id": {**message, "client_id": "p-2"},
        "not_base64": {**message, "nonce": "%%%"},
        "short_key": {**message, "key": base64.b64encode(b"k" * 50).decode()},
        "missing": {"ciphertext": message["ciphertext"]},
        "null": None,
    }
    opened = crypto_page.evaluate(
        """([variants, senderPublic, myPrivate]) => {
            const mine = e2e.fromBase64(myPrivate);
            const result = {};
            for (const [name, message] of Object.entries(variants)) {
                try { result[name] = e2e.openMessage(message, senderPublic, mine); }
                catch (error) { result[name] = "threw " + error; }
            }
            result.wrong_sender = e2e.openMessage(variants.intact, e2e.generateKeyPair().publicKey, mine);
            result.bad_sender_key = e2e.openMessage(variants.intact, "short", mine);
            return result;
        }""",
        [variants, e2e.public_key_b64(alice), e2e.b64encode(bytes(bob))],
    )
    assert opened.pop("intact") == {"text": "from Python", "v": 1, "conversation": 9, "client_id": "p-1"}
    assert opened == dict.fromkeys([*list(variants)[1:], "wrong_sender", "bad_sender_key"])
    assert page_errors == []


def test_key_backups_unlock_on_the_other_side(crypto_page):
    python_key = e2e.generate_key_pair()
    python_backup = e2e.backup_key_pair(python_key, "Python's passphrase", **FAST)
    result = crypto_page.evaluate(
        """async ([pythonBackup, fast]) => {
            const keyPair = e2e.generateKeyPair();
            const backup = await e2e.backupKeyPair(keyPair, "browser passphrase ünïcode", fast);
            const unlocked = await e2e.unlockKeyPair(pythonBackup, "Python's passphrase");
            const failure = (promise) => promise.then(() => "opened", (e) => e.name + ": " + e.message);
            return {
                backup, privateKey: e2e.toBase64(keyPair.privateKey),
                unlockedPrivate: e2e.toBase64(unlocked.privateKey),
                unlockedPublic: e2e.toBase64(unlocked.publicKey),
                wrong: await failure(e2e.unlockKeyPair(pythonBackup, "python's passphrase")),
                weak: await failure(e2e.backupKeyPair(keyPair, "x", {opslimit: 1, memlimit: fast.memlimit})),
                mismatch: await failure(e2e.unlockKeyPair({...backup, public_key: pythonBackup.public_key},
                                                          "browser passphrase ünïcode")),
                moderate: e2e.MODERATE, interactive: e2e.INTERACTIVE,
            };
        }""",
        [python_backup, FAST],
    )
    assert result["backup"]["kdf"] == {"alg": "argon2id13", **FAST}
    assert bytes(e2e.unlock_key_pair(result["backup"], "browser passphrase ünïcode")) == base64.b64decode(
        result["privateKey"]
    )
    with pytest.raises(e2e.WrongPassphrase):
        e2e.unlock_key_pair(result["backup"], "browser passphrase unicode")
    assert result["unlockedPrivate"] == e2e.b64encode(bytes(python_key))
    assert result["unlockedPublic"] == e2e.public_key_b64(python_key)
    assert result["wrong"] == "WrongPassphraseError: Wrong passphrase: this key backup does not open with it."
    assert "too weak" in result["weak"]
    assert "does not match its public key" in result["mismatch"]
    # The browser's default is the same MODERATE the Python side uses; tests pass INTERACTIVE.
    assert result["moderate"] == {"opslimit": e2e.OPSLIMIT_MODERATE, "memlimit": e2e.MEMLIMIT_MODERATE}
    assert result["interactive"] == FAST


def test_safety_numbers_and_files_match_across_sides(crypto_page):
    keys = [e2e.public_key_b64(e2e.generate_key_pair()) for _ in range(2)]
    python_file = e2e.encrypt_file(bytes(range(256)) * 600)
    result = crypto_page.evaluate(
        """([a, b, pythonFile]) => {
            const bytes = new Uint8Array(70000).map((_, i) => (i * 7) % 251);
            const sealed = e2e.encryptFile(bytes);
            const opened = e2e.decryptFile(e2e.fromBase64(pythonFile.blob), pythonFile.key, pythonFile.header);
            const cut = e2e.decryptFile(sealed.blob.subarray(0, 65536 + 17), sealed.key, sealed.header);
            return {
                ab: e2e.safetyNumber(a, b), ba: e2e.safetyNumber(b, a),
                blob: e2e.toBase64(sealed.blob), key: sealed.key, header: sealed.header,
                opened: opened && e2e.toBase64(opened), cut,
            };
        }""",
        [*keys, {**python_file, "blob": e2e.b64encode(python_file["blob"])}],
    )
    assert result["ab"] == result["ba"] == e2e.safety_number(*keys)
    assert re.fullmatch(r"\d{5}( \d{5}){11}", result["ab"])
    assert base64.b64decode(result["opened"]) == bytes(range(256)) * 600
    from_browser = e2e.decrypt_file(base64.b64decode(result["blob"]), result["key"], result["header"])
    assert from_browser == bytes((i * 7) % 251 for i in range(70000))
    assert result["cut"] is None


def test_padded_attachments_open_across_sides(crypto_page):
    """Attachments as the app sends them: padded to a bucket, then encrypted (sealFile / seal_file)."""
    sizes = [0, 1, 255, 256, 1000, 65_535, 65_536, 150_001, 25 * 1024 * 1024]
    from_python = bytes((i * 13) % 256 for i in range(150_001))
    python_file = e2e.seal_file(from_python)
    result = crypto_page.evaluate(
        """([sizes, pythonFile]) => {
            const bytes = new Uint8Array(100003).map((_, i) => (i * 31) % 253);
            const sealed = e2e.sealFile(bytes);
            const opened = e2e.openFile(e2e.fromBase64(pythonFile.blob), pythonFile.key, pythonFile.header);
            const unpadded = e2e.encryptFile(new Uint8Array([1, 2, 3]));
            return {
                buckets: sizes.map((size) => e2e.paddedSize(size)),
                blob: e2e.toBase64(sealed.blob), key: sealed.key, header: sealed.header,
                opened: opened && e2e.toBase64(opened),
                refused: e2e.openFile(unpadded.blob, unpadded.key, unpadded.header),
                tampered: e2e.openFile(e2e.fromBase64(pythonFile.tampered), pythonFile.key, pythonFile.header),
            };
        }""",
        [
            sizes,
            {
                **python_file,
                "blob": e2e.b64encode(python_file["blob"]),
                "tampered": flip_byte(e2e.b64encode(python_file["blob"]), 100),
            },
        ],
    )
    assert result["buckets"] == [e2e.padded_size(size) for size in sizes]
    assert base64.b64decode(result["opened"]) == from_python
    blob = base64.b64decode(result["blob"])
    assert len(blob) == e2e.padded_size(100_003) + 17 * 2
    assert e2e.open_file(blob, result["key"], result["header"]) == bytes((i * 31) % 253 for i in range(100_003))
    assert result["refused"] is None
    assert result["tampered"] is None


def test_passphrase_strength_orders_passphrases(crypto_page):
    scores = crypto_page.evaluate(
        """(samples) => samples.map((text) => e2e.passphraseStrength(text))""",
        ["", "password", "Password123!", "aaaaaaaaaaaaaaaaaaaa", "orange lamp", "mauve tractor seventeen bishops glue"],
    )
    assert [s["score"] for s in scores] == [0, 0, 0, 0, 1, 4]
    assert scores[1]["hint"].startswith("This is one of the most common passwords")
    assert scores[-1]["label"] == "strong" and scores[-1]["hint"] == ""
    assert scores[4]["label"] == "weak" and "words" in scores[4]["hint"]


def test_import_fails_loudly_without_sumo_libsodium(page, live_url):
    page.goto(f"{live_url}/accounts/login/")
    load = "(url) => import(url).then(() => 'loaded', (error) => error.message)"
    assert "libsodium is not loaded" in page.evaluate(load, f"{CRYPTO}?case=missing")
    page.evaluate("() => { globalThis.sodium = {ready: Promise.resolve()}; }")
    assert "no crypto_pwhash" in page.evaluate(load, f"{CRYPTO}?case=standard-build")


def test_keystore_keeps_the_key_pair_and_pins_contact_keys(crypto_page):
    first = crypto_page.evaluate(
        f"""async () => {{
            const {{openKeystore, deleteKeystore}} = await import('{KEYSTORE}');
            await deleteKeystore();
            const store = await openKeystore(7);
            await store.putKeyPair(e2e.generateKeyPair());
            const pinned = await store.checkContactKey(8, "KEY-A");
            await store.checkContactKey(9, "KEY-Z");
            const stored = e2e.toBase64((await store.getKeyPair()).privateKey);
            store.close();
            return {{stored, status: pinned.status, verified: pinned.pinned.verified}};
        }}"""
    )
    assert (first["status"], first["verified"]) == ("new", False)
    crypto_page.reload()
    load_crypto(crypto_page)
    result = crypto_page.evaluate(
        f"""async () => {{
            const {{openKeystore}} = await import('{KEYSTORE}');
            const store = await openKeystore("7"), other = await openKeystore(8);
            const out = {{otherAccount: await other.getKeyPair(), keyPair: await store.getKeyPair()}};
            out.keyPair = e2e.toBase64(out.keyPair.privateKey);
            out.same = (await store.checkContactKey(8, "KEY-A")).status;
            const changed = await store.checkContactKey(8, "KEY-B");
            out.changed = [changed.status, changed.pinned.publicKey];
            out.verifyWrong = await store.markVerified(8, "KEY-B").then(() => "verified", (e) => e.message);
            await store.acceptContactKey(8, "KEY-B");
            out.verified = (await store.markVerified(8, "KEY-B")).verified;
            out.afterAccept = (await store.checkContactKey(8, "KEY-B")).status;
            await store.clearKeyPair();
            out.afterLogout = [await store.getKeyPair(), (await store.getContactKey(8)).publicKey];
            await store.clear();
            out.afterClear = [await store.getContactKey(8), await store.getContactKey(9)];
            return out;
        }}"""
    )
    assert result == {
        "otherAccount": None,
        "keyPair": first["stored"],
        "same": "same",
        "changed": ["changed", "KEY-A"],
        "verifyWrong": "Only the pinned key can be marked as verified; accept the new key first.",
        "verified": True,
        "afterAccept": "same",
        "afterLogout": [None, "KEY-B"],
        "afterClear": [None, None],
    }
