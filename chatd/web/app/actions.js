// What can be done to the messages of /app/ and to the open conversation, with what that
// changes in the page: sending (the composer, typing), the ⋯ menu of a message (also on a
// long-press or a right click), replies and the reply bar, recall (撤回), delete for me, a
// click on a quote, and the mute button. The
// msg.recalled, msg.hidden and msg.deleted events (this user's other devices, the peer, a
// moderator) go through the same markGone / markHidden; conv.muted (another device) through
// the same render as the mute button.
import { ChatdError, describeError, randomId } from "./chatd.js";
import { menuIsOpen, onLongPress, openMenu } from "./menu.js";
import { clearError, showError } from "./ui.js";
import { isMuted, snippet } from "./views.js";

// The server's default recall_window (it does not announce it): after this 撤回 is not
// offered. A server with a shorter window answers too_late, which is shown.
export const RECALL_WINDOW = 120_000;
const MUTE_HOURS = 8;
const MUTE_FOREVER = 4102444800000; // 2100-01-01: "until I lift it"

const $ = (sel) => document.querySelector(sel);

/**
 * app: {client, state, nameOf, convOf, currentConv, serverNow, noteNewest, markRead,
 * renderConvList, renderMessages, renderHead, refreshSoon, photos() (the composer's tray of
 * photos, attach.js)} from app.js. state.replyTo is
 * {conv, id, seq, from, body, recalled?, deleted?}: the message being answered.
 * Returns what the page's renders call.
 */
