// Search of encrypted conversations, done entirely in this browser.
//
// Each encrypted conversation gets a MiniSearch full-text index of the messages this browser
// has decrypted (live ones and history as it is fetched). It is kept in IndexedDB
// (search-store.js) sealed with XSalsa20-Poly1305 (secretbox) under a key derived from the
// user's own X25519 private key, so it opens only where that key is unlocked, and it is
// deleted at logout. Searching reads only these indexes: the server sees neither the query
// nor the index. docs/e2e.md says what is stored where; docs/performance.md has the figures.

import MiniSearch from "../../vendor/minisearch/index.js";
import "./crypto.js"; // libsodium is ready once this module has loaded
import { plainText } from "./markdown.js";
import { deleteSearchIndexes, openSearchStore } from "./search-store.js";

const sodium = globalThis.sodium;
// crypto_kdf: subkey 1 of the private key, in a context of its own (8 bytes).
const KDF_CONTEXT = "cbsearch";
const KDF_SUBKEY = 1;
const SAVE_DELAY_MS = 1500;
const RESULTS_MAX = 50;
const SNIPPET_CHARS = 160;
const SNIPPET_LEAD = 50;

// The text is indexed as written: splitting on anything but letters and digits drops the
// Markdown markers anyway, and skipping the parser halves the build time. The snippet of a hit
// is made from the formatted text's plain form (markdown.js).
const WORD_SEPARATORS = /[^\p{L}\p{N}]+/u;
export const INDEX_OPTIONS = Object.freeze({
  fields: ["text"],
  storeFields: ["conversation", "created_at", "sender", "text"],
  tokenize: (text) => text.split(WORD_SEPARATORS),
  searchOptions: { prefix: true, combineWith: "AND" },
});

/** Return the 32-byte key that seals this user's search indexes. */
export function searchKey(privateKey) {
  return sodium.crypto_kdf_derive_from_key(sodium.crypto_secretbox_KEYBYTES, KDF_SUBKEY, KDF_CONTEXT, privateKey);
}

async function transform(bytes, stream) {
  return new Uint8Array(await new Response(new Blob([bytes]).stream().pipeThrough(stream)).arrayBuffer());
}

/** Seal an index: gzip its JSON, then secretbox it with a fresh random nonce; {nonce, sealed}. */
export async function sealIndex(index, key) {
  const nonce = sodium.randombytes_buf(sodium.crypto_secretbox_NONCEBYTES);
  const packed = await transform(new TextEncoder().encode(JSON.stringify(index)), new CompressionStream("gzip"));
  return { nonce, sealed: sodium.crypto_secretbox_easy(packed, nonce, key) };
}

/** Open a sealed index; throws if the key is not the one it was sealed with or it was altered. */
export async function openIndex({ nonce, sealed }, key) {
  const packed = sodium.crypto_secretbox_open_easy(sealed, nonce, key);
  const json = new TextDecoder().decode(await transform(packed, new DecompressionStream("gzip")));
  return MiniSearch.loadJSON(json, INDEX_OPTIONS);
}

export function newIndex() {
  return new MiniSearch(INDEX_OPTIONS);
}

/** Return the document an index holds for a decrypted message. */
export function indexDocument(message, text) {
  const sender = message.sender ?? {};
  return {
    id: message.id,
    conversation: message.conversation,
    created_at: message.created_at,
    sender: { id: sender.id, username: sender.username, display_name: sender.display_name, avatar_url: sender.avatar_url },
    text,
  };
}

export class LocalSearch {
  /** `chat` is the page's ChatStore (which conversations are encrypted); `keys` the KeyRing. */
  constructor({ me, keys, chat }) {
    this.me = me;
    this.keys = keys;
    this.chat = chat;
    this.indexes = new Map(); // conversation id -> MiniSearch
    this.dirty = new Set();
    this.loading = null;
    this.db = null;
    this.key = null;
    this.saveTimer = null;
    this.lastQueryMs = null;
  }

  /** Open the sealed indexes once the key pair is unlocked; resolves false while it is not. */
  load() {
    if (!this.keys.keyPair) return Promise.resolve(false);
    if (!this.loading) {
      this.loading = (async () => {
        this.key = searchKey(this.keys.keyPair.privateKey);
        this.db = await openSearchStore(this.me.id);
        for (const record of await this.db.all()) {
          if (this.indexes.has(record.conversationId)) continue;
          try {
            this.indexes.set(record.conversationId, await openIndex(record, this.key));
          } catch {
            // Sealed under an earlier key pair (reset since): it cannot open; start again.
            await this.db.remove(record.conversationId);
          }
        }
        return true;
      })().catch((error) => {
        this.loading = null;
        throw error;
      });
    }
    return this.loading;
  }

  /** Add, update or drop one message of an encrypted conversation (anything else is ignored). */
  async index(message) {
    const conversation = this.chat.conversations.get(message?.conversation);
    if (!conversation?.encrypted || !message.id) return;
    if (!(await this.load())) return;
    this.apply(message);
  }

