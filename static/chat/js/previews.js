// Link previews under plaintext messages: the server fetches the page (GET
// /api/messages/ID/preview/); this module asks once per message version and draws a card.
// Encrypted conversations never ask: the server must not learn their links.

import { el } from "./dom.js";
import { firstPreviewLink } from "./markdown.js";

const answers = new Map(); // "id:edited_at" -> preview | null | Promise
// A slow linked site must not hold the browser's few connections to this server: history, reads
// and uploads need them. At most this many previews are asked for at once, the newest first.
const FETCHES_MAX = 2;
const waiting = [];
let running = 0;

function queued(task) {
  return new Promise((resolve, reject) => {
    waiting.push(() => task().then(resolve, reject));
    pump();
  });
}

function pump() {
  while (running < FETCHES_MAX && waiting.length) {
    const start = waiting.pop();
    running += 1;
    start().finally(() => {
      running -= 1;
      pump();
    });
  }
}

async function fetchPreview(messageId) {
  const response = await fetch(`/api/messages/${encodeURIComponent(messageId)}/preview/`, {
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  });
  if (response.status !== 200) return null;
  return response.json();
}

/** Return an element that fills with the message's link preview, or null when it can have none. */
export function previewSlot(message, conversation, { atBottom, toBottom } = {}) {
  if (!message.id || message.deleted || conversation?.encrypted || typeof message.body !== "string") return null;
  if (!firstPreviewLink(message.body)) return null;
  const key = `${message.id}:${message.edited_at ?? ""}`;
  const slot = el("div", { class: "link-preview-slot" });
  const fill = (preview) => {
    if (!preview) return;
    // A card that appears under the newest message keeps the view stuck to the bottom.
    const stick = slot.isConnected && atBottom?.();
    slot.replaceChildren(card(preview));
    if (stick) toBottom?.();
  };
  const known = answers.get(key);
  if (known instanceof Promise) known.then(fill);
  else if (known !== undefined) fill(known);
  else {
    const pending = queued(() => fetchPreview(message.id)).catch(() => null);
    answers.set(key, pending);
    pending.then((preview) => {
      answers.set(key, preview);
      fill(preview);
    });
  }
  return slot;
}

function card(preview) {
  let host = "";
  try {
    host = new URL(preview.url).host;
  } catch {
    return el("span");
  }
  return el(
    "div",
    { class: "link-preview" },
    el("span", { class: "link-preview-site" }, preview.site_name || host),
    el("a", { class: "link-preview-title", href: preview.url, target: "_blank", rel: "noopener noreferrer" }, preview.title || preview.url),
    preview.description ? el("p", { class: "link-preview-description" }, preview.description) : null,
  );
}
