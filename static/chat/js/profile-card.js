// The profile card: who someone is (picture, names, status, bio), whether they are here (online
// or last seen), where their encryption key stands, and a button to message them.
//
// Anything in the page with data-profile="USERNAME" opens it when clicked, so the views only
// mark names and pictures; this module does the rest.

import { api } from "./api.js";
import { avatar, displayName, el } from "./dom.js";
import { verifiedBadge } from "./people.js";

const MINUTE = 60 * 1000;
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const dateFormat = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "long", day: "numeric" });

/** "Last seen 5 minutes ago", "yesterday", or a date for long ago. */
export function lastSeenText(iso, now = Date.now()) {
  if (!iso) return "Offline";
  const ago = now - new Date(iso).getTime();
  if (ago < MINUTE) return "Last seen just now";
  if (ago < 60 * MINUTE) return `Last seen ${relative.format(-Math.round(ago / MINUTE), "minute")}`;
  if (ago < 24 * 60 * MINUTE) return `Last seen ${relative.format(-Math.round(ago / (60 * MINUTE)), "hour")}`;
  if (ago < 7 * 24 * 60 * MINUTE) return `Last seen ${relative.format(-Math.round(ago / (24 * 60 * MINUTE)), "day")}`;
  return `Last seen on ${dateFormat.format(new Date(iso))}`;
}

export class ProfileCard {
  constructor({ store, keys, dialog, actions }) {
    this.store = store;
    this.keys = keys;
    this.dialog = dialog;
    this.actions = actions;
    this.body = dialog.querySelector("[data-profile-body]");
    this.errorBox = dialog.querySelector("[data-error]");
    this.ticket = 0;
    dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
    // A click on the backdrop (outside the card) closes it, as people expect of a card.
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) dialog.close();
    });
    document.addEventListener("click", (event) => {
      const trigger = event.target.closest?.("[data-profile]");
      if (!trigger || trigger.closest("dialog#profile-dialog")) return;
      event.preventDefault();
      this.open(trigger.dataset.profile);
    });
    keys.addEventListener("change", () => {
      if (this.dialog.open && this.user) this.render(this.user);
    });
  }

  /** Open the card for a username: what the page knows shows at once, the server's answer follows. */
  async open(username) {
    const ticket = ++this.ticket;
    const known = this.knownMember(username);
    this.user = known ?? { username };
    this.showError("");
    this.render(this.user);
    if (!this.dialog.open) this.dialog.showModal();
    this.dialog.querySelector("[data-close]").focus();
    try {
      const profile = await api.user(username);
      if (ticket !== this.ticket) return;
      this.user = { ...known, ...profile };
      this.render(this.user);
    } catch (error) {
      if (ticket === this.ticket) this.showError(error.message);
    }
  }

  /** The member object from a conversation (it carries the public key), if we share one. */
  knownMember(username) {
    const wanted = username.toLowerCase();
    for (const conversation of this.store.conversations.values()) {
      const member = conversation.members.find((other) => other.username.toLowerCase() === wanted);
      if (member) return member;
    }
    return null;
  }

  render(user) {
    const me = user.id === this.store.me.id;
    const name = displayName(user);
    const online = user.id !== undefined && (this.store.online.has(user.id) || user.online);
    const presence = me || online ? "Online" : user.last_seen !== undefined ? lastSeenText(user.last_seen) : "";
    const parts = [
      el(
        "div",
        { class: "profile-top" },
        user.avatar_url ? avatar(user, 96) : el("span", { class: "avatar avatar-blank profile-avatar-blank", "aria-hidden": "true" }),
        el(
          "div",
          { class: "profile-names" },
          el("h2", { id: "profile-title" }, name),
          el("p", { class: "muted profile-username" }, `@${user.username}`),
          presence
            ? el("p", { class: "profile-presence", "data-presence": online || me ? "online" : "offline" }, el("span", { class: `presence-dot${online || me ? " online" : ""}` }), presence)
            : null,
        ),
      ),
      user.status ? el("p", { class: "profile-status" }, user.status) : null,
      user.bio ? el("p", { class: "profile-bio" }, user.bio) : null,
      me ? null : this.keyState(user),
      el("div", { class: "actions" }, ...this.buttons(user, me)),
    ];
    this.body.replaceChildren(...parts.filter(Boolean));
  }

  /** Where the person's encryption key stands, as the safety-number dialog would say it. */
  keyState(user) {
    if (user.public_key === undefined) return null; // no shared conversation: nothing pinned to tell
    if (!user.public_key) return el("p", { class: "key-state", "data-key-state": "none" }, "Has not set up encryption yet.");
    if (this.keys.changed.has(user.id)) {
      return el("p", { class: "key-state warning", "data-key-state": "changed" }, "Their key changed. Compare safety numbers, then accept the new key.");
    }
    if (this.keys.isVerified(user.id)) {
      return el("p", { class: "key-state", "data-key-state": "verified" }, verifiedBadge(), " You compared safety numbers.");
    }
    return el("p", { class: "key-state", "data-key-state": "unverified" }, "Safety number not verified yet.");
  }

  buttons(user, me) {
    if (me) return [el("a", { class: "button secondary", href: "/profile/" }, "Edit your profile")];
    const name = displayName(user);
    const buttons = [
      el("button", { type: "button", "data-message": "", onclick: () => this.message(user) }, "Message"),
    ];
    if (user.public_key) {
      buttons.push(
        el(
          "button",
          { type: "button", class: "secondary", "aria-label": `Safety number with ${name}`, onclick: () => this.actions.safety(user) },
          "Safety number",
        ),
      );
    }
    return buttons;
  }

  async message(user) {
    this.showError("");
    try {
      const id = await this.actions.startDirect(user.username);
      for (const open of document.querySelectorAll("dialog[open]")) open.close();
      this.actions.open(id);
    } catch (error) {
      this.showError(error.message);
    }
  }

  showError(text) {
    this.errorBox.textContent = text;
    this.errorBox.hidden = !text;
  }
}
