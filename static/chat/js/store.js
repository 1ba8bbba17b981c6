// What the page knows: conversations, their messages, who is online, typing and read positions.
// Plain data and the rules that keep it consistent; no DOM and no network.

export const TYPING_EXPIRES_MS = 5000;

// Messages of a deleted account keep their place in the history under this name.
const GONE_USER = Object.freeze({ id: 0, username: "deleted", display_name: "Deleted user", avatar_url: "" });

/**
 * Return what a message says: the body of a plaintext one, the decrypted text of an encrypted
 * one (keyring.js sets `decrypted`), or null while it cannot be read.
 */
export function messageText(message) {
  if (typeof message.body === "string") return message.body;
  return message.decrypted?.status === "ok" ? message.decrypted.text : null;
}

/** Return the message with a sender object even when the account is gone. */
export function withSender(message) {
  return message.sender ? message : { ...message, sender: GONE_USER };
}

/** The messages of one conversation: a contiguous run of stored ones plus our own unsent ones. */
export class MessageLog {
  constructor() {
    this.byId = new Map();
    this.pending = new Map(); // client_id -> local message not yet acknowledged
    this.historyLoaded = false;
    this.hasOlder = true;
    this.loadingOlder = false;
    this.error = null; // why the last history request failed, until retried
  }

  add(message) {
    this.byId.set(message.id, message);
    if (message.client_id) this.pending.delete(message.client_id);
  }

  oldestId() {
    let oldest = null;
    for (const id of this.byId.keys()) if (oldest === null || id < oldest) oldest = id;
    return oldest;
  }

  newestId() {
    let newest = 0;
    for (const id of this.byId.keys()) if (id > newest) newest = id;
    return newest;
  }

  /** Stored messages oldest first, then the pending ones in the order they were written. */
  ordered() {
    const stored = [...this.byId.values()].sort((a, b) => a.id - b.id);
    return [...stored, ...this.pending.values()];
  }
}

export class ChatStore {
  constructor(me) {
    this.me = me;
    this.conversations = new Map();
    this.logs = new Map();
    this.online = new Set([me.id]);
    this.typing = new Map(); // conversation id -> Map(user id -> expiry timestamp)
    this.reads = new Map(); // conversation id -> Map(user id -> up_to)
    this.users = new Map([[me.id, me]]);
    this.activeId = null;
    this.blocked = new Set(); // ids of the users I blocked: their messages stay folded
    // Set by the page: returns true when a conversation's encryption was taken away (keyring.js).
    this.downgradeCheck = () => false;
  }

  setConversations(list) {
    const known = new Set();
    for (const conversation of list) {
      this.putConversation(conversation);
      known.add(conversation.id);
    }
    for (const id of [...this.conversations.keys()]) if (!known.has(id)) this.dropConversation(id);
  }

  putConversation(conversation) {
    const existing = this.conversations.get(conversation.id);
    const merged = { unread: 0, last_message_id: 0, members: [], ...existing, ...conversation };
    // A list fetched before the newest live message must not wind the conversation back.
    if (existing && (existing.last_message_id ?? 0) > (conversation.last_message_id ?? 0)) {
      merged.last_message_id = existing.last_message_id;
      merged.last_message = existing.last_message;
      merged.unread = existing.unread;
    }
    for (const member of merged.members) this.users.set(member.id, member);
    merged.downgraded = this.downgradeCheck(merged);
    this.conversations.set(conversation.id, merged);
    return merged;
  }

  dropConversation(id) {
    this.conversations.delete(id);
    this.logs.delete(id);
    this.typing.delete(id);
    this.reads.delete(id);
    if (this.activeId === id) this.activeId = null;
  }

  log(conversationId) {
    let log = this.logs.get(conversationId);
    if (!log) this.logs.set(conversationId, (log = new MessageLog()));
    return log;
  }

