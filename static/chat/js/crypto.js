// End-to-end encryption for Chatterbox: pure functions over libsodium, no DOM.
//
// The page loads libsodium-wrappers-sumo's two UMD builds as classic scripts first
// (templates/chat/partials/sodium.html); they set globalThis.sodium. Every envelope made
// here opens with client/e2e.py (PyNaCl) and the other way round; docs/e2e.md has the formats.
// Binary values on the wire are standard base64 with padding (base64_variants.ORIGINAL).

async function loadSodium() {
  const sodium = globalThis.sodium;
  if (!sodium || !sodium.ready) {
    throw new Error(
      "crypto.js: libsodium is not loaded. Include templates/chat/partials/sodium.html before this module.",
    );
  }
  await sodium.ready;
  // The standard (non-sumo) build lacks Argon2id; without it key backups cannot work.
  if (typeof sodium.crypto_pwhash !== "function") {
    throw new Error("crypto.js: this libsodium build has no crypto_pwhash; load libsodium-wrappers-sumo.");
  }
  return sodium;
}

// Importing this module fails loudly, once, if libsodium is missing or unfit.
const sodium = await loadSodium();

const ORIGINAL = sodium.base64_variants.ORIGINAL;
export const CONTENT_VERSION = 1;
const KEY_BYTES = 32;
const NONCE_BYTES = 24;
const MAC_BYTES = 16;
const DIGEST_BYTES = 32;
export const WRAPPED_KEY_BYTES = NONCE_BYTES + MAC_BYTES + KEY_BYTES + DIGEST_BYTES;
const SALT_BYTES = 16;
export const KDF_ALG = "argon2id13";
export const INTERACTIVE = Object.freeze({
  opslimit: sodium.crypto_pwhash_OPSLIMIT_INTERACTIVE,
  memlimit: sodium.crypto_pwhash_MEMLIMIT_INTERACTIVE,
});
export const MODERATE = Object.freeze({
  opslimit: sodium.crypto_pwhash_OPSLIMIT_MODERATE,
  memlimit: sodium.crypto_pwhash_MEMLIMIT_MODERATE,
});
// Far above SENSITIVE; a backup asking for more would only exhaust this device.
const OPSLIMIT_MAX = 16;
const MEMLIMIT_MAX = 2 ** 30;
const SAFETY_NUMBER_BYTES = 60;
export const FILE_CHUNK_BYTES = 64 * 1024;
const STREAM = {
  abytes: sodium.crypto_secretstream_xchacha20poly1305_ABYTES,
  headerBytes: sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES,
  message: sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
  final: sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL,
};

export class WrongPassphraseError extends Error {
  constructor() {
    super("Wrong passphrase: this key backup does not open with it.");
    this.name = "WrongPassphraseError";
  }
}

export function toBase64(bytes) {
  return sodium.to_base64(bytes, ORIGINAL);
}

/** Decode standard base64; throw if malformed or, given `size`, not that many bytes. */
export function fromBase64(text, size) {
  if (typeof text !== "string") throw new TypeError("expected base64 text");
  const bytes = sodium.from_base64(text, ORIGINAL);
  if (size !== undefined && bytes.length !== size) {
    throw new RangeError(`expected ${size} bytes, got ${bytes.length}`);
  }
  return bytes;
}

/** Accept keys as Uint8Array or base64 text (keys from the server arrive as text). */
function keyBytes(key) {
  const bytes = typeof key === "string" ? fromBase64(key, KEY_BYTES) : key;
  if (!(bytes instanceof Uint8Array) || bytes.length !== KEY_BYTES) {
    throw new TypeError(`a key must be ${KEY_BYTES} bytes`);
  }
  return bytes;
}

function digest(ciphertext) {
  return sodium.crypto_generichash(DIGEST_BYTES, ciphertext, null);
}

/** Return a fresh X25519 key pair {publicKey, privateKey} (Uint8Arrays). */
export function generateKeyPair() {
  const { publicKey, privateKey } = sodium.crypto_box_keypair();
  return { publicKey, privateKey };
}

/**
 * Encrypt a message for every member: {ciphertext, nonce, keys: {userId: wrappedKey}}.
 * `content` is {text, attachment?, ...} or a string (the text); `recipients` maps each
 * member's user id (the sender's too) to their public key.
 */
