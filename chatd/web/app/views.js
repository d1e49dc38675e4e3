// Builders of the conversation-list rows and the message bubbles of /app/. They read one
// conversation or message and a small context (who I am, how to name a user, what to call
// on a click) and return DOM; app.js decides when to render and what the actions do.
import { attachmentsLabel, photoGrid } from "./media.js";
import { formatTime, h } from "./ui.js";

/** convs counts unread messages up to 999 and means "999 or more" by it (docs/protocol.md). */
export const UNREAD_CAP = 999;

/** A mute that ends after this is shown as "until lifted" rather than with a time. */
const FOREVER_AFTER = 365 * 24 * 3600_000;

export function unreadLabel(n) {
  return n >= UNREAD_CAP ? `${UNREAD_CAP}+` : String(n);
}

export function isMuted(c, now = Date.now()) {
  return c.muted_until > now;
}

/** "直到取消" for a far-future mute, else the time it ends. */
export function muteUntilText(until, now = Date.now()) {
  return until - now > FOREVER_AFTER ? "直到取消 until lifted" : `至 until ${formatTime(until)}`;
}

/** One line of a message or a quote: what it said (and what it carries), or that it is gone.
 *  A quote names no attachments: one without text is an attachment. */
export function snippet(m) {
  if (m.recalled) return "[消息已撤回]";
  if (m.deleted) return "[消息已删除]";
  const text = m.body.replace(/\s+/g, " ");
  const label = attachmentsLabel(m.attachments);
  if (label) return text ? `${label} ${text}` : label;
  return text || "[附件 Attachment]";
}

/** The second line of a list row: the newest message, with its sender in a group. */
export function previewText(c, ctx) {
  const m = c.last;
  if (!m) return c.kind === "direct" ? "还没有消息 No messages yet" : "";
  const text = snippet(m);
  if (c.kind === "group" && !m.recalled) return `${ctx.nameOf(m.from)}: ${text}`;
  return text;
}

/** ✓ stored, ✓✓ received by the peer, ✓✓ in colour read (own messages in a 1:1 only). */
export function tickOf(m, c) {
  if (m.seq <= c.peer_read_seq) return { state: "read", mark: "✓✓", label: "已读 read" };
  if (m.seq <= c.peer_delivered_seq) return { state: "delivered", mark: "✓✓", label: "已送达 delivered" };
  return { state: "sent", mark: "✓", label: "已发送 sent" };
}

function dot(online) {
  const label = online ? "在线 online" : "离线 offline";
  return h("span", { class: online ? "dot on" : "dot", role: "img", "aria-label": label, title: label });
}

/** One row of the conversation list. ctx: {current, nameOf, listName, onOpen, avatarOf(c)}. */
export function convRow(c, ctx) {
  const now = Date.now();
  const muted = isMuted(c, now);
  const badge = c.unread > 0
    ? h("span", { class: muted ? "badge quiet" : "badge", "aria-label": `${c.unread} 条未读 unread` },
      unreadLabel(c.unread))
    : null;
  const time = c.last ? h("time", { class: "conv-time", datetime: new Date(c.last.ts).toISOString() },
    formatTime(c.last.ts)) : null;
  const mark = muted
    ? h("span", { class: "mute-mark", role: "img", "aria-label": "已静音 muted",
                  title: `已静音 muted ${muteUntilText(c.muted_until, now)}` }, "🔕")
    : null;
  return h("button", {
    type: "button", class: "conv", dataset: { conv: c.conv },
    "aria-current": c.conv === ctx.current ? "true" : null,
    onclick: () => ctx.onOpen(c.conv),
  },
  ctx.avatarOf(c),
  h("span", { class: "conv-main" },
    h("span", { class: "conv-top" },
      c.kind === "direct" && !c.closed ? dot(c.peerOnline) : null,
      h("span", { class: "conv-name" }, ctx.listName(c)),
      c.closed ? h("small", {}, "(已结束 ended)") : null,
      mark, time),
    h("span", { class: "conv-preview" }, previewText(c, ctx))),
  badge);
}

function recalledLine(m, c, ctx) {
  let who = "对方";
  if (m.from === ctx.me) who = "你";
  else if (c.kind === "group") who = ctx.nameOf(m.from);
  return h("li", { class: "system recalled", dataset: { seq: m.seq, id: m.id } },
    `${who}撤回了一条消息`);
}

function quoteBlock(m, ctx) {
  const q = m.quote;
  if (!q) return h("div", { class: "quote gone" }, "引用的消息不可见 Quoted message unavailable");
  const gone = q.recalled || q.deleted;
  return h("button", {
    type: "button", class: gone ? "quote gone" : "quote", dataset: { quote: q.id },
    title: "查看原消息 Show the quoted message", onclick: () => ctx.onQuote(q),
  }, gone ? snippet(q) : `${ctx.nameOf(q.from)}: ${snippet(q)}`);
}

/** What a message carries: a voice bubble, or its photos as a grid of thumbnails. */
function attachmentsBlock(m, media) {
  const all = m.attachments ?? [];
  const voice = all.find((a) => a.kind === "voice");
  if (voice) return media.player.bubble(voice);
  const photos = all.filter((a) => a.kind === "image");
  return photos.length ? photoGrid(media.links, photos, media.viewer) : null;
}

/**
 * One message of the open conversation (null for one hidden by "delete for me").
 * ctx: {me, nameOf, onMore(m, button), onQuote(quote), media: {links, viewer, player}}.
 */
export function messageItem(m, c, ctx) {
  if (m.hidden) return null;
  if (m.system) return h("li", { class: "system" }, m.body);
  if (m.recalled) return recalledLine(m, c, ctx);
  const mine = m.from === ctx.me;
  const tick = mine && c.kind === "direct" ? tickOf(m, c) : null;
  return h("li", { class: mine ? "msg mine" : "msg", dataset: { seq: m.seq, id: m.id } },
    h("div", { class: "meta" },
      h("span", { class: "from" }, ctx.nameOf(m.from)),
      h("time", { datetime: new Date(m.ts).toISOString() }, formatTime(m.ts)),
      tick ? h("span", { class: "tick", dataset: { tick: tick.state }, role: "img",
                         "aria-label": tick.label, title: tick.label }, tick.mark) : null,
      h("button", { type: "button", class: "more", "aria-haspopup": "menu",
                    "aria-label": "更多操作 More actions",
                    onclick: (ev) => ctx.onMore(m, ev.currentTarget) }, "⋯")),
    m.reply_to ? quoteBlock(m, ctx) : null,
    m.deleted ? h("div", { class: "body deleted" }, "（消息已删除 deleted）")
              : [attachmentsBlock(m, ctx.media), m.body || !m.attachments?.length
                ? h("div", { class: "body" }, m.body) : null]);
}

/** Fill `fieldset` (its legend stays) with a chip per interest tag, `selected` ids checked. */
export function renderInterestBoxes(fieldset, tags, prefix, selected) {
  const legend = fieldset.querySelector("legend");
  fieldset.replaceChildren(legend);
  for (const tag of tags) {
    const id = `${prefix}-tag-${tag.id}`;
    fieldset.append(h("label", { class: "chip", for: id },
      h("input", { type: "checkbox", id, name: "interest", value: tag.id,
                   checked: selected.includes(tag.id) }),
      tag.name));
  }
}

export function checkedInterests(fieldset) {
  return [...fieldset.querySelectorAll("input[name=interest]:checked")].map((i) => i.value);
}
