// The chat page: wires the socket and the HTTP API to the store and the view modules.

import { api } from "./api.js";
import { attachmentSummary, releaseAttachment, useLightbox } from "./attachment-view.js";
import { AttachmentComposer } from "./attachments.js";
import { ConversationList } from "./conversation-list.js";
import { NewConversationDialog, confirmAction } from "./dialogs.js";
import { displayName } from "./dom.js";
import { KeyDialog, SafetyDialog } from "./key-dialogs.js";
import { KeyRing } from "./keyring.js";
import { Lightbox } from "./lightbox.js";
import { plainText } from "./markdown.js";
import { MessagePane } from "./message-pane.js";
import { RovingList } from "./message-keyboard.js";
import { Notifier, notificationPrivacy, setNotificationPrivacy } from "./notifications.js";
import { MembersDialog, OnlineList } from "./people.js";
import { MentionAutocomplete, mentionedIds, mentionsMe } from "./mentions.js";
import { ProfileCard } from "./profile-card.js";
import { ReactionPicker, applyReaction } from "./reactions.js";
import { Recorder } from "./recorder.js";
import { ReportDialog } from "./report-dialog.js";
import { SearchDialog } from "./search.js";
import { QuickSwitcher } from "./switcher.js";
import { LocalSearch } from "./search-index.js";
import { ChatSocket } from "./socket.js";
import { ChatStore, TYPING_EXPIRES_MS, messageText, withSender } from "./store.js";

const NOTICE_MS = 8000;
// How far back a jump to a search hit loads history (pages of limits.history_page) before giving up.
const JUMP_PAGES_MAX = 40;
// How far back opening a conversation goes to find its first unread message (pages, likewise).
const UNREAD_PAGES_MAX = 10;
const PHONE_QUERY = window.matchMedia("(max-width: 700px)");
const $ = (id) => document.getElementById(id);

const pageData = JSON.parse($("chat-data").textContent);
const e2eData = JSON.parse($("e2e-data").textContent);
const limits = pageData.limits ?? {};
const store = new ChatStore(pageData.user);
const socket = new ChatSocket({ path: pageData.ws_path });
const keys = new KeyRing({ me: pageData.user, serverPublicKey: e2eData.public_key, kdfLimits: e2eData.kdf_limits });
store.downgradeCheck = (conversation) => keys.checkConversation(conversation);
const appRoot = $("chat-app");
let everConnected = false;
let noticeTimer = null;
// The key dialog opens by itself once a page, when an encrypted conversation needs it.
let keyPrompted = false;
// Encrypted edits under way, by the client_id their frame carries so that an error can name them.
const edits = new Map();

// Actions the views ask for

