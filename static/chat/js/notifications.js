// Telling someone who is looking elsewhere: a "(3) Chatterbox" title while the tab is hidden,
// and desktop notifications once they have allowed them from the button (never on load).

import { displayName } from "./dom.js";
import { attachmentSummary } from "./attachment-view.js";
import { plainText } from "./markdown.js";
import { messageText } from "./store.js";

const BODY_LENGTH = 120;
const PRIVACY_KEY = "chatterbox-notification-privacy";
// "auto": the text in plaintext conversations, the sender only in encrypted ones.
export const PRIVACY_LEVELS = ["auto", "text", "sender", "nothing"];

export function notificationPrivacy() {
  const stored = localStorage.getItem(PRIVACY_KEY);
  return PRIVACY_LEVELS.includes(stored) ? stored : "auto";
}

export function setNotificationPrivacy(level) {
  if (PRIVACY_LEVELS.includes(level)) localStorage.setItem(PRIVACY_KEY, level);
}

/** Return what a notification may show for a conversation: "text", "sender" or "nothing". */
export function privacyFor(conversation, level = notificationPrivacy()) {
  if (level !== "auto") return level;
  return conversation?.encrypted ? "sender" : "text";
}

export class Notifier {
  constructor({ store, button, onOpen }) {
    this.store = store;
    this.button = button;
    this.onOpen = onOpen;
    this.baseTitle = document.title;
    this.missed = 0;
    this.supported = "Notification" in window;
    button.addEventListener("click", () => this.askPermission());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.setMissed(0);
    });
    this.renderButton();
  }

  renderButton() {
    const permission = this.supported ? Notification.permission : "unsupported";
    this.button.hidden = permission === "granted" || permission === "unsupported";
    this.button.disabled = permission === "denied";
    this.button.textContent = permission === "denied" ? "Notifications are blocked in this browser" : "Enable desktop notifications";
    // What notifications show matters only once there are any: the setting takes the button's place.
    const setting = document.getElementById("notification-privacy-setting");
    if (setting) setting.hidden = permission !== "granted";
  }

  async askPermission() {
    if (!this.supported) return;
    await Notification.requestPermission();
    this.renderButton();
  }

  /** A message from someone else arrived live; a muted conversation stays quiet unless it mentions the reader. */
  incoming(message, { mentioned = false } = {}) {
    const conversation = this.store.conversations.get(message.conversation);
    if (conversation?.muted && !mentioned) return;
    if (document.visibilityState === "hidden") this.setMissed(this.missed + 1);
    const lookingAtIt = document.visibilityState === "visible" && document.hasFocus();
    if (lookingAtIt || !this.supported || Notification.permission !== "granted") return;
    const sender = displayName(message.sender);
    const where = conversation && conversation.kind !== "direct" ? ` in ${this.store.title(conversation)}` : "";
    // The privacy setting decides what shows on a screen others may see (and the OS may log).
    const shown = privacyFor(conversation);
    const title = shown === "nothing" ? "Chatterbox" : mentioned ? `${sender} mentioned you${where}` : `${sender}${where}`;
    const notification = new Notification(title, {
      body: shown === "text" ? notificationBody(message) : mentioned && shown === "sender" ? "You were mentioned" : "New message",
      icon: shown === "nothing" ? undefined : message.sender.avatar_url,
      tag: `conversation-${message.conversation}`,
    });
    notification.addEventListener("click", () => {
      window.focus();
      this.onOpen(message.conversation);
      notification.close();
    });
  }

  setMissed(count) {
    this.missed = count;
    document.title = count ? `(${count}) ${this.baseTitle}` : this.baseTitle;
  }
}

// An encrypted message was decrypted in this page; the notification is shown by this browser only.
function notificationBody(message) {
  const source = messageText(message);
  const text = (source && plainText(source)) || attachmentSummary(message) || (source === null ? null : plainText(source));
  if (text === null) return "Encrypted message";
  return text.length > BODY_LENGTH ? `${text.slice(0, BODY_LENGTH)}…` : text;
}
