// Where the browser keeps its search indexes of encrypted conversations: IndexedDB, one record
// per (signed-in user, conversation), each sealed by search-index.js before it gets here. No
// libsodium and no DOM, so logout.js (loaded on every page) can wipe it cheaply.

const DATABASE = "chatterbox-search";
const VERSION = 1;
const STORE = "indexes";

function promised(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Delete every search index this browser holds, for all accounts (at logout). */
export function deleteSearchIndexes() {
  return promised(indexedDB.deleteDatabase(DATABASE));
}

export async function openSearchStore(ownerId) {
  const request = indexedDB.open(DATABASE, VERSION);
  request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: ["ownerId", "conversationId"] });
  return new SearchStore(await promised(request), String(ownerId));
}

export class SearchStore {
  constructor(db, ownerId) {
    this.db = db;
    this.ownerId = ownerId;
    // Another tab deleting the database (logout) must not wait on this connection.
    db.onversionchange = () => db.close();
  }

  async #run(mode, action) {
    const transaction = this.db.transaction(STORE, mode);
    const committed = new Promise((resolve, reject) => {
      transaction.oncomplete = resolve;
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error);
    });
    const [result] = await Promise.all([promised(action(transaction.objectStore(STORE))), committed]);
    return result;
  }

  /** Return this user's sealed records: [{conversationId, nonce, sealed, count, updatedAt}]. */
  all() {
    const range = IDBKeyRange.bound([this.ownerId, -Infinity], [this.ownerId, Infinity]);
    return this.#run("readonly", (store) => store.getAll(range));
  }

  put(conversationId, { nonce, sealed, count }) {
    const record = { ownerId: this.ownerId, conversationId, nonce, sealed, count, updatedAt: Date.now() };
    return this.#run("readwrite", (store) => store.put(record));
  }

  remove(conversationId) {
    return this.#run("readwrite", (store) => store.delete([this.ownerId, conversationId]));
  }

  clear() {
    const range = IDBKeyRange.bound([this.ownerId, -Infinity], [this.ownerId, Infinity]);
    return this.#run("readwrite", (store) => store.delete(range));
  }

  close() {
    this.db.close();
  }
}
