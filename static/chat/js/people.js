// Who is here: the online list beside the messages and the members dialog of groups and channels.
// Names carry data-profile, so a click opens the profile card (profile-card.js).

import { personResult, userSearch } from "./dialogs.js";
import { avatar, displayName, el, icon } from "./dom.js";

const MANAGERS = new Set(["owner", "admin"]);
// How long a mute lasts, as offered in the members dialog.
const MUTE_CHOICES = [
  ["15 minutes", 15 * 60],
  ["1 hour", 3600],
  ["1 day", 86400],
  ["1 week", 7 * 86400],
];

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

export function isMuted(member) {
  return Boolean(member?.muted_until && Date.parse(member.muted_until) > Date.now());
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
    this.settingsForm = dialog.querySelector("[data-settings-form]");
    this.archiveButton = dialog.querySelector("[data-archive]");
    this.settingsForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const fields = { name: this.settingsForm.elements.name.value.trim(), topic: this.settingsForm.elements.topic.value.trim() };
      this.run(() => this.actions.update(this.conversation, fields));
    });
    this.archiveButton.addEventListener("click", () =>
      this.run(() => this.actions.update(this.conversation, { archived: !this.conversation.archived })),
    );
    dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
  }

  get conversation() {
    return this.store.conversations.get(this.store.activeId) ?? null;
  }

  get myRole() {
    const conversation = this.conversation;
    const me = conversation?.members.find((member) => member.id === this.store.me.id);
    return me?.role ?? conversation?.role;
  }

  get canManage() {
    return MANAGERS.has(this.myRole);
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
    // An archived conversation takes no newcomers until it is unarchived.
    this.inviteForm.hidden = !(conversation.kind === "group" && this.canManage && !conversation.archived);
    this.leaveButton.textContent = `Leave ${kind}`;
    const members = [...conversation.members].sort((a, b) => displayName(a).localeCompare(displayName(b)));
    // Keep open "Manage" menus open across re-renders (a member event may arrive meanwhile).
    const open = new Set([...this.list.querySelectorAll("details[open]")].map((details) => details.dataset.userId));
    this.list.replaceChildren(...members.map((member) => this.row(conversation, member)));
    for (const details of this.list.querySelectorAll("details")) if (open.has(details.dataset.userId)) details.open = true;
    this.renderSettings(conversation);
  }

  renderSettings(conversation) {
    this.settingsForm.hidden = !this.canManage;
    if (!this.canManage) return;
    const { name, topic } = this.settingsForm.elements;
    if (document.activeElement !== name) name.value = conversation.name ?? "";
    if (document.activeElement !== topic) topic.value = conversation.topic ?? "";
    this.archiveButton.textContent = conversation.archived ? "Unarchive" : "Archive";
  }

  /** The owner's and admins' actions on one member, folded under "Manage". */
  manageMenu(conversation, member) {
    const mine = this.myRole;
    const name = displayName(member);
    const button = (label, onclick, extra = {}) =>
      el("button", { type: "button", class: "secondary small", onclick: () => this.run(onclick), ...extra }, label);
    const items = [];
    if (member.role === "member") items.push(button("Make admin", () => this.actions.setRole(conversation, member, "admin"), { "aria-label": `Make ${name} an admin` }));
    if (member.role === "admin" && mine === "owner") items.push(button("Make member", () => this.actions.setRole(conversation, member, "member"), { "aria-label": `Make ${name} a plain member` }));
    if (mine === "owner") items.push(button("Make owner", () => this.actions.transfer(conversation, member), { "aria-label": `Hand ownership to ${name}` }));
    const mutable = member.role === "member" || mine === "owner";
    if (mutable && isMuted(member)) {
      items.push(button("Unmute", () => this.actions.mute(conversation, member, null), { "aria-label": `Unmute ${name}` }));
    } else if (mutable) {
      const choice = el("select", { "aria-label": `How long to mute ${name}` }, MUTE_CHOICES.map(([label, seconds]) => el("option", { value: seconds }, label)));
      const mute = () => this.actions.mute(conversation, member, new Date(Date.now() + Number(choice.value) * 1000).toISOString());
      items.push(el("span", { class: "mute-choice" }, choice, button("Mute", mute, { "aria-label": `Mute ${name}` })));
    }
    if (member.role !== "admin" || mine === "owner") {
      items.push(button("Remove", () => this.actions.remove(conversation, member), { "aria-label": `Remove ${displayName(member)}` }));
    }
    return el(
      "details",
      { class: "manage-member", dataset: { userId: member.id } },
      el("summary", { "aria-label": `Manage ${name}` }, "Manage"),
      el("div", { class: "manage-actions" }, items),
    );
  }

  row(conversation, member) {
    const me = member.id === this.store.me.id;
    const manageable = !me && this.canManage && member.role !== "owner";
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
      isMuted(member) ? el("span", { class: "role muted-role", title: `Muted until ${new Date(member.muted_until).toLocaleString()}` }, "muted") : null,
      manageable ? this.manageMenu(conversation, member) : null,
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