const actions = {
  open: (id) => openConversation(id),
  jump: (conversationId, messageId) => jumpToMessage(conversationId, messageId),
  loadOlder: (id) => loadHistory(id, { older: store.log(id).historyLoaded }),
  typing: (id) => socket.typing(id),

  /** Send text, or an uploaded attachment ({server: its object, secret: what the encrypted content carries}). */
  send(conversationId, body, replyTo, attachment = null) {
    if (refuseDowngraded(conversationId) || store.accountDisabled) return;
    const local = {
      id: null,
      client_id: crypto.randomUUID(),
      conversation: conversationId,
      sender: store.me,
      created_at: new Date().toISOString(),
      reply_to: replyTo ?? null,
    };
    if (store.conversations.get(conversationId)?.encrypted) {
      // Shown at once as "Sending…"; sealing may first wait for the members' keys.
      const decrypted = { status: "ok", text: body, attachment: attachment?.secret ?? null };
      store.log(conversationId).pending.set(local.client_id, { ...local, attachment: attachment?.server ?? null, decrypted });
      sendEncrypted(local.client_id, conversationId);
    } else {
      const fields = replyTo ? { body, reply_to: replyTo } : { body };
      if (attachment) fields.attachment = attachment.server.id;
      socket.sendMessage(conversationId, fields, local.client_id);
      store.log(conversationId).pending.set(local.client_id, { ...local, ...fields, attachment: attachment?.server ?? null });
    }
    pane.render({ toBottom: true });
  },

  retry(message) {
    if (refuseDowngraded(message.conversation) || store.accountDisabled) return;
    store.log(message.conversation).pending.set(message.client_id, { ...message, failed: null, retried: false });
    resendPending(message);
    pane.render();
  },

  async edit(message, body) {
    if (refuseDowngraded(message.conversation)) return;
    const conversation = store.conversations.get(message.conversation);
    if (conversation?.encrypted) {
      const tag = crypto.randomUUID();
      edits.set(tag, { message, body, retried: false });
      await editEncrypted(tag);
      return;
    }
    if (!socket.editMessage(message.id, { body })) notice("You are offline; the edit was not sent. Try again once reconnected.");
  },

  pickReaction: (button, message) => picker.open(button, (emoji) => actions.react(message, emoji, true)),

  /** Add or remove a reaction: a frame in a plaintext conversation, an encrypted message otherwise. */
  async react(message, emoji, on) {
    const conversation = store.conversations.get(message.conversation);
    if (!conversation) return;
    if (!conversation.encrypted) {
      if (!socket.react(message.id, emoji, on)) notice("You are offline; the reaction was not sent.");
      return;
    }
    const why = await readyToEncrypt(conversation.id);
    if (why) {
      notice(`The reaction was not sent: ${why}`);
      return;
    }
    const clientId = crypto.randomUUID();
    const current = store.conversations.get(conversation.id);
    const fields = keys.sealContent(current, clientId, { reaction: { message: message.id, emoji, on } });
    socket.resend(clientId, { type: "message.send", conversation: conversation.id, client_id: clientId, kind: "reaction", ...fields });
  },

  keySetup: () => openKeyDialog(),
  safety: (member) => safetyDialog.open(member),

  async acceptKey(member) {
    try {
      await keys.accept(member.id);
    } catch (error) {
      notice(`Could not accept the new key: ${error.message}`);
    }
  },

  async remove(message) {
    const yes = await confirmAction($("confirm-dialog"), {
      title: "Delete this message?",
      text: "It is removed for everyone in the conversation. This cannot be undone.",
      confirm: "Delete",
    });
    if (yes && !socket.deleteMessage(message.id)) notice("You are offline; the message was not deleted. Try again once reconnected.");
    // The message's own buttons are gone with it; go back to writing.
    if (!PHONE_QUERY.matches) $("composer-input").focus();
  },

  report: (message) => reportDialog.open(message),

  async sendReport(fields, alsoBlock) {
    await api.report(fields);
    if (alsoBlock) {
      await api.block(alsoBlock.username);
      store.blocked.add(alsoBlock.id);
      pane.render();
    }
    notice(alsoBlock ? `Thank you. The moderators will look at it, and you blocked ${displayName(alsoBlock)}.` : "Thank you. The moderators will look at it.");
  },

  // These return the conversation's id; the dialog closes, then opens it (so focus lands there).
  startDirect: async (username) => adopt(await api.startDirect(username)),
  createGroup: async (name, usernames, encrypted) => adopt(await api.createGroup(name, usernames, encrypted)),
  createChannel: async (name, topic) => adopt(await api.createChannel(name, topic)),
  join: async (id) => adopt(await api.join(id)),

  async invite(conversation, username) {
    store.putConversation(await api.invite(conversation.id, username));
    renderAll();
  },

  async removeMember(conversation, member) {
    const name = displayName(member);
    const yes = await confirmAction($("confirm-dialog"), {
      title: `Remove ${name}?`,
      text: `${name} leaves ${store.title(conversation)} and stops receiving its messages. Everyone in it sees that you removed them.`,
      confirm: "Remove",
    });
    if (!yes) return;
    await api.removeMember(conversation.id, member.username);
    // The socket's conversation.updated says the same; do not wait for it.
    conversation.members = conversation.members.filter((other) => other.id !== member.id);
    renderAll();
  },

  async setRole(conversation, member, role) {
    store.putConversation(await api.setRole(conversation.id, member.username, role));
    renderAll();
  },

  async transfer(conversation, member) {
    const yes = await confirmAction($("confirm-dialog"), {
      title: `Make ${displayName(member)} the owner?`,
      text: `${displayName(member)} becomes the owner of ${store.title(conversation)} and you become an admin. Only the new owner can undo this.`,
      confirm: "Hand over ownership",
    });
    if (yes) await actions.setRole(conversation, member, "owner");
  },

  async mute(conversation, member, until) {
    store.putConversation(await api.muteMember(conversation.id, member.username, until));
    renderAll();
  },

  async update(conversation, fields) {
    store.putConversation(await api.updateConversation(conversation.id, fields));
    renderAll();
  },

  async leave(conversation) {
    const kind = conversation.kind === "channel" ? "channel" : "group";
    const yes = await confirmAction($("confirm-dialog"), {
      title: `Leave ${store.title(conversation)}?`,
      text: kind === "group" ? "You will need a new invitation to come back." : "You can join again at any time.",
      confirm: `Leave ${kind}`,
    });
    if (!yes) return;
    await api.removeMember(conversation.id, store.me.username);
    forget(conversation.id);
  },
};

// Views

