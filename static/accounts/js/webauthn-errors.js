// allauth's passkey script reports a failed browser ceremony only to the console; show it
// on the page instead, next to the button that started it, in a live region.

const MESSAGES = {
  NotAllowedError: "The passkey request was cancelled or timed out, or this device has no passkey for this site.",
  InvalidStateError: "This device already holds a passkey for your account.",
  SecurityError: "Passkeys need a secure connection (https) on this site's own address.",
  NotSupportedError: "This browser or device does not support passkeys.",
};

function messageFor(exception) {
  return MESSAGES[exception?.name] || `The passkey did not work: ${exception?.message || "unknown error"}.`;
}

function showError(text) {
  const card = document.querySelector("#main .card") || document.querySelector("#main");
  let region = card.querySelector(".webauthn-error");
  if (!region) {
    region = document.createElement("p");
    region.className = "errors webauthn-error";
    region.setAttribute("role", "alert");
    card.append(region);
  }
  region.textContent = text;
}

document.addEventListener("allauth.error", (event) => {
  const tags = event.detail?.tags || [];
  if (!tags.includes("webauthn")) return;
  event.preventDefault();
  showError(messageFor(event.detail.exception));
});
