// The signed-in user's end-to-end encryption: their key pair (set up, unlocked or reset from
// the key dialog), the contacts' public keys pinned on first use, and sealing and opening
// messages (docs/e2e.md). No DOM; it fires "change" whenever its answers change.
//
// Tabs of the same browser share the key store; a BroadcastChannel tells the others when a
// key was set up, unlocked, reset or forgotten, or a contact's key was accepted or verified.

import { api } from "./api.js";
import * as e2e from "./crypto.js";
import { KEY_CHANNEL, openKeystore } from "./keystore.js";

export class KeyRing extends EventTarget {
  /**
   * `serverPublicKey` is the public key of the user's backup on the server (null: none yet);
   * `kdfLimits` names the Argon2id limits for new backups ("moderate", or "interactive" in tests).
   */
  constructor({ me, serverPublicKey, kdfLimits }) {
    super();
    this.me = me;
    this.serverPublicKey = serverPublicKey ?? null;
    this.limits = kdfLimits === "interactive" ? e2e.INTERACTIVE : e2e.MODERATE;
    this.keyPair = null;
    this.store = null;
    this.pins = new Map(); // user id -> {publicKey, verified, previous}
    this.changed = new Map(); // user id -> a new public key the user has not accepted yet
    this.encryptedPins = new Set(); // conversation ids seen end-to-end encrypted, ever (IndexedDB)
    this.fetching = new Set(); // senders (no longer members) whose key is being asked for
    this.unreachable = new Set(); // senders whose key the server no longer offers
    this.queue = Promise.resolve(); // pins are checked one at a time
    // Own public keys replaced by a reset here: member lists fetched before still show them.
    this.retired = new Set();
    this.channel = "BroadcastChannel" in window ? new BroadcastChannel(KEY_CHANNEL) : null;
    this.channel?.addEventListener("message", ({ data }) => this.heard(data));
  }

  /** "ready" (unlocked here), "locked" (a backup exists: ask for the passphrase) or "none". */
  get state() {
    if (this.keyPair) return "ready";
    return this.serverPublicKey ? "locked" : "none";
  }

  get publicKey() {
    return this.keyPair ? e2e.toBase64(this.keyPair.publicKey) : null;
  }

  /** Load the key pair this browser keeps, unless it was reset elsewhere since. */
  async start() {
    this.store = await openKeystore(this.me.id);
    for (const id of await this.store.encryptedConversations()) this.encryptedPins.add(id);
    const stored = await this.store.getKeyPair();
    if (stored && e2e.toBase64(stored.publicKey) === this.serverPublicKey) this.keyPair = stored;
    else if (stored) await this.store.clearKeyPair();
  }

  // The user's own key pair

  /** Make a key pair, upload its backup sealed with the passphrase, and keep it here. */
  async create(passphrase) {
    const keyPair = e2e.generateKeyPair();
    const backup = await e2e.backupKeyPair(keyPair, passphrase, this.limits);
    await api.putKey(backup);
    this.retire();
    this.serverPublicKey = backup.public_key;
    await this.adopt(keyPair);
  }

  retire() {
    if (this.serverPublicKey) this.retired.add(this.serverPublicKey);
  }

  /** Seal the same key pair with a new passphrase; nothing changes for contacts. */
  async changePassphrase(passphrase) {
    await api.putKey(await e2e.backupKeyPair(this.keyPair, passphrase, this.limits));
  }

  /** Open the server's backup with the passphrase; rejects with e2e.WrongPassphraseError. */
  async unlock(passphrase) {
    const backup = await api.ownKey();
    const keyPair = await e2e.unlockKeyPair(backup, passphrase);
    this.serverPublicKey = backup.public_key;
    await this.adopt(keyPair);
  }

  async adopt(keyPair) {
    await this.store.putKeyPair(keyPair);
    this.keyPair = keyPair;
    this.tell({ type: "key" });
    this.emit();
  }

  /** Forget the key pair here and in every tab, as logout.js does: the user was signed out. */
  async forget() {
    this.keyPair = null;
    await this.store?.clearKeyPair();
    this.tell({ type: "forget" });
    this.emit();
  }

  // Conversations' encryption

