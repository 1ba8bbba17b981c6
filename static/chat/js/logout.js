// Logging out forgets the unlocked private key this browser keeps, and the sealed search
// indexes of encrypted conversations (docs/e2e.md). The header's
// logout form is on every page, so base.html loads this module everywhere: it clears the key
// from IndexedDB, tells the user's other tabs, then lets the form go on. Pinned contact keys stay.

import { KEY_CHANNEL, openKeystore } from "./keystore.js";
import { deleteSearchIndexes } from "./search-store.js";

// Logging out must never hang on a stuck database.
const GIVE_UP_MS = 3000;

const form = document.getElementById("logout-form");

async function forgetKey(userId) {
  // The sealed search indexes of encrypted conversations go too (search-index.js).
  const wiped = deleteSearchIndexes().catch(() => {});
  const keystore = await openKeystore(userId);
  try {
    await keystore.clearKeyPair();
  } finally {
    keystore.close();
  }
  if ("BroadcastChannel" in window) {
    const channel = new BroadcastChannel(KEY_CHANNEL);
    channel.postMessage({ type: "forget" });
    channel.close();
  }
  await wiped;
}

form?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = form.querySelector("button");
  if (button) button.disabled = true;
  const timeout = new Promise((resolve) => setTimeout(resolve, GIVE_UP_MS));
  try {
    await Promise.race([forgetKey(form.dataset.userId), timeout]);
  } catch {
    // Still log out; the key pair is also dropped at the next visit if the server's key differs.
  }
  form.submit(); // unlike requestSubmit(), this does not come back here
});