export function sealMessage({ content, conversation, clientId, senderPrivateKey, recipients }) {
  const body = {
    ...(typeof content === "string" ? { text: content } : content),
    v: CONTENT_VERSION,
    conversation,
    client_id: clientId,
  };
  const messageKey = sodium.randombytes_buf(KEY_BYTES);
  const nonce = sodium.randombytes_buf(NONCE_BYTES);
  const ciphertext = sodium.crypto_secretbox_easy(sodium.from_string(JSON.stringify(body)), nonce, messageKey);
  const secret = concat(messageKey, digest(ciphertext));
  const senderKey = keyBytes(senderPrivateKey);
  const keys = {};
  for (const [userId, publicKey] of Object.entries(recipients)) {
    const boxNonce = sodium.randombytes_buf(NONCE_BYTES);
    const box = sodium.crypto_box_easy(secret, boxNonce, keyBytes(publicKey), senderKey);
    keys[userId] = toBase64(concat(boxNonce, box));
  }
  sodium.memzero(messageKey);
  return { ciphertext: toBase64(ciphertext), nonce: toBase64(nonce), keys };
}

/**
 * Decrypt a received message {ciphertext, nonce, key, conversation, client_id}.
 * Return its content object, or null if anything is wrong; never throws.
 */
export function openMessage(message, senderPublicKey, myPrivateKey) {
  return openMessageWithKey(message, senderPublicKey, myPrivateKey)?.content ?? null;
}

/**
 * Open a message as openMessage does and also return its message key K (base64). A report
 * sends K for this one message so the server can check the reported text against the
 * ciphertext it stored (docs/e2e.md "Reports"); K opens nothing else.
 */
export function openMessageWithKey(message, senderPublicKey, myPrivateKey) {
  try {
    return openOrThrow(message, keyBytes(senderPublicKey), keyBytes(myPrivateKey));
  } catch {
    return null;
  }
}

function openOrThrow(message, senderPublicKey, myPrivateKey) {
  const ciphertext = fromBase64(message.ciphertext);
  const nonce = fromBase64(message.nonce, NONCE_BYTES);
  const wrapped = fromBase64(message.key, WRAPPED_KEY_BYTES);
  const secret = sodium.crypto_box_open_easy(
    wrapped.subarray(NONCE_BYTES),
    wrapped.subarray(0, NONCE_BYTES),
    senderPublicKey,
    myPrivateKey,
  );
  // The digest stops another member, who also knows the key, from swapping the body.
  if (!sodium.memcmp(secret.subarray(KEY_BYTES), digest(ciphertext))) return null;
  const messageKey = secret.subarray(0, KEY_BYTES);
  const plain = sodium.crypto_secretbox_open_easy(ciphertext, nonce, messageKey);
  const content = JSON.parse(sodium.to_string(plain));
  if (content === null || typeof content !== "object" || Array.isArray(content)) return null;
  if (!sameId(content.v, CONTENT_VERSION)) return null;
  // Inside the encryption, so the server cannot replay it into another conversation.
  if (!sameId(content.conversation, message.conversation)) return null;
  if (typeof content.client_id !== "string" || content.client_id !== message.client_id) return null;
  return { content, key: toBase64(messageKey) };
}

