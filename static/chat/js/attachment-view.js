// Attachments inside messages: pictures as thumbnails that open in the lightbox, voice notes as
// a small player, video messages inline with their poster, other files as a card to download.
//
// In an encrypted conversation the blob is fetched, opened with the secrets from the message's
// encrypted content (docs/e2e.md "Attachments") and shown from a blob: URL, revoked when the
// conversation is left. A blob URL only ever gets a type that cannot run script here.

import * as e2e from "./crypto.js";
import { el, icon } from "./dom.js";

const INLINE_PICTURES = new Set(["image/jpeg", "image/png", "image/webp", "image/gif"]);
const KINDS = new Set(["file", "picture", "voice", "video"]);

// key ("file:ID" / "thumb:ID") -> {promise of a blob: URL, conversation}
const blobUrls = new Map();
let lightbox = null;

export function useLightbox(instance) {
  lightbox = instance;
}

/** Return the message's attachment as a node, or null (none, deleted, or still unreadable). */
export function renderAttachment(message) {
  const server = message.attachment;
  if (!server || typeof server !== "object" || message.deleted) return null;
  if (message.decrypted) {
    if (message.decrypted.status !== "ok") return null;
    const secret = message.decrypted.attachment;
    if (!secret) return el("p", { class: "attachment-missing" }, icon("file"), " The attachment could not be decrypted.");
    return attachmentNode(describeEncrypted(message, server, secret));
  }
  return attachmentNode(describePlain(server));
}

/** Revoke the blob URLs made for other conversations than the one now shown. */
export function releaseMedia(keepConversationId = null) {
  for (const [key, entry] of blobUrls) {
    if (entry.conversation === keepConversationId) continue;
    entry.promise.then((url) => URL.revokeObjectURL(url)).catch(() => {});
    blobUrls.delete(key);
  }
}

/** Return a few words for a message's attachment ("Voice note"), for previews, or "" if none. */
export function attachmentSummary(message) {
  if (!message?.attachment || message.deleted) return "";
  const secret = message.decrypted?.attachment;
  if (message.decrypted && !secret) return "";
  const item = secret ? { kind: KINDS.has(secret.kind) ? secret.kind : "file", name: secret.name } : describePlain(message.attachment);
  const words = { picture: "Picture", voice: "Voice note", video: "Video message" }[item.kind];
  return words ?? `File: ${item.name || "file"}`;
}

/** Revoke the blob URLs of one attachment (its message was deleted). */
export function releaseAttachment(id) {
  for (const key of [`file:${id}`, `thumb:${id}`]) {
    blobUrls.get(key)?.promise.then((url) => URL.revokeObjectURL(url)).catch(() => {});
    blobUrls.delete(key);
  }
}

function describePlain(server) {
  const type = server.content_type || "application/octet-stream";
  let kind = "file";
  if (INLINE_PICTURES.has(type) && server.thumbnail_url) kind = "picture";
  else if (type.startsWith("audio/")) kind = "voice";
  else if (type.startsWith("video/")) kind = "video";
  return {
    id: server.id,
    kind,
    name: server.name || "file",
    type,
    size: server.size,
    width: server.width,
    height: server.height,
    duration: server.duration,
    source: () => Promise.resolve(server.url),
    thumbnail: server.thumbnail_url ? () => Promise.resolve(server.thumbnail_url) : null,
    downloadUrl: server.url,
  };
}

function describeEncrypted(message, server, secret) {
  const type = typeof secret.type === "string" ? secret.type.toLowerCase() : "application/octet-stream";
  let kind = KINDS.has(secret.kind) ? secret.kind : "file";
  // Whatever the sender claims, only these types are ever rendered.
  if (kind === "picture" && !INLINE_PICTURES.has(type)) kind = "file";
  if (kind === "voice" && !type.startsWith("audio/")) kind = "file";
  if (kind === "video" && !type.startsWith("video/")) kind = "file";
  const safeType = kind === "file" ? "application/octet-stream" : type;
  const conversation = message.conversation;
  return {
    id: server.id,
    kind,
    name: typeof secret.name === "string" && secret.name ? secret.name : "file",
    type,
    size: Number.isInteger(secret.size) ? secret.size : server.size,
    width: secret.width,
    height: secret.height,
    duration: typeof secret.duration === "number" ? secret.duration : null,
    encrypted: true,
    source: () => cached(`file:${server.id}`, conversation, () => decryptToUrl(server, secret, safeType)),
    thumbnail:
      typeof secret.thumbnail === "string"
        ? () => cached(`thumb:${server.id}`, conversation, async () => blobUrl(e2e.fromBase64(secret.thumbnail), "image/jpeg"))
        : null,
  };
}

function cached(key, conversation, make) {
  let entry = blobUrls.get(key);
  if (!entry) {
    entry = { conversation, promise: make() };
    blobUrls.set(key, entry);
    // A failure is not kept: the next render tries again.
    entry.promise.catch(() => blobUrls.delete(key));
  }
  return entry.promise;
}