  /** Store a message; return true if it is newer than anything the conversation had seen. */
  addMessage(incoming) {
    const message = withSender(incoming);
    this.users.set(message.sender.id, message.sender);
    this.log(message.conversation).add(message);
    const conversation = this.conversations.get(message.conversation);
    if (!conversation || message.id <= (conversation.last_message_id ?? 0)) return false;
    conversation.last_message_id = message.id;
    // An encrypted reaction is folded into its target: it is neither a preview nor unread.
    if (message.kind === "reaction") return true;
    conversation.last_message = message;
    if (message.sender.id !== this.me.id && message.kind !== "system") conversation.unread += 1;
    this.stopTyping(message.conversation, message.sender.id);
    return true;
  }

  /** Return the newest message id not yet reported read, or null. */
  unreadUpTo(conversationId) {
    const conversation = this.conversations.get(conversationId);
    if (!conversation) return null;
    const newest = Math.max(conversation.last_message_id ?? 0, this.log(conversationId).newestId());
    return newest > (conversation.read_up_to ?? 0) ? newest : null;
  }

  setReadUpTo(conversationId, upTo) {
    const conversation = this.conversations.get(conversationId);
    if (conversation) conversation.read_up_to = Math.max(conversation.read_up_to ?? 0, upTo);
  }

  /** Apply a `read` frame: our own (from another tab) clears unread, others move their marker. */
  applyRead({ conversation: conversationId, user, up_to: upTo }) {
    const conversation = this.conversations.get(conversationId);
    if (!conversation) return;
    if (user === this.me.id) {
      conversation.read_up_to = Math.max(conversation.read_up_to ?? 0, upTo);
      if (upTo >= (conversation.last_message_id ?? 0)) conversation.unread = 0;
      else conversation.unread = this.countUnreadAfter(conversationId, upTo, conversation.unread);
      return;
    }
    let reads = this.reads.get(conversationId);
    if (!reads) this.reads.set(conversationId, (reads = new Map()));
    reads.set(user, Math.max(reads.get(user) ?? 0, upTo));
  }

  countUnreadAfter(conversationId, upTo, fallback) {
    const log = this.log(conversationId);
    if (!log.historyLoaded) return fallback;
    return [...log.byId.values()].filter((m) => m.id > upTo && m.sender?.id !== this.me.id && !m.deleted && m.kind !== "system" && m.kind !== "reaction").length;
  }

  startTyping(conversationId, userId, now = Date.now()) {
    if (userId === this.me.id) return;
    let typing = this.typing.get(conversationId);
    if (!typing) this.typing.set(conversationId, (typing = new Map()));
    typing.set(userId, now + TYPING_EXPIRES_MS);
  }

  stopTyping(conversationId, userId) {
    this.typing.get(conversationId)?.delete(userId);
  }

  /** Return the users typing in a conversation now, dropping the expired ones. */
  typingUsers(conversationId, now = Date.now()) {
    const typing = this.typing.get(conversationId);
    if (!typing) return [];
    for (const [userId, expires] of typing) if (expires <= now) typing.delete(userId);
    return [...typing.keys()].map((id) => this.users.get(id)).filter(Boolean);
  }

  totalUnread() {
    let total = 0;
    for (const conversation of this.conversations.values()) total += conversation.unread ?? 0;
    return total;
  }

  /** Sidebar order: most recent activity first. */
  sortedConversations() {
    return [...this.conversations.values()].sort(
      (a, b) => (b.last_message_id ?? 0) - (a.last_message_id ?? 0) || b.id - a.id,
    );
  }

  /** The name to show: a DM is named after the other person. */
  title(conversation) {
    if (conversation.kind === "direct") {
      const other = conversation.members.find((member) => member.id !== this.me.id);
      return other ? other.display_name || other.username : "Just you";
    }
    return conversation.name || "Untitled";
  }

  otherMember(conversation) {
    return conversation.members.find((member) => member.id !== this.me.id) ?? null;
  }
}
