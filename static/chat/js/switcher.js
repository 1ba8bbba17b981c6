// The quick switcher (Ctrl+K): type a few letters of a conversation or a person, arrows to
// choose, Enter to go. Conversations come from the page; people also from GET /api/users/.

import { api } from "./api.js";
import { avatar, displayName, el, icon, scrollWithin } from "./dom.js";

const RESULTS_MAX = 12;
const PEOPLE_DELAY_MS = 200;

export class QuickSwitcher {
  constructor({ store, dialog, onOpen, onPerson }) {
    this.store = store;
    this.dialog = dialog;
    this.onOpen = onOpen; // (conversation id)
    this.onPerson = onPerson; // (username): start or open the direct conversation
    this.input = dialog.querySelector("input");
    this.list = dialog.querySelector("[role=listbox]");
    this.items = [];
    this.active = 0;
    this.people = [];
    this.ticket = 0;
    this.timer = null;
    this.input.addEventListener("input", () => this.changed());
    this.input.addEventListener("keydown", (event) => this.key(event));
  }

  open() {
    if (this.dialog.open) return;
    this.input.value = "";
    this.people = [];
    this.items = [];
    this.render();
    this.dialog.showModal();
    this.input.focus();
  }

  changed() {
    this.items = []; // new words: start again from the best match
    this.render();
    clearTimeout(this.timer);
    const query = this.input.value.trim();
    if (!query) return;
    this.timer = setTimeout(async () => {
      const ticket = ++this.ticket;
      try {
        const users = await api.users(query);
        if (ticket !== this.ticket) return;
        this.people = users.filter((user) => user.id !== this.store.me.id);
        this.render();
      } catch {
        // The conversations still match; people from the server are a bonus.
      }
    }, PEOPLE_DELAY_MS);
  }

  /** Conversations first (unread ones first when nothing is typed), then people without a DM yet. */
  matches() {
    const query = this.input.value.trim().toLowerCase();
    const words = query.split(/\s+/).filter(Boolean);
    const fits = (...names) => words.every((word) => names.some((name) => name?.toLowerCase().split(/[\s._-]+/).some((part) => part.startsWith(word)) || name?.toLowerCase().startsWith(word)));
    const conversations = this.store
      .sortedConversations()
      .filter((conversation) => {
        const other = conversation.kind === "direct" ? this.store.otherMember(conversation) : null;
        return fits(this.store.title(conversation), other?.username);
      })
      .sort((a, b) => (query ? 0 : (b.unread ? 1 : 0) - (a.unread ? 1 : 0)))
      .map((conversation) => ({ kind: "conversation", conversation }));
    const direct = new Set(
      [...this.store.conversations.values()].filter((c) => c.kind === "direct").map((c) => this.store.otherMember(c)?.id),
    );
    const known = new Map();
    if (words.length) {
      for (const user of [...this.store.users.values(), ...this.people]) {
        if (user.id !== this.store.me.id && !direct.has(user.id) && fits(displayName(user), user.username)) known.set(user.id, user);
      }
    }
    const people = [...known.values()].map((user) => ({ kind: "person", user }));
    return [...conversations, ...people].slice(0, RESULTS_MAX);
  }

  render() {
    // People found by the server arrive after the conversations: keep the choice made meanwhile.
    const chosen = this.items[this.active];
    this.items = this.matches();
    const again = chosen ? this.items.findIndex((item) => itemKey(item) === itemKey(chosen)) : -1;
    this.active = again === -1 ? 0 : again;
    this.list.replaceChildren(
      ...this.items.map((item, index) =>
        el(
          "li",
          {
            id: `switcher-option-${index}`,
            role: "option",
            class: "switcher-option",
            "aria-selected": index === this.active ? "true" : "false",
            onmousedown: (event) => event.preventDefault(),
            onclick: () => this.choose(index),
          },
          ...this.label(item),
        ),
      ),
      ...(this.items.length ? [] : [el("li", { class: "switcher-empty", role: "presentation" }, "Nothing matches.")]),
    );
    this.highlight();
  }

  label(item) {
    if (item.kind === "person") {
      return [avatar(item.user, 24), el("span", { class: "switcher-name" }, displayName(item.user)), el("span", { class: "switcher-hint" }, `@${item.user.username} · new message`)];
    }
    const conversation = item.conversation;
    const kindIcon = { channel: "hash", group: "group", direct: "person" }[conversation.kind];
    const unread = conversation.unread ? el("span", { class: "badge", "aria-label": `${conversation.unread} unread` }, String(conversation.unread)) : null;
    return [icon(kindIcon), el("span", { class: "switcher-name" }, this.store.title(conversation)), conversation.encrypted ? icon("lock") : null, unread].filter(Boolean);
  }

  highlight() {
    [...this.list.querySelectorAll("[role=option]")].forEach((option, index) => {
      option.setAttribute("aria-selected", index === this.active ? "true" : "false");
      option.classList.toggle("active", index === this.active);
    });
    if (this.items.length) this.input.setAttribute("aria-activedescendant", `switcher-option-${this.active}`);
    else this.input.removeAttribute("aria-activedescendant");
    const active = this.list.querySelector(".active");
    if (active) scrollWithin(this.list, active);
  }

  key(event) {
    const moves = { ArrowDown: 1, ArrowUp: -1 };
    if (event.key in moves && this.items.length) {
      event.preventDefault();
      this.active = (this.active + moves[event.key] + this.items.length) % this.items.length;
      this.highlight();
    } else if (event.key === "Enter") {
      event.preventDefault();
      this.choose(this.active);
    }
  }

  choose(index) {
    const item = this.items[index];
    if (!item) return;
    this.dialog.close();
    if (item.kind === "conversation") this.onOpen(item.conversation.id);
    else this.onPerson(item.user.username);
  }
}

function itemKey(item) {
  return item.kind === "person" ? `person:${item.user.id}` : `conversation:${item.conversation.id}`;
}
