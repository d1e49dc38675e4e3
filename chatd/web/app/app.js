// /app/: register or log in, pick interests, match a stranger and chat, group conversations.
// The session token is kept in localStorage; a reload resumes with "auth" and rebuilds the
// view from "convs" and "history".
import { ChatdClient, ChatdError, describeError, randomId } from "./chatd.js";
import { formatTime, h, setupTabs } from "./ui.js";

const $ = (sel) => document.querySelector(sel);
const client = new ChatdClient({ tokenKey: "chatd.app.token" });
const HISTORY_PAGE = 50;

const state = {
  me: null,
  tags: [], // [{id, name}]
  tagName: new Map(),
  convs: new Map(), // conv id -> {conv, kind, last_seq, read_seq, unread, peer, closed, messages: Map(seq -> msg)}
  current: localStorage.getItem("chatd.app.current"),
  peers: JSON.parse(localStorage.getItem("chatd.app.peers") ?? "{}"), // user id -> nickname (from match.found)
  matching: false,
  lastTyping: 0,
  sending: false,
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

function convTitle(c) {
  if (c.kind === "group") {
    const tag = c.conv.slice(2);
    return `# ${state.tagName.get(tag) ?? tag}`;
  }
  return `与 ${c.peer ? nameOf(c.peer) : "陌生人"} 私聊`;
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
          unread: 0, peer: null, closed: false, messages: new Map(), loaded: false };
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

function renderConvList() {
  const direct = $("#direct-list");
  const groups = $("#group-list");
  direct.replaceChildren();
  groups.replaceChildren();
  for (const c of state.convs.values()) {
    const unread = c.unread > 0 ? h("span", { class: "badge", "aria-label": `${c.unread} 条未读 unread` }, c.unread) : null;
    const btn = h("button", {
      type: "button", class: "conv", dataset: { conv: c.conv },
      "aria-current": c.conv === state.current ? "true" : null,
      onclick: () => openConv(c.conv),
    }, h("span", { class: "conv-name" }, convTitle(c)), c.closed ? h("small", {}, " (已结束 ended)") : null, unread);
    (c.kind === "group" ? groups : direct).append(h("li", {}, btn));
  }
  if (!direct.children.length) direct.append(h("li", { class: "muted empty" }, "还没有私聊 — 点「开始匹配」 No chats yet"));
  if (!groups.children.length) groups.append(h("li", { class: "muted empty" }, "没有兴趣群 No groups"));
}

function renderMessages() {
  const list = $("#messages");
  const c = state.current ? state.convs.get(state.current) : null;
  $("#composer").hidden = !c || c.closed;
  $("#leave").hidden = !c || c.kind !== "direct" || c.closed;
  $("#conv-title").textContent = c ? convTitle(c) : "选择一个会话 Pick a conversation";
  document.body.classList.toggle("in-conv", !!c);
  if (!c) {
    list.replaceChildren(h("li", { class: "system" },
      "从左边选择一个会话，或点「开始匹配」认识新朋友。Pick a conversation, or find a stranger."));
    return;
  }
  const items = [...c.messages.values()].sort((a, b) => a.seq - b.seq).map((m) => {
    if (m.system) return h("li", { class: "system" }, m.body);
    const mine = state.me && m.from === state.me.id;
    return h("li", { class: mine ? "msg mine" : "msg", dataset: { seq: m.seq } },
      h("div", { class: "meta" }, h("span", { class: "from" }, nameOf(m.from)), " ",
        h("time", { datetime: new Date(m.ts).toISOString() }, formatTime(m.ts))),
      m.deleted ? h("div", { class: "body deleted" }, "（消息已删除 deleted）")
                : h("div", { class: "body" }, m.body));
  });
  if (c.closed) items.push(h("li", { class: "system" }, "聊天已结束 This chat has ended"));
  list.replaceChildren(...items);
  list.scrollTop = list.scrollHeight;
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
    if (s.peer) rememberPeer(s.peer.id, s.peer.nickname);
    Object.assign(c, { kind: s.kind, last_seq: s.last_seq, read_seq: s.read_seq, unread: s.unread,
                       peer: s.peer ? s.peer.id : null, closed: s.closed });
    seen.add(s.conv);
  }
  for (const id of [...state.convs.keys()]) if (!seen.has(id)) state.convs.delete(id);
  if (state.current && !state.convs.has(state.current)) state.current = null;
  renderConvList();
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
  renderConvList();
  renderMessages();
  const c = state.convs.get(id);
  try {
    await fillHistory(c);
  } catch (e) {
    showError($("#send-error"), e);
  }
  if (state.current !== id) return;
  c.unread = 0;
  renderMessages();
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

client.on("msg", async (m) => {
  const c = convOf(m.conv);
  const held = maxSeq(c);
  c.messages.set(m.seq, m);
  c.last_seq = Math.max(c.last_seq, m.seq);
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

client.on("msg.deleted", (ev) => {
  const m = state.convs.get(ev.conv)?.messages.get(ev.seq);
  if (m) {
    m.deleted = true;
    m.body = "";
    if (ev.conv === state.current) renderMessages();
  }
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
  const reply = await client.request("msg.send", { conv, body, cid: randomId() });
  state.sending = false;
  if (reply.t === "err") {
    input.setAttribute("aria-invalid", "true");
    showError(err, `消息未发送 Not sent: ${describeError(new ChatdError(reply))}`);
    err.dataset.code = reply.code;
    return;
  }
  input.value = "";
  // The sending connection gets no msg event of its own message (the reply says what was
  // stored), and a "mask" entry may have changed the body: show it now, then read the
  // stored version back.
  const c = convOf(conv);
  if (!c.messages.has(reply.seq)) {
    c.messages.set(reply.seq, { t: "msg", conv, id: reply.id, seq: reply.seq, from: state.me.id, body, ts: reply.ts });
  }
  c.last_seq = Math.max(c.last_seq, reply.seq);
  if (conv === state.current) renderMessages();
  const stored = await client.request("history", { conv, after: reply.seq - 1, limit: 1 });
  const m = stored.messages?.[0];
  if (m && m.seq === reply.seq) {
    c.messages.set(m.seq, m);
    if (conv === state.current) renderMessages();
  }
  markRead(c).catch(() => {});
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
  localStorage.removeItem("chatd.app.current");
  renderConvList();
  renderMessages();
});

$("#logout").addEventListener("click", async () => {
  await client.logout();
  state.convs.clear();
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