const list = new ConversationList({ store, root: $("conversation-list"), empty: $("conversation-empty"), onOpen: actions.open });
const pane = new MessagePane({
  store,
  keys,
  actions,
  limits,
  elements: {
    empty: $("pane-empty"),
    body: $("pane-body"),
    title: $("pane-title"),
    subtitle: $("pane-subtitle"),
    membersButton: $("members-button"),
    safetyButton: $("safety-button"),
    scroller: $("messages-scroll"),
    list: $("messages"),
    historyStatus: $("history-status"),
    jumpButton: $("jump-button"),
    typing: $("typing-line"),
    composer: $("composer"),
    input: $("composer-input"),
    sendButton: $("send-button"),
    composerError: $("composer-error"),
    encryptedNotice: $("encrypted-notice"),
    reply: $("reply-preview"),
    replySender: $("reply-sender"),
    replyText: $("reply-text"),
    replyCancel: $("reply-cancel"),
  },
});
const attachments = new AttachmentComposer({
  store,
  keys,
  actions,
  limits,
  elements: {
    attachButton: $("attach-button"),
    fileInput: $("file-input"),
    input: $("composer-input"),
    dropZone: $("pane-body"),
    queue: $("upload-queue"),
    showError: (text) => pane.showComposerError(text),
  },
});
new Recorder({
  limits,
  canStart: () => attachments.writable(),
  onRecorded: (file, options) => attachments.addFiles([file], options),
  onError: (text) => pane.showComposerError(text),
  elements: {
    voiceButton: $("voice-button"),
    videoButton: $("video-button"),
    panel: $("recorder"),
    preview: $("recorder-preview"),
    review: $("recorder-review"),
    status: $("recorder-status"),
    timer: $("recorder-timer"),
    cancel: $("recorder-cancel"),
    stop: $("recorder-stop"),
    send: $("recorder-send"),
  },
});
useLightbox(new Lightbox($("lightbox")));
const online = new OnlineList({ store, list: $("online-list"), heading: $("online-heading") });
const members = new MembersDialog({
  store,
  keys,
  dialog: $("members-dialog"),
  actions: {
    invite: actions.invite,
    remove: actions.removeMember,
    leave: actions.leave,
    safety: actions.safety,
    setRole: actions.setRole,
    transfer: actions.transfer,
    mute: actions.mute,
    update: actions.update,
  },
});
const keyDialog = new KeyDialog({ dialog: $("key-dialog"), keys, onDone: (text) => notice(text) });
const safetyDialog = new SafetyDialog({ dialog: $("safety-dialog"), keys });
const reportDialog = new ReportDialog({ dialog: $("report-dialog"), keys, actions: { report: actions.sendReport } });
const newConversation = new NewConversationDialog({ store, dialog: $("new-conversation-dialog"), actions, limits });
const picker = new ReactionPicker();
const switcher = new QuickSwitcher({
  store,
  dialog: $("switcher-dialog"),
  onOpen: actions.open,
  onPerson: (username) => actions.startDirect(username).then(openConversation, (error) => notice(error.message)),
});
const mentionAutocomplete = new MentionAutocomplete({ input: $("composer-input"), list: $("mention-list"), store });
const localSearch = new LocalSearch({ me: store.me, keys, chat: store });
const searchDialog = new SearchDialog({ store, dialog: $("search-dialog"), onJump: actions.jump, localSearch });
new ProfileCard({
  store,
  keys,
  dialog: $("profile-dialog"),
  actions: { startDirect: actions.startDirect, open: actions.open, safety: actions.safety },
});
// The history and the online list are one Tab stop each; arrow keys move inside them.
new RovingList($("messages"), { items: "li.message, li.system-message", startAtEnd: true });
new RovingList($("online-list"), { items: ".person-button" });
const notifier = new Notifier({ store, button: $("notifications-button"), onOpen: actions.open });

$("new-conversation").addEventListener("click", () => newConversation.open());
$("search-button").addEventListener("click", () => searchDialog.open());
$("notification-privacy").value = notificationPrivacy();
$("notification-privacy").addEventListener("change", (event) => setNotificationPrivacy(event.target.value));
$("notify-level").addEventListener("change", async (event) => {
  const id = store.activeId;
  const muted = event.target.value === "mentions";
  try {
    store.putConversation(await api.setMuted(id, muted));
  } catch (error) {
    notice(`Could not change notifications: ${error.message}`);
  }
  renderAll();
});
$("browse-channels").addEventListener("click", () => newConversation.open("channels"));
$("members-button").addEventListener("click", () => members.open());
$("safety-button").addEventListener("click", () => {
  const other = store.otherMember(store.conversations.get(store.activeId));
  if (other) safetyDialog.open(other);
});
$("encryption-button").addEventListener("click", () => openKeyDialog());
$("e2e-banner-button").addEventListener("click", () => openKeyDialog());
$("back-button").addEventListener("click", showList);
$("reconnect-button").addEventListener("click", () => socket.reconnectNow());

// Conversations

