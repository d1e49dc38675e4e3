// A tray of pending uploads for /app/: the photos picked for a message, a post or a
// feedback (and a voice clip on its way). Each file is uploaded at once and shown as a
// tile: a small preview (drawn on a canvas into a data: URL, which the page's CSP allows),
// 上传中 while it travels, ✓ when stored, or why it was refused. The form that owns the
// tray sends the ids of the stored files (settled()) and then empties it (clearDone()).
import { upload, UploadError, uploadErrorText, voiceLength } from "./media.js";
import { h } from "./ui.js";

const PREVIEW_SIDE = 144; // px of a tile's preview (2x of its CSS size)
const PARALLEL = 3; // uploads of one tray at once

/** A small JPEG data: URL of a picture file, or null when the browser cannot decode it
 *  (e.g. HEIC in Chrome: the server takes it all the same). */
export async function previewUrl(file) {
  try {
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(1, PREVIEW_SIDE / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    return canvas.toDataURL("image/jpeg", 0.8);
  } catch {
    return null;
  }
}

let nextKey = 1;

export class UploadTray {
  /**
   * el: the <ul> of the tiles. kind: "image" (or "voice"). max: how many files the tray
   * takes. token(): the session token. onChange(): after any tile changed. onRefused(item):
   * an upload was refused (item.error is its Chinese text).
   */
  constructor({ el, kind = "image", max, token, onChange = () => {}, onRefused = () => {} }) {
    Object.assign(this, { el, kind, max, token, onChange, onRefused });
    this.items = []; // {key, file, state: "uploading" | "done" | "error", preview, result, error, promise}
    this.running = 0;
    this.waiting = [];
  }

  get count() {
    return this.items.length;
  }

  get busy() {
    return this.items.some((i) => i.state === "uploading");
  }

  get hasDone() {
    return this.items.some((i) => i.state === "done");
  }

  /** Add files (beyond `max` they are left out, and the answer says how many were). */
  add(files, extra = {}) {
    const room = this.max - this.items.length;
    const taken = [...files].slice(0, Math.max(0, room));
    for (const file of taken) {
      const item = { key: nextKey++, file, state: "uploading", preview: null, result: null,
                     error: "", ...extra };
      this.items.push(item);
      item.promise = this.start(item);
      if (this.kind === "image") {
        previewUrl(file).then((url) => {
          item.preview = url;
          this.render();
        });
      }
    }
    this.render();
    return files.length - taken.length;
  }

  async start(item) {
    if (this.running >= PARALLEL) await new Promise((r) => this.waiting.push(r));
    this.running += 1;
    try {
      item.result = await upload(this.kind, item.file, this.token());
      item.state = "done";
    } catch (e) {
      item.state = "error";
      item.error = uploadErrorText(e);
      item.status = e instanceof UploadError ? e.status : 0;
    } finally {
      this.running -= 1;
      this.waiting.shift()?.();
    }
    if (!this.items.includes(item)) return; // removed while it travelled
    this.render();
    if (item.state === "error") this.onRefused(item);
  }

  /** Wait for the uploads under way; the answers of the stored files, in the tray's order. */
  async settled() {
    await Promise.all(this.items.map((i) => i.promise));
    return this.items.filter((i) => i.state === "done").map((i) => i.result);
  }

  /** The stored files were sent: drop them (tiles that failed stay, with why). */
  clearDone() {
    this.items = this.items.filter((i) => i.state !== "done");
    this.render();
  }

  clear() {
    this.items = [];
    this.render();
  }

  remove(item) {
    this.items = this.items.filter((i) => i !== item);
    this.render();
  }

  render() {
    this.el.replaceChildren(...this.items.map((item) => this.tile(item)));
    this.el.hidden = !this.items.length;
    this.onChange();
  }

  tile(item) {
    const name = item.file.name || (this.kind === "voice" ? "录音 Recording" : "图片 Photo");
    const status = {
      uploading: h("span", { class: "tile-status" },
        h("progress", { "aria-label": `上传中 Uploading ${name}` }), "上传中…"),
      done: h("span", { class: "tile-status ok-mark", "aria-label": "已上传 Uploaded" }, "✓"),
      error: h("span", { class: "tile-status tile-error", role: "alert" }, item.error),
    }[item.state];
    let look;
    if (this.kind === "voice") {
      look = h("span", { class: "tile-voice" }, "🎤",
        item.seconds ? ` ${voiceLength(item.seconds)}` : "");
    } else if (item.preview) {
      look = h("img", { class: "tile-img", src: item.preview, alt: name });
    } else {
      look = h("span", { class: "tile-img placeholder", role: "img", "aria-label": name }, "📷");
    }
    return h("li", { class: "tile", dataset: { state: item.state, status: item.status ?? "" },
                     title: name },
      look, status,
      h("button", { type: "button", class: "tile-remove", "aria-label": `移除 Remove ${name}`,
                    onclick: () => this.remove(item) }, "×"));
  }
}
