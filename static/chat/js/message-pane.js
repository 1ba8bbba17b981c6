// The open conversation: its header, history (loading older pages on scroll up), each
// message with its actions, the typing line and the composer.

import { releaseMedia, renderAttachment } from "./attachment-view.js";
import { avatar, dayKey, displayName, el, formatDay, formatTime, icon, placeInOrder, scrollWithin } from "./dom.js";
import { formattedText, plainText } from "./markdown.js";
import { previewSlot } from "./previews.js";
import { foldReactions, reactionBar } from "./reactions.js";
import { mentionContext, mentionsMe } from "./mentions.js";
import { isMuted, verifiedBadge } from "./people.js";
import { messageText } from "./store.js";
import { systemText, unannouncedMembers } from "./system.js";

const GROUP_WINDOW_MS = 5 * 60 * 1000; // consecutive messages closer than this share one header
const LOAD_OLDER_THRESHOLD_PX = 200;
const STICK_TO_BOTTOM_PX = 60;
const TYPING_SEND_INTERVAL_MS = 3000;
const QUOTE_LENGTH = 140;
// What an encrypted message shows while it cannot be read, by keyring.js's `decrypted.status`.
const UNREADABLE = {
  locked: () => "Encrypted message. Unlock encryption to read it.",
  unknown: () => "Decrypting…",
  untrusted: (message) => `Sent with ${displayName(message.sender)}'s new key. Accept the new key to read it.`,
  failed: () => "This message could not be decrypted.",
};

export class MessagePane {
  constructor({ store, keys, elements, actions, limits }) {
    this.store = store;
    this.keys = keys;
    this.dom = elements;
    this.dom.loginUrl = document.getElementById("login-link")?.getAttribute("href") ?? "/accounts/login/";
    this.actions = actions;
    this.limits = limits;
    this.nodes = new Map(); // render key -> {node, signature}
    this.replyTo = null;
    this.editingId = null;
    this.lastTypingSent = 0;
    this.shownId = null;
    this.drafts = new Map(); // conversation id -> unsent text, kept while switching
    this.unreadFrom = null; // the first unread message when the conversation was opened
    this.unfolded = new Set(); // ids of blocked users' messages shown anyway, on request
    this.bindComposer();
    this.dom.scroller.addEventListener("scroll", () => this.scrolled());
    this.dom.jumpButton.addEventListener("click", () => this.scrollToBottom());
    this.dom.replyCancel.addEventListener("click", () => this.setReply(null));
    // Touch screens have no hover: a tap on a message shows its actions.
    this.dom.list.addEventListener("click", (event) => this.select(event));
  }

  select(event) {
    const item = event.target.closest(".message");
    if (!item || event.target.closest("a, button, textarea, blockquote")) return;
    const wasSelected = item.classList.contains("selected");
    for (const selected of this.dom.list.querySelectorAll(".message.selected")) selected.classList.remove("selected");
    item.classList.toggle("selected", !wasSelected);
  }

  get conversation() {
    return this.store.conversations.get(this.store.activeId) ?? null;
  }

  // Opening a conversation

  show() {
    const conversation = this.conversation;
    if (this.shownId !== null) this.drafts.set(this.shownId, this.dom.input.value);
    this.shownId = conversation?.id ?? null;
    this.dom.input.value = (conversation && this.drafts.get(conversation.id)) || "";
    this.showComposerError("");
    this.dom.empty.hidden = Boolean(conversation);
    this.dom.body.hidden = !conversation;
    this.nodes.clear();
    this.dom.list.replaceChildren();
    releaseMedia(this.shownId);
    this.setReply(null);
    this.editingId = null;
    this.unreadFrom = null;
    if (!conversation) return;
    this.fitComposer();
    this.renderHeader();
    this.renderComposerState();
    this.render({ toBottom: true });
    this.renderTyping();
  }