async function refreshConversations() {
  const known = new Set(store.conversations.keys());
  store.setConversations(await api.conversations());
  for (const conversation of store.conversations.values()) revealLast(conversation);
  for (const id of known) if (!store.conversations.has(id)) socket.untrack(id);
  for (const conversation of store.conversations.values()) socket.track(conversation.id, conversation.last_message_id);
  learnMembers(...store.conversations.values());
  if (store.activeId === null && currentHashId() !== null) openConversation(currentHashId());
  renderAll();
  promptForKey();
}

/** Refresh one conversation (its members above all), e.g. when the server says they changed. */
async function refreshConversation(id) {
  const conversation = revealLast(store.putConversation(await api.conversation(id)));
  await keys.learn(conversation.members);
  renderAll();
  return conversation;
}

function adopt(conversation) {
  revealLast(store.putConversation(conversation));
  socket.track(conversation.id, conversation.last_message_id);
  learnMembers(conversation);
  list.render();
  return conversation.id;
}

function openConversation(id, { showUnread = true } = {}) {
  if (!store.conversations.has(id)) return;
  const unreadCount = store.conversations.get(id).unread ?? 0;
  store.activeId = id;
  appRoot.dataset.view = "conversation";
  history.replaceState(null, "", `#conversation-${id}`);
  pane.show();
  $("notify-level").value = store.conversations.get(id).muted ? "mentions" : "all";
  attachments.render();
  list.render();
  online.render();
  const log = store.log(id);
  const loading = log.historyLoaded ? Promise.resolve() : loadHistory(id);
  if (showUnread && unreadCount) loading.then(() => showFirstUnread(id, unreadCount));
  markReadIfLooking();
  // On a phone, focusing the composer would pop up the keyboard over the history.
  if (!PHONE_QUERY.matches && !$("composer-input").disabled) $("composer-input").focus();
  else $("pane-title").focus();
  promptForKey();
  return loading;
}

/** Put the "New messages" divider above the first of `count` unread messages, loading older pages if needed. */
async function showFirstUnread(id, count) {
  const log = store.log(id);
  const unreadOnes = () => log.ordered().filter((m) => m.id && m.sender.id !== store.me.id && !m.deleted && m.kind !== "reaction" && m.kind !== "system");
  for (let pages = 0; pages < UNREAD_PAGES_MAX && unreadOnes().length < count && log.hasOlder && !log.error; pages += 1) {
    await loadHistory(id, { older: true });
    if (store.activeId !== id) return;
  }
  const ones = unreadOnes();
  if (ones.length < count && log.hasOlder) return; // too far back: the view stays at the newest
  const first = ones[Math.max(0, ones.length - count)];
  if (first && store.activeId === id) pane.showUnread(first.id);
}

/** Open a conversation at one message: load older pages until it is there, then show it. */
async function jumpToMessage(conversationId, messageId) {
  if (!store.conversations.has(conversationId)) {
    notice("You are no longer in that conversation.");
    return;
  }
  await openConversation(conversationId, { showUnread: false });
  const log = store.log(conversationId);
  for (let pages = 0; pages < JUMP_PAGES_MAX && !log.byId.has(messageId) && log.hasOlder && !log.error; pages += 1) {
    await loadHistory(conversationId, { older: true });
    if (store.activeId !== conversationId) return; // the person moved on meanwhile
  }
  if (!pane.reveal(messageId)) notice("That message is no longer in the conversation's history.");
}

function showList() {
  const id = store.activeId;
  store.activeId = null;
  appRoot.dataset.view = "list";
  history.replaceState(null, "", location.pathname);
  pane.show();
  list.render();
  document.querySelector(`[data-conversation-id="${id}"]`)?.focus();
}

function forget(id) {
  const wasOpen = store.activeId === id;
  const title = store.conversations.has(id) ? store.title(store.conversations.get(id)) : "that conversation";
  store.dropConversation(id);
  socket.untrack(id);
  if (wasOpen) {
    if (members.dialog.open) members.dialog.close();
    appRoot.dataset.view = "list";
    history.replaceState(null, "", location.pathname);
    pane.show();
    notice(`You are no longer in ${title}.`);
  }
  list.render();
}

async function loadHistory(id, { older = false } = {}) {
  const log = store.log(id);
  const before = older ? log.oldestId() : null;
  log.loadingOlder = older;
  log.error = null;
  if (id === store.activeId) pane.render();
  try {
    const answer = await api.messages(id, { before, limit: limits.history_page });
    for (const message of answer.messages) remember(reveal(message));
    log.hasOlder = answer.has_more;
    log.historyLoaded = true;
  } catch (error) {
    // Shown in the history with a retry button; nothing loads by itself until then.
    log.error = error.message;
  } finally {
    log.loadingOlder = false;
  }
  if (id !== store.activeId) return;
  pane.render(older ? { prepended: true } : { toBottom: true });
  markReadIfLooking();
  list.render();
}

