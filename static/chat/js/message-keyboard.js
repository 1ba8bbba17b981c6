// Keyboard access to long lists as one Tab stop (a "roving tabindex", as Slack and Element do it).
//
// Only one item of the list is in the Tab order; the arrow keys, Home, End, PageUp and PageDown
// move between items; Enter (or ArrowRight) steps into the focused item's own controls (its
// toolbar, links, the sender's name), where Tab, Shift+Tab and the arrow keys move between them
// and Escape goes back to the item. It works on whatever items the view renders, by event
// delegation and a MutationObserver, so the views need no keyboard code of their own.

import { scrollParent, scrollWithin } from "./dom.js";

const CONTROLS = "a[href], button:not([disabled]), textarea, input, select, [data-roving-control]";
const PAGE_STEP = 10;

export class RovingList {
  /**
   * @param {HTMLElement} container the list element (e.g. the <ol> of messages)
   * @param {object} options
   * @param {string} options.items selector of the items, relative to the container
   * @param {boolean} [options.startAtEnd] enter the list at its last item (the newest message)
   */
  constructor(container, { items, startAtEnd = false }) {
    this.container = container;
    this.itemSelector = items;
    this.startAtEnd = startAtEnd;
    this.currentKey = null;
    this.focusLostAt = 0;
    container.addEventListener("keydown", (event) => this.keydown(event));
    container.addEventListener("focusin", (event) => this.focusin(event));
    container.addEventListener("focusout", (event) => this.focusout(event));
    new MutationObserver(() => this.sync()).observe(container, { childList: true, subtree: true });
    this.sync();
  }

  items() {
    return [...this.container.querySelectorAll(this.itemSelector)];
  }

  itemOf(node) {
    const item = node?.closest?.(this.itemSelector);
    return item && this.container.contains(item) ? item : null;
  }

  /** A stable name for an item across re-renders: its id, or its data-user-id, -client-id or -profile. */
  keyOf(item) {
    return item.id || item.dataset.userId || item.dataset.clientId || item.dataset.profile || null;
  }

  current(items = this.items()) {
    const found = this.currentKey && items.find((item) => this.keyOf(item) === this.currentKey);
    return found || (this.startAtEnd ? items.at(-1) : items[0]) || null;
  }

  /** Give exactly one item tabindex 0; take every control inside items out of the Tab order. */
  sync() {
    const items = this.items();
    const current = this.current(items);
    const inside = this.itemOf(document.activeElement);
    for (const item of items) {
      item.tabIndex = item === current ? 0 : -1;
      // While focus is inside an item's controls, they stay in the Tab order so Tab walks them.
      const walking = item === inside && document.activeElement !== item;
      for (const control of item.querySelectorAll(CONTROLS)) control.tabIndex = walking ? 0 : -1;
    }
    // A re-render replaced the focused item (an edit, an acknowledgement): keep focus on its successor.
    if (document.activeElement === document.body && performance.now() - this.focusLostAt < 500 && current) {
      current.focus({ preventScroll: true });
    }
  }

  focusin(event) {
    const item = this.itemOf(event.target);
    if (!item) return;
    this.currentKey = this.keyOf(item);
    this.sync();
  }

  focusout(event) {
    if (!event.relatedTarget) this.focusLostAt = performance.now();
    const leaving = this.itemOf(event.target);
    if (leaving && !leaving.contains(event.relatedTarget)) {
      for (const control of leaving.querySelectorAll(CONTROLS)) control.tabIndex = -1;
    }
  }

  keydown(event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    const item = this.itemOf(event.target);
    if (!item) return;
    if (event.target === item) this.onItem(event, item);
    else if (!event.target.matches("textarea, input, select")) this.onControl(event, item);
  }

  onItem(event, item) {
    const items = this.items();
    const index = items.indexOf(item);
    const target = {
      ArrowDown: index + 1,
      ArrowUp: index - 1,
      Home: 0,
      End: items.length - 1,
      PageDown: index + PAGE_STEP,
      PageUp: index - PAGE_STEP,
    }[event.key];
    if (target !== undefined) {
      event.preventDefault();
      this.moveTo(items[Math.max(0, Math.min(items.length - 1, target))]);
    } else if (event.key === "Enter" || event.key === "ArrowRight") {
      const first = this.controls(item)[0];
      if (!first) return;
      event.preventDefault();
      for (const control of this.controls(item)) control.tabIndex = 0;
      first.focus();
    }
  }

  onControl(event, item) {
    const controls = this.controls(item);
    const index = controls.indexOf(event.target);
    if (event.key === "Escape") {
      event.preventDefault();
      item.focus();
    } else if ((event.key === "ArrowRight" || event.key === "ArrowLeft") && index !== -1) {
      event.preventDefault();
      const step = event.key === "ArrowRight" ? 1 : -1;
      controls[(index + step + controls.length) % controls.length].focus();
    } else if (event.key === "ArrowUp" || event.key === "ArrowDown") {
      // From a control, the vertical arrows go back to moving between items.
      event.preventDefault();
      const items = this.items();
      const next = items[items.indexOf(item) + (event.key === "ArrowDown" ? 1 : -1)];
      this.moveTo(next ?? item);
    }
  }

  controls(item) {
    return [...item.querySelectorAll(CONTROLS)].filter((control) => control.getClientRects().length > 0);
  }

  moveTo(item) {
    if (!item) return;
    this.currentKey = this.keyOf(item);
    this.sync();
    item.focus({ preventScroll: true });
    const scroller = scrollParent(item);
    if (scroller) scrollWithin(scroller, item);
  }
}
