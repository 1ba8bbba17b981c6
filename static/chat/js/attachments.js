// Sending files: the paperclip, drag and drop, paste, and the upload queue with progress,
// cancel and retry. Each file becomes its own message once uploaded.
//
// In an encrypted conversation the file is prepared here first: a picture is redrawn on a
// canvas (which drops EXIF, GPS and all other metadata) and given a small thumbnail, a video
// message keeps its poster as a thumbnail, then the bytes are padded and encrypted
// (crypto.js sealFile) and only the blob is uploaded. Name, type, size, key and thumbnail go
// inside the message's encrypted content (docs/e2e.md "Attachments").

import { csrfToken } from "./api.js";
import { fileSize } from "./attachment-view.js";
import * as e2e from "./crypto.js";
import { el, icon } from "./dom.js";

const UPLOAD_PATH = "/api/attachments/";
const PICTURES = new Set(["image/jpeg", "image/png", "image/webp", "image/gif"]);
const THUMBNAIL_PX = 320;
const JPEG_QUALITY = 0.9;
const THUMBNAIL_QUALITY = 0.7;
// Well inside CHAT_CIPHERTEXT_MAX_BYTES once in base64 with the rest of the content.
const THUMBNAIL_MAX_BYTES = 24 * 1024;

export class AttachmentComposer {
  constructor({ store, keys, actions, limits, elements }) {
    this.store = store;
    this.keys = keys;
    this.actions = actions;
    this.limits = limits;
    this.dom = elements;
    this.items = new Map(); // local id -> upload item
    this.bind();
  }

  bind() {
    const { attachButton, fileInput, input, dropZone } = this.dom;
    attachButton.addEventListener("click", () => fileInput.click());
    fileInput.addEventListener("change", () => {
      this.addFiles([...fileInput.files]);
      fileInput.value = "";
    });
    input.addEventListener("paste", (event) => {
      const files = [...(event.clipboardData?.files ?? [])];
      if (!files.length) return;
      event.preventDefault();
      this.addFiles(files);
    });
    dropZone.addEventListener("dragover", (event) => {
      if (!event.dataTransfer?.types.includes("Files") || !this.writable()) return;
      event.preventDefault();
      dropZone.classList.add("dropping");
    });
    dropZone.addEventListener("dragleave", (event) => {
      if (!dropZone.contains(event.relatedTarget)) dropZone.classList.remove("dropping");
    });
    dropZone.addEventListener("drop", (event) => {
      dropZone.classList.remove("dropping");
      if (!event.dataTransfer?.files.length) return;
      event.preventDefault();
      this.addFiles([...event.dataTransfer.files]);
    });
  }

  /** Whether files can be sent in the open conversation now (an encrypted one needs every key). */
  writable() {
    const conversation = this.store.conversations.get(this.store.activeId);
    return Boolean(conversation) && !(conversation.encrypted && this.keys.blockers(conversation));
  }

  /** Queue files for the open conversation; `options` = {kind, duration, poster} for recordings. */
  addFiles(files, options = {}) {
    const conversationId = this.store.activeId;
    if (conversationId === null || !files.length) return;
    if (!this.writable()) {
      this.dom.showError("Files can be sent here once encryption is ready (see above).");
      return;
    }
    for (const file of files) {
      const item = { id: crypto.randomUUID(), file, conversationId, ...options, kind: options.kind ?? "file" };
      this.items.set(item.id, item);
      this.run(item);
    }
  }

  async run(item) {
    Object.assign(item, { state: "preparing", progress: 0, error: "", cancelled: false });
    this.render();
    const max = this.limits.attachment_max_bytes;
    if (max && item.file.size > max) {
      this.fail(item, `${item.file.name || "The file"} is too large: at most ${fileSize(max)}.`);
      return;
    }
    try {
      const conversation = this.store.conversations.get(item.conversationId);
      if (!conversation) throw new Error("You are no longer in this conversation.");
      const prepared = conversation.encrypted ? await sealForUpload(item) : plainForUpload(item);
      if (item.cancelled) return;
      item.state = "uploading";
      this.render();
      const server = await this.upload(item, prepared.form);
      if (item.cancelled) return;
      this.items.delete(item.id);
      this.render();
      const secret = prepared.secret ? { ...prepared.secret, id: server.id } : null;
      this.actions.send(item.conversationId, "", null, { server, secret });
    } catch (error) {
      if (!item.cancelled) this.fail(item, error.message);
    }
  }

