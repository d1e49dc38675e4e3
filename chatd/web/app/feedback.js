// 意见反馈 in the settings view of /app/: a text and up to 4 photos for the operator's
// moderators (feedback), the user's earlier feedback with its state and the moderator's reply
// (feedback.list), and the live feedback.reply event (a notice, and the list updates).
import { MAX_FEEDBACK_PHOTOS, photoGrid } from "./media.js";
import { clearError, formatTime, h, showError } from "./ui.js";
import { UploadTray } from "./uploads.js";

const $ = (sel) => document.querySelector(sel);

const STATE_TEXT = { open: "待处理 Open", answered: "已回复 Answered" };

/** client, links, viewer: the page's. notice(text): the page's notice line. Returns
 *  {load(), clear()}. */
export function setupFeedback({ client, links, viewer, notice }) {
  const form = $("#feedback-form");
  const err = form.querySelector(".error");
  const tray = new UploadTray({ el: $("#feedback-tray"), kind: "image",
                                max: MAX_FEEDBACK_PHOTOS, token: () => client.token });
  let items = null; // the user's feedback as last listed (newest first), null until loaded
  let sending = false;

  function status(text) {
    const el = $("#feedback-status");
    el.textContent = text;
    el.hidden = !text;
  }

  function item(f) {
    const at = (ts) => h("time", { datetime: new Date(ts).toISOString() }, formatTime(ts));
    return h("li", { class: "feedback", dataset: { feedback: f.id, state: f.state } },
      h("div", { class: "feedback-head" },
        h("span", { class: `state ${f.state}` }, STATE_TEXT[f.state] ?? f.state), at(f.ts)),
      h("div", { class: "feedback-text" }, f.text),
      f.attachments?.length ? photoGrid(links, f.attachments, viewer) : null,
      f.reply ? h("div", { class: "feedback-reply" },
        h("b", {}, "管理员回复 Reply"), f.replied_at ? [" · ", at(f.replied_at)] : null,
        h("div", {}, f.reply)) : null);
  }

  function render() {
    const list = $("#feedback-list");
    if (!items?.length) {
      list.replaceChildren(h("li", { class: "muted empty" }, "还没有反馈 None yet"));
      return;
    }
    list.replaceChildren(...items.map(item));
  }

  async function load() {
    try {
      items = (await client.call("feedback.list")).feedback;
      render();
    } catch (e) {
      showError(err, e);
    }
  }

  $("#feedback-photo").addEventListener("click", () => $("#feedback-photo-input").click());
  $("#feedback-photo-input").addEventListener("change", (ev) => {
    const left = tray.add(ev.target.files);
    ev.target.value = "";
    if (left) showError(err, `最多 ${MAX_FEEDBACK_PHOTOS} 张图片 At most ${MAX_FEEDBACK_PHOTOS} photos`);
  });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (sending) return;
    clearError(err);
    status("");
    const input = $("#feedback-text");
    if (!input.value.trim()) {
      input.setAttribute("aria-invalid", "true");
      showError(err, "请描述遇到的问题 Please describe the problem");
      return;
    }
    input.removeAttribute("aria-invalid");
    sending = true;
    try {
      const attachments = await tray.settled();
      const fields = { text: input.value.trim() };
      if (attachments.length) fields.attachments = attachments.map((a) => a.id);
      const { feedback } = await client.call("feedback", fields);
      input.value = "";
      tray.clearDone();
      items = [feedback, ...(items ?? []).filter((f) => f.id !== feedback.id)];
      render();
      status("已提交，谢谢！管理员回复后会通知你 Sent, thank you");
    } catch (e) {
      showError(err, e);
    } finally {
      sending = false;
    }
  });

  client.on("feedback.reply", (ev) => {
    notice(`你的意见反馈有了回复 Your feedback was answered: ${ev.reply}`);
    const f = items?.find((x) => x.id === ev.id);
    if (f) {
      Object.assign(f, { state: "answered", reply: ev.reply, replied_at: ev.ts });
      render();
    } else if (items) {
      load();
    }
  });

  return {
    load,
    clear() {
      items = null;
      tray.clear();
      status("");
      $("#feedback-text").value = "";
      $("#feedback-list").replaceChildren();
    },
  };
}