/** Send `read` for the open conversation when the person can actually see it. */
function markReadIfLooking() {
  const id = store.activeId;
  const paneVisible = !PHONE_QUERY.matches || appRoot.dataset.view === "conversation";
  if (id === null || !paneVisible || document.visibilityState !== "visible" || !document.hasFocus()) return;
  const upTo = store.unreadUpTo(id);
  store.conversations.get(id).unread = 0;
  store.conversations.get(id).mentions = 0;
  if (upTo && socket.read(id, upTo)) store.setReadUpTo(id, upTo);
  list.render();
}

function currentHashId() {
  const match = /^#conversation-(\d+)$/.exec(location.hash);
  return match ? Number(match[1]) : null;
}

function renderAll() {
  list.render();
  pane.renderHeader();
  const active = store.conversations.get(store.activeId);
  if (active) $("notify-level").value = active.muted ? "mentions" : "all";
  pane.renderComposerState();
  online.render();
  if (members.dialog.open) members.render();
  renderKeyBanner();
}

// End-to-end encryption

/** True (and says so) when the server calls a conversation pinned as encrypted plaintext now. */
function refuseDowngraded(conversationId) {
  if (!store.conversations.get(conversationId)?.downgraded) return false;
  notice("Not sent: this conversation was end-to-end encrypted, and the server now says it is not.");
  return true;
}

/** Decrypt a message from the server (if it is encrypted) for the store. */
function reveal(incoming) {
  const conversation = store.conversations.get(incoming.conversation);
  const mustBeSealed = conversation?.downgraded || (conversation?.encrypted && typeof incoming.body === "string");
  if (mustBeSealed && incoming.kind !== "system" && !incoming.deleted) {
    // A plaintext body where there must be ciphertext: what the server says, not what was sent.
    const { body, ...rest } = withSender(incoming);
    return { ...rest, decrypted: { status: "failed" } };
  }
  const message = keys.reveal(withSender(incoming));
  if (message.decrypted?.status === "unknown") {
    // A sender who left: their key is not among the members'. Members' keys are on their way.
    const conversation = store.conversations.get(message.conversation);
    if (conversation && !conversation.members.some((member) => member.id === message.sender.id)) {
      keys.learnSender(message.sender);
    }
  }
  return message;
}

/** Send a pending message again under its own client_id (sealed anew if encrypted). */
function resendPending(message) {
  if (message.decrypted) {
    sendEncrypted(message.client_id, message.conversation);
  } else {
    const frame = { type: "message.send", conversation: message.conversation, client_id: message.client_id, body: message.body };
    if (message.reply_to) frame.reply_to = message.reply_to;
    if (message.attachment) frame.attachment = message.attachment.id;
    socket.resend(message.client_id, frame);
  }
}

/**
 * A message refused for the rate limit stays "Sending…" and goes again once the window allows.
 * When a timer fires, every waiting message of the conversation goes, in the order written,
 * so that a shorter wait for a later message cannot overtake an earlier one.
 */
function retryWhenAllowed(conversationId, clientId, retryAfter) {
  const log = store.log(conversationId);
  const pending = log.pending.get(clientId);
  if (!pending) return;
  log.pending.set(clientId, { ...pending, rateLimited: true });
  const seconds = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : 1;
  setTimeout(() => {
    if (store.accountDisabled || refuseDowngraded(conversationId)) return;
    for (const [id, waiting] of log.pending) {
      if (!waiting.rateLimited || waiting.failed) continue;
      const { rateLimited, ...message } = waiting;
      log.pending.set(id, message);
      resendPending(message);
    }
  }, seconds * 1000);
}

/** Decrypt the conversation's last message for the sidebar (the server sends it as stored). */
function revealLast(conversation) {
  if (conversation.last_message) conversation.last_message = reveal(conversation.last_message);
  return conversation;
}

/** Decrypt again what is held, after a key was unlocked, pinned or accepted. */
function revealAll() {
  for (const log of store.logs.values()) {
    for (const [id, message] of log.byId) if (message.decrypted) log.byId.set(id, reveal(message));
  }
  for (const conversation of store.conversations.values()) {
    if (conversation.last_message?.decrypted) conversation.last_message = reveal(conversation.last_message);
  }
}

function learnMembers(...conversations) {
  const encrypted = conversations.filter((conversation) => conversation.encrypted);
  if (encrypted.length) keys.learn(encrypted.flatMap((conversation) => conversation.members)).catch((error) => notice(error.message));
}