async function decryptToUrl(server, secret, type) {
  const response = await fetch(server.url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(response.status === 404 ? "it is no longer available" : `the server answered ${response.status}`);
  const blob = new Uint8Array(await response.arrayBuffer());
  const bytes = e2e.openFile(blob, secret.key, secret.header);
  if (bytes === null || (Number.isInteger(secret.size) && bytes.length !== secret.size)) {
    throw new Error("it could not be decrypted");
  }
  return blobUrl(bytes, type);
}

function blobUrl(bytes, type) {
  return URL.createObjectURL(new Blob([bytes], { type }));
}

function attachmentNode(item) {
  if (item.kind === "picture") return pictureNode(item);
  if (item.kind === "voice") return voiceNode(item);
  if (item.kind === "video") return videoNode(item);
  return fileNode(item);
}

function pictureNode(item) {
  const image = el("img", { alt: item.name, class: "attachment-thumbnail", decoding: "async" });
  if (item.width && item.height) {
    // Reserve the thumbnail's box, so the history does not jump when it loads.
    const scale = Math.min(1, 320 / Math.max(item.width, item.height));
    image.width = Math.round(item.width * scale);
    image.height = Math.round(item.height * scale);
  }
  const button = el(
    "button",
    { type: "button", class: "attachment attachment-picture", "aria-label": `Open picture ${item.name}`, dataset: { kind: "picture" } },
    image,
  );
  (item.thumbnail ?? item.source)().then(
    (url) => (image.src = url),
    () => button.replaceWith(failedNode(item, "The picture could not be shown.")),
  );
  button.addEventListener("click", () => lightbox?.open({ source: item.source(), name: item.name, opener: button }));
  return button;
}

function voiceNode(item) {
  const audio = el("audio", { preload: "metadata" });
  const play = el("button", { type: "button", class: "icon-button voice-play", "aria-label": `Play voice note` }, icon("play"));
  const seek = el("input", { type: "range", min: 0, max: item.duration || 1, step: 0.1, value: 0, "aria-label": "Position in the voice note", class: "voice-seek" });
  const time = el("span", { class: "voice-time" }, `0:00 / ${clock(item.duration)}`);
  const node = el(
    "div",
    { class: "attachment attachment-voice", role: "group", "aria-label": `Voice note, ${clock(item.duration)}`, dataset: { kind: "voice" } },
    play,
    seek,
    time,
    audio,
  );
  const total = () => (Number.isFinite(audio.duration) && audio.duration > 0 ? audio.duration : item.duration || 0);
  const show = () => {
    seek.max = total() || 1;
    if (!seek.matches(":active")) seek.value = audio.currentTime;
    time.textContent = `${clock(audio.currentTime)} / ${clock(total())}`;
    const playing = !audio.paused && !audio.ended;
    play.replaceChildren(icon(playing ? "pause" : "play"));
    play.setAttribute("aria-label", playing ? "Pause voice note" : "Play voice note");
  };
  knowDuration(audio);
  for (const name of ["timeupdate", "play", "pause", "ended", "durationchange", "loadedmetadata"]) audio.addEventListener(name, show);
  play.addEventListener("click", () => (audio.paused ? audio.play().catch(() => {}) : audio.pause()));
  seek.addEventListener("input", () => {
    audio.currentTime = Number(seek.value);
  });
  item.source().then(
    (url) => (audio.src = url),
    (error) => node.replaceWith(failedNode(item, `The voice note could not be played: ${error.message}.`)),
  );
  return node;
}

function videoNode(item) {
  const video = el("video", { controls: true, playsinline: true, preload: "metadata", class: "video-message", "aria-label": `Video message, ${clock(item.duration)}` });
  if (item.width && item.height) {
    video.width = item.width;
    video.height = item.height;
  }
  knowDuration(video);
  const node = el("figure", { class: "attachment attachment-video", dataset: { kind: "video" } }, video, el("figcaption", { class: "attachment-meta" }, `Video message · ${clock(item.duration)}`));
  item.thumbnail?.().then((url) => (video.poster = url)).catch(() => {});
  item.source().then(
    (url) => (video.src = url),
    (error) => node.replaceWith(failedNode(item, `The video could not be played: ${error.message}.`)),
  );
  return node;
}

function fileNode(item) {
  const description = `${fileSize(item.size)} · ${item.type || "file"}`;
  const download = item.encrypted
    ? el("button", { type: "button", class: "small", "aria-label": `Download ${item.name}` }, icon("download"), "Download")
    : el("a", { class: "button small", href: item.downloadUrl, download: item.name, "aria-label": `Download ${item.name}` }, icon("download"), "Download");
  const status = el("span", { class: "attachment-status", role: "status" });
  if (item.encrypted) {
    download.addEventListener("click", async () => {
      status.textContent = "Decrypting…";
      try {
        const url = await item.source();
        const link = el("a", { href: url, download: item.name, hidden: true });
        document.body.append(link);
        link.click();
        link.remove();
        status.textContent = "";
      } catch (error) {
        status.textContent = `The file could not be downloaded: ${error.message}.`;
      }
    });
  }
  return el(
    "div",
    { class: "attachment attachment-file", dataset: { kind: "file" } },
    icon("file", "icon file-icon"),
    el("div", { class: "file-text" }, el("span", { class: "file-name" }, item.name), el("span", { class: "attachment-meta" }, description), status),
    download,
  );
}

function failedNode(item, text) {
  return el("p", { class: "attachment-missing" }, icon("file"), ` ${text}`);
}

/** MediaRecorder's WebM has no duration in its header; seeking to the end makes the browser find it. */
function knowDuration(media) {
  media.addEventListener("loadedmetadata", () => {
    if (media.duration !== Infinity) return;
    const reset = () => {
      media.removeEventListener("durationchange", reset);
      media.currentTime = 0;
    };
    media.addEventListener("durationchange", reset);
    media.currentTime = 1e101;
  });
}

export function clock(seconds) {
  const total = Math.max(0, Math.round(Number(seconds) || 0));
  return `${Math.floor(total / 60)}:${String(total % 60).padStart(2, "0")}`;
}

export function fileSize(bytes) {
  if (!Number.isFinite(bytes)) return "";
  if (bytes < 1024) return `${bytes} bytes`;
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
