// /app/: register or log in, pick interests, match a stranger and chat, group conversations.
// The session token is kept in localStorage; a reload resumes with "auth" and rebuilds the
// view from "convs" (list, previews, unread, peers, mutes, receipts) and "history".
// Messages can be replied to, recalled (own, within RECALL_WINDOW) and deleted for me.
import { ChatdClient, ChatdError, describeError, randomId } from "./chatd.js";
import { closeMenu, menuIsOpen, onLongPress, openMenu } from "./menu.js";
import { h, setupTabs } from "./ui.js";
import { convRow, isMuted, messageItem, muteUntilText, snippet } from "./views.js";

const $ = (sel) => document.querySelector(sel);
const client = new ChatdClient({ tokenKey: "chatd.app.token" });
const HISTORY_PAGE = 50;
// The server's default recall_window (it does not announce it): after this 撤回 is not
// offered. A server with a shorter window answers too_late, which is shown.
const RECALL_WINDOW = 120_000;
const MUTE_HOURS = 8;
const MUTE_FOREVER = 4102444800000; // 2100-01-01: "until I lift it"

const state = {
  me: null,
  tags: [], // [{id, name}]
  tagName: new Map(),
  // conv id -> the convs summary (peer as its id, peerOnline) and messages: Map(seq -> msg)
  convs: new Map(),
  current: localStorage.getItem("chatd.app.current"),
  // user id -> nickname, from convs (peer) and match.found. Messages carry no nickname, so a
  // group member who is not also a 1:1 peer shows as "用户 <id>".
  peers: JSON.parse(localStorage.getItem("chatd.app.peers") ?? "{}"),
  matching: false,
  lastTyping: 0,
  sending: false,
  replyTo: null, // {conv, id, seq, from, body, recalled?, deleted?}: the message being answered
  skew: 0, // server clock minus ours (ms), from msg.send replies: for the recall window
  muteTimer: 0,
};

// --- small helpers -------------------------------------------------------------------------

function showError(el, err) {
  el.textContent = typeof err === "string" ? err : describeError(err);
  el.hidden = false;
}

function clearError(el) {
  el.textContent = "";
  el.hidden = true;
}

function notice(text) {
  const el = $("#notice");
  el.textContent = text;
  el.hidden = !text;
}

function nameOf(userId) {
  if (state.me && userId === state.me.id) return "我 me";
  if (userId === "deleted") return "已注销用户";
  return state.peers[userId] ?? `用户 ${String(userId).slice(0, 6)}`;
}

function groupName(c) {
  const tag = c.conv.slice(2);
  return c.name ?? state.tagName.get(tag) ?? tag;
}

function convTitle(c) {
  if (c.kind === "group") return `# ${groupName(c)}`;
  return `与 ${c.peer ? nameOf(c.peer) : "陌生人"} 私聊`;
}

function listName(c) {
  if (c.kind === "group") return `# ${groupName(c)}`;
  return c.peer ? nameOf(c.peer) : "陌生人";
}

function serverNow() {
  return Date.now() + state.skew;
}

function rememberPeer(id, nickname) {
  state.peers[id] = nickname;
  localStorage.setItem("chatd.app.peers", JSON.stringify(state.peers));
}

function maxSeq(c) {
  let m = 0;
  for (const s of c.messages.keys()) m = Math.max(m, s);
  return m;
}

function convOf(id) {
  let c = state.convs.get(id);
  if (!c) {
    c = { conv: id, kind: id.startsWith("g:") ? "group" : "direct", last_seq: 0, read_seq: 0,
          unread: 0, last: null, active_at: 0, muted_until: 0, peer: null, peerOnline: false,
          peer_read_seq: 0, peer_delivered_seq: 0, closed: false, messages: new Map(),
          loaded: false };
    state.convs.set(id, c);
  }
  return c;
}

// --- views ---------------------------------------------------------------------------------

