// The dialogs of end-to-end encryption: choosing, entering, changing and resetting the
// encryption passphrase (one dialog, several modes), and the safety number of a contact.

import { WrongPassphraseError, passphraseStrength } from "./crypto.js";
import { displayName, el } from "./dom.js";

// The strength meter's score (0 to 4) a new passphrase needs.
const STRONG_ENOUGH = 3;

const HELP_NEW =
  "Not your login password: the server sees that one. Pick a few unrelated words and write them down somewhere safe. If you lose this passphrase, nobody can recover it.";

const MODES = {
  setup: {
    title: "Set up end-to-end encryption",
    intro:
      "Direct messages and private groups are end-to-end encrypted: only the people in them can read them. " +
      "Choose an encryption passphrase to protect your key. You will need it on every new device or browser.",
    help: HELP_NEW,
    submit: "Create key",
    cancel: "Not now",
  },
  unlock: {
    title: "Unlock your encrypted messages",
    intro: "This browser does not hold your encryption key yet. Enter your encryption passphrase to unlock it here.",
    help: "The passphrase you chose for encryption, not your login password.",
    submit: "Unlock",
    cancel: "Not now",
  },
  manage: {
    title: "End-to-end encryption",
    intro: "Your encryption key is unlocked in this browser until you log out.",
  },
  change: {
    title: "Change your encryption passphrase",
    intro: "Your key stays the same, so nothing changes for the people you talk to. Only the passphrase that protects it changes.",
    help: HELP_NEW,
    submit: "Change passphrase",
    cancel: "Cancel",
  },
  reset: {
    title: "Reset your encryption keys",
    intro: "Choose an encryption passphrase for your new key.",
    help: HELP_NEW,
    submit: "Reset keys",
    cancel: "Cancel",
  },
};

