// The settings view of /app/ (设置): notification preferences (通知设置, "notify.settings")
// and the signed-in devices (登录设备, "sessions" and "session.revoke").
//
// A browser gets no push notifications (it registers no push token), but the preferences
// belong to the user and apply to every phone they use, so this is where they are set.
import { ChatdError } from "./chatd.js";
import { confirmDialog } from "./menu.js";
import { clearError, formatTime, h, showError } from "./ui.js";

const $ = (sel) => document.querySelector(sel);
const pad = (n) => String(n).padStart(2, "0");

/** Minutes of the day as the value of an <input type=time> ("22:00"). */
export function minutesToTime(m) {
  return `${pad(Math.floor(m / 60))}:${pad(m % 60)}`;
}

/** "22:30" -> 1350; null for an empty or unreadable value. */
export function timeToMinutes(value) {
  const m = /^(\d{1,2}):(\d{2})/.exec(value ?? "");
  return m ? Number(m[1]) * 60 + Number(m[2]) : null;
}

/** This browser's offset in minutes EAST of UTC, as the server wants it. getTimezoneOffset()
 *  counts the other way: it is -480 in China (UTC+8). */
export function tzOffset(date = new Date()) {
  return -date.getTimezoneOffset() || 0; // never -0
}

export function tzLabel(minutes) {
  const a = Math.abs(minutes);
  return `UTC${minutes < 0 ? "-" : "+"}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

function quietHoursOn(s) {
  return s.quiet_start >= 0 && s.quiet_end >= 0 && s.quiet_start !== s.quiet_end;
}

function sessionRow(s, onRevoke) {
  const device = s.device || "未知设备 Unknown device";
  const at = (ts) => h("time", { datetime: new Date(ts).toISOString() }, formatTime(ts));
  return h("li", { class: s.current ? "session current" : "session", dataset: { session: s.id } },
    h("div", { class: "session-main" },
      h("span", { class: "session-device" }, device,
        s.current ? h("span", { class: "here" }, "本机 This device") : null),
      h("span", { class: "session-times" }, "登录 Signed in ", at(s.created), " · ",
        s.current ? "正在使用 In use now" : ["最近活跃 Active ", at(s.last_active)])),
    h("button", {
      type: "button", class: "danger", dataset: { revoke: s.id },
      "aria-label": `下线 Sign out: ${device}${s.current ? "（本机 this device）" : ""}`,
      onclick: () => onRevoke(s),
    }, "下线", h("span", { class: "wide" }, " Sign out")));
}

/**
 * onBack(): back to the chats. onSignedOut(): this page's own session was revoked here (the
 * page then shows the login form, as after 退出). Returns {load()}: fetch what the view shows.
 */
export function setupSettings({ client, onBack, onSignedOut }) {
  const form = $("#notify-form");
  const notifyError = form.querySelector(".error");
  const sessionsError = $("#sessions-error");
  let saved = null; // the settings as the server last answered

  function status(el, text) {
    el.textContent = text;
    el.hidden = !text;
  }

  /** The controls that only matter with notifications on (and times with quiet hours). */
  function syncDisabled() {
    $("#notify-details").disabled = !form.elements.enabled.checked;
    const quiet = form.elements.quiet.checked;
    $("#quiet-start").disabled = !quiet;
    $("#quiet-end").disabled = !quiet;
  }

  function showTz() {
    const here = tzOffset();
    let text = `时间按本机时区 ${tzLabel(here)} 计算 Times are in this device's time zone`;
    if (saved && quietHoursOn(saved) && saved.tz_offset !== here) {
      text = `已保存的时段按 ${tzLabel(saved.tz_offset)} 计算；保存后改用本机时区 ${tzLabel(here)}`
        + ` Saved in ${tzLabel(saved.tz_offset)}; saving uses this device's zone`;
    }
    $("#notify-tz").textContent = text;
  }

  function fill(s) {
    saved = s;
    const f = form.elements;
    f.enabled.checked = s.enabled;
    f.previews.checked = s.previews;
    f.groups.checked = s.groups;
    f.quiet.checked = quietHoursOn(s);
    $("#quiet-start").value = minutesToTime(quietHoursOn(s) ? s.quiet_start : 22 * 60);
    $("#quiet-end").value = minutesToTime(quietHoursOn(s) ? s.quiet_end : 8 * 60);
    syncDisabled();
    showTz();
  }

  async function loadNotify() {
    clearError(notifyError);
    status($("#notify-status"), "");
    try {
      fill((await client.call("notify.settings")).settings);
    } catch (e) {
      showError(notifyError, e);
    }
  }

  form.addEventListener("change", () => {
    syncDisabled();
    status($("#notify-status"), "");
  });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearError(notifyError);
    status($("#notify-status"), "");
    const f = form.elements;
    const fields = { enabled: f.enabled.checked, previews: f.previews.checked,
                     groups: f.groups.checked, quiet_start: -1, quiet_end: -1,
                     tz_offset: tzOffset() };
    if (f.quiet.checked) {
      const start = timeToMinutes($("#quiet-start").value);
      const end = timeToMinutes($("#quiet-end").value);
      if (start === null || end === null || start === end) {
        showError(notifyError, "请填写不同的开始和结束时间 Pick a start and a different end time");
        return;
      }
      Object.assign(fields, { quiet_start: start, quiet_end: end });
    }
    try {
      fill((await client.call("notify.settings", fields)).settings);
      status($("#notify-status"), "已保存 Saved");
    } catch (e) {
      showError(notifyError, e);
    }
  });

  async function loadSessions() {
    clearError(sessionsError);
    try {
      const { sessions } = await client.call("sessions");
      // This device first, then the others, most recently active first (as listed).
      const rows = [...sessions.filter((s) => s.current), ...sessions.filter((s) => !s.current)];
      $("#sessions").replaceChildren(...rows.map((s) => sessionRow(s, revoke)));
      $("#sessions-count").textContent = `(${sessions.length})`;
    } catch (e) {
      showError(sessionsError, e);
    }
  }

  async function revoke(s) {
    clearError(sessionsError);
    status($("#sessions-status"), "");
    const device = s.device || "未知设备 Unknown device";
    const question = s.current
      ? "让本机下线？这个页面会退出登录。 Sign out this device? This page will be signed out."
      : `让「${device}」下线？它需要重新登录才能再用。 Sign out “${device}”? It will have to log in again.`;
    if (!await confirmDialog(question, "下线 Sign out")) return;
    if (s.current) {
      const reply = await client.revokeOwnSession(s.id);
      if (reply.t === "err") showError(sessionsError, new ChatdError(reply));
      else onSignedOut();
      return;
    }
    try {
      await client.call("session.revoke", { id: s.id });
      status($("#sessions-status"), `「${device}」已下线 Signed out`);
    } catch (e) {
      // not_found: it ended already (expired, or signed out elsewhere); the list shows it gone.
      if (e.code !== "not_found") showError(sessionsError, e);
    }
    await loadSessions();
    $("#sessions-refresh").focus();
  }

  $("#sessions-refresh").addEventListener("click", () => {
    status($("#sessions-status"), "");
    loadSessions();
  });
  $("#settings-back").addEventListener("click", onBack);

  return {
    load: () => Promise.all([loadNotify(), loadSessions()]),
  };
}
