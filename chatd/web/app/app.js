// /app/: register or log in, pick interests, match a stranger and chat (text, photos, voice
// clips), group conversations, posts (动态), settings (avatar, notifications, signed-in
// devices, feedback). The session token is kept in localStorage; a reload resumes with
// "auth" and rebuilds the view from "convs" (list, previews, unread, peers, mutes, receipts)
// and "history". This module holds the page's state, renders the list and the open
// conversation and follows the server's events; the message actions (actions.js), photos
// and voice in the composer (attach.js), the forms of account.js, the settings view
// (settings.js, avatar.js, feedback.js), the posts view (posts.js), the nickname lookups
// (names.js) and the media helpers (media.js) live beside it.
import { setupAccountForms } from "./account.js";
import { setupActions } from "./actions.js";
import { setupChatMedia } from "./attach.js";
import { setupAvatar } from "./avatar.js";
import { ChatdClient, describeError } from "./chatd.js";
import { setupFeedback } from "./feedback.js";
import { avatar, MediaLinks, PhotoViewer, VoicePlayer } from "./media.js";
import { closeMenu, confirmDialog } from "./menu.js";
import { Names } from "./names.js";
import { setupPosts } from "./posts.js";
import { setupSettings } from "./settings.js";
import { clearError, h, setupTabs, showError } from "./ui.js";
import { checkedInterests, convRow, isMuted, messageItem, muteUntilText,
         renderInterestBoxes } from "./views.js";

const $ = (sel) => document.querySelector(sel);
const client = new ChatdClient({ tokenKey: "chatd.app.token" });
const HISTORY_PAGE = 50;

const state = {
  me: null,
  tags: [], // [{id, name}]
  tagName: new Map(),
  // conv id -> the convs summary (peer as its id, peerOnline) and messages: Map(seq -> msg)
  convs: new Map(),
  current: localStorage.getItem("chatd.app.current"),
  view: "chat", // once signed in: "chat", "posts" or "settings"
  matching: false,
  lastTyping: 0,
  sending: false,
  replyTo: null, // {conv, id, seq, from, body, recalled?, deleted?}: the message being answered
  skew: 0, // server clock minus ours (ms), from msg.send replies: for the recall window
  muteTimer: 0,
};

// Nicknames: peers from convs and match.found, everyone else looked up with "profiles" when
// first shown; the page renders again when names arrive.
const names = new Names(client, () => renderAll());
// Signed links of photos, clips and avatars (media.link), the photo viewer, the voice player.
const links = new MediaLinks(client);
const viewer = new PhotoViewer(links);
const player = new VoicePlayer(links);
const media = { links, viewer, player };
localStorage.removeItem("chatd.app.peers"); // an older page kept peers' nicknames there

// --- small helpers -------------------------------------------------------------------------

function notice(text) {
  const el = $("#notice");
  el.textContent = text;
  el.hidden = !text;
}

function nameOf(userId) {
  if (state.me && userId === state.me.id) return "我 me";
  if (userId === "deleted") return "已注销用户";
  return names.get(userId) ?? `用户 ${String(userId).slice(0, 6)}`;
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
          peerAvatar: null,
          peer_read_seq: 0, peer_delivered_seq: 0, closed: false, messages: new Map(),
          loaded: false };
    state.convs.set(id, c);
  }
  return c;
}

// --- views ---------------------------------------------------------------------------------

/** One of the page's screens: "auth" (register, log in), "chat", "posts" or "settings". */
function showView(view) {
  for (const id of ["auth", "chat", "posts", "settings"]) $(`#${id}`).hidden = id !== view;
  // While chatting the page is exactly one screen (the message list scrolls); not elsewhere.
  document.body.classList.toggle("chatting", view === "chat");
  const signedIn = view !== "auth";
  $("#whoami").hidden = !signedIn;
  $("#logout").hidden = !signedIn;
  $("#open-settings").hidden = view !== "chat";
  $("#open-posts").hidden = view !== "chat";
  if (view !== "chat") player.stop();
  if (signedIn) {
    state.view = view;
    renderWhoami();
  }
}

/** The top bar's own avatar and nickname. */
function renderWhoami() {
  if (!state.me) return;
  $("#whoami").replaceChildren(avatar(links, state.me.avatar, state.me.nickname),
    h("span", {}, state.me.nickname));
}

/** The avatar of a conversation: the peer's in a 1:1 (their initial without one), the first
 *  character of its name in a group. */
function convAvatar(c, size = "s") {
  if (c.kind === "group") {
    const face = avatar(links, null, groupName(c), size);
    face.classList.add("group");
    return face;
  }
  return avatar(links, c.peerAvatar, c.peer ? nameOf(c.peer) : "陌生人", size);
}

function showAuth() {
  state.me = null;
  showView("auth");
  renderInterestBoxes($("#reg-interests"), state.tags, "reg", []);
}