/** Seal a pending message for the conversation's current members and send it; or say why not. */
async function sendEncrypted(clientId, conversationId) {
  const log = store.log(conversationId);
  const why = await readyToEncrypt(conversationId);
  const pending = log.pending.get(clientId);
  if (!pending) return;
  if (why) {
    log.pending.set(clientId, { ...pending, failed: why });
  } else {
    const conversation = store.conversations.get(conversationId);
    const { text, attachment } = pending.decrypted;
    // The mention list travels inside the ciphertext: only members' browsers learn who was named.
    const content = { text, mentions: mentionedIds(text, conversation, store.me), ...(attachment ? { attachment } : {}) };
    const fields = keys.sealContent(conversation, clientId, content);
    if (pending.reply_to) fields.reply_to = pending.reply_to;
    if (pending.attachment) fields.attachment = pending.attachment.id;
    socket.resend(clientId, { type: "message.send", conversation: conversationId, client_id: clientId, ...fields });
  }
  if (conversationId === store.activeId) pane.render();
}

async function editEncrypted(tag) {
  const { message, body } = edits.get(tag);
  const why = await readyToEncrypt(message.conversation);
  if (why) {
    edits.delete(tag);
    notice(`The edit was not sent: ${why}`);
    return;
  }
  // Sealed under the message's own client_id: readers check it against the message.
  // The attachment's secrets go along, or the edit would take the file away from its readers.
  const fields = keys.seal(store.conversations.get(message.conversation), message.client_id, body, message.decrypted?.attachment ?? null);
  if (!socket.editMessage(message.id, { ...fields, client_id: tag })) {
    edits.delete(tag);
    notice("You are offline; the edit was not sent. Try again once reconnected.");
  }
}

/** Return why nobody can encrypt in this conversation now, or "" once every member's key is known and trusted. */
async function readyToEncrypt(conversationId) {
  const conversation = store.conversations.get(conversationId);
  if (!conversation) return "You are no longer in this conversation.";
  try {
    await keys.learn(conversation.members);
  } catch (error) {
    return `The members' keys could not be checked: ${error.message}`;
  }
  const blocked = keys.blockers(store.conversations.get(conversationId) ?? conversation);
  if (!blocked) return "";
  if (blocked.state !== "ready") return "Unlock encryption in this browser first.";
  if (blocked.changed.length) return `${displayName(blocked.changed[0])}'s key changed; accept the new key first.`;
  return `${blocked.missing.map(displayName).join(", ")} ${blocked.missing.length === 1 ? "has" : "have"} not set up encryption yet.`;
}

/** The server refused the keys because the members changed: learn who they are, then seal again, once. */
function retryForMembers(conversationId, retry, fail) {
  refreshConversation(conversationId).then(retry, (error) => fail(error.message));
}

function keyMismatch(error) {
  return error.code === "invalid" && (error.missing?.length || error.not_members?.length);
}

function openKeyDialog() {
  keyDialog.open({ ready: "manage", locked: "unlock", none: "setup" }[keys.state]);
}

/** Ask for the key once a page when encrypted conversations need it, unless a dialog is open. */
function promptForKey() {
  if (keyPrompted || keys.state === "ready" || document.querySelector("dialog[open]")) return;
  const active = store.conversations.get(store.activeId);
  const needed = active ? active.encrypted : [...store.conversations.values()].some((conversation) => conversation.encrypted);
  if (!needed) return;
  keyPrompted = true;
  openKeyDialog();
}

function renderKeyBanner() {
  const state = keys.state;
  $("e2e-banner").hidden = state === "ready";
  $("e2e-banner-text").textContent =
    state === "locked"
      ? "Your encrypted messages are locked in this browser."
      : "Set up end-to-end encryption for direct messages and private groups.";
  $("e2e-banner-button").textContent = state === "locked" ? "Unlock" : "Set up encryption";
}

keys.addEventListener("change", () => {
  revealAll();
  if (keys.keyPair) localSearch.indexAll().catch(() => {});
  else localSearch.close();
  renderAll();
  pane.render();
});

// Socket events

socket.addEventListener("status", ({ detail }) => {
  renderConnection(detail);
  // Signed out (elsewhere, or the session ended): the key pair goes, as at logout.
  if (detail.state === "unauthenticated") {
    keys.forget().catch(() => {});
    localSearch.wipe().catch(() => {});
  }
});

// Banned (the socket closed with 4403): nothing more can be sent from this page.
socket.addEventListener("status", ({ detail }) => {
  if (detail.state === "disabled") accountDisabled();
});

function accountDisabled() {
  store.accountDisabled = true;
  for (const log of store.logs.values()) {
    for (const [clientId, pending] of log.pending) log.pending.set(clientId, { ...pending, failed: "This account was disabled." });
  }
  $("connection-text").textContent = "This account was disabled.";
  $("login-link").hidden = false;
  renderAll();
  pane.render();
}

socket.addEventListener("hello", ({ detail }) => {
  store.online = new Set([store.me.id, ...(detail.online ?? [])]);
  const unknown = (detail.conversations ?? []).some((id) => !store.conversations.has(id));
  // After an outage memberships and unread counts may have changed; ask again.
  if (everConnected || unknown) refreshConversations().catch((error) => notice(error.message));
  everConnected = true;
  renderAll();
  markReadIfLooking();
});

