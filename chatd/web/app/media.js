// Photos, voice clips and avatars of /app/ (docs/protocol.md, "Photos, voice clips and
// avatars"): the upload (POST /upload?kind=..., the raw file as the body, the session token
// as a bearer header), what its refusals mean in Chinese, signed links for <img> and <audio>
// tags (media.link; the page's CSP allows images and sounds from 'self' only, and a link is
// a same-origin URL), and the DOM of thumbnails, photo grids, voice bubbles, avatars, the
// photo viewer and the one shared <audio> player.
import { ChatdError, describeError } from "./chatd.js";
import { h } from "./ui.js";

/** The server's limits (docs/protocol.md): photos per message or post, per feedback. */
export const MAX_PHOTOS = 9;
export const MAX_FEEDBACK_PHOTOS = 4;

/** A refused or failed upload: `status` is the HTTP status (0: no answer), `body` the JSON
 *  refusal ({error, message, reason?, ...}). */
export class UploadError extends Error {
  constructor(status, body, kind) {
    super(`upload ${status}: ${body?.error ?? "network"}`);
    this.name = "UploadError";
    this.status = status;
    this.body = body ?? {};
    this.kind = kind;
    this.code = this.body.error ?? (status ? `http_${status}` : "network");
  }
}

/** Upload one file (a File or a Blob, sent as it is). Resolves to the answer
 *  {id, kind, bytes, width, height | seconds}; throws UploadError. */
export async function upload(kind, blob, token) {
  let res;
  try {
    res = await fetch(`/upload?kind=${encodeURIComponent(kind)}`, {
      method: "POST", body: blob, headers: { Authorization: `Bearer ${token}` },
      cache: "no-store",
    });
  } catch {
    throw new UploadError(0, null, kind); // no answer: offline, or the body was cut off
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok || !body?.id) throw new UploadError(res.status, body, kind);
  return body;
}

/** Why an upload failed, in Chinese (and English) for the UI. */
export function uploadErrorText(e) {
  if (!(e instanceof UploadError)) return describeError(e);
  const photo = e.kind !== "voice";
  const { reason } = e.body;
  switch (e.status) {
    case 0: return "上传失败，请检查网络 (network error)";
    case 413:
      if (reason === "too_long") return "语音太长，最长 60 秒 (too long)";
      if (reason === "too_many_pixels") return "图片尺寸太大 (too many pixels)";
      return photo ? "图片太大 (too large)" : "语音文件太大 (too large)";
    case 415: return "不支持的格式 (unsupported format)";
    case 422: return "图片违规，不能发送 (picture not allowed)";
    case 400: if (reason === "corrupt") return "文件已损坏 (corrupt file)"; break;
    case 401: return "未登录，请重新登录 (unauthorized)";
    default: break;
  }
  // 403 (banned, muted), 429 (retry_after), 503...: as the WebSocket's refusals read.
  return describeError(new ChatdError({ code: e.body.error ?? `HTTP ${e.status}`, msg: e.body.message,
                                        ...e.body }));
}

/** "0:07" */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** What a voice bubble says of its length: 3″ (at least 1). */
export function voiceLength(seconds) {
  return `${Math.max(1, Math.round(seconds ?? 0))}″`;
}

/** The one line of a message or post with attachments but maybe no text. */
export function attachmentsLabel(attachments) {
  if (!attachments?.length) return "";
  if (attachments[0].kind === "voice") return `[语音 Voice] ${voiceLength(attachments[0].seconds)}`;
  return attachments.length > 1 ? `[图片 Photo ×${attachments.length}]` : "[图片 Photo]";
}

const LINK_MARGIN = 60_000; // a link this close to its end is asked again
const LINK_PARALLEL = 4; // media.link requests in flight at once (the connection's rate limit)

/**
 * Signed links of files (media.link: {url, thumb, expires}), cached until shortly before
 * they expire; asked a few at a time, and again after a rate_limited reply's retry_after.
 */
export class MediaLinks {
  constructor(client) {
    this.client = client;
    this.cache = new Map(); // id -> {url, thumb, expires}
    this.waiting = new Map(); // id -> Promise of a link being asked for
    this.queue = [];
    this.active = 0;
  }

