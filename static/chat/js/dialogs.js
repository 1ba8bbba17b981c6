// The "New conversation" dialog (direct message, group, channels) and a confirmation dialog.

import { api } from "./api.js";
import { avatar, displayName, el, icon } from "./dom.js";

const SEARCH_DELAY_MS = 250;

/** Search users as the person types; call `render(users)` with the answer, errors to `onError`. */
export function userSearch(input, { exclude, render, onError }) {
  let timer = null;
  let latest = 0;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const query = input.value.trim();
    if (!query) {
      render([]);
      return;
    }
    timer = setTimeout(async () => {
      const ticket = ++latest;
      try {
        const users = await api.users(query);
        // Answers can overtake each other; only the newest question counts.
        if (ticket === latest) render(users.filter((user) => !exclude(user)));
      } catch (error) {
        onError(error.message);
      }
    }, SEARCH_DELAY_MS);
  });
}

export class NewConversationDialog {
  constructor({ store, dialog, actions, limits }) {
    this.store = store;
    this.dialog = dialog;
    this.actions = actions;
    this.limits = limits;
    this.tabs = [...dialog.querySelectorAll("[role=tab]")];
    this.errorBox = dialog.querySelector("[data-error]");
    this.invitees = new Map();
    dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
    this.bindTabs();
    this.bindDirect();
    this.bindGroup();
    this.bindChannels();
  }

  open(tabName = "direct") {
    this.showError("");
    this.dialog.showModal();
    this.selectTab(tabName);
  }

  showError(text) {
    this.errorBox.textContent = text;
    this.errorBox.hidden = !text;
  }

  /** Run an action that yields a conversation id, then close and open it; errors stay in the dialog. */
  async finish(action) {
    this.showError("");
    let conversationId;
    try {
      conversationId = await action();
    } catch (error) {
      this.showError(error.message);
      return;
    }
    this.dialog.close();
    this.actions.open(conversationId);
  }

  // Tabs: arrow keys move between them, as the ARIA tabs pattern expects.