  renderHeader() {
    const conversation = this.conversation;
    if (!conversation) return;
    const title = this.store.title(conversation);
    const kindIcon = { channel: "hash", group: "group", direct: "person" }[conversation.kind];
    const other = conversation.kind === "direct" ? this.store.otherMember(conversation) : null;
    const verified = conversation.encrypted && !conversation.downgraded && other && this.keys.isVerified(other.id);
    this.dom.title.replaceChildren(icon(kindIcon, "icon title-icon"), title, ...(verified ? [verifiedBadge()] : []));
    if (other) this.dom.title.dataset.profile = other.username;
    else delete this.dom.title.dataset.profile;
    this.dom.subtitle.textContent = this.subtitle(conversation);
    this.dom.membersButton.hidden = conversation.kind === "direct";
    // A direct conversation has no members panel: its safety number has a button of its own.
    this.dom.safetyButton.hidden = !(conversation.encrypted && other?.public_key);
    this.dom.input.placeholder = conversation.kind === "channel" ? `Message #${title}` : `Message ${title}`;
  }

  subtitle(conversation) {
    if (conversation.downgraded) return "Security warning: encryption was removed by the server";
    if (conversation.kind === "direct") {
      const other = this.store.otherMember(conversation);
      const presence = other && this.store.online.has(other.id) ? "Online" : "Offline";
      const status = other?.status ? `${presence} · ${other.status}` : presence;
      return conversation.encrypted ? `${status} · end-to-end encrypted` : status;
    }
    const members = conversation.member_count ?? conversation.members.length;
    const count = `${members} member${members === 1 ? "" : "s"}`;
    const lock = conversation.encrypted ? " · end-to-end encrypted" : "";
    return conversation.topic ? `${conversation.topic} · ${count}${lock}` : `${count}${lock}`;
  }

  /** In an encrypted conversation, say why nobody can write yet and offer the way out. */
  renderComposerState() {
    const conversation = this.conversation;
    if (!conversation) return;
    const held = this.moderationHold(conversation);
    let blocked = held ?? (conversation.encrypted ? this.keys.blockers(conversation) : null);
    if (conversation.downgraded) blocked = { downgraded: true };
    if (this.store.accountDisabled) blocked = { disabled: true };
    const notice = this.dom.encryptedNotice;
    const signature = JSON.stringify(blocked);
    if (notice.dataset.signature !== signature) {
      // Rebuilt only when it changes, so a screen reader does not hear it again on every render.
      notice.dataset.signature = signature;
      notice.replaceChildren(
        ...(held && blocked === held ? [icon("lock"), el("span", {}, held.text)] : blocked ? this.blockedNotice(blocked) : []),
      );
    }
    notice.hidden = !blocked;
    this.dom.input.disabled = Boolean(blocked);
    this.dom.sendButton.disabled = Boolean(blocked);
    for (const tool of this.dom.composer.querySelectorAll("[data-composer-tool]")) tool.disabled = Boolean(blocked);
  }

  /** Whether nobody (archived) or I (muted by an admin) can write here now. */
  writingHeld(conversation) {
    return Boolean(conversation.archived || isMuted(conversation.members.find((member) => member.id === this.store.me.id)));
  }

  /** Why nobody (archived) or I (muted by an admin) cannot write here, or null. */
  moderationHold(conversation) {
    if (conversation.archived) return { state: "archived", text: "This conversation is archived: you can read it, but nobody can write here." };
    const me = conversation.members.find((member) => member.id === this.store.me.id);
    if (isMuted(me)) {
      const until = new Date(me.muted_until);
      clearTimeout(this.muteTimer);
      // Open the composer again by itself when the mute runs out.
      this.muteTimer = setTimeout(() => {
        this.renderComposerState();
        this.render(); // the messages' react, reply and edit buttons come back too
      }, Math.min(until - Date.now() + 500, 2 ** 31 - 1));
      return { state: "muted", text: `An admin muted you here until ${until.toLocaleString()}.` };
    }
    return null;
  }