export function setupActions(app) {
  const { client, state } = app;

  function rerender(c) {
    app.renderConvList();
    if (c.conv === state.current) app.renderMessages();
  }

  /** `m` no longer counts as unread (recalled or hidden before it was read). */
  function dropUnread(c, m) {
    if (m.from !== state.me?.id && m.seq > c.read_seq && c.unread > 0) c.unread -= 1;
  }

  /** One message of `c` became `gone` ("recalled" or "deleted"): its bubble, the quotes of
   *  it, the list preview and the reply bar all show it so. */
  function markGone(c, id, seq, gone) {
    const m = c.messages.get(seq);
    if (!m || m.id !== id) {
      app.refreshSoon(); // not held here: its sender and place in the unread count are unknown
    } else if (!m[gone]) {
      dropUnread(c, m);
      Object.assign(m, { [gone]: true, body: "" });
    }
    for (const other of c.messages.values()) {
      if (other.quote?.id === id) other.quote = { ...other.quote, [gone]: true, body: "" };
    }
    if (c.last?.id === id) c.last = { ...c.last, [gone]: true, body: "" };
    if (state.replyTo?.id === id) state.replyTo = { ...state.replyTo, [gone]: true, body: "" };
    rerender(c);
  }

  /** Delete for me: the bubble goes (a stub keeps its seq, so no gap is seen), and the
   *  preview falls back to the newest message still shown. */
  function markHidden(c, id, seq) {
    const m = c.messages.get(seq);
    if (m?.hidden) return;
    if (!m || m.id !== id) {
      app.refreshSoon();
      return;
    }
    dropUnread(c, m);
    c.messages.set(seq, { conv: c.conv, id, seq, hidden: true });
    if (state.replyTo?.id === id) state.replyTo = null;
    if (c.last?.id === id) {
      const shown = [...c.messages.values()].filter((x) => !x.hidden && !x.system);
      c.last = shown.sort((a, b) => b.seq - a.seq)[0] ?? null;
      if (!c.last) app.refreshSoon();
    }
    rerender(c);
  }

  for (const [type, gone] of [["msg.deleted", "deleted"], ["msg.recalled", "recalled"]]) {
    client.on(type, (ev) => {
      const c = state.convs.get(ev.conv);
      if (c) markGone(c, ev.id, ev.seq, gone);
    });
  }
  client.on("msg.hidden", (ev) => {
    const c = state.convs.get(ev.conv);
    if (c) markHidden(c, ev.id, ev.seq);
  });

  function canRecall(m) {
    return m.from === state.me?.id && !m.recalled && !m.deleted && !m.recallRefused
      && app.serverNow() - m.ts < RECALL_WINDOW;
  }

  /** The ⋯ menu of one message (also opened by a long-press or a right click on it). */
  function messageMenu(m, opener) {
    const c = state.convs.get(m.conv);
    if (!c) return;
    const items = [];
    if (!c.closed && !m.deleted) items.push({ id: "reply", label: "回复 Reply", run: () => startReply(c, m) });
    if (!m.deleted && m.body && navigator.clipboard) {
      items.push({ id: "copy", label: "复制 Copy", run: () => navigator.clipboard.writeText(m.body).catch(() => {}) });
    }
    if (canRecall(m)) items.push({ id: "recall", label: "撤回 Recall", run: () => recall(c, m) });
    items.push({ id: "hide", label: "删除（仅自己） Delete for me", danger: true, run: () => hide(c, m) });
    openMenu(opener, items, "消息操作 Message actions");
  }

  function actionError(prefix, e) {
    const err = $("#send-error");
    showError(err, `${prefix}: ${describeError(e)}`);
    err.dataset.code = e.reply?.reason ?? e.code;
  }

  async function recall(c, m) {
    clearError($("#send-error"));
    try {
      await client.call("msg.recall", { conv: c.conv, id: m.id });
      markGone(c, m.id, m.seq, "recalled"); // the msg.recalled event says the same
    } catch (e) {
      // Too late (or not ours): do not offer it again for this message.
      if (e.code === "forbidden") m.recallRefused = true;
      actionError("撤回失败 Not recalled", e);
    }
  }

  async function hide(c, m) {
    clearError($("#send-error"));
    try {
      await client.call("msg.hide", { conv: c.conv, id: m.id });
      markHidden(c, m.id, m.seq); // msg.hidden tells my other devices (and this one)
    } catch (e) {
      actionError("删除失败 Not deleted", e);
    }
  }

  function renderReplyBar() {
    const r = state.replyTo;
    const on = !!r && r.conv === state.current && !$("#composer").hidden;
    $("#reply-bar").hidden = !on;
    if (!on) return;
    $("#reply-name").textContent = app.nameOf(r.from);
    $("#reply-snippet").textContent = snippet(r);
  }

  function startReply(c, m) {
    const { id, seq, from, body, attachments } = m;
    state.replyTo = { conv: c.conv, id, seq, from, body, attachments }; // the bar says [图片]
    renderReplyBar();
    $("#body").focus();
  }

  function cancelReply() {
    state.replyTo = null;
    renderReplyBar();
  }

  /** A click on a quote: scroll its message into view and flash it, if this page holds it. */
  function showQuoted(q) {
    const el = $(`#messages [data-id="${CSS.escape(q.id)}"]`);
    if (!el) return;
    el.scrollIntoView({ block: "center", behavior: "smooth" });
    el.classList.remove("flash");
    void el.offsetWidth; // restart the animation
    el.classList.add("flash");
  }

  function showSendError(text, code = "") {
    const err = $("#send-error");
    showError(err, text);
    err.dataset.code = code;
  }

  /**
   * Send a message to `conv` (with the reply bar's quote when it belongs there) and show it
   * at once. Resolves to the reply; an "err" reply is shown in the send error region.
   * `attachments`: the upload answers of the photos or the voice clip.
   */
  async function sendMessage(conv, body, attachments = []) {
    clearError($("#send-error"));
    const replyTo = state.replyTo?.conv === conv ? state.replyTo : null;
    const fields = { conv, body, cid: randomId() };
    if (replyTo) fields.reply_to = replyTo.id;
    if (attachments.length) fields.attachments = attachments.map((a) => a.id);
    const reply = await client.request("msg.send", fields);
    if (reply.t === "err") {
      showSendError(`消息未发送 Not sent: ${describeError(new ChatdError(reply))}`, reply.code);
      return reply;
    }
    state.skew = reply.ts - Date.now();
    if (replyTo && state.replyTo === replyTo) state.replyTo = null;
    // The sending connection gets no msg event of its own message (the reply says what was
    // stored), and a "mask" entry may have changed the body: show it now (with the quote as
    // this page knows it), then read the stored version back.
    const c = app.convOf(conv);
    if (!c.messages.has(reply.seq)) {
      const m = { t: "msg", conv, id: reply.id, seq: reply.seq, from: state.me.id, body, ts: reply.ts };
      if (attachments.length) {
        m.attachments = attachments.map(({ id, kind, bytes, width, height, seconds }) => (
          { id, kind, bytes, width, height, seconds }));
      }
      if (replyTo) {
        const { id, seq, from, body: quoted, recalled, deleted } = replyTo;
        Object.assign(m, { reply_to: id, quote: { id, seq, from, body: quoted, recalled, deleted } });
      }
      c.messages.set(reply.seq, m);
      app.noteNewest(c, m);
    }
    app.renderConvList();
    if (conv === state.current) app.renderMessages(true);
    const stored = await client.request("history", { conv, after: reply.seq - 1, limit: 1 });
    const m = stored.messages?.[0];
    if (m && m.seq === reply.seq && !c.messages.get(m.seq)?.hidden) {
      c.messages.set(m.seq, m);
      if (c.last?.seq === m.seq) c.last = m;
      app.renderConvList();
      if (conv === state.current) app.renderMessages();
    }
    app.markRead(c).catch(() => {});
    return reply;
  }

  // Sending the composer: its text, the quote of the reply bar and the photos of the tray
  // (the text may be empty when photos go).
  $("#composer").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $("#body");
    const photos = app.photos();
    const conv = state.current;
    if ((!input.value.trim() && !photos.count) || !conv || state.sending) return;
    clearError($("#send-error"));
    input.removeAttribute("aria-invalid");
    state.sending = true;
    try {
      const attachments = await photos.settled(); // the uploads still under way finish first
      const body = input.value.trim();
      if ((!body && !attachments.length) || state.current !== conv) return;
      const reply = await sendMessage(conv, body, attachments);
      if (reply.t === "err") {
        input.setAttribute("aria-invalid", "true");
        return;
      }
      if (input.value.trim() === body) input.value = "";
      photos.clearDone();
    } finally {
      state.sending = false;
    }
  });

  $("#body").addEventListener("input", () => {
    const now = Date.now();
    if (state.current && now - state.lastTyping > 3000) {
      state.lastTyping = now;
      client.request("typing", { conv: state.current });
    }
  });

  $("#reply-cancel").addEventListener("click", () => {
    cancelReply();
    $("#body").focus();
  });

  $("#body").addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && state.replyTo) cancelReply();
  });

  // A long-press (touch) or a right click on a bubble opens the same menu as its ⋯ button.
  onLongPress($("#messages"), (ev) => {
    const li = ev.target.closest?.("li.msg");
    const m = li && app.currentConv()?.messages.get(Number(li.dataset.seq));
    if (!m) return false; // not on a message: let the browser's own menu open
    // Android fires contextmenu after our own long-press timer: the menu is open already.
    if (!menuIsOpen()) messageMenu(m, li.querySelector(".more"));
    return true;
  });

  async function setMute(c, until) {
    clearError($("#send-error"));
    try {
      c.muted_until = (await client.call("conv.mute", { conv: c.conv, until })).until;
      app.renderConvList();
      if (c.conv === state.current) app.renderHead(c);
    } catch (e) {
      actionError("免打扰设置失败 Not changed", e);
    }
  }

  // A mute set or lifted on another device of mine.
  client.on("conv.muted", (ev) => {
    const c = state.convs.get(ev.conv);
    if (!c) return;
    c.muted_until = ev.until;
    app.renderConvList();
    if (ev.conv === state.current) app.renderHead(c);
  });

  // Muted: one click lifts it. Not muted: choose for how long.
  $("#mute").addEventListener("click", (ev) => {
    const c = app.currentConv();
    if (!c) return;
    if (isMuted(c)) {
      setMute(c, 0);
      return;
    }
    openMenu(ev.currentTarget, [
      { id: "mute-hours", label: `静音 ${MUTE_HOURS} 小时 Mute for ${MUTE_HOURS} h`,
        run: () => setMute(c, app.serverNow() + MUTE_HOURS * 3600_000) },
      { id: "mute-forever", label: "一直静音，直到取消 Until I unmute", run: () => setMute(c, MUTE_FOREVER) },
    ], "免打扰 Mute");
  });

  return { messageMenu, showQuoted, renderReplyBar, sendMessage, showSendError };
}
