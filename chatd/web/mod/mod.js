// /mod/: a moderator logs in, manages the word lists, dry-runs texts against the live filter
// and works the review and report queues. Shares the protocol client with /app/.
import { ChatdClient, describeError } from "/app/chatd.js";
import { formatTime, h, setupTabs } from "/app/ui.js";

const $ = (sel, root = document) => root.querySelector(sel);
const client = new ChatdClient({ tokenKey: "chatd.mod.token" });
const PAGE = 50;
const words = { q: "", offset: 0, next: null };
const ACTIONS = {
  dismiss: "驳回/无问题 dismiss",
  delete: "删除内容 delete",
  warn: "警告 warn",
  mute: "禁言 mute",
  ban: "封号 ban",
};
const ACTION_NAME = { block: "拦截 block", mask: "打码 mask", review: "送审 review" };

function say(el, text, ok = true) {
  el.textContent = text;
  el.classList.toggle("ok", ok && !!text);
  el.classList.toggle("error", !ok && !!text);
}

function notice(text) {
  $("#notice").textContent = text;
  $("#notice").hidden = !text;
}

// --- session -------------------------------------------------------------------------------

function showLogin() {
  $("#console").hidden = true;
  $("#auth").hidden = false;
  $("#whoami").hidden = true;
  $("#logout").hidden = true;
}

async function onReady({ user }) {
  if (!user) {
    showLogin();
    return;
  }
  $("#whoami").textContent = `${user.nickname}${user.role === "moderator" ? " · 管理员" : ""}`;
  $("#whoami").hidden = false;
  $("#logout").hidden = false;
  if (user.role !== "moderator") {
    notice("此账号不是管理员，不能使用管理后台。This account is not a moderator " +
           "(grant it with: chatd admin grant-moderator PHONE).");
    $("#console").hidden = true;
    $("#auth").hidden = true;
    return;
  }
  notice("");
  $("#auth").hidden = true;
  $("#console").hidden = false;
  await loadWords().catch((e) => say($("#words-msg"), describeError(e), false));
}

client.on("status", ({ state }) => {
  const el = $("#conn");
  el.textContent = { connecting: "连接中… connecting", open: "在线 online", closed: "已断开，重连中… reconnecting" }[state];
  el.dataset.state = state;
});
client.on("ready", onReady);
client.on("logout", ({ reason }) => {
  notice(`已退出登录 Signed out: ${reason}`);
  showLogin();
});

$("#login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  const err = $(".error", form);
  err.hidden = true;
  const f = new FormData(form);
  try {
    const user = await client.signIn("login", { phone: f.get("phone"), password: f.get("password"), device: "web-mod" });
    form.reset();
    await onReady({ user });
  } catch (e) {
    err.textContent = describeError(e);
    err.hidden = false;
  }
});

$("#logout").addEventListener("click", async () => {
  await client.logout();
  notice("");
  showLogin();
});

// --- word lists ----------------------------------------------------------------------------

function versionText(v) {
  return `词表版本 version ${v.version} · 过滤器 filter ${String(v.filter).slice(0, 12)} · ` +
         `词条 entries ${v.size} · 白名单 allow ${v.allow_size}`;
}

async function loadWords() {
  const r = await client.call("mod.words.list", { q: words.q, offset: words.offset, limit: PAGE });
  words.next = r.next;
  $("#words-version").textContent = versionText(r);
  const rows = r.entries.map((e) => h("tr", {},
    h("td", { class: "word" }, e.word),
    h("td", {}, e.category),
    h("td", {}, h("span", { class: `tag ${e.action}` }, ACTION_NAME[e.action] ?? e.action)),
    h("td", {}, h("button", {
      type: "button", class: "danger small", "aria-label": `删除 ${e.word} Remove`,
      onclick: () => change("mod.words.remove", { word: e.word }, `已删除 Removed: ${e.word}`),
    }, "删除 Remove"))));
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 4, class: "muted" }, "没有匹配的词条 No entries")));
  $("#words-table tbody").replaceChildren(...rows);
  const allow = r.allow.map((w) => h("li", {},
    h("span", { class: "word" }, w),
    h("button", {
      type: "button", class: "danger small", "aria-label": `移出白名单 ${w} Remove`,
      onclick: () => change("mod.allow.remove", { word: w }, `已移出白名单 Un-allowed: ${w}`),
    }, "移除 Remove")));
  if (!allow.length) allow.push(h("li", { class: "muted" }, "没有匹配的白名单词 No allowed words"));
  $("#allow-list").replaceChildren(...allow);
  const from = r.total ? words.offset + 1 : 0;
  $("#words-page").textContent = `${from}–${words.offset + r.entries.length} / ${r.total}` +
    (words.q ? ` · “${words.q}”` : "");
  $("#words-prev").disabled = words.offset === 0;
  $("#words-next").disabled = r.next === null;
  const cats = new Set([...r.entries.map((e) => e.category), "default"]);
  $("#categories").replaceChildren(...[...cats].sort().map((c) => h("option", { value: c })));
}