  bindTabs() {
    this.tabs.forEach((tab, index) => {
      tab.addEventListener("click", () => this.selectTab(tab.dataset.tab));
      tab.addEventListener("keydown", (event) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (!step) return;
        event.preventDefault();
        const next = this.tabs[(index + step + this.tabs.length) % this.tabs.length];
        this.selectTab(next.dataset.tab);
        next.focus();
      });
    });
  }

  selectTab(name) {
    for (const tab of this.tabs) {
      const selected = tab.dataset.tab === name;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      document.getElementById(tab.getAttribute("aria-controls")).hidden = !selected;
    }
    this.showError("");
    if (name === "channels") this.loadChannels();
    this.dialog.querySelector(`#${name}-panel input`)?.focus();
  }

  // Direct message: find a person, start (or reopen) the DM.

  bindDirect() {
    const input = this.dialog.querySelector("#direct-search");
    const results = this.dialog.querySelector("#direct-results");
    userSearch(input, {
      exclude: (user) => user.id === this.store.me.id,
      onError: (text) => this.showError(text),
      render: (users) => {
        results.replaceChildren(
          ...users.map((user) =>
            personResult(user, {
              label: `Message ${displayName(user)} (@${user.username})${user.online ? ", online" : ""}`,
              onclick: () => this.finish(() => this.actions.startDirect(user.username)),
            }),
          ),
        );
        if (input.value.trim() && !users.length) results.replaceChildren(el("li", { class: "muted" }, "Nobody found."));
      },
    });
  }

  // Group: a name and the people to invite.

  bindGroup() {
    const form = this.dialog.querySelector("#group-form");
    const search = this.dialog.querySelector("#group-search");
    const results = this.dialog.querySelector("#group-results");
    this.chosenList = this.dialog.querySelector("#group-chosen");
    userSearch(search, {
      exclude: (user) => user.id === this.store.me.id || this.invitees.has(user.username),
      onError: (text) => this.showError(text),
      render: (users) => {
        results.replaceChildren(
          ...users.map((user) =>
            personResult(user, {
              label: `Add ${displayName(user)} (@${user.username}) to the group`,
              onclick: () => {
                this.invitees.set(user.username, user);
                this.renderInvitees();
                results.replaceChildren();
                search.value = "";
                search.focus();
              },
            }),
          ),
        );
      },
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const name = form.elements.name.value.trim();
      if (!name) {
        this.showError("Give the group a name.");
        form.elements.name.focus();
        return;
      }
      const most = this.limits.group_max_members;
      if (most && this.invitees.size + 1 > most) {
        this.showError(`A group has at most ${most} members, you included.`);
        return;
      }
      this.finish(async () => {
        const id = await this.actions.createGroup(name, [...this.invitees.keys()], form.elements.encrypted.checked);
        form.reset();
        this.invitees.clear();
        this.renderInvitees();
        return id;
      });
    });
  }

  renderInvitees() {
    this.chosenList.replaceChildren(
      ...[...this.invitees.values()].map((user) =>
        el(
          "li",
          { class: "chip" },
          displayName(user),
          el(
            "button",
            {
              type: "button",
              class: "chip-remove",
              "aria-label": `Do not invite ${displayName(user)}`,
              onclick: () => {
                this.invitees.delete(user.username);
                this.renderInvitees();
              },
            },
            "×",
          ),
        ),
      ),
    );
  }

  // Channels: browse and join the public ones, or create one.

  bindChannels() {
    this.channelList = this.dialog.querySelector("#channel-list");
    const form = this.dialog.querySelector("#channel-form");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const name = form.elements.name.value.trim();
      if (!name) {
        this.showError("Give the channel a name.");
        form.elements.name.focus();
        return;
      }
      this.finish(async () => {
        const id = await this.actions.createChannel(name, form.elements.topic.value.trim());
        form.reset();
        return id;
      });
    });
  }

  async loadChannels() {
    this.channelList.replaceChildren(el("li", { class: "muted" }, "Loading channels…"));
    let channels;
    try {
      channels = await api.channels();
    } catch (error) {
      this.channelList.replaceChildren();
      this.showError(error.message);
      return;
    }
    if (!channels.length) {
      this.channelList.replaceChildren(el("li", { class: "muted" }, "No public channels yet. Create the first one below."));
      return;
    }
    this.channelList.replaceChildren(...channels.map((channel) => this.channelRow(channel)));
  }

  channelRow(channel) {
    const count = `${channel.member_count} member${channel.member_count === 1 ? "" : "s"}`;
    return el(
      "li",
      { class: "channel-row" },
      icon("hash"),
      el(
        "span",
        { class: "channel-text" },
        el("span", { class: "conversation-name" }, channel.name),
        el("span", { class: "muted" }, channel.topic ? `${channel.topic} · ${count}` : count),
      ),
      el(
        "button",
        {
          type: "button",
          class: channel.joined ? "secondary small" : "small",
          "aria-label": `${channel.joined ? "Open" : "Join"} ${channel.name}`,
          onclick: () => this.finish(async () => (channel.joined ? channel.id : this.actions.join(channel.id))),
        },
        channel.joined ? "Open" : "Join",
      ),
    );
  }
}

/** Ask a yes/no question in the page's confirmation dialog; resolve to true for yes. */
export function confirmAction(dialog, { title, text, confirm }) {
  dialog.querySelector("h2").textContent = title;
  dialog.querySelector("p").textContent = text;
  const yes = dialog.querySelector("[value=confirm]");
  yes.textContent = confirm;
  dialog.returnValue = "";
  dialog.showModal();
  dialog.querySelector("[value=cancel]").focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
  });
}

/** Return a search result: a button with the person's picture, name, username and presence. */
export function personResult(user, { label, onclick }) {
  return el(
    "li",
    {},
    el(
      "button",
      { type: "button", class: "person-button", "aria-label": label, onclick },
      avatar(user, 28),
      el("span", { class: "person-name" }, displayName(user)),
      " ",
      el("span", { class: "muted" }, `@${user.username}`),
      user.status ? el("span", { class: "person-status" }, user.status) : null,
      user.online ? el("span", { class: "presence-dot online", title: "Online" }) : null,
    ),
  );
}