  /**
   * Pin an encrypted conversation the first time it is seen, and return true when the server
   * now calls a pinned one plaintext (a downgrade: nothing may be sent there in the clear).
   */
  checkConversation(conversation) {
    if (!conversation.encrypted) return this.encryptedPins.has(conversation.id);
    if (!this.encryptedPins.has(conversation.id)) {
      this.encryptedPins.add(conversation.id);
      // Kept for this page even if the store fails; later pages need the store.
      this.store?.pinEncrypted(conversation.id).catch(() => {});
    }
    return false;
  }

  // Contacts' keys

  /**
   * Pin the public keys of these members on first use and note the ones that changed.
   * A member whose key is null has not set up encryption yet.
   */
  learn(members) {
    const run = async () => {
      let news = false;
      for (const member of members) news = (await this.check(member.id, member.public_key)) || news;
      if (news) this.emit();
    };
    this.queue = this.queue.then(run, run);
    return this.queue;
  }

  async check(userId, publicKey) {
    if (!publicKey) return false;
    if (userId === this.me.id) {
      // Reset on another device while this page was open: the pair here cannot read any more.
      if (this.keyPair && publicKey !== this.publicKey && !this.retired.has(publicKey)) {
        this.serverPublicKey = publicKey;
        this.keyPair = null;
        return true;
      }
      return false;
    }
    const known = this.pins.get(userId);
    if (known && (known.publicKey === publicKey || this.changed.get(userId) === publicKey)) return false;
    const { status, pinned } = await this.store.checkContactKey(userId, publicKey);
    this.pins.set(userId, pinned);
    if (status === "changed") this.changed.set(userId, publicKey);
    else this.changed.delete(userId);
    return true;
  }

  /** A sender who is no longer a member: fetch their key, once a page (trust on first use, as above). */
  async learnSender(user) {
    const id = user?.id;
    if (!user?.username || this.pins.has(id) || this.fetching.has(id) || this.unreachable.has(id)) return;
    this.fetching.add(id);
    try {
      const { public_key: publicKey } = await api.publicKey(user.username);
      await this.learn([{ id, public_key: publicKey }]);
    } catch {
      // Banned, or gone: their messages stay "could not be decrypted".
      this.unreachable.add(id);
      this.emit();
    } finally {
      this.fetching.delete(id);
    }
  }

  async accept(userId) {
    const publicKey = this.changed.get(userId);
    if (!publicKey) return;
    this.pins.set(userId, await this.store.acceptContactKey(userId, publicKey));
    this.changed.delete(userId);
    this.tell({ type: "pin", userId });
    this.emit();
  }

  async verify(userId) {
    this.pins.set(userId, await this.store.markVerified(userId, this.pins.get(userId).publicKey));
    this.tell({ type: "pin", userId });
    this.emit();
  }

  isVerified(userId) {
    return Boolean(this.pins.get(userId)?.verified) && !this.changed.has(userId);
  }

  /** The safety number with a contact, for their new key while a change awaits acceptance. */
  safetyNumber(userId) {
    const theirs = this.changed.get(userId) ?? this.pins.get(userId)?.publicKey;
    return this.keyPair && theirs ? e2e.safetyNumber(this.keyPair.publicKey, theirs) : null;
  }

  /**
   * Return why nobody can write in this encrypted conversation now:
   * {state} when this device has no key, else the members {missing} a key and those whose
   * key {changed}; null when sending is possible.
   */
  blockers(conversation) {
    if (this.state !== "ready") return { state: this.state, missing: [], changed: [] };
    const others = conversation.members.filter((member) => member.id !== this.me.id);
    const missing = others.filter((member) => !member.public_key);
    const changed = others.filter((member) => this.changed.has(member.id));
    return missing.length || changed.length ? { state: "ready", missing, changed } : null;
  }

  // Messages

  /**
   * Encrypt text (and an attachment's secrets: key, header, name, type...; docs/e2e.md) for
   * every current member; call blockers() first (and learn() the members).
   */
  seal(conversation, clientId, text, attachment = null) {
    return this.sealContent(conversation, clientId, attachment ? { text, attachment } : { text });
  }

  /** Encrypt any content object (e.g. {text, mentions} or {reaction: {message, emoji, on}}) like seal(). */
  sealContent(conversation, clientId, content) {
    const recipients = {};
    for (const member of conversation.members) {
      recipients[member.id] = member.id === this.me.id ? this.publicKey : this.pins.get(member.id).publicKey;
    }
    return e2e.sealMessage({
      content,
      conversation: conversation.id,
      clientId,
      senderPrivateKey: this.keyPair.privateKey,
      recipients,
    });
  }

