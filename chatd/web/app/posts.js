// The posts view of /app/ (动态): write a post (text, up to 9 photos, optionally to one of
// the user's interest groups: post.create) and read a feed (feed: the user and their chat
// partners, the user's own, or one group), its photos as a grid of thumbnails.
import { MAX_PHOTOS, photoGrid } from "./media.js";
import { clearError, formatTime, h, showError } from "./ui.js";
import { UploadTray } from "./uploads.js";

const $ = (sel) => document.querySelector(sel);
const FEED_PAGE = 20;

/**
 * client, links, viewer: the page's. groups(): [{conv, name}] of the user's interest groups.
 * onBack(): back to the chats. Returns {load(), clear()}.
 */
export function setupPosts({ client, links, viewer, groups, onBack }) {
  const form = $("#post-form");
  const formError = form.querySelector(".error");
  const tray = new UploadTray({ el: $("#post-tray"), kind: "image", max: MAX_PHOTOS,
                                token: () => client.token });
  let next = null; // the feed's cursor
  let generation = 0; // a newer load drops the pages of an older one
  let posting = false;

  function fillSelects() {
    const mine = groups();
    const scope = $("#feed-scope");
    const was = scope.value;
    scope.replaceChildren(
      h("option", { value: "peers" }, "我和聊天对象 Me and my chats"),
      h("option", { value: "mine" }, "只看我的 Mine"),
      ...mine.map((g) => h("option", { value: g.conv }, `# ${g.name}`)));
    if ([...scope.options].some((o) => o.value === was)) scope.value = was;
    const target = $("#post-group");
    const to = target.value;
    target.replaceChildren(h("option", { value: "" }, "不发到群 Not to a group"),
      ...mine.map((g) => h("option", { value: g.conv }, `发到 # ${g.name}`)));
    if ([...target.options].some((o) => o.value === to)) target.value = to;
  }

  function groupName(conv) {
    return groups().find((g) => g.conv === conv)?.name ?? conv.slice(2);
  }

  function postItem(p) {
    return h("li", { class: "post", dataset: { post: p.id } },
      h("div", { class: "post-head" },
        h("span", { class: "post-author" }, p.author.nickname),
        p.group ? h("span", { class: "post-group" }, `# ${groupName(p.group)}`) : null,
        p.city ? h("span", { class: "muted" }, p.city) : null,
        h("time", { datetime: new Date(p.ts).toISOString() }, formatTime(p.ts))),
      p.body ? h("div", { class: "post-body" }, p.body) : null,
      p.attachments?.length ? photoGrid(links, p.attachments, viewer) : null);
  }

  async function loadFeed(more = false) {
    const list = $("#feed");
    const err = $("#feed-error");
    clearError(err);
    const mine = ++generation;
    const value = $("#feed-scope").value || "peers";
    const fields = value.startsWith("g:") ? { scope: "group", group: value } : { scope: value };
    fields.limit = FEED_PAGE;
    if (more && next) fields.before = next;
    list.setAttribute("aria-busy", "true");
    try {
      const reply = await client.call("feed", fields);
      if (mine !== generation) return;
      next = reply.next;
      const items = reply.posts.map(postItem);
      if (more) list.append(...items);
      else {
        list.replaceChildren(...items);
        if (!items.length) list.append(h("li", { class: "muted empty" }, "还没有动态 No posts yet"));
      }
      $("#feed-more").hidden = !next;
    } catch (e) {
      if (mine === generation) showError(err, e);
    } finally {
      if (mine === generation) list.removeAttribute("aria-busy");
    }
  }

  $("#post-photo").addEventListener("click", () => $("#post-photo-input").click());
  $("#post-photo-input").addEventListener("change", (ev) => {
    const left = tray.add(ev.target.files);
    ev.target.value = "";
    if (left) showError(formError, `一次最多 ${MAX_PHOTOS} 张图片 At most ${MAX_PHOTOS} photos`);
  });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (posting) return;
    clearError(formError);
    const input = $("#post-body");
    if (!input.value.trim() && !tray.count) {
      showError(formError, "写点什么或添加图片 Write something or add photos");
      return;
    }
    posting = true;
    try {
      const attachments = await tray.settled();
      const body = input.value.trim();
      if (!body && !attachments.length) return; // only refused photos: their tiles say why
      const fields = { body };
      if ($("#post-group").value) fields.group = $("#post-group").value;
      if (attachments.length) fields.attachments = attachments.map((a) => a.id);
      await client.call("post.create", fields);
      input.value = "";
      tray.clearDone();
      await loadFeed();
    } catch (e) {
      showError(formError, e);
    } finally {
      posting = false;
    }
  });

  $("#feed-scope").addEventListener("change", () => loadFeed());
  $("#feed-more").addEventListener("click", () => loadFeed(true));
  $("#posts-back").addEventListener("click", onBack);

  return {
    load() {
      fillSelects();
      return loadFeed();
    },
    clear() {
      tray.clear();
      $("#post-body").value = "";
      $("#feed").replaceChildren();
    },
  };
}
