// Emoji reactions: the picker, the row of reactions under a message, and folding encrypted
// reactions (messages of kind "reaction", docs/protocol.md) into the messages they point at.

import { displayName, el } from "./dom.js";

export const COMMON_EMOJI = ["👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀", "✅", "🔥", "👏", "🚀", "🤔", "💯", "👎", "😊"];
const RECENT_KEY = "chatterbox-recent-emoji";
const RECENT_MAX = 8;
const COLUMNS = 8;

/**
 * Return Map(target message id -> {emoji: [user ids]}) from the encrypted reaction messages of
 * a log, applied in id order: the latest word of each person on each emoji counts.
 */
export function foldReactions(messages) {
  const folded = new Map();
  const reactions = messages.filter((m) => m.kind === "reaction" && m.decrypted?.reaction && !m.deleted);
  reactions.sort((a, b) => a.id - b.id);
  for (const message of reactions) {
    const { message: target, emoji, on } = message.decrypted.reaction;
    const byEmoji = folded.get(target) ?? new Map();
    folded.set(target, byEmoji);
    const users = byEmoji.get(emoji) ?? [];
    const without = users.filter((id) => id !== message.sender.id);
    byEmoji.set(emoji, on ? [...without, message.sender.id] : without);
  }
  const answer = new Map();
  for (const [target, byEmoji] of folded) {
    const map = {};
    for (const [emoji, users] of byEmoji) if (users.length) map[emoji] = users;
    answer.set(target, map);
  }
  return answer;
}

/** Apply a live `reaction` frame to a plaintext message's `reactions`; return the new map. */
export function applyReaction(reactions, { user, emoji, on }) {
  const next = { ...(reactions ?? {}) };
  const users = (next[emoji] ?? []).filter((id) => id !== user);
  if (on) users.push(user);
  if (users.length) next[emoji] = users;
  else delete next[emoji];
  return next;
}

export function recentEmoji() {
  try {
    const stored = JSON.parse(localStorage.getItem(RECENT_KEY) ?? "[]");
    return Array.isArray(stored) ? stored.filter((item) => typeof item === "string").slice(0, RECENT_MAX) : [];
  } catch {
    return [];
  }
}

function remember(emoji) {
  const recent = [emoji, ...recentEmoji().filter((item) => item !== emoji)].slice(0, RECENT_MAX);
  try {
    localStorage.setItem(RECENT_KEY, JSON.stringify(recent));
  } catch {
    // Private mode or full storage: recent emoji are a nicety.
  }
}

/**
 * The row of reactions under a message: one toggle button per emoji, who reacted in its label.
 * Without `onToggle` (nobody can write here: archived, or I am muted) the buttons only tell.
 */
export function reactionBar(reactions, { me, users, onToggle = null }) {
  const entries = Object.entries(reactions ?? {}).filter(([, ids]) => ids.length);
  if (!entries.length) return null;
  return el(
    "div",
    { class: "reactions", role: "group", "aria-label": "Reactions" },
    entries.map(([emoji, ids]) => {
      const mine = ids.includes(me.id);
      const names = ids.map((id) => (id === me.id ? "you" : displayName(users.get(id))));
      const who = names.length > 1 ? `${names.slice(0, -1).join(", ")} and ${names.at(-1)}` : names[0];
      const action = onToggle ? ` ${mine ? "Remove your reaction" : "React with " + emoji}` : "";
      return el(
        "button",
        {
          type: "button",
          class: mine ? "reaction mine" : "reaction",
          "aria-pressed": mine ? "true" : "false",
          "aria-disabled": onToggle ? null : "true",
          "aria-label": `${emoji} ${ids.length}: ${who}.${action}`,
          title: `Reacted with ${emoji}: ${who}`,
          dataset: { emoji },
          onclick: onToggle ? () => onToggle(emoji, !mine) : null,
        },
        el("span", { class: "reaction-emoji", "aria-hidden": "true" }, emoji),
        el("span", { class: "reaction-count", "aria-hidden": "true" }, String(ids.length)),
      );
    }),
  );
}

/** One picker for the page: a small grid of recent and common emoji, usable with arrow keys. */
export class ReactionPicker {
  constructor() {
    this.root = el("div", { class: "reaction-picker", role: "dialog", "aria-label": "Add a reaction", hidden: true });
    document.body.append(this.root);
    this.anchor = null;
    this.onPick = null;
    this.root.addEventListener("keydown", (event) => this.key(event));
    document.addEventListener("pointerdown", (event) => {
      if (!this.root.hidden && !this.root.contains(event.target) && event.target !== this.anchor) this.close();
    });
  }

  get isOpen() {
    return !this.root.hidden;
  }

  open(anchor, onPick) {
    this.anchor = anchor;
    this.onPick = onPick;
    const recent = recentEmoji();
    const choices = [...recent, ...COMMON_EMOJI.filter((emoji) => !recent.includes(emoji))].slice(0, COLUMNS * 2);
    const button = (emoji) =>
      el("button", { type: "button", class: "picker-emoji", "aria-label": emoji, tabindex: "-1", onclick: () => this.pick(emoji) }, emoji);
    this.root.replaceChildren(
      recent.length ? el("p", { class: "picker-heading" }, "Recent and common") : el("p", { class: "picker-heading" }, "Common"),
      el("div", { class: "picker-grid", role: "group", "aria-label": "Emoji" }, choices.map(button)),
    );
    this.root.hidden = false;
    this.place();
    this.buttons()[0]?.setAttribute("tabindex", "0");
    this.buttons()[0]?.focus();
  }

  place() {
    const box = this.anchor.getBoundingClientRect();
    const width = this.root.offsetWidth;
    const height = this.root.offsetHeight;
    const left = Math.max(8, Math.min(box.right - width, window.innerWidth - width - 8));
    const top = box.top - height - 6 > 8 ? box.top - height - 6 : Math.min(box.bottom + 6, window.innerHeight - height - 8);
    this.root.style.left = `${left}px`;
    this.root.style.top = `${top}px`;
  }

  buttons() {
    return [...this.root.querySelectorAll(".picker-emoji")];
  }

  key(event) {
    const buttons = this.buttons();
    const at = buttons.indexOf(document.activeElement);
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: COLUMNS, ArrowUp: -COLUMNS };
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      this.close();
    } else if (event.key in moves && at !== -1) {
      event.preventDefault();
      const next = buttons[Math.max(0, Math.min(buttons.length - 1, at + moves[event.key]))];
      buttons[at].setAttribute("tabindex", "-1");
      next.setAttribute("tabindex", "0");
      next.focus();
    } else if (event.key === "Home" || event.key === "End") {
      event.preventDefault();
      (event.key === "Home" ? buttons[0] : buttons.at(-1)).focus();
    } else if (event.key === "Tab") {
      event.preventDefault(); // one stop: arrows move inside, Escape leaves
    }
  }

  pick(emoji) {
    remember(emoji);
    const onPick = this.onPick;
    this.close();
    onPick?.(emoji);
  }

  close() {
    if (this.root.hidden) return;
    this.root.hidden = true;
    const anchor = this.anchor;
    this.anchor = null;
    if (anchor?.isConnected) anchor.focus();
  }
}