  blockedNotice({ state, missing, changed, downgraded, disabled }) {
    const button = (label, onclick, attributes = {}) => el("button", { type: "button", class: "small", onclick, ...attributes }, label);
    if (disabled) {
      return [
        icon("shield"),
        el("span", { class: "account-disabled" }, el("strong", {}, "This account was disabled. "), "You cannot send messages any more."),
        el("a", { href: this.dom.loginUrl, class: "button small" }, "Log in again"),
      ];
    }
    if (downgraded) return downgradeWarning();
    if (state === "none") {
      return [icon("lock"), el("span", {}, "Set up end-to-end encryption to write here."), button("Set up encryption", () => this.actions.keySetup())];
    }
    if (state === "locked") {
      return [icon("lock"), el("span", {}, "Unlock end-to-end encryption to read and write here."), button("Unlock", () => this.actions.keySetup())];
    }
    if (changed.length) {
      const member = changed[0];
      const name = displayName(member);
      return [
        icon("shield"),
        el(
          "span",
          {},
          el("strong", {}, `${name}'s key changed.`),
          ` This happens when ${name} resets their encryption keys, or when someone tries to listen in. Compare safety numbers to be sure, then accept the new key to write here again.`,
        ),
        button("Accept new key", () => this.actions.acceptKey(member), { "aria-label": `Accept ${name}'s new key` }),
        button("Safety number", () => this.actions.safety(member), { class: "small secondary", "aria-label": `Safety number with ${name}` }),
      ];
    }
    const names = missing.map(displayName);
    const who = names.length === 1 ? `${names[0]} has` : `${names.slice(0, -1).join(", ")} and ${names.at(-1)} have`;
    return [icon("lock"), el("span", {}, `${who} not set up encryption yet. Messages can be sent here once ${names.length === 1 ? "they have" : "everyone has"}.`)];
  }

  // The history

  /** Redraw the messages; keep the view at the bottom, or steady when older ones came in above. */
  render({ toBottom = false, prepended = false, appended = false } = {}) {
    const conversation = this.conversation;
    if (!conversation) return;
    const scroller = this.dom.scroller;
    const wasAtBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < STICK_TO_BOTTOM_PX;
    const oldHeight = scroller.scrollHeight;
    const oldTop = scroller.scrollTop;

    const log = this.store.log(conversation.id);
    const seenBy = this.seenMarkers(conversation, log);
    const wanted = [];
    const keep = new Set();
    let previous = null;
    const messages = log.ordered();
    // Encrypted reactions are messages of their own; they show on the message they point at.
    const folded = conversation.encrypted ? foldReactions(messages) : null;
    // Nobody writes in an archived conversation, nor I while muted: no reacting, replying or editing.
    const held = this.writingHeld(conversation);
    for (const message of messages) {
      if (message.kind === "reaction") continue;
      const date = new Date(message.created_at);
      if (!previous || dayKey(new Date(previous.created_at)) !== dayKey(date)) {
        wanted.push(this.node(`day:${dayKey(date)}`, formatDay(date), () => daySeparator(date)));
        keep.add(`day:${dayKey(date)}`);
      }
      if (message.id && message.id === this.unreadFrom) {
        wanted.push(this.node("unread", "unread", () => el("li", { class: "unread-divider", id: "unread-divider" }, "New messages")));
        keep.add("unread");
      }
      const continued = isContinuation(previous, message) && message.id !== this.unreadFrom;
      const key = message.id ? `m:${message.id}` : `p:${message.client_id}`;
      const seen = message.id ? seenBy.get(message.id) : null;
      const reactions = folded ? folded.get(message.id) : message.reactions;
      const state = { continued, seen, editing: message.id && message.id === this.editingId, reactions, held };
      const blocked = this.isFolded(message);
      // A message being edited keeps its node (and the text being typed, and focus) until the edit ends.
      const signature = state.editing
        ? `editing:${message.id}`
        : JSON.stringify([message, state, this.quoteSignature(message), this.keys.changed.has(message.sender.id), blocked]);
      wanted.push(this.node(key, signature, () => this.messageNode(message, state)));
      keep.add(key);
      previous = message;
    }
    const flagged = unannouncedMembers(conversation, log);
    if (flagged.length) {
      const names = flagged.map(displayName);
      wanted.push(this.node("audit", JSON.stringify(names), () => membershipWarning(names)));
      keep.add("audit");
    }
    for (const key of [...this.nodes.keys()]) if (!keep.has(key)) this.nodes.delete(key);
    placeInOrder(this.dom.list, wanted);
    this.renderHistoryStatus(log);

    if (toBottom || wasAtBottom) this.scrollToBottom();
    else if (prepended) scroller.scrollTop = oldTop + (scroller.scrollHeight - oldHeight);
    else if (appended) this.dom.jumpButton.hidden = false;
    this.fillView(log);
  }

