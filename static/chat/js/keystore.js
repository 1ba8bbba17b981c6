// The browser's key store, in IndexedDB: the unlocked key pair (until logout) and the
// contact public keys pinned on first use (TOFU). No DOM; keys are Uint8Array or base64.
//
// One database for the origin; every record is filed under the signed-in user's id, so
// two accounts used in one browser never see each other's keys.

const DATABASE = "chatterbox-keys";
// Tabs tell each other on this BroadcastChannel when the key pair or a pin changed.
export const KEY_CHANNEL = "chatterbox-keys";
// 2 added "conversations": each conversation's encryption, pinned the first time it was seen.
const VERSION = 2;
// Earlier keys of a contact kept after accepting a new one: enough for a few resets.
const PREVIOUS_KEYS_KEPT = 10;

function promised(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function openDatabase() {
  const request = indexedDB.open(DATABASE, VERSION);
  request.onupgradeneeded = (event) => {
    const db = request.result;
    if (event.oldVersion < 1) {
      db.createObjectStore("keypairs", { keyPath: "ownerId" });
      db.createObjectStore("contacts", { keyPath: ["ownerId", "userId"] });
    }
    if (event.oldVersion < 2) db.createObjectStore("conversations", { keyPath: ["ownerId", "conversationId"] });
  };
  return promised(request).then((db) => {
    // A newer page wants to upgrade the database: let it, this one reopens on its next reload.
    db.onversionchange = () => db.close();
    return db;
  });
}

/** Delete every key this browser holds, for all accounts. */
export function deleteKeystore() {
  return promised(indexedDB.deleteDatabase(DATABASE));
}

/** Open the key store of the signed-in user. */
export async function openKeystore(userId) {
  return new Keystore(await openDatabase(), String(userId));
}

export class Keystore {
  constructor(db, ownerId) {
    this.db = db;
    this.ownerId = ownerId;
  }

  close() {
    this.db.close();
  }

  async #run(storeName, mode, action) {
    const transaction = this.db.transaction(storeName, mode);
    // Resolve after the transaction commits, so a later reader sees the write.
    const committed = new Promise((resolve, reject) => {
      transaction.oncomplete = resolve;
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error);
    });
    const [result] = await Promise.all([promised(action(transaction.objectStore(storeName))), committed]);
    return result;
  }

  /** Return the unlocked {publicKey, privateKey}, or null if this browser has none. */
  async getKeyPair() {
    const record = await this.#run("keypairs", "readonly", (store) => store.get(this.ownerId));
    return record ? { publicKey: record.publicKey, privateKey: record.privateKey } : null;
  }

  async putKeyPair({ publicKey, privateKey }) {
    const record = { ownerId: this.ownerId, publicKey, privateKey, storedAt: Date.now() };
    await this.#run("keypairs", "readwrite", (store) => store.put(record));
  }

  /** Forget the private key (at logout); pinned contact keys stay. */
  async clearKeyPair() {
    await this.#run("keypairs", "readwrite", (store) => store.delete(this.ownerId));
  }

  /** Return {userId, publicKey, verified, previous, pinnedAt} for a contact, or null if none is pinned. */
  async getContactKey(userId) {
    const record = await this.#run("contacts", "readonly", (store) => store.get([this.ownerId, String(userId)]));
    return record ? contactJson(record) : null;
  }

  async #pin(userId, publicKey, verified, previous = []) {
    const record = { ownerId: this.ownerId, userId: String(userId), publicKey, verified, previous, pinnedAt: Date.now() };
    await this.#run("contacts", "readwrite", (store) => store.put(record));
    return contactJson(record);
  }

  /**
   * Compare a contact's current public key with the pinned one. Pins it if none was
   * pinned ("new"). On "changed" the old pin stays until acceptContactKey().
   */
  async checkContactKey(userId, publicKey) {
    const pinned = await this.getContactKey(userId);
    if (!pinned) return { status: "new", pinned: await this.#pin(userId, publicKey, false) };
    return { status: pinned.publicKey === publicKey ? "same" : "changed", pinned };
  }

  /**
   * Accept a contact's new key after the user saw "X's key changed"; it is no longer verified.
   * The keys accepted before stay in `previous` as {publicKey, replacedAt}, so that messages
   * sent before the change still open, and only those: a replaced key may have been stolen.
   */
  async acceptContactKey(userId, publicKey) {
    const pinned = await this.getContactKey(userId);
    const previous = pinned ? [{ publicKey: pinned.publicKey, replacedAt: Date.now() }, ...pinned.previous] : [];
    const seen = new Set([publicKey]);
    const older = previous.filter((key) => !seen.has(key.publicKey) && seen.add(key.publicKey));
    return this.#pin(userId, publicKey, false, older.slice(0, PREVIOUS_KEYS_KEPT));
  }

  /** Mark the pinned key as verified by comparing safety numbers; it must be the pinned one. */
  async markVerified(userId, publicKey) {
    const pinned = await this.getContactKey(userId);
    if (!pinned || pinned.publicKey !== publicKey) {
      throw new Error("Only the pinned key can be marked as verified; accept the new key first.");
    }
    return this.#pin(userId, publicKey, true, pinned.previous);
  }

  /** Return the ids of the conversations pinned as end-to-end encrypted. */
  async encryptedConversations() {
    const range = IDBKeyRange.bound([this.ownerId, ""], [this.ownerId, "\uffff"]);
    const records = await this.#run("conversations", "readonly", (store) => store.getAll(range));
    return records.filter((record) => record.encrypted).map((record) => Number(record.conversationId));
  }

  /** Pin a conversation as end-to-end encrypted; a server that later says otherwise is not believed. */
  async pinEncrypted(conversationId) {
    const record = { ownerId: this.ownerId, conversationId: String(conversationId), encrypted: true, pinnedAt: Date.now() };
    await this.#run("conversations", "readwrite", (store) => store.put(record));
  }

  /** Forget everything stored for this user: key pair and pins. */
  async clear() {
    await this.clearKeyPair();
    const range = IDBKeyRange.bound([this.ownerId, ""], [this.ownerId, "\uffff"]);
    await this.#run("contacts", "readwrite", (store) => store.delete(range));
    await this.#run("conversations", "readwrite", (store) => store.delete(range));
  }
}

function contactJson({ userId, publicKey, verified, previous, pinnedAt }) {
  return { userId, publicKey, verified, previous: previous ?? [], pinnedAt };
}
