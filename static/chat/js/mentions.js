// Mentions: who a message names (for highlighting, the mention badge and notifications), and
// the composer's "@" autocomplete over the conversation's members.
//
// `@username` names a member; `@channel` and `@here` name everyone and count only from the
// owner or an admin of a channel or group (the server refuses them from others in plaintext
// conversations; in encrypted ones this browser ignores them). An encrypted message also
// carries its list of mentioned user ids inside the ciphertext.

import { avatar, displayName, el } from "./dom.js";
import { mentionsOf } from "./markdown.js";
import { messageText } from "./store.js";

const EVERYONE = ["channel", "here"];
const SUGGESTIONS_MAX = 8;

function isAdmin(conversation, userId) {
  const member = conversation?.members.find((m) => m.id === userId);
  return conversation?.kind !== "direct" && (member?.role === "owner" || member?.role === "admin");
}

/** Return a predicate for markdown.js: does a mentioned username mean the reader? */
export function mentionContext(me, conversation, sender) {
  const everyone = isAdmin(conversation, sender?.id);
  return {
    isMe: (username) => {
      const name = username.toLowerCase();
      return name === me.username.toLowerCase() || (everyone && EVERYONE.includes(name));
    },
  };
}

/** Return true when a message from someone else mentions the reader. */
export function mentionsMe(message, conversation, me) {
  if (!message || message.sender?.id === me.id || message.deleted || message.kind === "reaction") return false;
  const text = messageText(message);
  if (!text || !text.includes("@")) return false;
  const { isMe } = mentionContext(me, conversation, message.sender);
  if (!mentionsOf(text).some(isMe)) return false;
  // Encrypted: the sealed list must name the reader too.
  if (conversation?.encrypted) return Array.isArray(message.decrypted?.mentions) && message.decrypted.mentions.includes(me.id);
  return true;
}

/** Return the ids of the members a text mentions, for the encrypted content's `mentions` list. */
export function mentionedIds(text, conversation, me) {
  const names = new Set(mentionsOf(text));
  const everyone = isAdmin(conversation, me.id) && EVERYONE.some((name) => names.has(name));
  return conversation.members
    .filter((member) => member.id !== me.id && (everyone || names.has(member.username.toLowerCase())))
    .map((member) => member.id);
}

/** The composer's "@" autocomplete: an ARIA combobox listbox under the textarea. */
export class MentionAutocomplete {
  constructor({ input, list, store }) {
    this.input = input;
    this.list = list;
    this.store = store;
    this.options = [];
    this.active = 0;
    this.start = -1;
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", list.id);
    input.addEventListener("input", () => this.update());
    input.addEventListener("click", () => this.update());
    input.addEventListener("blur", () => setTimeout(() => this.close(), 150));
    // Capture: the composer's own Enter (send) must not see the keys this list uses.
    input.addEventListener("keydown", (event) => this.key(event), true);
  }

  get isOpen() {
    return !this.list.hidden;
  }

  /** Look for "@prefix" just before the caret and offer the members that match. */
  update() {
    const conversation = this.store.conversations.get(this.store.activeId);
    const caret = this.input.selectionStart;
    const before = this.input.value.slice(0, caret);
    const match = /(^|[^\p{L}\p{N}_])@([\p{L}\p{N}_.+-]*)$/u.exec(before);
    if (!conversation || !match) {
      this.close();
      return;
    }
    this.start = caret - match[2].length - 1;
    const prefix = match[2].toLowerCase();
    const me = this.store.me;
    const people = conversation.members
      .filter((member) => member.id !== me.id)
      .filter((member) => member.username.toLowerCase().startsWith(prefix) || displayName(member).toLowerCase().split(/\s+/).some((word) => word.startsWith(prefix)))
      .map((member) => ({ username: member.username, label: displayName(member), user: member }));
    const everyone = isAdmin(conversation, me.id)
      ? EVERYONE.filter((name) => name.startsWith(prefix)).map((name) => ({
          username: name,
          label: name === "channel" ? "Everyone in this conversation" : "Everyone here",
        }))
      : [];
    this.options = [...people, ...everyone].slice(0, SUGGESTIONS_MAX);
    if (!this.options.length) {
      this.close();
      return;
    }
    this.active = 0;
    this.render();
  }

  render() {
    this.list.replaceChildren(
      ...this.options.map((option, index) =>
        el(
          "li",
          {
            id: `mention-option-${index}`,
            role: "option",
            class: index === this.active ? "mention-option active" : "mention-option",
            "aria-selected": index === this.active ? "true" : "false",
            onmousedown: (event) => {
              event.preventDefault(); // keep focus in the composer
              this.pick(index);
            },
          },
          option.user ? avatar(option.user, 22) : el("span", { class: "mention-everyone", "aria-hidden": "true" }, "@"),
          el("span", { class: "mention-label" }, option.label),
          el("span", { class: "mention-username" }, `@${option.username}`),
        ),
      ),
    );
    this.list.hidden = false;
    this.input.setAttribute("aria-activedescendant", `mention-option-${this.active}`);
  }

  key(event) {
    if (!this.isOpen || event.isComposing) return;
    const moves = { ArrowDown: 1, ArrowUp: -1 };
    if (event.key in moves) {
      this.active = (this.active + moves[event.key] + this.options.length) % this.options.length;
      this.render();
    } else if (event.key === "Enter" || event.key === "Tab") {
      this.pick(this.active);
    } else if (event.key === "Escape") {
      this.close();
    } else {
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
  }

  pick(index) {
    const option = this.options[index];
    if (!option) return;
    const value = this.input.value;
    const caret = this.input.selectionStart;
    const inserted = `@${option.username} `;
    this.input.value = value.slice(0, this.start) + inserted + value.slice(caret);
    const at = this.start + inserted.length;
    this.input.setSelectionRange(at, at);
    this.close();
    this.input.dispatchEvent(new Event("input", { bubbles: true }));
    this.close();
  }

  close() {
    if (this.list.hidden) return;
    this.list.hidden = true;
    this.list.replaceChildren();
    this.input.removeAttribute("aria-activedescendant");
  }
}