socket.addEventListener("message", ({ detail }) => {
  const message = reveal(detail.message);
  const live = detail.live;
  if (!store.conversations.has(message.conversation)) {
    refreshConversations().catch((error) => notice(error.message));
    return;
  }
  const isNew = remember(message);
  // A system line (who joined, who left) is news for the history, not a notification; an
  // encrypted reaction is folded into its target.
  const fromOthers = message.kind !== "system" && message.kind !== "reaction" && message.sender.id !== store.me.id;
  if (message.conversation === store.activeId) {
    pane.render({ appended: true });
    pane.renderTyping();
    markReadIfLooking();
    if (fromOthers && isNew) announce(`${displayName(message.sender)}: ${plainTextOf(message)}`);
  }
  if (live && fromOthers && isNew) notifier.incoming(message, { mentioned: mentionsMe(message, store.conversations.get(message.conversation), store.me) });
  list.render();
});

socket.addEventListener("ack", ({ detail }) => {
  for (const [conversationId, log] of store.logs) {
    const pending = log.pending.get(detail.client_id);
    if (!pending) continue;
    remember({ ...pending, id: detail.id, created_at: detail.created_at ?? pending.created_at });
    if (conversationId === store.activeId) pane.render();
    list.render();
  }
});

socket.addEventListener("updated", ({ detail }) => {
  const message = reveal(detail.message);
  for (const [tag, edit] of edits) if (edit.message.id === message.id) edits.delete(tag);
  const log = store.log(message.conversation);
  const known = log.byId.get(message.id);
  // An update leaves reactions out: keep the ones this page has.
  if (known) log.byId.set(message.id, message.reactions || !known.reactions ? message : { ...message, reactions: known.reactions });
  localSearch.index(message).catch(() => {});
  const conversation = store.conversations.get(message.conversation);
  if (conversation?.last_message?.id === message.id) conversation.last_message = message;
  if (message.conversation === store.activeId) pane.render();
  list.render();
});

socket.addEventListener("deleted", ({ detail }) => {
  const log = store.log(detail.conversation);
  const message = log.byId.get(detail.id);
  if (message) log.byId.set(detail.id, { ...message, deleted: true, body: "" });
  if (message) localSearch.index({ ...message, deleted: true }).catch(() => {});
  if (message?.attachment) releaseAttachment(message.attachment.id);
  const conversation = store.conversations.get(detail.conversation);
  if (conversation?.last_message?.id === detail.id) conversation.last_message = { ...conversation.last_message, deleted: true };
  if (detail.conversation === store.activeId) pane.render();
  list.render();
});

socket.addEventListener("reaction", ({ detail }) => {
  const log = store.log(detail.conversation);
  const message = log.byId.get(detail.message);
  if (!message) return;
  log.byId.set(message.id, { ...message, reactions: applyReaction(message.reactions, detail) });
  if (detail.conversation === store.activeId) pane.render();
});

socket.addEventListener("typing", ({ detail }) => {
  store.startTyping(detail.conversation, detail.user);
  if (detail.conversation !== store.activeId) return;
  pane.renderTyping();
  setTimeout(() => pane.renderTyping(), TYPING_EXPIRES_MS + 100);
});

socket.addEventListener("read", ({ detail }) => {
  store.applyRead(detail);
  const conversation = store.conversations.get(detail.conversation);
  if (detail.user === store.me.id && conversation && !conversation.unread) conversation.mentions = 0;
  if (detail.conversation === store.activeId) pane.render();
  list.render();
});

socket.addEventListener("presence", ({ detail }) => {
  if (detail.online) store.online.add(detail.user);
  else if (detail.user !== store.me.id) store.online.delete(detail.user);
  renderAll();
});

socket.addEventListener("conversation-added", ({ detail: { conversation } }) => {
  store.putConversation(conversation);
  socket.track(conversation.id, conversation.last_message_id);
  learnMembers(conversation);
  renderAll();
});

socket.addEventListener("conversation-updated", ({ detail: { conversation } }) => {
  // Members joined, left or changed role; the rest of what we know stays.
  if (!store.conversations.has(conversation.id)) return;
  learnMembers(store.putConversation(conversation));
  renderAll();
});

socket.addEventListener("key-changed", ({ detail }) => {
  // Someone reset their keys: the conversation warns until the new key is accepted.
  for (const conversation of store.conversations.values()) {
    for (const member of conversation.members) if (member.id === detail.user) member.public_key = detail.public_key;
  }
  keys.learn([{ id: detail.user, public_key: detail.public_key }]).catch((error) => notice(error.message));
});

socket.addEventListener("report-handled", ({ detail: { report } }) => {
  const outcome = report.status === "dismissed" ? "dismissed" : "acted on";
  notice(`The moderators ${outcome} your report. ${report.resolution}`);
});