  node(key, signature, build) {
    const cached = this.nodes.get(key);
    if (cached && cached.signature === signature) return cached.node;
    const node = build();
    // An edited or acknowledged message replaces its old node in place, keeping focus nearby.
    if (cached?.node.isConnected) cached.node.replaceWith(node);
    this.nodes.set(key, { node, signature });
    return node;
  }

  renderHistoryStatus(log) {
    const status = this.dom.historyStatus;
    if (log.error) {
      const retry = el("button", { type: "button", class: "link-button", onclick: () => this.actions.loadOlder(this.store.activeId) }, "Try again");
      status.replaceChildren(`Could not load messages: ${log.error} `, retry);
      return;
    }
    let text = "";
    if (!log.historyLoaded) text = "Loading messages…";
    else if (log.loadingOlder) text = "Loading earlier messages…";
    else if (!log.hasOlder) text = log.byId.size ? "This is the beginning of the conversation." : "No messages yet. Say hello!";
    if (status.textContent !== text) status.textContent = text;
  }

  /** Load the next older page while the history does not fill the view (no scrollbar, no scroll event). */
  fillView(log) {
    const scroller = this.dom.scroller;
    if (!log.historyLoaded || !log.hasOlder || log.loadingOlder || log.error) return;
    if (scroller.scrollHeight - LOAD_OLDER_THRESHOLD_PX <= scroller.clientHeight) this.actions.loadOlder(this.store.activeId);
  }

  scrolled() {
    const scroller = this.dom.scroller;
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < STICK_TO_BOTTOM_PX;
    if (atBottom) this.dom.jumpButton.hidden = true;
    const conversation = this.conversation;
    if (!conversation || scroller.scrollTop > LOAD_OLDER_THRESHOLD_PX) return;
    const log = this.store.log(conversation.id);
    if (log.historyLoaded && log.hasOlder && !log.loadingOlder && !log.error) this.actions.loadOlder(conversation.id);
  }

  scrollToBottom() {
    this.dom.scroller.scrollTop = this.dom.scroller.scrollHeight;
    this.dom.jumpButton.hidden = true;
  }

  /** Mark where the unread messages start and show it (the divider first, near the top). */
  showUnread(messageId) {
    this.unreadFrom = messageId;
    this.render();
    const divider = document.getElementById("unread-divider");
    if (!divider) return false;
    scrollWithin(this.dom.scroller, divider, "start");
    this.dom.jumpButton.hidden = this.isAtBottom();
    return true;
  }

  /** Scroll a message into the middle of the view and flash it; return false if it is not shown. */
  reveal(messageId) {
    const item = document.getElementById(`message-${messageId}`);
    if (!item) return false;
    scrollWithin(this.dom.scroller, item, "center");
    item.classList.remove("found");
    void item.offsetWidth; // restart the animation when the same message is found again
    item.classList.add("found");
    this.dom.jumpButton.hidden = this.isAtBottom();
    return true;
  }

  isAtBottom() {
    const scroller = this.dom.scroller;
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < STICK_TO_BOTTOM_PX;
  }

  /**
   * Map message id -> names of the other members whose read marker sits on it: the newest
   * message up to their marker that they did not send themselves (a system line carries none).
   * Members who left have no marker.
   */
  seenMarkers(conversation, log) {
    const markers = new Map();
    const reads = this.store.reads.get(conversation.id);
    if (!reads || conversation.kind === "channel") return markers;
    const messages = [...log.byId.values()].filter((message) => message.kind !== "system").sort((a, b) => a.id - b.id);
    const memberIds = new Set(conversation.members.map((member) => member.id));
    for (const [userId, upTo] of reads) {
      if (!memberIds.has(userId)) continue;
      const at = messages.filter((message) => message.id <= upTo && message.sender.id !== userId).pop()?.id;
      if (at === undefined) continue;
      const names = markers.get(at) ?? [];
      names.push(displayName(this.store.users.get(userId)));
      markers.set(at, names);
    }
    return markers;
  }

  // One message

