// The tab's one WebSocket: reconnects with backoff, catches up with `sync` after every
// (re)connect, resends unacknowledged messages, and hands each message to the views once.
// It owns no DOM; views listen to its events (CustomEvent, payload in `detail`).

const STORAGE_KEY = "chatterbox.lastIds";
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;
// Signed out (logout, password change, sign-out elsewhere, revoked token) and banned: the server
// ended these on purpose, so the socket stays closed. Any other code (1006, 1011, 1012) reconnects.
const CLOSE_UNAUTHENTICATED = 4401;
const CLOSE_DISABLED = 4403;
// The server forgets a silent user's presence after two minutes; a ping keeps it, and a
// connection that stays silent through several pings is dead even if the socket has not noticed.
const PING_INTERVAL_MS = 30_000;

export class ChatSocket extends EventTarget {
  constructor({ path, storage = window.sessionStorage }) {
    super();
    this.url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${path}`;
    this.storage = storage;
    this.ws = null;
    this.state = "idle";
    this.attempt = 0;
    this.retryTimer = null;
    this.stopped = false;
    this.lastIds = new Map(Object.entries(readStored(storage)).map(([cid, id]) => [Number(cid), id]));
    this.seen = new Map(); // conversation id -> Set of message ids already emitted
    this.syncing = new Map(); // conversation id -> highest live id seen while a sync runs
    this.outbox = new Map(); // client_id -> message.send frame, until acked or refused
    this.pingTimer = null;
    this.heardAt = 0;
  }

  start() {
    this.stopped = false;
    window.addEventListener("online", () => this.reconnectNow());
    // The browser knows before the socket does: give up on this one now, not after a timeout.
    window.addEventListener("offline", () => this.drop());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && this.state === "waiting") this.reconnectNow();
    });
    this.connect();
  }

  /** Follow a conversation from `lastId` on. One already followed keeps its own position, so
   * that a sync under way (or a position kept from before a reload) leaves no gap. */
  track(conversationId, lastId) {
    if (this.lastIds.has(conversationId)) return;
    this.setLastId(conversationId, lastId ?? 0);
    if (this.state === "open") this.sync(conversationId, lastId ?? 0);
  }

  untrack(conversationId) {
    this.lastIds.delete(conversationId);
    this.seen.delete(conversationId);
    this.syncing.delete(conversationId);
    this.store();
  }

  lastId(conversationId) {
    return this.lastIds.get(conversationId) ?? 0;
  }

  /** Queue a message; it goes out now or after the next reconnect. Return its client_id
   * (an encrypted message seals its client_id inside, so it brings its own). */
  sendMessage(conversationId, fields, clientId = crypto.randomUUID()) {
    const frame = { type: "message.send", conversation: conversationId, client_id: clientId, ...fields };
    this.outbox.set(clientId, frame);
    this.transmit(frame);
    return clientId;
  }

  /** Send a refused message again under the same client_id, so the server cannot store it twice. */
  resend(clientId, frame) {
    this.outbox.set(clientId, frame);
    this.transmit(frame);
  }

  editMessage(id, fields) {
    return this.transmit({ type: "message.edit", id, ...fields });
  }

  deleteMessage(id) {
    return this.transmit({ type: "message.delete", id });
  }

  react(messageId, emoji, on) {
    return this.transmit({ type: "reaction", message: messageId, emoji, on });
  }

  typing(conversationId) {
    return this.transmit({ type: "typing", conversation: conversationId });
  }

  read(conversationId, upTo) {
    return this.transmit({ type: "read", conversation: conversationId, up_to: upTo });
  }

  // Connection lifecycle

  connect() {
    clearTimeout(this.retryTimer);
    if (!navigator.onLine) {
      this.setState("offline");
      return;
    }
    this.setState("connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("message", (event) => this.receive(event));
    ws.addEventListener("close", (event) => this.closed(ws, event));
  }

  drop() {
    const ws = this.ws;
    if (!ws) return;
    this.closed(ws, { code: 1006 });
    ws.close();
  }

  closed(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    // A sync cut short restarts from its last page after the reconnect.
    this.syncing.clear();
    clearInterval(this.pingTimer);
    if (event.code === CLOSE_UNAUTHENTICATED || event.code === CLOSE_DISABLED) {
      this.stopped = true;
      this.setState(event.code === CLOSE_DISABLED ? "disabled" : "unauthenticated");
      return;
    }
    if (this.stopped) return;
    if (!navigator.onLine) {
      // Attempts would only fail; the browser's "online" event brings us back.
      this.setState("offline");
      return;
    }
    // Full jitter: a server restart must not bring every tab back in the same instant.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.attempt += 1;
    this.setState("waiting", { retryIn: delay, attempt: this.attempt });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.stopped || this.state === "open" || this.state === "connecting") return;
    this.attempt = 0;
    this.connect();
  }

  setState(state, extra = {}) {
    this.state = state;
    this.emit("status", { state, ...extra });
  }

  transmit(frame) {
    if (this.state !== "open" || this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  // Incoming frames

  heartbeat() {
    if (Date.now() - this.heardAt > 3 * PING_INTERVAL_MS) {
      this.drop();
      return;
    }
    this.transmit({ type: "ping" });
  }

  receive(event) {
    this.heardAt = Date.now();
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    const handler = FRAME_HANDLERS[frame.type];
    if (handler) handler.call(this, frame);
  }

  hello(frame) {
    this.attempt = 0;
    this.setState("open");
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => this.heartbeat(), PING_INTERVAL_MS);
    this.emit("hello", frame);
    for (const conversationId of frame.conversations ?? []) {
      if (!this.lastIds.has(conversationId)) continue;
      this.sync(conversationId, this.lastIds.get(conversationId));
    }
    for (const message of this.outbox.values()) this.transmit(message);
  }

  sync(conversationId, after) {
    if (!this.syncing.has(conversationId)) this.syncing.set(conversationId, 0);
    this.transmit({ type: "sync", conversation: conversationId, after });
  }

  syncResult(frame) {
    const conversationId = frame.conversation;
    let cursor = this.lastId(conversationId);
    for (const message of frame.messages ?? []) {
      this.deliver(message, { live: false });
      cursor = Math.max(cursor, message.id);
    }
    if (frame.has_more && frame.messages?.length) {
      this.setLastId(conversationId, cursor);
      this.transmit({ type: "sync", conversation: conversationId, after: cursor });
      return;
    }
    // Caught up: live messages that came in meanwhile are newer than the last page.
    const liveMax = this.syncing.get(conversationId) ?? 0;
    this.syncing.delete(conversationId);
    this.setLastId(conversationId, Math.max(cursor, liveMax));
    this.emit("synced", { conversation: conversationId });
  }

  messageNew(frame) {
    this.deliver(frame.message, { live: true });
  }

  deliver(message, { live }) {
    const conversationId = message.conversation;
    let seen = this.seen.get(conversationId);
    if (!seen) this.seen.set(conversationId, (seen = new Set()));
    if (message.client_id && this.outbox.has(message.client_id)) this.outbox.delete(message.client_id);
    if (seen.has(message.id)) return;
    seen.add(message.id);
    if (live && this.syncing.has(conversationId)) {
      // Until the sync is done there may be a gap below this id; do not skip over it.
      this.syncing.set(conversationId, Math.max(this.syncing.get(conversationId), message.id));
    } else if (message.id > this.lastId(conversationId)) {
      this.setLastId(conversationId, message.id);
    }
    this.emit("message", { message, live });
  }

  ack(frame) {
    this.outbox.delete(frame.client_id);
    this.emit("ack", frame);
  }

  error(frame) {
    // A refused send is not retried on reconnect; the view offers to send it again.
    if (frame.client_id) this.outbox.delete(frame.client_id);
    this.emit("error", frame);
  }

  conversationRemoved(frame) {
    this.untrack(frame.id);
    this.emit("conversation-removed", frame);
  }

  // Bookkeeping

  setLastId(conversationId, id) {
    this.lastIds.set(conversationId, id);
    this.store();
  }

  store() {
    try {
      this.storage.setItem(STORAGE_KEY, JSON.stringify(Object.fromEntries(this.lastIds)));
    } catch {
      // Storage full or disabled: memory still holds the positions for this page.
    }
  }

  emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }
}

function readStored(storage) {
  try {
    const stored = JSON.parse(storage.getItem(STORAGE_KEY) || "{}");
    return stored && typeof stored === "object" ? stored : {};
  } catch {
    return {};
  }
}

// Frames that only need forwarding become events of the same name.
function forward(name) {
  return function (frame) {
    this.emit(name, frame);
  };
}

const FRAME_HANDLERS = {
  hello: ChatSocket.prototype.hello,
  "sync.result": ChatSocket.prototype.syncResult,
  "message.new": ChatSocket.prototype.messageNew,
  "message.ack": ChatSocket.prototype.ack,
  "message.updated": forward("updated"),
  "message.deleted": forward("deleted"),
  typing: forward("typing"),
  reaction: forward("reaction"),
  read: forward("read"),
  presence: forward("presence"),
  pong: () => {},
  "conversation.added": forward("conversation-added"),
  "conversation.updated": forward("conversation-updated"),
  "conversation.removed": ChatSocket.prototype.conversationRemoved,
  "key.changed": forward("key-changed"),
  "report.handled": forward("report-handled"),
  error: ChatSocket.prototype.error,
};