/** Compare ids whether they travel as numbers or text; anything else never matches. */
function sameId(ours, theirs) {
  const fits = (value) => Number.isInteger(value) || typeof value === "string";
  return fits(ours) && fits(theirs) && String(ours) === String(theirs);
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function checkLimits({ opslimit, memlimit }) {
  if (!Number.isInteger(opslimit) || !Number.isInteger(memlimit)) {
    throw new TypeError("Argon2 limits must be integers.");
  }
  if (opslimit < INTERACTIVE.opslimit || memlimit < INTERACTIVE.memlimit) {
    throw new RangeError("Argon2 limits below INTERACTIVE are too weak for a key backup.");
  }
  if (opslimit > OPSLIMIT_MAX || memlimit > MEMLIMIT_MAX) {
    throw new RangeError("Argon2 limits are unreasonably high.");
  }
}

function passphraseKey(passphrase, salt, { opslimit, memlimit }) {
  return sodium.crypto_pwhash(
    KEY_BYTES,
    sodium.from_string(passphrase),
    salt,
    opslimit,
    memlimit,
    sodium.crypto_pwhash_ALG_ARGON2ID13,
  );
}

/**
 * Seal the private key under a passphrase; resolve to the body of PUT /api/keys/
 * {public_key, encrypted_private_key, salt, nonce, kdf}. `limits` defaults to MODERATE
 * (about a second here) and may not go below INTERACTIVE.
 */
export async function backupKeyPair(keyPair, passphrase, limits = MODERATE) {
  checkLimits(limits);
  if (typeof passphrase !== "string" || passphrase === "") throw new TypeError("The passphrase is empty.");
  const salt = sodium.randombytes_buf(SALT_BYTES);
  const nonce = sodium.randombytes_buf(NONCE_BYTES);
  const key = passphraseKey(passphrase, salt, limits);
  const sealed = sodium.crypto_secretbox_easy(keyBytes(keyPair.privateKey), nonce, key);
  sodium.memzero(key);
  return {
    public_key: toBase64(keyBytes(keyPair.publicKey)),
    encrypted_private_key: toBase64(sealed),
    salt: toBase64(salt),
    nonce: toBase64(nonce),
    kdf: { alg: KDF_ALG, opslimit: limits.opslimit, memlimit: limits.memlimit },
  };
}

/**
 * Open a backup from GET /api/keys/; resolve to {publicKey, privateKey}. Rejects with
 * WrongPassphraseError for a wrong passphrase, with another Error if the backup is malformed.
 */
export async function unlockKeyPair(backup, passphrase) {
  const kdf = backup?.kdf;
  if (!kdf || kdf.alg !== KDF_ALG) throw new Error(`The backup's kdf must be ${KDF_ALG}.`);
  checkLimits(kdf);
  const salt = fromBase64(backup.salt, SALT_BYTES);
  const nonce = fromBase64(backup.nonce, NONCE_BYTES);
  const sealed = fromBase64(backup.encrypted_private_key, KEY_BYTES + MAC_BYTES);
  const publicKey = fromBase64(backup.public_key, KEY_BYTES);
  const key = passphraseKey(String(passphrase), salt, kdf);
  let privateKey;
  try {
    privateKey = sodium.crypto_secretbox_open_easy(sealed, nonce, key);
  } catch {
    throw new WrongPassphraseError();
  } finally {
    sodium.memzero(key);
  }
  if (!sodium.memcmp(sodium.crypto_scalarmult_base(privateKey), publicKey)) {
    throw new Error("The backup's private key does not match its public key.");
  }
  return { publicKey, privateKey };
}

/** Return twelve space-separated 5-digit groups, the same on both sides (docs/e2e.md). */
export function safetyNumber(publicKeyA, publicKeyB) {
  const [lower, higher] = [keyBytes(publicKeyA), keyBytes(publicKeyB)].sort(compareBytes);
  const hash = sodium.crypto_generichash(SAFETY_NUMBER_BYTES, concat(lower, higher), null);
  const groups = [];
  for (let start = 0; start < SAFETY_NUMBER_BYTES; start += 5) {
    // Five bytes exceed 32 bits, so BigInt keeps the big-endian value exact.
    let value = 0n;
    for (const byte of hash.subarray(start, start + 5)) value = (value << 8n) | BigInt(byte);
    groups.push(String(value % 100000n).padStart(5, "0"));
  }
  return groups.join(" ");
}

function compareBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

/**
 * Encrypt a file's bytes under a fresh key, 64 KiB per secretstream chunk.
 * Return {blob: Uint8Array to upload, key, header} (key and header in base64, for the
 * message's encrypted content).
 */
export function encryptFile(bytes) {
  const key = sodium.crypto_secretstream_xchacha20poly1305_keygen();
  const { state, header } = sodium.crypto_secretstream_xchacha20poly1305_init_push(key);
  const parts = [];
  let start = 0;
  do {
    const final = start + FILE_CHUNK_BYTES >= bytes.length;
    const chunk = bytes.subarray(start, start + FILE_CHUNK_BYTES);
    parts.push(
      sodium.crypto_secretstream_xchacha20poly1305_push(state, chunk, null, final ? STREAM.final : STREAM.message),
    );
    start += FILE_CHUNK_BYTES;
  } while (start < bytes.length);
  return { blob: concat(...parts), key: toBase64(key), header: toBase64(header) };
}

/** Return the file's bytes, or null if the blob was altered, cut short or extended; never throws. */
export function decryptFile(blob, key, header) {
  try {
    const state = sodium.crypto_secretstream_xchacha20poly1305_init_pull(
      fromBase64(header, STREAM.headerBytes),
      fromBase64(key, KEY_BYTES),
    );
    const parts = [];
    const step = FILE_CHUNK_BYTES + STREAM.abytes;
    let position = 0;
    let tag = null;
    while (position < blob.length && tag !== STREAM.final) {
      const result = sodium.crypto_secretstream_xchacha20poly1305_pull(
        state,
        blob.subarray(position, position + step),
        null,
      );
      if (!result) return null;
      parts.push(result.message);
      tag = result.tag;
      position += step;
    }
    // A missing final tag means the end was cut off; bytes after it were appended.
    if (tag !== STREAM.final || position < blob.length) return null;
    return concat(...parts);
  } catch {
    return null;
  }
}

// A short list of the passwords people pick most; a match makes any length worthless.
const COMMON_PASSWORDS = new Set(
  (
    "password password1 passw0rd 123456 1234567 12345678 123456789 1234567890 qwerty qwertyuiop " +
    "azerty abc123 111111 000000 123123 iloveyou letmein welcome monkey dragon football baseball " +
    "sunshine princess admin administrator login master shadow superman batman trustno1 hello " +
    "freedom whatever starwars michael jennifer charlie secret chatterbox qazwsx zaq12wsx " +
    "correcthorsebatterystaple changeme default test guest"
  ).split(" "),
);
const STRENGTH_LABELS = ["very weak", "weak", "fair", "good", "strong"];

/**
 * Estimate a passphrase's strength for the meter: {score 0-4, label, bits, hint}.
 * A rough, honest guess: a word counts like a pick from a large word list (about 13
 * bits) however long it is, digits and symbols count per character, runs ("aaaa") and
 * sequences ("1234") count once, and well-known passwords score zero.
 */
export function passphraseStrength(text) {
  const passphrase = String(text ?? "");
  const squashed = passphrase.toLowerCase().replace(/[^a-z0-9]/g, "");
  if (passphrase.length === 0) return strength(0, 0, "Enter a passphrase.");
  if (COMMON_PASSWORDS.has(squashed) || COMMON_PASSWORDS.has(squashed.replace(/[0-9]+$/, ""))) {
    return strength(0, 0, "This is one of the most common passwords; pick something else.");
  }
  const bits = Math.round(estimateBits(passphrase));
  const score = STRENGTH_BITS.filter((threshold) => bits >= threshold).length;
  const hint = score >= 3 ? "" : "Longer is better: try four or more unrelated words.";
  return strength(score, bits, hint);
}

// Bits needed for scores 1 to 4; Argon2 makes each offline guess slow, so 50 bits is strong.
const STRENGTH_BITS = [20, 30, 40, 50];

function strength(score, bits, hint) {
  return { score, label: STRENGTH_LABELS[score], bits, hint };
}

function estimateBits(text) {
  let bits = 0;
  for (const [token] of text.matchAll(/\p{L}+|\p{N}+|[^\p{L}\p{N}]+/gu)) {
    if (/^\p{L}/u.test(token)) {
      bits += Math.min(effectiveLength(token.toLowerCase()) * 4.7, 13) + (/\p{Lu}/u.test(token) ? 1 : 0);
    } else if (/^\p{N}/u.test(token)) {
      bits += effectiveLength(token) * 3.3;
    } else {
      bits += effectiveLength(token.replace(/\s+/gu, "")) * 5;
    }
  }
  return bits;
}

/** Count characters, but only once per run ("aaaa") or step sequence ("abcd", "4321"). */
function effectiveLength(text) {
  const codes = Array.from(text, (char) => char.codePointAt(0));
  let length = codes.length ? 1 : 0;
  for (let i = 1; i < codes.length; i++) {
    const step = codes[i] - codes[i - 1];
    const sequence = Math.abs(step) === 1 && i >= 2 && codes[i - 1] - codes[i - 2] === step;
    if (step !== 0 && !sequence) length += 1;
  }
  return length;
}

// Attachments are padded to a size bucket before encryption, so a blob's length says little.
const PAD_MIN_BYTES = 256;

/** Return the bucket a file of `size` bytes is padded to (Padmé, at most ~12% larger); as client/e2e.py. */
export function paddedSize(size) {
  const length = Math.max(size + 1, PAD_MIN_BYTES);
  const exponent = Math.floor(Math.log2(length));
  const lowBits = exponent - (Math.floor(Math.log2(exponent)) + 1);
  const mask = 2 ** lowBits - 1;
  // Arithmetic, not bitwise: files may pass 2^31 bytes one day.
  return Math.ceil(length / (mask + 1)) * (mask + 1);
}

/** Return bytes || 0x80 || zeros up to their bucket (ISO/IEC 7816-4 padding). */
export function padFile(bytes) {
  const padded = new Uint8Array(paddedSize(bytes.length));
  padded.set(bytes);
  padded[bytes.length] = 0x80;
  return padded;
}

/** Return the bytes without their padding, or null if it is malformed. */
export function unpadFile(padded) {
  let end = padded.length;
  while (end > 0 && padded[end - 1] === 0) end--;
  if (end === 0 || padded[end - 1] !== 0x80) return null;
  return padded.subarray(0, end - 1);
}

/** Pad and encrypt an attachment: {blob, key, header}, as client/e2e.py seal_file. */
export function sealFile(bytes) {
  return encryptFile(padFile(bytes));
}

/** Return an attachment's bytes from its blob, or null if anything is wrong; never throws. */
export function openFile(blob, key, header) {
  const padded = decryptFile(blob, key, header);
  return padded === null ? null : unpadFile(padded);
}