function showAuth() {
  state.me = null;
  document.body.classList.remove("chatting");
  $("#chat").hidden = true;
  $("#auth").hidden = false;
  $("#whoami").hidden = true;
  $("#logout").hidden = true;
  renderInterestBoxes($("#reg-interests"), "reg", []);
}

function showChat() {
  document.body.classList.add("chatting");
  $("#auth").hidden = true;
  $("#chat").hidden = false;
  $("#whoami").hidden = false;
  $("#whoami").textContent = `${state.me.nickname}`;
  $("#logout").hidden = false;
  renderInterestBoxes($("#my-interests"), "my", state.me.interests);
}

function renderInterestBoxes(fieldset, prefix, selected) {
  const legend = fieldset.querySelector("legend");
  fieldset.replaceChildren(legend);
  for (const tag of state.tags) {
    const id = `${prefix}-tag-${tag.id}`;
    fieldset.append(h("label", { class: "chip", for: id },
      h("input", { type: "checkbox", id, name: "interest", value: tag.id,
                   checked: selected.includes(tag.id) }),
      tag.name));
  }
}

function checkedInterests(fieldset) {
  return [...fieldset.querySelectorAll("input[name=interest]:checked")].map((i) => i.value);
}

/** Newest activity first, as convs orders them; a new message moves its conversation up. */
function byActivity(a, b) {
  return b.active_at - a.active_at;
}

function renderConvList() {
  const direct = $("#direct-list");
  const groups = $("#group-list");
  direct.replaceChildren();
  groups.replaceChildren();
  const ctx = { current: state.current, nameOf, listName, onOpen: openConv };
  for (const c of [...state.convs.values()].sort(byActivity)) {
    (c.kind === "group" ? groups : direct).append(h("li", {}, convRow(c, ctx)));
  }
  if (!direct.children.length) direct.append(h("li", { class: "muted empty" }, "还没有私聊 — 点「开始匹配」 No chats yet"));
  if (!groups.children.length) groups.append(h("li", { class: "muted empty" }, "没有兴趣群 No groups"));
  scheduleMuteEnd();
}

/** Re-render when the soonest timed mute ends, so its marker goes away by itself. */
function scheduleMuteEnd() {
  clearTimeout(state.muteTimer);
  const now = Date.now();
  const ends = [...state.convs.values()].map((c) => c.muted_until).filter((u) => u > now);
  if (!ends.length) return;
  const wait = Math.min(...ends) - now + 50;
  if (wait < 2 ** 31) state.muteTimer = setTimeout(renderAll, wait); // setTimeout's limit
}

function renderAll() {
  renderConvList();
  renderMessages();
}

function currentConv() {
  return state.current ? state.convs.get(state.current) ?? null : null;
}

function renderHead(c) {
  const title = $("#conv-title");
  if (!c) title.textContent = "选择一个会话 Pick a conversation";
  else if (c.kind === "direct" && !c.closed) {
    const label = c.peerOnline ? "在线 online" : "离线 offline";
    title.replaceChildren(convTitle(c), " ", h("span", {
      class: c.peerOnline ? "dot on" : "dot", role: "img", "aria-label": label, title: label }));
  } else title.textContent = convTitle(c);
  const mute = $("#mute");
  mute.hidden = !c || c.closed;
  if (c) {
    const muted = isMuted(c);
    mute.dataset.muted = String(muted);
    if (muted) mute.removeAttribute("aria-haspopup"); // a click lifts it at once
    else mute.setAttribute("aria-haspopup", "menu"); // a click asks for how long
    // Only the bell on a phone: the header also holds the title and 结束聊天.
    const label = muted ? "取消免打扰 Unmute" : "免打扰 Mute";
    mute.setAttribute("aria-label", label);
    mute.replaceChildren(muted ? "🔕" : "🔔", h("span", { class: "wide" }, ` ${label}`));
    mute.title = muted ? `已静音 muted ${muteUntilText(c.muted_until)}` : "静音这个会话 Mute this chat";
  }
  $("#leave").hidden = !c || c.kind !== "direct" || c.closed;
}