  /**
   * Return the message with `decrypted` = {status, text?}: "ok" with the text, "locked" (no
   * key here yet), "unknown" (the sender's key is not known yet), "untrusted" (it opens only
   * with the sender's new, unaccepted key) or "failed". Plaintext messages come back as they are.
   */
  reveal(message) {
    if (message.body !== undefined || message.deleted || !message.ciphertext) return message;
    if (!this.keyPair) return { ...message, decrypted: { status: "locked" } };
    const senderId = message.sender?.id;
    const pin = this.pins.get(senderId);
    // A replaced key opens only what was sent before it was replaced.
    const sentAt = Date.parse(message.created_at);
    const older = (pin?.previous ?? []).filter((key) => sentAt < key.replacedAt).map((key) => key.publicKey);
    const trusted = senderId === this.me.id ? [this.keyPair.publicKey] : pin ? [pin.publicKey, ...older] : [];
    for (const key of trusted) {
      const content = this.openContent(message, key);
      if (content === null) continue;
      if (typeof content.text === "string") {
        const mentions = Array.isArray(content.mentions) ? content.mentions.filter(Number.isInteger) : undefined;
        const attachment = sealedAttachment(message, content);
        return { ...message, decrypted: { status: "ok", text: content.text, attachment, ...(mentions ? { mentions } : {}) } };
      }
      // A reaction (reactions.js) carries its target and emoji instead of text.
      if (message.kind === "reaction" && validReaction(content.reaction)) {
        return { ...message, decrypted: { status: "ok", text: "", reaction: content.reaction } };
      }
    }
    if (this.changed.has(senderId) && this.open(message, this.changed.get(senderId)) !== null) {
      return { ...message, decrypted: { status: "untrusted" } };
    }
    const known = trusted.length || this.unreachable.has(senderId) || !senderId;
    return { ...message, decrypted: { status: known ? "failed" : "unknown" } };
  }

  /** Return {text, key} for reporting a message I can read: what I read and its message key. */
  evidence(message) {
    if (!this.keyPair || !message.ciphertext) return null;
    const senderId = message.sender?.id;
    const pin = this.pins.get(senderId);
    const candidates = senderId === this.me.id ? [this.keyPair.publicKey] : [pin?.publicKey, ...(pin?.previous ?? []).map((key) => key.publicKey)];
    for (const key of candidates.filter(Boolean)) {
      const opened = e2e.openMessageWithKey(message, key, this.keyPair.privateKey);
      if (opened && typeof opened.content.text === "string") return { text: opened.content.text, key: opened.key };
    }
    return null;
  }

  open(message, senderPublicKey) {
    const content = this.openContent(message, senderPublicKey);
    return content && typeof content.text === "string" ? content.text : null;
  }

  openContent(message, senderPublicKey) {
    return e2e.openMessage(message, senderPublicKey, this.keyPair.privateKey);
  }

  // Other tabs

  tell(news) {
    this.channel?.postMessage(news);
  }

  async heard(news) {
    if (news?.type === "key" || news?.type === "forget") {
      const stored = await this.store?.getKeyPair();
      this.keyPair = stored;
      if (stored && e2e.toBase64(stored.publicKey) !== this.serverPublicKey) {
        this.retire();
        this.serverPublicKey = e2e.toBase64(stored.publicKey);
      }
      this.emit();
    } else if (news?.type === "pin") {
      const pinned = await this.store?.getContactKey(news.userId);
      if (!pinned) return;
      this.pins.set(news.userId, pinned);
      if (this.changed.get(news.userId) === pinned.publicKey) this.changed.delete(news.userId);
      this.emit();
    }
  }

  emit() {
    this.dispatchEvent(new Event("change"));
  }
}

function validReaction(reaction) {
  return (
    reaction !== null &&
    typeof reaction === "object" &&
    Number.isInteger(reaction.message) &&
    typeof reaction.emoji === "string" &&
    reaction.emoji.length > 0 &&
    reaction.emoji.length <= 32 &&
    typeof reaction.on === "boolean"
  );
}

/** Return the attachment secrets inside the content if they belong to the message's own upload. */
function sealedAttachment(message, content) {
  const secret = content.attachment;
  if (!secret || typeof secret !== "object" || !message.attachment) return null;
  // The server could pair the message with another blob; the sender named theirs inside.
  if (String(secret.id) !== String(message.attachment.id)) return null;
  return secret;
}
