// The search dialog: one box, one list of hits. Plaintext conversations are searched by the
// server (GET /api/search/); encrypted ones by the browser's own index (search-index.js), so
// their words never leave the page. A hit opens its conversation at the message.

import { api } from "./api.js";
import { displayName, el, formatDay, formatTime, icon } from "./dom.js";

const SEARCH_DELAY_MS = 300;

export class SearchDialog {
  constructor({ store, dialog, onJump, localSearch = null }) {
    this.store = store;
    this.dialog = dialog;
    this.onJump = onJump;
    this.localSearch = localSearch; // {search(query, {conversationId}) -> Promise<[hit]>} for encrypted history
    this.form = dialog.querySelector("form");
    this.input = dialog.querySelector("[name=q]");
    this.scope = dialog.querySelector("[name=scope]");
    this.sender = dialog.querySelector("[name=sender]");
    this.after = dialog.querySelector("[name=after]");
    this.before = dialog.querySelector("[name=before]");
    this.list = dialog.querySelector("[data-results]");
    this.status = dialog.querySelector("[data-status]");
    this.note = dialog.querySelector("[data-note]");
    this.more = dialog.querySelector("[data-more]");
    this.ticket = 0;
    this.page = 1;
    this.timer = null;
    dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.run();
    });
    this.input.addEventListener("input", () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.run(), SEARCH_DELAY_MS);
    });
    for (const field of [this.scope, this.sender, this.after, this.before]) field.addEventListener("change", () => this.run());
    this.scope.addEventListener("change", () => this.explain());
    this.more.addEventListener("click", () => this.run({ page: this.page + 1 }));
  }

  open() {
    const active = this.store.conversations.get(this.store.activeId);
    const here = this.scope.querySelector("[value=here]");
    here.disabled = !active;
    here.textContent = active ? `In ${this.store.title(active)}` : "In this conversation";
    if (!active) this.scope.value = "all";
    // In an encrypted conversation the search starts there: on this device, the server never asked.
    if (active?.encrypted && this.scope.value === "all") this.scope.value = "here";
    this.explain();
    this.dialog.showModal();
    this.input.focus();
    this.input.select();
  }

  /** Say who sees the search words for the chosen scope. */
  explain() {
    const conversation = this.scope.value === "here" ? this.store.conversations.get(this.store.activeId) : null;
    const local = this.scope.value === "encrypted" || conversation?.encrypted;
    this.note.textContent = local
      ? "Encrypted messages are searched on this device only; the server never sees what you search for."
      : "Public channels and unencrypted groups are searched by the server; encrypted conversations on this device only.";
  }

  /** True when the server is not to be asked at all (only encrypted history is searched). */
  localOnly(filters) {
    return this.scope.value === "encrypted" || Boolean(this.store.conversations.get(filters.conversationId)?.encrypted);
  }

  filters() {
    const conversationId = this.scope.value === "here" ? this.store.activeId : null;
    return {
      conversationId,
      sender: this.sender.value.trim(),
      after: this.after.value,
      before: this.before.value,
    };
  }

  async run({ page = 1 } = {}) {
    clearTimeout(this.timer);
    const query = this.input.value.trim();
    const ticket = ++this.ticket;
    if (!query) {
      this.list.replaceChildren();
      this.more.hidden = true;
      this.say("");
      return;
    }
    const filters = this.filters();
    this.say("Searching…");
    this.list.setAttribute("aria-busy", "true");
    const conversation = this.store.conversations.get(filters.conversationId);
    if (conversation && !conversation.encrypted && this.scope.value === "here") filters.localSkip = true;
    let serverHits = [];
    let localHits = [];
    let hasMore = false;
    const problems = [];
    try {
      // The server is asked only about plaintext conversations; never about an encrypted one.
      if (!this.localOnly(filters)) {
        const answer = await api.search({ q: query, ...filters, page });
        serverHits = answer.results.map((hit) => ({ ...hit, source: "server" }));
        hasMore = answer.has_more;
      }
    } catch (error) {
      problems.push(error.message);
    }
    try {
      if (this.localSearch && page === 1 && !filters.localSkip) {
        localHits = await this.localSearch.search(query, filters);
      }
    } catch (error) {
      problems.push(`Encrypted history: ${error.message}`);
    }
    if (ticket !== this.ticket) return; // a newer search has started
    this.list.removeAttribute("aria-busy");
    const hits = [...localHits, ...serverHits];
    const items = hits.map((hit) => this.item(hit));
    if (page === 1) this.list.replaceChildren(...items);
    else this.list.append(...items);
    this.page = page;
    this.more.hidden = !hasMore;
    const shown = this.list.children.length;
    const counted = shown ? `${shown}${hasMore ? "+" : ""} result${shown === 1 ? "" : "s"}` : "No messages found.";
    this.say(problems.length ? `${counted} ${problems.join(" ")}` : counted);
  }

  say(text) {
    this.status.textContent = text;
  }

  item(hit) {
    const message = hit.message;
    const conversation = this.store.conversations.get(message.conversation);
    const where = conversation ? this.store.title(conversation) : hit.conversation?.name || "a conversation";
    const kind = conversation?.kind ?? hit.conversation?.kind;
    const created = new Date(message.created_at);
    const button = el(
      "button",
      {
        type: "button",
        class: "search-hit",
        dataset: { messageId: message.id, conversationId: message.conversation },
        onclick: () => {
          this.dialog.close();
          this.onJump(message.conversation, message.id);
        },
      },
      el(
        "span",
        { class: "search-hit-meta" },
        icon(kind === "channel" ? "hash" : kind === "group" ? "group" : "person"),
        el("span", { class: "search-hit-where" }, where),
        hit.source === "local" ? el("span", { class: "search-hit-badge", title: "Found by this browser; the server never saw this search" }, icon("lock"), "on this device") : null,
        el("span", { class: "search-hit-who" }, displayName(message.sender)),
        el("time", { datetime: message.created_at }, `${formatDay(created)} ${formatTime(created)}`),
      ),
      el("span", { class: "search-hit-snippet" }, highlighted(hit.snippet, hit.highlights)),
    );
    return el("li", {}, button);
  }
}

/** Return the snippet as text nodes, the matched ranges inside <mark> elements. */
export function highlighted(snippet, highlights = []) {
  const fragment = document.createDocumentFragment();
  let position = 0;
  for (const [start, end] of [...highlights].sort((a, b) => a[0] - b[0])) {
    if (start < position || end <= start) continue;
    fragment.append(snippet.slice(position, start), el("mark", {}, snippet.slice(start, end)));
    position = end;
  }
  fragment.append(snippet.slice(position));
  return fragment;
}