/** The open conversation. It stays scrolled to the newest message unless the user scrolled
 *  up to read (then a recall or a receipt does not pull the view down); `stick` forces it. */
function renderMessages(stick = false) {
  const list = $("#messages");
  const c = currentConv();
  const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 48;
  $("#composer").hidden = !c || c.closed;
  renderHead(c);
  renderReplyBar();
  document.body.classList.toggle("in-conv", !!c);
  if (!c) {
    list.replaceChildren(h("li", { class: "system" },
      "从左边选择一个会话，或点「开始匹配」认识新朋友。Pick a conversation, or find a stranger."));
    return;
  }
  const ctx = { me: state.me?.id, nameOf, onMore: messageMenu, onQuote: showQuoted };
  const items = [...c.messages.values()].sort((a, b) => a.seq - b.seq)
    .map((m) => messageItem(m, c, ctx)).filter(Boolean);
  if (c.closed) items.push(h("li", { class: "system" }, "聊天已结束 This chat has ended"));
  list.replaceChildren(...items);
  if (stick || atEnd) list.scrollTop = list.scrollHeight;
}

function renderReplyBar() {
  const r = state.replyTo;
  const on = !!r && r.conv === state.current && !$("#composer").hidden;
  $("#reply-bar").hidden = !on;
  if (!on) return;
  $("#reply-name").textContent = nameOf(r.from);
  $("#reply-snippet").textContent = snippet(r);
}

// --- data ----------------------------------------------------------------------------------

async function loadTags() {
  if (state.tags.length) return;
  const reply = await client.call("interests");
  state.tags = reply.tags;
  state.tagName = new Map(reply.tags.map((t) => [t.id, t.name]));
}

async function refreshConvs() {
  const reply = await client.call("convs");
  const seen = new Set();
  for (const s of reply.convs) {
    const c = convOf(s.conv);
    // The peer's nickname comes with the list, so a fresh login names them too.
    if (s.peer) rememberPeer(s.peer.id, s.peer.nickname);
    Object.assign(c, {
      kind: s.kind, last_seq: s.last_seq, read_seq: s.read_seq, unread: s.unread, last: s.last,
      active_at: s.active_at, muted_until: s.muted_until, closed: s.closed, name: s.name,
      peer: s.peer ? s.peer.id : null, peerOnline: !!s.peer?.online,
      peer_read_seq: s.peer_read_seq ?? 0, peer_delivered_seq: s.peer_delivered_seq ?? 0,
    });
    seen.add(s.conv);
  }
  for (const id of [...state.convs.keys()]) if (!seen.has(id)) state.convs.delete(id);
  if (state.current && !state.convs.has(state.current)) state.current = null;
  renderConvList();
}

/** The list again from the server, when an event touched messages this page does not hold
 *  (their sender and place in the unread count are unknown here). */
function refreshSoon() {
  refreshConvs().then(() => renderMessages()).catch(() => {});
}

/** Fetch what we miss of a conversation: everything after the newest seq we hold (at first
 *  only the last page), paging until a short page comes back. */
async function fillHistory(c) {
  let after = c.messages.size ? maxSeq(c) : Math.max(0, c.last_seq - HISTORY_PAGE);
  for (;;) {
    const reply = await client.call("history", { conv: c.conv, after, limit: HISTORY_PAGE });
    for (const m of reply.messages) c.messages.set(m.seq, m);
    if (reply.messages.length) after = reply.messages.at(-1).seq;
    c.last_seq = Math.max(c.last_seq, after);
    if (reply.messages.length < HISTORY_PAGE) break;
  }
  c.loaded = true;
}

async function markRead(c) {
  const seq = maxSeq(c);
  if (seq > c.read_seq && document.visibilityState === "visible") {
    c.read_seq = (await client.call("read", { conv: c.conv, seq })).seq;
    c.unread = 0;
    renderConvList();
  }
}