socket.addEventListener("conversation-removed", ({ detail }) => forget(detail.id));

socket.addEventListener("error", ({ detail }) => {
  const edit = edits.get(detail.client_id);
  if (edit) {
    if (keyMismatch(detail) && !edit.retried) {
      edit.retried = true;
      retryForMembers(edit.message.conversation, () => editEncrypted(detail.client_id), (why) => notice(`The edit was not sent: ${why}`));
      return;
    }
    edits.delete(detail.client_id);
    notice(`The edit was not sent: ${detail.detail || detail.code}`);
    return;
  }
  if (!detail.client_id) {
    notice(detail.detail || `The server refused that (${detail.code}).`);
    return;
  }
  for (const [conversationId, log] of store.logs) {
    const pending = log.pending.get(detail.client_id);
    if (!pending) continue;
    if (pending.decrypted && keyMismatch(detail) && !pending.retried) {
      log.pending.set(detail.client_id, { ...pending, retried: true });
      const fail = (why) => {
        const current = log.pending.get(detail.client_id);
        if (current) log.pending.set(detail.client_id, { ...current, failed: why });
        if (conversationId === store.activeId) pane.render();
      };
      retryForMembers(conversationId, () => sendEncrypted(detail.client_id, conversationId), fail);
      continue;
    }
    if (detail.code === "rate_limited") {
      retryWhenAllowed(conversationId, detail.client_id, detail.retry_after);
      continue;
    }
    log.pending.set(detail.client_id, { ...pending, failed: detail.detail || detail.code });
    if (conversationId === store.activeId) pane.render();
  }
});

// Page state

function renderConnection({ state, retryIn }) {
  const banner = $("connection-banner");
  const text = $("connection-text");
  const button = $("reconnect-button");
  const login = $("login-link");
  banner.hidden = state === "open" || (state === "connecting" && !everConnected);
  button.hidden = state !== "waiting";
  login.hidden = state !== "unauthenticated";
  if (state === "waiting") {
    const seconds = Math.max(1, Math.round(retryIn / 1000));
    text.textContent = everConnected
      ? `Connection lost. Reconnecting in ${seconds} s…`
      : `Cannot reach the server. Trying again in ${seconds} s…`;
  } else if (state === "offline") {
    text.textContent = "You are offline. Messages you write now are sent when you are back online.";
  } else if (state === "connecting") {
    text.textContent = "Reconnecting…";
  } else if (state === "unauthenticated") {
    text.textContent = "You were signed out.";
  } else if (state === "disabled") {
    text.textContent = "This account is disabled.";
  }
}

function notice(text) {
  const box = $("chat-notice");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    box.hidden = true;
  }, NOTICE_MS);
}

/** Store a message, and index it for search in this browser when it is an encrypted one. */
function remember(message) {
  const isNew = store.addMessage(message);
  const conversation = store.conversations.get(message.conversation);
  // Counted apart from unread; the server counts plaintext mentions for the next page load.
  if (isNew && conversation && mentionsMe(message, conversation, store.me)) conversation.mentions = (conversation.mentions ?? 0) + 1;
  localSearch.index(message).catch(() => {});
  return isNew;
}

function plainTextOf(message) {
  const text = messageText(message);
  if (text) return plainText(text);
  return attachmentSummary(message) || (text === null ? "Encrypted message" : "");
}

function announce(text) {
  $("announcer").textContent = text;
}

window.addEventListener("focus", markReadIfLooking);
document.addEventListener("visibilitychange", markReadIfLooking);
PHONE_QUERY.addEventListener("change", markReadIfLooking);
document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented) return;
  if ((event.ctrlKey || event.metaKey) && !event.shiftKey && event.key.toLowerCase() === "k" && !document.querySelector("dialog[open]")) {
    event.preventDefault();
    switcher.open();
    return;
  }
  if ((event.ctrlKey || event.metaKey) && event.shiftKey && event.key.toLowerCase() === "f" && !document.querySelector("dialog[open]")) {
    event.preventDefault();
    searchDialog.open();
    return;
  }
  if (event.key === "Escape" && PHONE_QUERY.matches && appRoot.dataset.view === "conversation" && !document.querySelector("dialog[open]")) {
    showList();
  }
});

// Start: the conversation list first, so the socket knows where each conversation stands.

/** Learn whom I blocked, so their messages in shared rooms arrive folded. */
async function refreshBlocks() {
  store.blocked = new Set((await api.blocks()).map((block) => block.user.id));
  if (store.activeId !== null) pane.render();
}

keys
  .start()
  .catch((error) => notice(`Encryption is not available in this browser: ${error.message}`))
  .then(() => refreshBlocks().catch((error) => notice(`Could not load your blocked users: ${error.message}`)))
  .then(() => refreshConversations())
  .catch((error) => notice(`Could not load your conversations: ${error.message}`))
  .finally(() => socket.start());