  /** Index what this page already holds, e.g. right after the key was unlocked. */
  async indexAll() {
    if (!(await this.load())) return;
    for (const log of this.chat.logs.values()) {
      for (const message of log.byId.values()) {
        if (this.chat.conversations.get(message.conversation)?.encrypted) this.apply(message);
      }
    }
  }

  apply(message) {
    const readable = !message.deleted && message.decrypted?.status === "ok" && (message.kind ?? "text") === "text";
    let index = this.indexes.get(message.conversation);
    if (!readable) {
      if (index?.has(message.id)) {
        index.discard(message.id);
        this.touch(message.conversation);
      }
      return;
    }
    if (!index) this.indexes.set(message.conversation, (index = newIndex()));
    const document = indexDocument(message, message.decrypted.text);
    if (index.has(message.id)) {
      if (index.getStoredFields(message.id)?.text === document.text) return;
      index.replace(document);
    } else {
      index.add(document);
    }
    this.touch(message.conversation);
  }

  touch(conversationId) {
    this.dirty.add(conversationId);
    clearTimeout(this.saveTimer);
    this.saveTimer = setTimeout(() => this.save().catch(() => {}), SAVE_DELAY_MS);
  }

  /** Seal and store the indexes that changed. */
  async save() {
    clearTimeout(this.saveTimer);
    if (!this.db || !this.key) return;
    const changed = [...this.dirty];
    this.dirty.clear();
    for (const conversationId of changed) {
      const index = this.indexes.get(conversationId);
      if (!index) continue;
      await this.db.put(conversationId, { ...(await sealIndex(index, this.key)), count: index.documentCount });
    }
  }

  /** Return hits like the server's ({message, conversation, snippet, highlights}), best first. */
  async search(query, { conversationId = null, sender = "", after = "", before = "" } = {}) {
    if (!(await this.load())) return [];
    const started = performance.now();
    const wanted = conversationId ? [conversationId] : [...this.indexes.keys()];
    const from = after ? endOfDay(after) : null;
    const until = before ? Date.parse(`${before}T00:00:00`) : null;
    const who = sender.trim().toLowerCase();
    const hits = [];
    for (const id of wanted) {
      const conversation = this.chat.conversations.get(id);
      const index = this.indexes.get(id);
      if (!conversation?.encrypted || !index) continue; // left since: its index is not searched
      for (const result of index.search(query)) {
        const at = Date.parse(result.created_at);
        if (who && result.sender?.username?.toLowerCase() !== who) continue;
        if (from !== null && at <= from) continue;
        if (until !== null && at >= until) continue;
        hits.push(result);
      }
    }
    hits.sort((a, b) => b.score - a.score || b.id - a.id);
    const answer = hits.slice(0, RESULTS_MAX).map((result) => {
      const conversation = this.chat.conversations.get(result.conversation);
      return {
        source: "local",
        message: { id: result.id, conversation: result.conversation, created_at: result.created_at, sender: result.sender },
        conversation: { id: conversation.id, kind: conversation.kind, name: conversation.name },
        ...snippetOf(plainText(result.text), result.terms),
      };
    });
    this.lastQueryMs = performance.now() - started;
    return answer;
  }

  /** Forget the indexes here and delete them from this browser (the user was signed out). */
  async wipe() {
    clearTimeout(this.saveTimer);
    this.indexes.clear();
    this.dirty.clear();
    this.loading = null;
    this.key = null;
    this.db?.close();
    this.db = null;
    await deleteSearchIndexes();
  }

  /** The key pair went away (locked or reset): drop what is open, keep what is sealed. */
  close() {
    clearTimeout(this.saveTimer);
    this.indexes.clear();
    this.dirty.clear();
    this.loading = null;
    this.key = null;
    this.db?.close();
    this.db = null;
  }
}

function endOfDay(day) {
  return Date.parse(`${day}T23:59:59.999`);
}

/** Cut the text around its first match; return {snippet, highlights: [[start, end)]} as the server does. */
export function snippetOf(text, terms) {
  const ranges = [];
  for (const term of terms) {
    const pattern = new RegExp(`(?<![\\p{L}\\p{N}])${term.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`, "giu");
    for (const match of text.matchAll(pattern)) ranges.push([match.index, match.index + match[0].length]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const first = ranges[0]?.[0] ?? 0;
  let start = Math.max(0, first - SNIPPET_LEAD);
  if (start > 0) {
    const space = text.indexOf(" ", start);
    if (space !== -1 && space < first) start = space + 1;
  }
  const end = Math.min(text.length, start + SNIPPET_CHARS);
  const lead = start > 0 ? "…" : "";
  const snippet = `${lead}${text.slice(start, end)}${end < text.length ? "…" : ""}`.replace(/\s/g, " ");
  const highlights = [];
  let last = -1;
  for (const [from, to] of ranges) {
    if (from < start || to > end || from < last) continue;
    highlights.push([from - start + lead.length, to - start + lead.length]);
    last = to;
  }
  return { snippet, highlights };
}