async function openConv(id) {
  state.current = id;
  localStorage.setItem("chatd.app.current", id);
  clearError($("#send-error"));
  $("#typing").textContent = "";
  if (state.replyTo && state.replyTo.conv !== id) state.replyTo = null;
  closeMenu(false);
  renderConvList();
  renderMessages(true);
  const c = state.convs.get(id);
  try {
    await fillHistory(c);
  } catch (e) {
    showError($("#send-error"), e);
  }
  if (state.current !== id) return;
  c.unread = 0;
  renderMessages(true);
  renderConvList();
  markRead(c).catch(() => {});
  if (!$("#composer").hidden && matchMedia("(min-width: 721px)").matches) $("#body").focus();
}

async function onReady({ user }) {
  try {
    await loadTags();
  } catch {
    return; // disconnected again: the next "ready" retries
  }
  if (!user) {
    showAuth();
    return;
  }
  state.me = user;
  state.matching = false;
  renderMatch("");
  showChat();
  try {
    await refreshConvs();
    const c = state.current && state.convs.get(state.current);
    if (c) await openConv(c.conv);
    else renderMessages();
  } catch (e) {
    notice(describeError(e));
  }
}

// --- events from the server ---------------------------------------------------------------

client.on("status", ({ state: s }) => {
  const el = $("#conn");
  el.textContent = { connecting: "连接中… connecting", open: "在线 online", closed: "已断开，重连中… reconnecting" }[s];
  el.dataset.state = s;
});
client.on("ready", onReady);
client.on("logout", ({ reason }) => {
  notice(`已退出登录 Signed out: ${reason}`);
  showAuth();
});

/** A message this page holds now (a msg event, or our own send): the list's preview and
 *  order follow it. */
function noteNewest(c, m) {
  c.last_seq = Math.max(c.last_seq, m.seq);
  if (!c.last || m.seq >= c.last.seq) c.last = m;
  c.active_at = Math.max(c.active_at, m.ts);
}

client.on("msg", async (m) => {
  const c = convOf(m.conv);
  const held = maxSeq(c);
  c.messages.set(m.seq, m);
  noteNewest(c, m);
  if (c.loaded && held && m.seq > held + 1) await fillHistory(c).catch(() => {}); // a seq gap
  if (m.conv === state.current) {
    renderMessages();
    if (m.from !== state.me?.id) $("#typing").textContent = "";
    markRead(c).catch(() => {});
  } else if (m.from !== state.me?.id) {
    c.unread += 1;
  }
  renderConvList();
});

client.on("match.found", async (ev) => {
  rememberPeer(ev.peer.id, ev.peer.nickname);
  state.matching = false;
  const shared = ev.shared.map((t) => state.tagName.get(t) ?? t).join("、");
  renderMatch(`已匹配 Matched: ${ev.peer.nickname}${shared ? ` · 共同兴趣 ${shared}` : ""}`);
  const c = convOf(ev.conv);
  c.peer = ev.peer.id;
  c.kind = "direct";
  await refreshConvs().catch(() => {});
  await openConv(ev.conv);
});

client.on("conv.left", async (ev) => {
  const c = state.convs.get(ev.conv);
  if (!c) return;
  c.closed = true;
  renderConvList();
  if (ev.conv === state.current) renderMessages();
});

client.on("typing", (ev) => {
  if (ev.conv !== state.current || ev.user === state.me?.id) return;
  const el = $("#typing");
  el.textContent = `${nameOf(ev.user)} 正在输入… typing`;
  clearTimeout(el.timer);
  el.timer = setTimeout(() => { el.textContent = ""; }, 4000);
});

/** One message of `c` became `gone` ("recalled" or "deleted"): its bubble, the quotes of it,
 *  the list preview and the reply bar all show it so. */
function markGone(c, id, seq, gone) {
  const m = c.messages.get(seq);
  if (!m || m.id !== id) {
    refreshSoon();
  } else if (!m[gone]) {
    dropUnread(c, m);
    Object.assign(m, { [gone]: true, body: "" });
  }
  for (const other of c.messages.values()) {
    if (other.quote?.id === id) other.quote = { ...other.quote, [gone]: true, body: "" };
  }
  if (c.last?.id === id) c.last = { ...c.last, [gone]: true, body: "" };
  if (state.replyTo?.id === id) state.replyTo = { ...state.replyTo, [gone]: true, body: "" };
  renderConvList();
  if (c.conv === state.current) renderMessages();
}