async function change(op, fields, okText) {
  const msg = $("#words-msg");
  try {
    const r = await client.call(op, fields);
    say(msg, `${okText} · 版本 version ${r.version}`);
    await loadWords();
    return true;
  } catch (e) {
    say(msg, describeError(e), false);
    return false;
  }
}

$("#words-search").addEventListener("submit", (ev) => {
  ev.preventDefault();
  words.q = $("#words-q").value.trim();
  words.offset = 0;
  loadWords().catch((e) => say($("#words-msg"), describeError(e), false));
});

$("#words-prev").addEventListener("click", () => {
  words.offset = Math.max(0, words.offset - PAGE);
  loadWords().catch((e) => say($("#words-msg"), describeError(e), false));
});

$("#words-next").addEventListener("click", () => {
  if (words.next === null) return;
  words.offset = words.next;
  loadWords().catch((e) => say($("#words-msg"), describeError(e), false));
});

$("#words-add").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const word = f.get("word").trim();
  if (!word) return;
  const ok = await change("mod.words.add",
    { word, category: f.get("category").trim() || "default", action: f.get("action") },
    `已添加 Added: ${word}`);
  if (ok) {
    $("#add-word").value = "";
    $("#add-word").focus();
  }
});

$("#allow-add").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const word = $("#allow-word").value.trim();
  if (!word) return;
  if (await change("mod.allow.add", { word }, `已加入白名单 Allowed: ${word}`)) $("#allow-word").value = "";
});

// --- dry run -------------------------------------------------------------------------------

/** The text with each match wrapped in <mark>. Offsets count code points (as the server's
 *  Python strings do), so the text is split with Array.from, not by UTF-16 units. */
function highlighted(text, matches) {
  const chars = Array.from(text);
  const spans = [...matches].sort((a, b) => a.start - b.start || b.end - a.end);
  const out = [];
  let pos = 0;
  for (const m of spans) {
    if (m.end <= pos) continue; // inside an earlier, longer hit
    const start = Math.max(m.start, pos);
    if (start > pos) out.push(chars.slice(pos, start).join(""));
    out.push(h("mark", { class: m.action, title: `${m.word} · ${m.category} · ${m.action}` },
      chars.slice(start, m.end).join("")));
    pos = m.end;
  }
  out.push(chars.slice(pos).join(""));
  return out;
}

$("#check-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = $("#check-text").value;
  if (!text) return;
  const verdict = $("#check-verdict");
  $("#check-result").hidden = false;
  try {
    const r = await client.call("mod.words.check", { text });
    verdict.className = `verdict ${r.blocked ? "blocked" : r.matches.length ? "flagged" : "clean"}`;
    verdict.textContent = r.blocked
      ? `会被拦截 Blocked · 类别 category: ${r.category}`
      : r.matches.length
        ? `可以发送，但会${r.action === "mask" ? "打码 masked" : "送审 flagged for review"} · 类别 category: ${r.category ?? "-"}`
        : "可以发送 Clean: no hits";
    $("#check-highlight").replaceChildren(...highlighted(text, r.matches));
    $("#check-masked").textContent = r.masked ?? text;
    const rows = r.matches.map((m) => h("tr", {},
      h("td", {}, `${m.start}–${m.end}`), h("td", { class: "word" }, m.word),
      h("td", {}, m.category), h("td", {}, h("span", { class: `tag ${m.action}` }, ACTION_NAME[m.action] ?? m.action))));
    if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 4, class: "muted" }, "无 None")));
    $("#check-matches tbody").replaceChildren(...rows);
  } catch (e) {
    verdict.className = "verdict error";
    verdict.textContent = describeError(e);
  }
});

