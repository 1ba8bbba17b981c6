// The sidebar: one row per conversation with its kind, name, last message and unread badge.

import { avatar, el, icon } from "./dom.js";
import { attachmentSummary } from "./attachment-view.js";
import { plainText } from "./markdown.js";
import { messageText } from "./store.js";
import { systemText } from "./system.js";

const KIND_LABELS = { direct: "Direct message", group: "Group", channel: "Channel" };

export class ConversationList {
  constructor({ store, root, empty, onOpen }) {
    this.store = store;
    this.root = root;
    this.empty = empty;
    this.onOpen = onOpen;
  }

  render() {
    const conversations = this.store.sortedConversations();
    const focusedId = this.root.contains(document.activeElement) ? document.activeElement.dataset.conversationId : null;
    // Rows are updated in place, keyed by conversation: a click that lands while the list
    // re-renders (a presence change, a new preview) still reaches the row it was aimed at.
    const rows = new Map([...this.root.children].map((item) => [item.firstElementChild?.dataset.conversationId, item]));
    conversations.forEach((conversation, index) => {
      const fresh = this.row(conversation);
      let item = rows.get(String(conversation.id));
      rows.delete(String(conversation.id));
      if (!item) item = fresh;
      else if (item.firstElementChild.outerHTML !== fresh.firstElementChild.outerHTML) updateButton(item.firstElementChild, fresh.firstElementChild);
      if (this.root.children[index] !== item) this.root.insertBefore(item, this.root.children[index] ?? null);
    });
    for (const item of rows.values()) item.remove();
    this.empty.hidden = conversations.length > 0;
    // Moving a focused row takes its focus away; give it back.
    if (focusedId && document.activeElement?.dataset?.conversationId !== focusedId) {
      this.root.querySelector(`[data-conversation-id="${focusedId}"]`)?.focus();
    }
  }

  row(conversation) {
    const active = conversation.id === this.store.activeId;
    const unread = active ? 0 : conversation.unread ?? 0;
    const title = this.store.title(conversation);
    const mentions = active ? 0 : conversation.mentions ?? 0;
    const badge = unread
      ? el("span", { class: "badge", "aria-label": `${unread} unread` }, unread > 99 ? "99+" : String(unread))
      : null;
    const mentionBadge = mentions
      ? el("span", { class: "badge badge-mention", "aria-label": `${mentions} mention${mentions === 1 ? "" : "s"}` }, `@${mentions > 99 ? "99+" : mentions}`)
      : null;
    const button = el(
      "button",
      {
        type: "button",
        class: `conversation${active ? " active" : ""}${unread ? " has-unread" : ""}${conversation.muted ? " muted" : ""}`,
        "aria-current": active ? "true" : null,
        dataset: { conversationId: conversation.id },
        onclick: () => this.onOpen(conversation.id),
      },
      this.kindMark(conversation),
      el(
        "span",
        { class: "conversation-text" },
        el("span", { class: "conversation-name" }, title),
        el("span", { class: "visually-hidden" }, `, ${KIND_LABELS[conversation.kind] ?? conversation.kind}${conversation.muted ? ", mentions only" : ""}`),
        el("span", { class: "conversation-preview" }, this.preview(conversation)),
      ),
      conversation.downgraded
        ? el("span", { class: "lock downgraded", title: "Security warning: encryption was removed by the server" }, icon("shield"), el("span", { class: "visually-hidden" }, ", security warning"))
        : conversation.encrypted
          ? el("span", { class: "lock", title: "End-to-end encrypted" }, icon("lock"))
          : null,
      mentionBadge,
      badge,
    );
    return el("li", {}, button);
  }

  kindMark(conversation) {
    if (conversation.kind === "direct") {
      const other = this.store.otherMember(conversation);
      const online = other && this.store.online.has(other.id);
      return el(
        "span",
        { class: "kind kind-direct" },
        other ? avatar(other, 28) : icon("person"),
        el("span", { class: `presence-dot${online ? " online" : ""}` }),
        online ? el("span", { class: "visually-hidden" }, " (online)") : null,
      );
    }
    return el("span", { class: `kind kind-${conversation.kind}` }, icon(conversation.kind === "channel" ? "hash" : "group"));
  }

  preview(conversation) {
    const message = conversation.last_message;
    if (!message) return conversation.kind === "channel" ? conversation.topic || "" : "";
    if (message.kind === "system") return systemText(message, this.store);
    const who = message.sender.id === this.store.me.id ? "You" : message.sender.display_name || message.sender.username;
    if (message.deleted) return `${who}: message deleted`;
    // As a notification shows it: the Markdown markers dropped.
    const text = messageText(message);
    return `${who}: ${(text && plainText(text)) || attachmentSummary(message) || (text ?? "Encrypted message")}`;
  }
}

/** Make the kept button look like the fresh one; its click handler names the same conversation. */
function updateButton(kept, fresh) {
  for (const name of kept.getAttributeNames()) if (!fresh.hasAttribute(name)) kept.removeAttribute(name);
  for (const name of fresh.getAttributeNames()) kept.setAttribute(name, fresh.getAttribute(name));
  kept.replaceChildren(...fresh.childNodes);
}