/** `m` no longer counts as unread (recalled or hidden before it was read). */
function dropUnread(c, m) {
  if (m.from !== state.me?.id && m.seq > c.read_seq && c.unread > 0) c.unread -= 1;
}

/** Delete for me: the bubble goes (a stub keeps its seq, so no gap is seen), and the preview
 *  falls back to the newest message still shown. */
function markHidden(c, id, seq) {
  const m = c.messages.get(seq);
  if (m?.hidden) return;
  if (!m || m.id !== id) {
    refreshSoon();
    return;
  }
  dropUnread(c, m);
  c.messages.set(seq, { conv: c.conv, id, seq, hidden: true });
  if (state.replyTo?.id === id) state.replyTo = null;
  if (c.last?.id === id) {
    const shown = [...c.messages.values()].filter((x) => !x.hidden && !x.system);
    c.last = shown.sort((a, b) => b.seq - a.seq)[0] ?? null;
    if (!c.last) refreshSoon();
  }
  renderConvList();
  if (c.conv === state.current) renderMessages();
}

client.on("msg.deleted", (ev) => {
  const c = state.convs.get(ev.conv);
  if (c) markGone(c, ev.id, ev.seq, "deleted");
});

client.on("msg.recalled", (ev) => {
  const c = state.convs.get(ev.conv);
  if (c) markGone(c, ev.id, ev.seq, "recalled");
});

client.on("msg.hidden", (ev) => {
  const c = state.convs.get(ev.conv);
  if (c) markHidden(c, ev.id, ev.seq);
});

client.on("delivered", (ev) => {
  const c = state.convs.get(ev.conv);
  if (!c || ev.seq <= c.peer_delivered_seq) return;
  c.peer_delivered_seq = ev.seq;
  if (ev.conv === state.current) renderMessages();
});

client.on("read", (ev) => {
  const c = state.convs.get(ev.conv);
  if (!c) return;
  if (ev.user === state.me?.id) {
    // Read on another device of mine: at most what is after that position is unread.
    c.read_seq = Math.max(c.read_seq, ev.seq);
    c.unread = Math.min(c.unread, Math.max(0, c.last_seq - c.read_seq));
    renderConvList();
    return;
  }
  if (c.kind !== "direct" || ev.seq <= c.peer_read_seq) return;
  c.peer_read_seq = ev.seq;
  c.peer_delivered_seq = Math.max(c.peer_delivered_seq, ev.seq); // reading is receiving
  if (ev.conv === state.current) renderMessages();
});

client.on("conv.muted", (ev) => {
  const c = state.convs.get(ev.conv);
  if (!c) return;
  c.muted_until = ev.until;
  renderConvList();
  if (ev.conv === state.current) renderHead(c);
});

// Contacts coming and going (a server may never send it: the dot then shows what convs said).
client.on("presence", (ev) => {
  let changed = false;
  for (const c of state.convs.values()) {
    if (c.kind === "direct" && c.peer === ev.user && c.peerOnline !== !!ev.online) {
      c.peerOnline = !!ev.online;
      changed = true;
    }
  }
  if (!changed) return;
  renderConvList();
  renderHead(currentConv());
});

client.on("mod.notice", (ev) => {
  const kind = ev.kind === "mute" ? "你已被禁言 You are muted" : "管理员警告 Warning from a moderator";
  const until = ev.until ? ` · 直到 until ${new Date(ev.until).toLocaleString()}` : "";
  notice(`${kind}${ev.reason ? `: ${ev.reason}` : ""}${until}`);
});

// --- user actions --------------------------------------------------------------------------

function renderMatch(text) {
  $("#match").hidden = state.matching;
  $("#match-cancel").hidden = !state.matching;
  $("#match-status").textContent = text;
}

