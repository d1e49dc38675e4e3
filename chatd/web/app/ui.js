// Small DOM helpers shared by /app/ and /mod/ (import "/app/ui.js").
import { describeError } from "./chatd.js";

/** h("li", {class: "x", onclick}, "text", child): a DOM element. Text is never parsed as HTML. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Show an error (a ChatdError, explained with describeError, or a text) in an alert region. */
export function showError(el, err) {
  el.textContent = typeof err === "string" ? err : describeError(err);
  el.hidden = false;
}

export function clearError(el) {
  el.textContent = "";
  el.hidden = true;
}

/** A time as HH:MM (today) or M-D HH:MM. */
export function formatTime(ts) {
  const d = new Date(ts);
  const hm = d.toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit" });
  if (d.toDateString() === new Date().toDateString()) return hm;
  return `${d.getMonth() + 1}-${d.getDate()} ${hm}`;
}

/** Tabs: buttons with role="tab" and aria-controls inside `tablist`; arrow keys move between them. */
export function setupTabs(tablist, onChange = () => {}) {
  const tabs = [...tablist.querySelectorAll("[role=tab]")];
  const select = (tab) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
    }
    onChange(tab);
  };
  for (const tab of tabs) {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (ev) => {
      const i = tabs.indexOf(tab);
      const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[ev.key];
      if (next === undefined) return;
      ev.preventDefault();
      const t = tabs[(next + tabs.length) % tabs.length];
      t.focus();
      select(t);
    });
  }
  return select;
}
