// The small popups of /app/: one menu (message actions, mute choices), long-press, and a
// confirmation dialog.
//
// The menu opens next to the button it belongs to and takes the focus; arrow keys move
// between its items; Escape, Tab, a press elsewhere, a resize or picking an item closes it,
// and the focus goes back to the opener.
import { h } from "./ui.js";

let open = null; // {el, opener, armed}

function menuEl() {
  return document.getElementById("menu");
}

/**
 * Show `items` ([{id, label, run, danger?}]) under (or above) `opener`.
 * `label` names the menu for screen readers. Opening it again from the same opener closes it.
 */
export function openMenu(opener, items, label) {
  if (open?.opener === opener) {
    closeMenu(true); // the opener toggles its menu
    return;
  }
  closeMenu(false);
  const el = menuEl();
  el.setAttribute("aria-label", label);
  const buttons = items.map((item) => h("button", {
    type: "button", role: "menuitem", class: item.danger ? "danger" : null,
    dataset: { action: item.id }, onclick: (ev) => pick(ev, item),
  }, item.label));
  el.replaceChildren(...buttons);
  el.hidden = false;
  place(el, opener);
  opener.setAttribute("aria-expanded", "true");
  // A long-press opens the menu under the finger: the click that follows the finger's
  // release must not pick an item. Only a press that starts in the open menu (or a
  // keyboard "click", detail 0) arms it.
  open = { el, opener, armed: false };
  buttons[0]?.focus({ preventScroll: true });
}

export function closeMenu(refocus = true) {
  if (!open) return;
  const { el, opener } = open;
  open = null;
  el.hidden = true;
  el.replaceChildren();
  opener.removeAttribute("aria-expanded");
  if (refocus && opener.isConnected) opener.focus({ preventScroll: true });
}

export function menuIsOpen() {
  return open !== null;
}

function pick(ev, item) {
  if (!open || (!open.armed && ev.detail !== 0)) return;
  closeMenu(true);
  item.run();
}

function place(el, opener) {
  const r = opener.getBoundingClientRect();
  const { width, height } = el.getBoundingClientRect();
  const margin = 8;
  let top = r.bottom + 4;
  if (top + height > innerHeight - margin) top = r.top - height - 4;
  el.style.top = `${Math.max(margin, top)}px`;
  el.style.left = `${Math.max(margin, Math.min(r.right - width, innerWidth - width - margin))}px`;
}

function onKey(ev) {
  if (!open) return;
  const items = [...open.el.querySelectorAll("[role=menuitem]")];
  const i = items.indexOf(document.activeElement);
  if (ev.key === "Escape") {
    ev.preventDefault();
    closeMenu(true);
  } else if (ev.key === "Tab") {
    closeMenu(false);
  } else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
    ev.preventDefault();
    const step = ev.key === "ArrowDown" ? 1 : -1;
    items[(i + step + items.length) % items.length]?.focus();
  }
}

document.addEventListener("keydown", onKey);
document.addEventListener("pointerdown", (ev) => {
  if (!open) return;
  if (open.el.contains(ev.target)) open.armed = true;
  else if (!open.opener.contains(ev.target)) closeMenu(false);
}, true);
addEventListener("resize", () => closeMenu(false));

/**
 * Call `fn(event)` on a touch or pen press held for `ms` without moving, and on
 * "contextmenu" (a right click, or the long-press of Android browsers). Mouse users also
 * have the ⋯ buttons. Listens on `root`, so rows re-rendered inside it keep working.
 */
export function onLongPress(root, fn, ms = 500) {
  let timer = 0;
  let start = null;
  const cancel = () => {
    clearTimeout(timer);
    timer = 0;
  };
  root.addEventListener("pointerdown", (ev) => {
    if (ev.pointerType === "mouse") return;
    cancel();
    start = [ev.clientX, ev.clientY];
    timer = setTimeout(() => {
      timer = 0;
      fn(ev);
    }, ms);
  });
  root.addEventListener("pointermove", (ev) => {
    if (timer && Math.hypot(ev.clientX - start[0], ev.clientY - start[1]) > 10) cancel();
  });
  for (const type of ["pointerup", "pointercancel", "scroll"]) root.addEventListener(type, cancel);
  root.addEventListener("contextmenu", (ev) => {
    cancel();
    if (fn(ev) !== false) ev.preventDefault();
  });
}

let answer = null; // resolves the question of the confirm dialog being asked

/**
 * Ask before something that cannot be undone, in the page's <dialog id="confirm"> (modal:
 * the focus stays in it, Escape cancels). Resolves true for `okLabel`, false otherwise.
 */
export function confirmDialog(text, okLabel) {
  const dialog = document.getElementById("confirm");
  if (!dialog.dataset.ready) {
    dialog.dataset.ready = "true";
    // A "close" event comes a moment after the dialog closed: by then the next question
    // may be open already, and this close is not its answer.
    dialog.addEventListener("close", () => {
      if (dialog.open || !answer) return;
      const resolve = answer;
      answer = null;
      resolve(dialog.returnValue === "ok");
    });
  }
  answer?.(false); // an earlier question whose close event is still on its way
  closeMenu(false);
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = okLabel;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    answer = resolve;
  });
}
