// Flash messages as toasts: each has a close button; informational ones also leave by themselves,
// unless the pointer or keyboard focus is on them.

const LINGER_MS = 10000;
const STAYS = new Set(["toast-error", "toast-warning"]);

function dismiss(toast) {
  const list = toast.parentElement;
  // Keep keyboard users somewhere sensible when the toast they were on goes away.
  const hadFocus = toast.contains(document.activeElement);
  toast.remove();
  if (list && !list.children.length) list.remove();
  if (hadFocus) document.getElementById("main")?.focus({ preventScroll: true });
}

for (const toast of document.querySelectorAll("#toasts .toast")) {
  toast.querySelector("[data-dismiss]").addEventListener("click", () => dismiss(toast));
  if ([...toast.classList].some((name) => STAYS.has(name))) continue;
  let timer = setTimeout(() => dismiss(toast), LINGER_MS);
  const hold = () => clearTimeout(timer);
  const release = () => {
    clearTimeout(timer);
    timer = setTimeout(() => dismiss(toast), LINGER_MS);
  };
  toast.addEventListener("mouseenter", hold);
  toast.addEventListener("focusin", hold);
  toast.addEventListener("mouseleave", release);
  toast.addEventListener("focusout", release);
}

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const toast = document.activeElement?.closest?.(".toast");
  if (toast) dismiss(toast);
});