  messageNode(message, { continued, seen, editing, reactions, held }) {
    if (message.kind === "system") return this.systemNode(message);
    const mine = message.sender.id === this.store.me.id;
    const classes = ["message"];
    if (mine) classes.push("mine");
    if (mentionsMe(message, this.conversation, this.store.me)) classes.push("mentions-me");
    if (continued) classes.push("continued");
    if (!message.id) classes.push("pending");
    if (message.failed) classes.push("failed");
    if (message.deleted) classes.push("deleted");
    const created = new Date(message.created_at);
    const time = el("time", { datetime: message.created_at, title: created.toLocaleString() }, formatTime(created));
    return el(
      "li",
      {
        class: classes.join(" "),
        id: message.id ? `message-${message.id}` : null,
        dataset: { messageId: message.id ?? "", clientId: message.client_id ?? "" },
      },
      continued ? el("span", { class: "gutter-time" }, time.cloneNode(true)) : profileLink(avatar(message.sender, 36), message.sender),
      el(
        "div",
        { class: "message-main" },
        continued
          ? null
          : el(
              "p",
              { class: "message-meta" },
              el("button", { type: "button", class: "sender link-button", dataset: { profile: message.sender.username } }, displayName(message.sender)),
              " ",
              time,
            ),
        this.quote(message),
        editing ? this.editor(message) : this.content(message),
        message.deleted || this.isFolded(message)
          ? null
          : reactionBar(reactions, {
              me: this.store.me,
              users: this.store.users,
              onToggle: held ? null : (emoji, on) => this.actions.react(message, emoji, on),
            }),
        this.status(message),
        seen ? el("p", { class: "seen" }, `Seen by ${seen.join(", ")}`) : null,
      ),
      editing ? null : this.messageActions(message, mine, held),
    );
  }

  /** A blocked user's message in a shared room stays folded until the reader asks to see it. */
  isFolded(message) {
    return Boolean(message.id && message.sender && this.store.blocked.has(message.sender.id) && !this.unfolded.has(message.id));
  }

  /** A system line, centred: who created, joined, left or renamed the conversation. */
  systemNode(message) {
    const created = new Date(message.created_at);
    return el(
      "li",
      { class: "system-message", id: `message-${message.id}`, dataset: { messageId: message.id, event: message.system?.event ?? "" } },
      el("span", {}, systemText(message, this.store)),
      " ",
      el("time", { datetime: message.created_at, title: created.toLocaleString() }, formatTime(created)),
    );
  }

  content(message) {
    if (message.deleted) return el("p", { class: "message-text deleted-text" }, "This message was deleted.");
    if (this.isFolded(message)) {
      const show = () => {
        this.unfolded.add(message.id);
        this.render();
        document.querySelector(`#message-${message.id} .message-text`)?.focus();
      };
      return el(
        "p",
        { class: "message-text blocked-text" },
        "Message from a blocked user. ",
        el("button", { type: "button", class: "link-button", onclick: show, "aria-label": "Show the message from a blocked user" }, "Show"),
      );
    }
    const parts = [];
    const text = messageText(message);
    if (text !== null) {
      // A file sent on its own has no caption to show.
      if (text || !message.attachment) parts.push(formattedText(text, mentionContext(this.store.me, this.conversation, message.sender)));
    } else {
      const unreadable = UNREADABLE[message.decrypted?.status] ?? UNREADABLE.failed;
      parts.push(el("p", { class: "message-text encrypted-text" }, icon("lock"), " ", unreadable(message)));
    }
    if (message.edited_at) parts.push(el("span", { class: "edited", title: new Date(message.edited_at).toLocaleString() }, "(edited)"));
    parts.push(renderAttachment(message));
    if (text) {
      const conversation = this.store.conversations.get(message.conversation);
      parts.push(previewSlot(message, conversation, { atBottom: () => this.isAtBottom(), toBottom: () => this.scrollToBottom() }));
    }
    return el("div", { class: "message-content" }, parts);
  }

  status(message) {
    if (message.failed) {
      return el(
        "p",
        { class: "message-status error", role: "alert" },
        `Not sent: ${message.failed} `,
        this.store.accountDisabled
          ? null
          : el("button", { type: "button", class: "link-button", onclick: () => this.actions.retry(message) }, "Try again"),
      );
    }
    if (!message.id) return el("p", { class: "message-status" }, "Sending…");
    return null;
  }

