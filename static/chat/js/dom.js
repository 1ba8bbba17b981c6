// Small DOM builders shared by the view modules. User text only ever becomes text nodes.

const SVG_NS = "http://www.w3.org/2000/svg";
const LINK_PATTERN = /\bhttps?:\/\/[^\s<>"]+/gi;
// Punctuation that usually ends the sentence rather than the link.
const TRAILING_PUNCTUATION = /[.,;:!?)\]}'"]+$/;

/** Build an element: el("button", {class: "x", type: "button", onclick}, "text", child). */
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}

/** An icon from the page's SVG sprite; decorative, so screen readers skip it. */
export function icon(name, className = "icon") {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("class", className);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const use = document.createElementNS(SVG_NS, "use");
  use.setAttribute("href", `#icon-${name}`);
  svg.append(use);
  return svg;
}

export function avatar(user, size = 32) {
  if (!user.avatar_url) {
    const blank = el("span", { class: "avatar avatar-blank", "aria-hidden": "true" });
    blank.style.width = blank.style.height = `${size}px`;
    return blank;
  }
  return el("img", { class: "avatar", src: user.avatar_url, alt: "", width: size, height: size, loading: "lazy" });
}

export function displayName(user) {
  return user?.display_name || user?.username || "Someone";
}

/** Return a fragment with the text as text nodes and its http(s) links as real links. */
export function linkifiedText(text) {
  const fragment = document.createDocumentFragment();
  let position = 0;
  for (const match of text.matchAll(LINK_PATTERN)) {
    const url = match[0].replace(TRAILING_PUNCTUATION, "");
    fragment.append(text.slice(position, match.index));
    fragment.append(el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, url));
    position = match.index + url.length;
  }
  fragment.append(text.slice(position));
  return fragment;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });
const dayWithYearFormat = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "long", day: "numeric" });

export function formatTime(date) {
  return timeFormat.format(date);
}

export function dayKey(date) {
  return `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}`;
}

export function formatDay(date, now = new Date()) {
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (dayKey(date) === dayKey(now)) return "Today";
  if (dayKey(date) === dayKey(yesterday)) return "Yesterday";
  return date.getFullYear() === now.getFullYear() ? dayFormat.format(date) : dayWithYearFormat.format(date);
}

/** Keep the children of `parent` in the order of `nodes`, moving only the ones out of place. */
export function placeInOrder(parent, nodes) {
  let cursor = parent.firstChild;
  for (const node of nodes) {
    if (node === cursor) {
      cursor = cursor.nextSibling;
      continue;
    }
    parent.insertBefore(node, cursor);
  }
  while (cursor) {
    const next = cursor.nextSibling;
    cursor.remove();
    cursor = next;
  }
}

/**
 * Scroll `container` so that `item` sits at its start, its centre or just inside ("nearest"),
 * moving nothing else. Element.scrollIntoView scrolls every scrollable ancestor, the page
 * included: on the chat page that pushed the header out of view.
 */
export function scrollWithin(container, item, block = "nearest") {
  const box = container.getBoundingClientRect();
  const rect = item.getBoundingClientRect();
  const top = rect.top - box.top + container.scrollTop;
  if (block === "start") container.scrollTop = top;
  else if (block === "center") container.scrollTop = top - (container.clientHeight - rect.height) / 2;
  else if (rect.top < box.top) container.scrollTop = top;
  else if (rect.bottom > box.bottom) container.scrollTop = top + rect.height - container.clientHeight;
}

/** Return the nearest ancestor of `node` that scrolls vertically, or null. */
export function scrollParent(node) {
  for (let parent = node.parentElement; parent; parent = parent.parentElement) {
    const overflow = getComputedStyle(parent).overflowY;
    if ((overflow === "auto" || overflow === "scroll") && parent !== document.body) return parent;
  }
  return null;
}
