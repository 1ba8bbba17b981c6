// A picture at full size in a modal dialog: Escape or the close button closes it, and focus
// goes back to whatever opened it.

import { el } from "./dom.js";

export class Lightbox {
  constructor(dialog) {
    this.dialog = dialog;
    this.image = dialog.querySelector("[data-picture]");
    this.caption = dialog.querySelector("[data-caption]");
    this.download = dialog.querySelector("[data-download]");
    this.status = dialog.querySelector("[data-status]");
    this.opener = null;
    dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
    // A click on the backdrop (the dialog itself, outside the picture) closes too.
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) dialog.close();
    });
    dialog.addEventListener("close", () => {
      this.image.removeAttribute("src");
      this.opener?.focus();
      this.opener = null;
    });
  }

  /** Show a picture; `source` is its URL or a promise of one (an encrypted picture is decrypted first). */
  async open({ source, name, opener }) {
    this.opener = opener ?? document.activeElement;
    this.caption.textContent = name || "Picture";
    this.image.alt = name || "Picture";
    this.download.hidden = true;
    this.status.textContent = "Loading…";
    this.status.hidden = false;
    if (!this.dialog.open) this.dialog.showModal();
    try {
      const url = await source;
      if (!this.dialog.open) return;
      this.image.src = url;
      this.download.href = url;
      this.download.setAttribute("download", name || "picture");
      this.download.hidden = false;
      this.status.hidden = true;
    } catch (error) {
      this.status.replaceChildren(el("span", { class: "error" }, `The picture could not be shown: ${error.message}`));
    }
  }
}