  quote(message) {
    if (!message.reply_to) return null;
    const original = this.store.log(message.conversation).byId.get(message.reply_to);
    const jump = () => {
      const target = document.getElementById(`message-${message.reply_to}`);
      if (target) scrollWithin(this.dom.scroller, target, "center");
    };
    if (!original) return el("blockquote", { class: "quote" }, "Reply to an earlier message");
    return el(
      "blockquote",
      { class: "quote", onclick: jump },
      el("span", { class: "quote-sender" }, displayName(original.sender)),
      " ",
      el("span", { class: "quote-text" }, snippet(original)),
    );
  }

  quoteSignature(message) {
    if (!message.reply_to) return null;
    const original = this.store.log(message.conversation).byId.get(message.reply_to);
    return original ? [messageText(original), original.deleted] : null;
  }

  messageActions(message, mine, held) {
    if (!message.id || message.deleted) return null;
    const who = displayName(message.sender);
    const buttons = [];
    const readable = messageText(message) !== null;
    if (readable && !held) {
      const react = actionButton("smile", "Add a reaction", () => this.actions.pickReaction(react, message));
      react.setAttribute("aria-haspopup", "dialog");
      buttons.push(react);
      buttons.push(actionButton("reply", `Reply to ${who}`, () => this.setReply(message)));
    }
    if (mine && readable && !held) {
      buttons.push(actionButton("edit", "Edit your message", () => this.startEditing(message.id)));
    }
    if (mine) buttons.push(actionButton("trash", "Delete your message", () => this.actions.remove(message)));
    if (!mine && message.kind !== "system") buttons.push(actionButton("flag", `Report this message from ${who}`, () => this.actions.report(message)));
    return el("div", { class: "message-actions" }, buttons);
  }

  // Editing a sent message

  lastOwnEditable() {
    const conversation = this.conversation;
    if (!conversation) return null;
    const mine = this.store
      .log(conversation.id)
      .ordered()
      .filter((m) => m.id && m.sender.id === this.store.me.id && !m.deleted && m.kind !== "reaction" && m.kind !== "system" && messageText(m) !== null);
    return mine.at(-1) ?? null;
  }

  startEditing(id) {
    this.editingId = id;
    this.render();
    const field = this.dom.list.querySelector(".edit-form textarea");
    field?.focus();
    field?.setSelectionRange(field.value.length, field.value.length);
  }

  stopEditing() {
    const id = this.editingId;
    this.editingId = null;
    this.render();
    document.querySelector(`#message-${id} .message-actions button`)?.focus();
  }