  /** The cached link of `id` while it is good, else null. */
  fresh(id) {
    const link = this.cache.get(id);
    return link && link.expires - Date.now() > LINK_MARGIN ? link : null;
  }

  /** A link of `id` (a Promise; rejected with a ChatdError, e.g. not_found). */
  get(id) {
    const link = this.fresh(id);
    if (link) return Promise.resolve(link);
    let p = this.waiting.get(id);
    if (!p) {
      p = new Promise((resolve, reject) => {
        this.queue.push({ id, resolve, reject });
        this.pump();
      }).finally(() => this.waiting.delete(id));
      this.waiting.set(id, p);
    }
    return p;
  }

  pump() {
    while (this.active < LINK_PARALLEL && this.queue.length) {
      const job = this.queue.shift();
      this.active += 1;
      this.ask(job).finally(() => {
        this.active -= 1;
        this.pump();
      });
    }
  }

  async ask({ id, resolve, reject }) {
    for (let attempt = 1; ; attempt += 1) {
      const reply = await this.client.request("media.link", { id });
      if (reply.t === "ok") {
        const link = { url: reply.url, thumb: reply.thumb, expires: reply.expires };
        this.cache.set(id, link);
        resolve(link);
        return;
      }
      if (reply.code !== "rate_limited" || attempt >= 4) {
        reject(new ChatdError(reply));
        return;
      }
      await new Promise((r) => setTimeout(r, Math.min(reply.retry_after ?? 200, 2000)));
    }
  }

  /** Another user signs in: links are per user. */
  clear() {
    this.cache.clear();
  }
}

/** Set `img`'s src to the file's link (`thumb` or full), now when cached, else when it comes. */
function linkTo(img, links, id, thumb) {
  const pick = (l) => (thumb ? l.thumb : l.url);
  const cached = links.fresh(id);
  if (cached) {
    img.src = pick(cached);
    return;
  }
  links.get(id).then((l) => { img.src = pick(l); }, () => img.classList.add("broken"));
}

/** The <img> of a photo's thumbnail, sized from the attachment so nothing jumps when it loads. */
export function thumbImg(links, att, alt = "图片 Photo") {
  const img = h("img", { class: "thumb", alt, decoding: "async", dataset: { media: att.id },
                         width: att.width || null, height: att.height || null });
  linkTo(img, links, att.id, true);
  return img;
}

/** Photos as a grid of thumbnails (one photo: larger); a tap opens the viewer on it. */
export function photoGrid(links, photos, viewer) {
  const n = photos.length;
  return h("div", { class: `photos n${Math.min(n, 3)}`, role: "group",
                    "aria-label": `${n} 张图片 photos` },
    photos.map((att, i) => h("button", {
      type: "button", class: "photo", "aria-label": `查看图片 ${i + 1} View photo ${i + 1}`,
      onclick: () => viewer.open(photos, i),
    }, thumbImg(links, att))));
}

/** A round avatar: the picture of `id`, or the first character of `name` when there is none.
 *  `size`: "s" (lists), "m" (headers), "l" (settings). */