$("#match").addEventListener("click", async () => {
  try {
    await client.call("match.start");
    state.matching = true;
    renderMatch("正在寻找兴趣相投的陌生人… Looking for someone");
    $("#match-cancel").focus();
  } catch (e) {
    renderMatch(describeError(e));
  }
});

$("#match-cancel").addEventListener("click", async () => {
  await client.request("match.cancel");
  state.matching = false;
  renderMatch("已取消 Cancelled");
  $("#match").focus();
});

$("#composer").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = $("#body");
  const body = input.value.trim();
  const conv = state.current;
  if (!body || !conv || state.sending) return;
  const err = $("#send-error");
  clearError(err);
  input.removeAttribute("aria-invalid");
  state.sending = true;
  const replyTo = state.replyTo?.conv === conv ? state.replyTo : null;
  const fields = { conv, body, cid: randomId() };
  if (replyTo) fields.reply_to = replyTo.id;
  const reply = await client.request("msg.send", fields);
  state.sending = false;
  if (reply.t === "err") {
    input.setAttribute("aria-invalid", "true");
    showError(err, `消息未发送 Not sent: ${describeError(new ChatdError(reply))}`);
    err.dataset.code = reply.code;
    return;
  }
  input.value = "";
  state.skew = reply.ts - Date.now();
  if (replyTo && state.replyTo === replyTo) state.replyTo = null;
  // The sending connection gets no msg event of its own message (the reply says what was
  // stored), and a "mask" entry may have changed the body: show it now (with the quote as
  // this page knows it), then read the stored version back.
  const c = convOf(conv);
  if (!c.messages.has(reply.seq)) {
    const m = { t: "msg", conv, id: reply.id, seq: reply.seq, from: state.me.id, body, ts: reply.ts };
    if (replyTo) {
      const { id, seq, from, body: quoted, recalled, deleted } = replyTo;
      Object.assign(m, { reply_to: id, quote: { id, seq, from, body: quoted, recalled, deleted } });
    }
    c.messages.set(reply.seq, m);
    noteNewest(c, m);
  }
  renderConvList();
  if (conv === state.current) renderMessages(true);
  const stored = await client.request("history", { conv, after: reply.seq - 1, limit: 1 });
  const m = stored.messages?.[0];
  if (m && m.seq === reply.seq && !c.messages.get(m.seq)?.hidden) {
    c.messages.set(m.seq, m);
    if (c.last?.seq === m.seq) c.last = m;
    renderConvList();
    if (conv === state.current) renderMessages();
  }
  markRead(c).catch(() => {});
});

// --- message actions: reply, copy, recall, delete for me --------------------------------

function canRecall(m) {
  return m.from === state.me?.id && !m.recalled && !m.deleted && !m.recallRefused
    && serverNow() - m.ts < RECALL_WINDOW;
}

