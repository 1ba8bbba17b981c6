// Reporting a message to the moderators. For an encrypted message the browser sends what it
// read and that one message's key, so the server can check the text against its ciphertext.

import { displayName } from "./dom.js";
import { messageText } from "./store.js";

const QUOTE_LENGTH = 200;

export class ReportDialog {
  constructor({ dialog, keys, actions }) {
    this.dialog = dialog;
    this.keys = keys;
    this.actions = actions;
    this.form = dialog.querySelector("[data-report-form]");
    this.errorBox = dialog.querySelector("[data-error]");
    this.message = null;
    for (const button of dialog.querySelectorAll("[data-close]")) button.addEventListener("click", () => dialog.close());
    this.form.addEventListener("change", () => this.showError(""));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  open(message) {
    this.message = message;
    this.form.reset();
    this.showError("");
    const who = displayName(message.sender);
    const text = messageText(message) ?? "";
    this.dialog.querySelector("[data-quote]").textContent = text.length > QUOTE_LENGTH ? `${text.slice(0, QUOTE_LENGTH)}…` : text;
    this.dialog.querySelector("[data-intro]").textContent = message.ciphertext
      ? `The moderators will see this one message from ${who}, checked against the encrypted copy on the server, and nothing else from this conversation's encrypted history.`
      : `The moderators will see this message from ${who} and the messages around it.`;
    this.dialog.querySelector("[data-block-label]").textContent = `Also block ${who}`;
    this.dialog.showModal();
    this.form.querySelector("input[name=reason]").focus();
  }

  async submit() {
    const message = this.message;
    const reason = this.form.querySelector("input[name=reason]:checked")?.value;
    if (!reason) {
      this.showError("Choose what is wrong with the message.");
      return;
    }
    const fields = { message: message.id, reason, note: this.form.elements.note.value.trim() };
    if (message.ciphertext) {
      const evidence = this.keys.evidence(message);
      if (!evidence) {
        this.showError("This message cannot be decrypted here, so it cannot be reported with its text.");
        return;
      }
      fields.evidence = evidence;
    }
    const block = this.form.querySelector("[data-block]").checked;
    try {
      await this.actions.report(fields, block ? message.sender : null);
    } catch (error) {
      this.showError(error.message);
      return;
    }
    this.dialog.close();
  }

  showError(text) {
    this.errorBox.textContent = text;
    this.errorBox.hidden = !text;
  }
}