function showChat() {
  showView("chat");
  renderInterestBoxes($("#my-interests"), state.tags, "my", state.me.interests);
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
  const ctx = { current: state.current, nameOf, listName, onOpen: openConv, avatarOf: convAvatar };
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
  const face = $("#conv-avatar");
  face.hidden = !c || c.kind !== "direct";
  if (!face.hidden) face.replaceChildren(convAvatar(c, "m"));
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
  if ($("#composer").hidden) chatMedia.composerHidden();
  renderHead(c);
  actions.renderReplyBar();
  document.body.classList.toggle("in-conv", !!c);
  if (!c) {
    list.removeAttribute("aria-busy");
    list.replaceChildren(h("li", { class: "system" },
      "从左边选择一个会话，或点「开始匹配」认识新朋友。Pick a conversation, or find a stranger."));
    return;
  }
  const ctx = { me: state.me?.id, nameOf, onMore: actions.messageMenu, onQuote: actions.showQuoted,
                media };
  const items = [...c.messages.values()].sort((a, b) => a.seq - b.seq)
    .map((m) => messageItem(m, c, ctx)).filter(Boolean);
  if (c.closed) items.push(h("li", { class: "system" }, "聊天已结束 This chat has ended"));
  list.replaceChildren(...items);
  if (stick || atEnd) list.scrollTop = list.scrollHeight;
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
    if (s.peer) names.remember(s.peer.id, s.peer.nickname);
    Object.assign(c, {
      kind: s.kind, last_seq: s.last_seq, read_seq: s.read_seq, unread: s.unread, last: s.last,
      active_at: s.active_at, muted_until: s.muted_until, closed: s.closed, name: s.name,
      peer: s.peer ? s.peer.id : null, peerOnline: !!s.peer?.online, peerAvatar: s.peer?.avatar ?? null,
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
  if (state.current !== id) {
    chatMedia.reset(); // the tray's photos were for the other conversation
    player.stop();
  }
  state.current = id;
  localStorage.setItem("chatd.app.current", id);
  clearError($("#send-error"));
  $("#typing").textContent = "";
  if (state.replyTo && state.replyTo.conv !== id) state.replyTo = null;
  closeMenu(false);
  renderConvList();
  renderMessages(true);
  const c = state.convs.get(id);
  $("#messages").setAttribute("aria-busy", "true"); // the log waits for its history
  try {
    await fillHistory(c);
  } catch (e) {
    showError($("#send-error"), e);
  }
  if (state.current !== id) return;
  $("#messages").removeAttribute("aria-busy");
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
  names.retryMissing(); // someone left out before may share a conversation now
  renderMatch("");
  if (state.view === "settings") {
    showView("settings");
    loadSettings();
  } else if (state.view === "posts") {
    showView("posts");
    posts.load();
  } else {
    showChat();
  }
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

// Why the session ended, by the reason of the 4001 close. Another device's session.revoke
// closes with "session ended"; so do a logout on another page with the same token, a
// password reset and a ban (the server gives them one reason).
const SIGNED_OUT = {
  "session ended": "你已在其他设备下线，请重新登录 You were signed out from another device",
  "account deleted": "账号已注销 The account was deleted",
};

/** Forget what this page held of the user who signed out (another may sign in next). */
function signedOut(text = "") {
  state.convs.clear();
  state.replyTo = null;
  state.current = null;
  state.view = "chat";
  state.matching = false;
  localStorage.removeItem("chatd.app.current");
  names.clear();
  links.clear();
  player.stop();
  chatMedia.reset();
  posts.clear();
  feedback.clear();
  viewer.close();
  closeMenu(false);
  notice(text);
  showAuth();
}

client.on("logout", ({ reason, self }) => {
  // self: this page asked for it (退出, or 下线 of this device): nothing to explain.
  signedOut(self ? "" : SIGNED_OUT[reason] ?? `已退出登录 Signed out: ${reason}`);
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
  names.remember(ev.peer.id, ev.peer.nickname);
  state.matching = false;
  const shared = ev.shared.map((t) => state.tagName.get(t) ?? t).join("、");
  renderMatch(`已匹配 Matched: ${ev.peer.nickname}${shared ? ` · 共同兴趣 ${shared}` : ""}`,
              avatar(links, ev.peer.avatar, ev.peer.nickname, "m"));
  const c = convOf(ev.conv);
  c.peer = ev.peer.id;
  c.peerAvatar = ev.peer.avatar ?? null;
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

// Receipts of a 1:1: the peer received (delivered) or read up to a seq; or I read on another
// device.
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

/** The match box's status line; `face`: the new partner's avatar on match found. */
function renderMatch(text, face = null) {
  $("#match").hidden = state.matching;
  $("#match-cancel").hidden = !state.matching;
  $("#match-status").replaceChildren(...(face ? [face, h("span", {}, text)] : [text]));
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

$("#leave").addEventListener("click", async () => {
  const c = state.convs.get(state.current);
  if (!c || !await confirmDialog("结束这次聊天？对方也不能再发消息。 End this chat for both of you?",
                                 "结束聊天 End chat")) return;
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
  signedOut();
});

$("#open-settings").addEventListener("click", () => {
  closeMenu(false);
  showView("settings");
  loadSettings();
  $("#settings-back").focus();
});

$("#open-posts").addEventListener("click", () => {
  closeMenu(false);
  showView("posts");
  posts.load();
  $("#posts-back").focus();
});

const settings = setupSettings({
  client,
  onBack: () => {
    showChat();
    $("#open-settings").focus();
  },
  onSignedOut: () => signedOut(),
});

const avatarCard = setupAvatar({ client, links, me: () => state.me, onChange: renderWhoami });
const feedback = setupFeedback({ client, links, viewer, notice });

function loadSettings() {
  avatarCard.render();
  settings.load();
  feedback.load();
}

const posts = setupPosts({
  client, links, viewer,
  groups: () => (state.me?.interests ?? []).map((tag) => ({ conv: `g:${tag}`,
                                                           name: state.tagName.get(tag) ?? tag })),
  onBack: () => {
    showChat();
    $("#open-posts").focus();
  },
});

const actions = setupActions({
  client, state, nameOf, convOf, currentConv, serverNow, noteNewest, markRead, renderConvList,
  renderMessages, renderHead, refreshSoon, photos: () => chatMedia.photos,
});

const chatMedia = setupChatMedia({
  client, state, sendMessage: actions.sendMessage, showSendError: actions.showSendError,
});

setupAccountForms({
  client,
  onSignedIn: async (user) => {
    notice("");
    state.me = user;
    await onReady({ user });
  },
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