/** Wait until the browser has painted, so a busy state shows before work that blocks the page. */
function afterPaint() {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

export class KeyDialog {
  /** `onDone(text)` hears what was done, after the dialog closed. */
  constructor({ dialog, keys, onDone }) {
    this.dialog = dialog;
    this.keys = keys;
    this.onDone = onDone;
    this.mode = null;
    this.busy = false;
    this.form = dialog.querySelector("form");
    this.passphrase = this.form.elements.passphrase;
    this.confirm = this.form.elements.confirm;
    this.understand = this.form.elements.understand;
    this.meter = dialog.querySelector("meter");
    this.strengthText = dialog.querySelector("#key-strength");
    this.errorBox = dialog.querySelector("[data-error]");
    this.busyBox = dialog.querySelector("[data-busy]");
    this.submitButton = dialog.querySelector("#key-submit");
    this.cancelButton = dialog.querySelector("#key-cancel");
    for (const button of dialog.querySelectorAll("[data-close]")) button.addEventListener("click", () => this.close());
    for (const button of dialog.querySelectorAll("[data-go]")) button.addEventListener("click", () => this.show(button.dataset.go));
    // Escape must not close the dialog half-way through making or uploading a key.
    dialog.addEventListener("cancel", (event) => this.busy && event.preventDefault());
    this.passphrase.addEventListener("input", () => {
      this.showError("");
      this.renderStrength();
    });
    this.confirm.addEventListener("input", () => this.showError(""));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  /** Open in a mode: "setup", "unlock", "manage", "change" or "reset". */
  open(mode) {
    if (!this.dialog.open) this.dialog.showModal();
    this.show(mode);
  }

  close() {
    if (!this.busy && this.dialog.open) this.dialog.close();
  }

  show(mode) {
    const texts = MODES[mode];
    this.mode = mode;
    this.form.reset();
    this.showError("");
    this.dialog.querySelector("h2").textContent = texts.title;
    this.dialog.querySelector("#key-intro").textContent = texts.intro;
    this.dialog.querySelector("#key-passphrase-help").textContent = texts.help ?? "";
    this.submitButton.textContent = texts.submit ?? "";
    this.submitButton.classList.toggle("danger", mode === "reset");
    this.cancelButton.textContent = texts.cancel ?? "Close";
    for (const part of this.dialog.querySelectorAll("[data-modes]")) part.hidden = !part.dataset.modes.split(" ").includes(mode);
    this.passphrase.autocomplete = mode === "unlock" ? "current-password" : "new-password";
    this.renderStrength();
    (mode === "manage" ? this.dialog.querySelector("[data-go]") : this.passphrase).focus();
  }

  renderStrength() {
    const { score, label, hint } = passphraseStrength(this.passphrase.value);
    this.meter.value = score;
    this.strengthText.textContent = this.passphrase.value ? `Strength: ${label}.${hint ? ` ${hint}` : ""}` : "";
  }

  /** Return what is wrong with the form, or "" if it can be sent. */
  problem() {
    const passphrase = this.passphrase.value;
    if (this.mode === "unlock") return passphrase ? "" : "Enter your encryption passphrase.";
    if (!passphrase) return "Choose a passphrase.";
    const { score, label } = passphraseStrength(passphrase);
    if (score < STRONG_ENOUGH) return `This passphrase is too weak (${label}). Add more unrelated words.`;
    if (this.confirm.value !== passphrase) return "The two passphrases do not match.";
    if (this.mode === "reset" && !this.understand.checked) return "Tick the box to confirm that you understand what a reset does.";
    return "";
  }

  async submit() {
    if (this.busy) return;
    const problem = this.problem();
    if (problem) {
      this.showError(problem);
      (this.mode !== "unlock" && this.passphrase.value && this.confirm.value !== this.passphrase.value ? this.confirm : this.passphrase).focus();
      return;
    }
    const passphrase = this.passphrase.value;
    this.setBusy(true);
    // Argon2id holds the page for about a second: let the busy state paint first.
    await afterPaint();
    let done;
    try {
      done = await this.run(passphrase);
    } catch (error) {
      this.setBusy(false);
      this.showError(error instanceof WrongPassphraseError ? "That passphrase does not unlock your key. Check it and try again." : `That did not work: ${error.message}`);
      this.passphrase.select();
      this.passphrase.focus();
      return;
    }
    this.setBusy(false);
    this.form.reset();
    this.close();
    this.onDone(done);
  }

  async run(passphrase) {
    if (this.mode === "unlock") {
      await this.keys.unlock(passphrase);
      return "Your encryption key is unlocked in this browser.";
    }
    if (this.mode === "change") {
      await this.keys.changePassphrase(passphrase);
      return "Your encryption passphrase was changed.";
    }
    await this.keys.create(passphrase);
    return this.mode === "reset"
      ? "Your encryption keys were reset. Your contacts will see that your key changed."
      : "End-to-end encryption is set up.";
  }

  setBusy(busy) {
    this.busy = busy;
    this.form.setAttribute("aria-busy", String(busy));
    this.busyBox.hidden = !busy;
    this.busyBox.textContent = busy ? (this.mode === "unlock" ? "Unlocking: deriving key…" : "Deriving key…") : "";
    for (const control of this.dialog.querySelectorAll("input, button")) control.disabled = busy;
  }

  showError(text) {
    this.errorBox.textContent = text;
    this.errorBox.hidden = !text;
  }
}

export class SafetyDialog {
  constructor({ dialog, keys }) {
    this.dialog = dialog;
    this.keys = keys;
    this.member = null;
    this.number = dialog.querySelector("[data-number]");
    this.state = dialog.querySelector("[data-state]");
    this.errorBox = dialog.querySelector("[data-error]");
    this.acceptButton = dialog.querySelector("[data-accept]");
    this.verifyButton = dialog.querySelector("[data-verify]");
    for (const button of dialog.querySelectorAll("[data-close]")) button.addEventListener("click", () => dialog.close());
    this.acceptButton.addEventListener("click", () => this.run(() => this.keys.accept(this.member.id)));
    this.verifyButton.addEventListener("click", () => this.run(() => this.keys.verify(this.member.id)));
    keys.addEventListener("change", () => this.dialog.open && this.render());
  }

  open(member) {
    this.member = member;
    this.errorBox.hidden = true;
    this.render();
    if (!this.dialog.open) this.dialog.showModal();
    (this.verifyButton.hidden ? this.dialog.querySelector(".actions [data-close]") : this.verifyButton).focus();
  }

  render() {
    const member = this.member;
    const name = displayName(member);
    const number = this.keys.safetyNumber(member.id);
    const changed = this.keys.changed.has(member.id);
    const verified = this.keys.isVerified(member.id);
    this.dialog.querySelector("h2").textContent = `Safety number with ${name}`;
    this.dialog.querySelector("#safety-intro").textContent = number
      ? `Compare these numbers with ${name}, in person or on a call. If both screens show the same, your messages reach ${name} and nobody else.`
      : this.keys.state === "ready"
        ? `${name} has not set up encryption yet.`
        : "Unlock encryption in this browser to see safety numbers.";
    this.number.replaceChildren(...(number ? number.split(" ").map((group) => el("span", {}, group)) : []));
    this.number.hidden = !number;
    this.state.textContent = !number
      ? ""
      : changed
        ? `${name}'s key changed. This number is for the new key; accept it to write to ${name} again.`
        : verified
          ? `You have verified ${name}.`
          : `${name} is not verified yet.`;
    this.state.classList.toggle("verified", verified);
    this.acceptButton.hidden = !number || !changed;
    this.verifyButton.hidden = !number || changed || verified;
  }

  async run(action) {
    this.errorBox.hidden = true;
    try {
      await action();
    } catch (error) {
      this.errorBox.textContent = error.message;
      this.errorBox.hidden = false;
    }
    this.render();
    // The button just pressed may be gone; keep focus on what comes next.
    (this.verifyButton.hidden ? this.dialog.querySelector(".actions [data-close]") : this.verifyButton).focus();
  }
}