/** The ⋯ menu of one message (also opened by a long-press or a right click on it). */
function messageMenu(m, opener) {
  const c = state.convs.get(m.conv);
  if (!c) return;
  const items = [];
  if (!c.closed && !m.deleted) items.push({ id: "reply", label: "回复 Reply", run: () => startReply(c, m) });
  if (!m.deleted && navigator.clipboard) {
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

function startReply(c, m) {
  const { id, seq, from, body } = m;
  state.replyTo = { conv: c.conv, id, seq, from, body };
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
  const m = li && currentConv()?.messages.get(Number(li.dataset.seq));
  if (!m) return false; // not on a message: let the browser's own menu open
  // Android fires contextmenu after our own long-press timer: the menu is open already.
  if (!menuIsOpen()) messageMenu(m, li.querySelector(".more"));
  return true;
});

// --- mute ----------------------------------------------------------------------------------

async function setMute(c, until) {
  clearError($("#send-error"));
  try {
    c.muted_until = (await client.call("conv.mute", { conv: c.conv, until })).until;
    renderConvList();
    if (c.conv === state.current) renderHead(c);
  } catch (e) {
    actionError("免打扰设置失败 Not changed", e);
  }
}

// Muted: one click lifts it. Not muted: choose for how long.
$("#mute").addEventListener("click", (ev) => {
  const c = currentConv();
  if (!c) return;
  if (isMuted(c)) {
    setMute(c, 0);
    return;
  }
  openMenu(ev.currentTarget, [
    { id: "mute-hours", label: `静音 ${MUTE_HOURS} 小时 Mute for ${MUTE_HOURS} h`,
      run: () => setMute(c, serverNow() + MUTE_HOURS * 3600_000) },
    { id: "mute-forever", label: "一直静音，直到取消 Until I unmute", run: () => setMute(c, MUTE_FOREVER) },
  ], "免打扰 Mute");
});

$("#body").addEventListener("input", () => {
  const now = Date.now();
  if (state.current && now - state.lastTyping > 3000) {
    state.lastTyping = now;
    client.request("typing", { conv: state.current });
  }
});

$("#leave").addEventListener("click", async () => {
  const c = state.convs.get(state.current);
  if (!c || !confirm("结束这次聊天？End this chat?")) return;
  try {
    await client.call("conv.leave", { conv: c.conv });
  } catch (e) {
    showError($("#send-error"), e);
  }
});

$("#back").addEventListener("click", () => {
  state.current = null;
  closeMenu(false);
  localStorage.removeItem("chatd.app.current");
  renderConvList();
  renderMessages();
});

$("#logout").addEventListener("click", async () => {
  await client.logout();
  state.convs.clear();
  state.replyTo = null;
  state.current = null;
  localStorage.removeItem("chatd.app.current");
  notice("");
  showAuth();
});

$("#reg-sms").addEventListener("click", async () => {
  const form = $("#register");
  const err = form.querySelector(".error");
  clearError(err);
  const out = $("#reg-devcode");
  try {
    const reply = await client.call("sms.send", { phone: $("#reg-phone").value, purpose: "register" });
    if (reply.dev_code) {
      $("#reg-code").value = reply.dev_code;
      out.textContent = `开发模式验证码 Development code: ${reply.dev_code}（已自动填入 filled in）`;
    } else {
      out.textContent = `验证码已发送，${reply.ttl} 秒内有效 Code sent`;
    }
    out.hidden = false;
  } catch (e) {
    showError(err, e);
  }
});

$("#register").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  const err = form.querySelector(".error");
  clearError(err);
  const interests = checkedInterests($("#reg-interests"));
  if (!interests.length) {
    showError(err, "请至少选择一个兴趣 Pick at least one interest");
    return;
  }
  const f = new FormData(form);
  try {
    state.me = await client.signIn("register", {
      phone: f.get("phone"), code: f.get("code"), password: f.get("password"),
      nickname: f.get("nickname"), birthdate: f.get("birthdate"), gender: f.get("gender"),
      interests, device: "web",
    });
    form.reset();
    $("#reg-devcode").hidden = true;
    await onReady({ user: state.me });
  } catch (e) {
    showError(err, e);
  }
});

$("#login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  const err = form.querySelector(".error");
  clearError(err);
  const f = new FormData(form);
  try {
    state.me = await client.signIn("login", { phone: f.get("phone"), password: f.get("password"), device: "web" });
    form.reset();
    notice("");
    await onReady({ user: state.me });
  } catch (e) {
    showError(err, e);
  }
});

$("#interests-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const err = ev.target.querySelector(".error");
  clearError(err);
  const interests = checkedInterests($("#my-interests"));
  if (!interests.length) {
    showError(err, "请至少选择一个兴趣 Pick at least one interest");
    return;
  }
  try {
    state.me = (await client.call("profile.update", { interests })).user;
    await refreshConvs();
    renderMessages();
    ev.target.closest("details").open = false;
  } catch (e) {
    showError(err, e);
  }
});

document.addEventListener("visibilitychange", () => {
  const c = state.current && state.convs.get(state.current);
  if (c) markRead(c).catch(() => {});
});

setupTabs($(".tabs"));
client.start();