// --- queues --------------------------------------------------------------------------------

function field(label, value) {
  if (value === undefined || value === null || value === "") return null;
  return [h("dt", {}, label), h("dd", {}, String(value))];
}

function resolveForm(item, queue) {
  const id = item.item.replace(/[^a-zA-Z0-9]/g, "-");
  const actions = Object.entries(ACTIONS).filter(([a]) => !(a === "delete" && item.kind === "user"));
  const select = h("select", { id: `act-${id}`, name: "action" },
    actions.map(([value, label]) => h("option", { value }, label)));
  const duration = h("div", { class: "duration", hidden: true },
    h("label", { for: `dur-${id}` }, "时长(秒) Duration (s)"),
    h("input", { id: `dur-${id}`, name: "duration", type: "number", min: 1, value: 3600, inputmode: "numeric" }));
  select.addEventListener("change", () => { duration.hidden = !["mute", "ban"].includes(select.value); });
  const status = h("p", { class: "status", role: "status" });
  const form = h("form", { class: "resolve" },
    h("div", {}, h("label", { for: `act-${id}` }, "处理 Action"), select),
    duration,
    h("div", { class: "grow" }, h("label", { for: `note-${id}` }, "备注 Note"),
      h("input", { id: `note-${id}`, name: "note", placeholder: "可选 optional" })),
    h("button", { type: "submit" }, "处理 Resolve"),
    status);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const fields = { item: item.item, action: f.get("action") };
    if (f.get("note")) fields.note = f.get("note");
    if (["mute", "ban"].includes(fields.action) && f.get("duration")) fields.duration = Number(f.get("duration"));
    try {
      const r = await client.call("mod.resolve", fields);
      const panelStatus = $(`#${queue} > .status`);
      say(panelStatus, `已处理 Resolved ${item.item}: ${ACTIONS[fields.action]}` +
        (r.resolved ? ` · 关闭举报 reports closed: ${r.resolved}` : "") +
        (r.until ? ` · 直到 until ${new Date(r.until).toLocaleString()}` : ""));
      await loadQueue(queue);
    } catch (e) {
      say(status, describeError(e), false);
    }
  });
  return form;
}

function queueItem(item, queue) {
  const details = queue === "review"
    ? [field("类型 Kind", item.kind), field("作者 Author", item.author), field("位置 Where", item.where),
       field("时间 Time", formatTime(item.ts))]
    : [field("类型 Kind", item.kind === "user" ? item.kind : `${item.kind} · ${item.target}`), field("原因 Reason", item.reason),
       field("被举报用户 User", item.user), field("举报人 Reporter", item.reporter),
       field("次数 Count", item.count), field("说明 Text", item.text),
       field("时间 Time", formatTime(item.updated_at))];
  const body = queue === "review" ? item.body : item.snapshot;
  return h("li", { class: "queue-item", dataset: { item: item.item } },
    body ? h("blockquote", { class: "body" }, body) : null,
    h("dl", {}, details),
    resolveForm(item, queue));
}

async function loadQueue(queue) {
  const panel = $(`#${queue}`);
  const list = $(".queue", panel);
  try {
    const r = await client.call("mod.queue", { queue, limit: PAGE });
    const items = r.items.map((i) => queueItem(i, queue));
    if (!items.length) items.push(h("li", { class: "muted empty" }, "队列为空 The queue is empty"));
    list.replaceChildren(...items);
  } catch (e) {
    say($(".status", panel), describeError(e), false);
  }
}

for (const btn of document.querySelectorAll(".refresh")) {
  btn.addEventListener("click", () => {
    say($(`#${btn.dataset.queue} > .status`), "");
    loadQueue(btn.dataset.queue);
  });
}

setupTabs($(".tabs"), (tab) => {
  const panel = tab.getAttribute("aria-controls");
  if (client.user?.role !== "moderator") return;
  if (panel === "review" || panel === "reports") loadQueue(panel);
  if (panel === "words") loadWords().catch(() => {});
});
client.start();