  editor(message) {
    const field = el("textarea", { "aria-label": "Edit message", rows: 2, maxlength: this.limits.message_max_length });
    field.value = messageText(message);
    const save = () => {
      const body = field.value.trim();
      if (!body) return;
      if (body !== messageText(message)) this.actions.edit(message, body);
      this.stopEditing();
    };
    field.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        this.stopEditing();
      } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        save();
      }
    });
    return el(
      "form",
      {
        class: "edit-form",
        onsubmit: (event) => {
          event.preventDefault();
          save();
        },
      },
      field,
      el(
        "div",
        { class: "actions" },
        el("button", { type: "submit" }, "Save"),
        el("button", { type: "button", class: "secondary", onclick: () => this.stopEditing() }, "Cancel"),
      ),
    );
  }

  // The composer

  bindComposer() {
    const { composer, input } = this.dom;
    composer.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      } else if (event.key === "Escape" && this.replyTo) {
        event.preventDefault();
        this.setReply(null);
      } else if (event.key === "ArrowUp" && !input.value && !event.shiftKey && !event.altKey && !event.ctrlKey) {
        // Up in an empty composer edits your last message, as in most chat apps.
        const last = this.lastOwnEditable();
        if (last) {
          event.preventDefault();
          this.startEditing(last.id);
        }
      }
    });
    input.addEventListener("input", () => {
      this.fitComposer();
      this.showComposerError("");
      const now = Date.now();
      if (input.value.trim() && now - this.lastTypingSent > TYPING_SEND_INTERVAL_MS) {
        this.lastTypingSent = now;
        this.actions.typing(this.store.activeId);
      }
    });
  }

  submit() {
    const conversation = this.conversation;
    const body = this.dom.input.value.trim();
    if (!conversation || !body) return;
    if (this.moderationHold(conversation) || (conversation.encrypted && this.keys.blockers(conversation))) return;
    const limit = this.limits.message_max_length;
    if (limit && body.length > limit) {
      this.showComposerError(`That message is too long: ${body.length} characters, at most ${limit}.`);
      return;
    }
    this.actions.send(conversation.id, body, this.replyTo?.id ?? null);
    this.dom.input.value = "";
    this.lastTypingSent = 0;
    this.setReply(null);
    this.fitComposer();
    this.scrollToBottom();
  }

  showComposerError(text) {
    this.dom.composerError.textContent = text;
    this.dom.composerError.hidden = !text;
  }

  /** Grow the textarea with its text, up to a third of the window. */
  fitComposer() {
    const input = this.dom.input;
    input.style.height = "auto";
    if (!input.scrollHeight) return; // not laid out (hidden): keep the stylesheet's height
    input.style.height = `${Math.min(input.scrollHeight + 2, Math.round(window.innerHeight / 3))}px`;
  }

  setReply(message) {
    this.replyTo = message;
    this.dom.reply.hidden = !message;
    if (!message) return;
    this.dom.replySender.textContent = displayName(message.sender);
    this.dom.replyText.textContent = snippet(message);
    this.dom.input.focus();
  }

  // Typing line

  renderTyping() {
    const conversation = this.conversation;
    const users = conversation ? this.store.typingUsers(conversation.id) : [];
    const names = users.map(displayName);
    let text = "";
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = "Several people are typing…";
    if (this.dom.typing.textContent !== text) this.dom.typing.textContent = text;
  }
}

/** The line under the history when members are listed whom no system line accounts for. */
function membershipWarning(names) {
  const who = names.length === 1 ? `${names[0]} is a member` : `${names.slice(0, -1).join(", ")} and ${names.at(-1)} are members`;
  return el(
    "li",
    { class: "system-message membership-warning", role: "note" },
    icon("shield"),
    " ",
    el("strong", {}, "Security warning: "),
    `${who}, but no line in this conversation says who added them. ` +
      "The server may have added them without anyone's say. Ask the members before you write anything private.",
  );
}

/** The warning shown in a conversation that was end-to-end encrypted and that the server now calls plaintext. */
function downgradeWarning() {
  return [
    icon("shield"),
    el(
      "span",
      { class: "security-warning" },
      el("strong", {}, "Security warning: "),
      "this conversation was end-to-end encrypted, and the server now says it is not. " +
        "Nothing you write is sent here, and its messages are not shown. " +
        "Tell the other members through another channel and ask the site's operators why.",
    ),
  ];
}

function isContinuation(previous, message) {
  if (!previous || previous.sender.id !== message.sender.id) return false;
  if (previous.kind === "system" || message.kind === "system") return false;
  if (message.reply_to) return false;
  const gap = new Date(message.created_at) - new Date(previous.created_at);
  return gap >= 0 && gap < GROUP_WINDOW_MS && dayKey(new Date(previous.created_at)) === dayKey(new Date(message.created_at));
}

function daySeparator(date) {
  // A list item holding a heading (not role=separator, which a list may not contain).
  return el("li", { class: "day-separator" }, el("h2", { class: "day-heading" }, formatDay(date)));
}

/** Mark a sender's picture so that a click opens their profile card (profile-card.js). */
function profileLink(picture, sender) {
  if (sender?.username) picture.dataset.profile = sender.username;
  return picture;
}

function actionButton(iconName, label, onclick) {
  return el("button", { type: "button", class: "icon-button", "aria-label": label, title: label, onclick }, icon(iconName));
}

function snippet(message) {
  if (message.deleted) return "Deleted message";
  const source = messageText(message);
  if (source === null) return "Encrypted message";
  const text = plainText(source).replace(/\s+/g, " ");
  return text.length > QUOTE_LENGTH ? `${text.slice(0, QUOTE_LENGTH)}…` : text;
}