export function avatar(links, id, name, size = "s") {
  const label = `${name ?? ""} 的头像 avatar`;
  if (!id) {
    const initial = Array.from(String(name ?? "").replace(/^#\s*/, "").trim())[0] ?? "?";
    return h("span", { class: `avatar ${size} initials`, role: "img", "aria-label": label },
      initial.toUpperCase());
  }
  const img = h("img", { class: `avatar ${size}`, alt: label, decoding: "async",
                         dataset: { media: id } });
  linkTo(img, links, id, true);
  return img;
}

/** The photo viewer: a modal <dialog id="viewer"> with the full picture, previous / next, and
 *  Escape, a click beside the picture or × to close. */
export class PhotoViewer {
  constructor(links) {
    this.links = links;
    this.dialog = document.getElementById("viewer");
    this.img = document.getElementById("viewer-img");
    this.photos = [];
    this.index = 0;
    this.dialog.addEventListener("click", (ev) => {
      if (ev.target === this.dialog || ev.target.classList.contains("viewer-stage")) this.close();
    });
    document.getElementById("viewer-close").addEventListener("click", () => this.close());
    document.getElementById("viewer-prev").addEventListener("click", () => this.show(this.index - 1));
    document.getElementById("viewer-next").addEventListener("click", () => this.show(this.index + 1));
    this.dialog.addEventListener("keydown", (ev) => {
      if (ev.key === "ArrowLeft") this.show(this.index - 1);
      else if (ev.key === "ArrowRight") this.show(this.index + 1);
    });
  }

  open(photos, index = 0) {
    this.photos = photos;
    if (!this.dialog.open) this.dialog.showModal();
    this.show(index);
    document.getElementById("viewer-close").focus();
  }

  show(index) {
    const n = this.photos.length;
    if (!n) return;
    this.index = (index + n) % n;
    const att = this.photos[this.index];
    this.img.removeAttribute("src");
    this.img.dataset.media = att.id;
    if (att.width) {
      this.img.width = att.width;
      this.img.height = att.height;
    }
    linkTo(this.img, this.links, att.id, false);
    document.getElementById("viewer-count").textContent = n > 1 ? `${this.index + 1} / ${n}` : "";
    for (const id of ["viewer-prev", "viewer-next"]) document.getElementById(id).hidden = n < 2;
  }

  close() {
    this.dialog.close();
    this.img.removeAttribute("src");
  }
}

/**
 * Voice clips play through one shared <audio> element (outside the message list, so a
 * re-render of the list does not stop it). Bubbles are buttons with data-voice=<id>; the
 * player marks the one playing.
 */
export class VoicePlayer {
  constructor(links) {
    this.links = links;
    this.audio = h("audio", { id: "player", preload: "none", hidden: true });
    document.body.append(this.audio);
    this.current = null; // the id loaded in the player
    this.failed = null; // the id whose link or sound failed last
    for (const type of ["play", "pause", "ended", "timeupdate", "error"]) {
      this.audio.addEventListener(type, () => this.sync());
    }
  }

  playing(id) {
    return this.current === id && !this.audio.paused && !this.audio.ended;
  }

  async toggle(att) {
    if (this.current === att.id) {
      if (this.audio.paused || this.audio.ended) await this.audio.play().catch(() => {});
      else this.audio.pause();
      return;
    }
    this.audio.pause();
    this.current = att.id;
    this.failed = null;
    this.sync();
    try {
      const link = await this.links.get(att.id);
      if (this.current !== att.id) return;
      this.audio.src = link.url;
      await this.audio.play();
    } catch {
      if (this.current === att.id) this.failed = att.id;
      this.sync();
    }
  }

  stop() {
    this.audio.pause();
    this.audio.removeAttribute("src");
    this.current = null;
    this.sync();
  }

  /** Show the state of the player on every bubble of the page. */
  sync() {
    for (const b of document.querySelectorAll("[data-voice]")) paintVoice(b, this);
  }

  /** A voice message's bubble: ▶ and its length (its width grows with it, up to a limit). */
  bubble(att) {
    const seconds = att.seconds ?? 0;
    const b = h("button", {
      type: "button", class: "voice", dataset: { voice: att.id, seconds },
      style: `--len: ${Math.min(60, Math.max(1, seconds))}`,
      onclick: () => this.toggle(att),
    }, h("span", { class: "voice-icon", "aria-hidden": "true" }, "▶"),
    h("span", { class: "voice-wave", "aria-hidden": "true" }),
    h("span", { class: "voice-len" }, voiceLength(seconds)));
    paintVoice(b, this);
    return b;
  }
}

function paintVoice(b, player) {
  const id = b.dataset.voice;
  const on = player.playing(id);
  const seconds = Number(b.dataset.seconds);
  b.classList.toggle("playing", on);
  b.classList.toggle("broken", player.failed === id);
  b.querySelector(".voice-icon").textContent = on ? "❚❚" : "▶";
  const left = on ? Math.max(0, seconds - player.audio.currentTime) : seconds;
  b.querySelector(".voice-len").textContent = on ? clock(Math.ceil(left)) : voiceLength(seconds);
  const action = on ? "暂停 Pause" : "播放 Play";
  b.setAttribute("aria-label", `${action}: 语音 ${voiceLength(seconds)} voice clip`);
}
