// Who is here: the online list beside the messages and the members dialog of groups and channels.
// Names carry data-profile, so a click opens the profile card (profile-card.js).

import { personResult, userSearch } from "./dialogs.js";
import { avatar, displayName, el, icon } from "./dom.js";

const MANAGERS = new Set(["owner", "admin"]);

export class OnlineList {
  constructor({ store, list, heading }) {
    this.store = store;
    this.list = list;
    this.heading = heading;
  }

  render() {
    const conversation = this.store.conversations.get(this.store.activeId);
    const online = (conversation?.members ?? [])
      .filter((member) => this.store.online.has(member.id))
      .sort((a, b) => displayName(a).localeCompare(displayName(b)));
    this.heading.textContent = `Online — ${online.length}`;
    this.list.replaceChildren(
      ...online.map((member) =>
        el(
          "li",
          { class: "person", dataset: { userId: member.id } },
          el(
            "button",
            { type: "button", class: "person-button", dataset: { profile: member.username }, title: `Profile of ${displayName(member)}` },
            avatar(member, 24),
            el(
              "span",
              { class: "person-text" },
              el(
                "span",
                { class: "person-name" },
                displayName(member),
                member.id === this.store.me.id ? el("span", { class: "muted" }, " (you)") : null,
              ),
              member.status ? el("span", { class: "person-status" }, member.status) : null,
            ),
          ),
        ),
      ),
    );
  }
}

/** The "Verified" badge beside a contact whose safety number the user compared. */
export function verifiedBadge() {
  return el("span", { class: "verified-badge", title: "Safety number verified" }, icon("shield"), "Verified");
}

export class MembersDialog {
  constructor({ store, keys, dialog, actions }) {
    this.store = store;
    this.keys = keys;
    this.dialog = dialog;
    this.actions = actions;
    this.list = dialog.querySelector("[data-members-list]");
    this.inviteForm = dialog.querySelector("[data-invite-form]");
    this.inviteInput = this.inviteForm.querySelector("input");
    this.leaveButton = dialog.querySelector("[data-leave]");
    this.errorBox = dialog.querySelector("[data-error]");
    this.heading = dialog.querySelector("h2");
    this.inviteResults = dialog.querySelector("[data-invite-results]");
    this.inviteForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.invite();
    });
    // The same search as "New group": names or usernames, people already in are left out.
    userSearch(this.inviteInput, {
      exclude: (user) => this.conversation?.members.some((member) => member.id === user.id),
      onError: (text) => this.showError(text),
      render: (users) => this.renderFound(users),
    });
    this.leaveButton.addEventListener("click", () => this.run(() => this.actions.leave(this.conversation)));
    dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
  }

  get conversation() {
    return this.store.conversations.get(this.store.activeId) ?? null;
  }

  get canManage() {
    const conversation = this.conversation;
    const me = conversation?.members.find((member) => member.id === this.store.me.id);
    return MANAGERS.has(me?.role ?? conversation?.role);
  }

  open() {
    if (!this.conversation) return;
    this.showError("");
    this.inviteInput.value = "";
    this.inviteResults.replaceChildren();
    this.render();
    this.dialog.showModal();
    (this.inviteForm.hidden ? this.leaveButton : this.inviteInput).focus();
  }

  render() {
    const conversation = this.conversation;
    if (!conversation) {
      if (this.dialog.open) this.dialog.close();
      return;
    }
    const kind = conversation.kind === "channel" ? "channel" : "group";
    this.heading.textContent = `Members of ${this.store.title(conversation)}`;
    this.inviteForm.hidden = !(conversation.kind === "group" && this.canManage);
    this.leaveButton.textContent = `Leave ${kind}`;
    const members = [...conversation.members].sort((a, b) => displayName(a).localeCompare(displayName(b)));
    this.list.replaceChildren(...members.map((member) => this.row(conversation, member)));
  }

  row(conversation, member) {
    const me = member.id === this.store.me.id;
    const removable = !me && this.canManage && conversation.kind === "group" && member.role !== "owner";
    return el(
      "li",
      { class: "person" },
      avatar(member, 28),
      el(
        "span",
        { class: "person-text" },
        el(
          "button",
          { type: "button", class: "link-button person-name", dataset: { profile: member.username }, title: "Show profile" },
          displayName(member),
          el("span", { class: "muted" }, ` @${member.username}${me ? " (you)" : ""}`),
        ),
        member.status ? el("span", { class: "person-status" }, member.status) : null,
      ),
      member.role && member.role !== "member" ? el("span", { class: "role" }, member.role) : null,
      conversation.encrypted && !me ? this.keyState(member) : null,
      el("span", { class: `presence-dot${this.store.online.has(member.id) ? " online" : ""}`, title: this.store.online.has(member.id) ? "Online" : "Offline" }),
      removable
        ? el(
            "button",
            {
              type: "button",
              class: "secondary small",
              "aria-label": `Remove ${displayName(member)}`,
              onclick: () => this.run(() => this.actions.remove(conversation, member)),
            },
            "Remove",
          )
        : null,
    );
  }

  /** In an encrypted conversation: whether the member has a key, and its trust. */
  keyState(member) {
    if (!member.public_key) return el("span", { class: "key-state" }, "No encryption key yet");
    const name = displayName(member);
    const safety = el(
      "button",
      { type: "button", class: "secondary small", "aria-label": `Safety number with ${name}`, onclick: () => this.actions.safety(member) },
      "Safety number",
    );
    if (this.keys.changed.has(member.id)) return [el("span", { class: "key-state warning" }, "Key changed"), safety];
    return [this.keys.isVerified(member.id) ? verifiedBadge() : null, safety];
  }

  renderFound(users) {
    const query = this.inviteInput.value.trim();
    this.inviteResults.replaceChildren(
      ...users.map((user) =>
        personResult(user, {
          label: `Invite ${displayName(user)} (@${user.username})`,
          onclick: () => this.invite(user.username),
        }),
      ),
    );
    if (query && !users.length) this.inviteResults.replaceChildren(el("li", { class: "muted" }, "Nobody found to invite."));
  }

  async invite(chosen = null) {
    const username = (chosen ?? this.inviteInput.value).trim().replace(/^@/, "");
    if (!username) {
      this.showError("Type the username of the person to invite.");
      return;
    }
    if (await this.run(() => this.actions.invite(this.conversation, username))) {
      this.inviteInput.value = "";
      this.inviteResults.replaceChildren();
      this.inviteInput.focus();
    }
  }

  /** Run a member action; show its error in the dialog. Return true on success. */
  async run(action) {
    this.showError("");
    try {
      await action();
      this.render();
      return true;
    } catch (error) {
      this.showError(error.message);
      return false;
    }
  }

  showError(text) {
    this.errorBox.textContent = text;
    this.errorBox.hidden = !text;
  }
}