  upload(item, form) {
    form.append("conversation", String(item.conversationId));
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      item.xhr = xhr;
      xhr.open("POST", UPLOAD_PATH);
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
      xhr.setRequestHeader("Accept", "application/json");
      xhr.responseType = "json";
      xhr.upload.addEventListener("progress", (event) => {
        if (!event.lengthComputable) return;
        item.progress = event.loaded / event.total;
        this.renderProgress(item);
      });
      xhr.addEventListener("load", () => {
        const answer = xhr.response;
        if (xhr.status === 201 && answer?.id) resolve(answer);
        else reject(new Error(uploadError(xhr.status, answer)));
      });
      xhr.addEventListener("error", () => reject(new Error("Cannot reach the server. Check your connection.")));
      xhr.addEventListener("abort", () => reject(new Error("Cancelled.")));
      xhr.send(form);
    });
  }

  fail(item, why) {
    item.state = "failed";
    item.error = why;
    this.render();
  }

  cancel(item) {
    item.cancelled = true;
    item.xhr?.abort();
    this.items.delete(item.id);
    this.render();
    this.dom.input.focus();
  }

  retry(item) {
    this.run(item);
  }

  // The queue under the composer: one row per file, for the open conversation only.

  render() {
    const rows = [...this.items.values()].filter((item) => item.conversationId === this.store.activeId);
    this.dom.queue.hidden = rows.length === 0;
    this.dom.queue.replaceChildren(...rows.map((item) => this.row(item)));
  }

  row(item) {
    const name = item.file.name || "file";
    const label = item.state === "failed" ? `Not sent: ${item.error}` : item.state === "preparing" ? "Preparing…" : progressLabel(item);
    const progress = el("progress", { max: 1, value: item.progress, "aria-label": `Upload of ${name}` });
    const buttons = [];
    if (item.state === "failed") {
      buttons.push(el("button", { type: "button", class: "small", onclick: () => this.retry(item), "aria-label": `Try sending ${name} again` }, "Try again"));
    }
    buttons.push(
      el("button", { type: "button", class: "small secondary", onclick: () => this.cancel(item), "aria-label": `Cancel ${name}` }, item.state === "failed" ? "Remove" : "Cancel"),
    );
    return el(
      "li",
      { class: `upload upload-${item.state}`, dataset: { uploadId: item.id } },
      icon("file"),
      el("span", { class: "upload-name" }, name),
      el("span", { class: "upload-size" }, fileSize(item.file.size)),
      item.state === "failed" ? null : progress,
      el("span", { class: item.state === "failed" ? "upload-status error" : "upload-status", role: item.state === "failed" ? "alert" : null }, label),
      ...buttons,
    );
  }

  renderProgress(item) {
    const row = this.dom.queue.querySelector(`[data-upload-id="${item.id}"]`);
    if (!row) return;
    row.querySelector("progress")?.setAttribute("value", String(item.progress));
    const status = row.querySelector(".upload-status");
    if (status) status.textContent = progressLabel(item);
  }
}

function progressLabel(item) {
  // Sent, but the server is still checking and storing it.
  return item.progress >= 1 ? "Processing…" : `Uploading… ${Math.round(item.progress * 100)}%`;
}

function uploadError(status, answer) {
  if (answer?.detail) return answer.detail;
  if (status === 413) return "The file is too large.";
  return `The server answered ${status}.`;
}

/** A plaintext conversation: the server checks and strips what it stores. */
function plainForUpload(item) {
  const form = new FormData();
  form.append("file", item.file, item.file.name || "file");
  form.append("kind", item.kind);
  if (item.duration) form.append("duration", item.duration.toFixed(3));
  if (item.poster) form.append("poster", item.poster, "poster.jpg");
  return { form, secret: null };
}

/** An encrypted conversation: clean, thumbnail, pad and encrypt here; upload only the blob. */
async function sealForUpload(item) {
  const file = item.file;
  let bytes;
  let type = baseType(file.type) || "application/octet-stream";
  const secret = { name: file.name || "file", kind: item.kind };
  if (item.kind === "file" && PICTURES.has(type)) {
    const picture = await redrawPicture(file, type).catch(() => null);
    if (picture) {
      ({ bytes, type } = picture);
      Object.assign(secret, { kind: "picture", width: picture.width, height: picture.height, thumbnail: picture.thumbnail });
    }
  }
  if (item.duration) secret.duration = Math.round(item.duration * 1000) / 1000;
  if (item.poster) {
    const poster = await redrawPicture(item.poster, "image/jpeg").catch(() => null);
    if (poster) Object.assign(secret, { thumbnail: poster.thumbnail, width: poster.width, height: poster.height });
  }
  bytes ??= new Uint8Array(await file.arrayBuffer());
  Object.assign(secret, { type, size: bytes.length });
  const sealed = e2e.sealFile(bytes);
  const form = new FormData();
  form.append("file", new Blob([sealed.blob], { type: "application/octet-stream" }), "blob");
  return { form, secret: { ...secret, key: sealed.key, header: sealed.header } };
}

/**
 * Draw a picture on a canvas and encode it again: the pixels stay (upright, as the browser
 * shows them), the metadata does not. Return {bytes, type, width, height, thumbnail (base64 JPEG)}.
 */
export async function redrawPicture(file, type) {
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  try {
    const { width, height } = bitmap;
    // Transparency survives as PNG; a photo stays a JPEG.
    const outType = type === "image/jpeg" ? "image/jpeg" : "image/png";
    const full = await encode(bitmap, width, height, outType, JPEG_QUALITY);
    return { bytes: full, type: outType, width, height, thumbnail: e2e.toBase64(await thumbnail(bitmap)) };
  } finally {
    bitmap.close();
  }
}

/** A small JPEG of the picture; it rides inside the encrypted message, so it must stay small. */
async function thumbnail(bitmap) {
  let small;
  for (const [px, quality] of [[THUMBNAIL_PX, THUMBNAIL_QUALITY], [THUMBNAIL_PX, 0.5], [200, 0.5]]) {
    const scale = Math.min(1, px / Math.max(bitmap.width, bitmap.height));
    small = await encode(bitmap, Math.max(1, Math.round(bitmap.width * scale)), Math.max(1, Math.round(bitmap.height * scale)), "image/jpeg", quality);
    if (small.length <= THUMBNAIL_MAX_BYTES) break;
  }
  return small;
}

async function encode(bitmap, width, height, type, quality) {
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d");
  if (type === "image/jpeg") {
    // JPEG has no transparency: put transparent areas on white rather than black.
    context.fillStyle = "#fff";
    context.fillRect(0, 0, width, height);
  }
  context.drawImage(bitmap, 0, 0, width, height);
  const blob = await canvas.convertToBlob({ type, quality });
  return new Uint8Array(await blob.arrayBuffer());
}

function baseType(type) {
  return (type || "").split(";")[0].trim().toLowerCase();
}
