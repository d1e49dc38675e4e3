// Photos and voice clips in the chat composer of /app/.
//
// 📷 picks up to 9 pictures; they upload at once into the tray above the composer and go
// with the next 发送 (the text may be empty). 🎤 opens a menu: 录音 records with the
// microphone (tap 🎤 again, or 发送, to stop and send; 取消 throws it away; it stops by
// itself after 60 s), or 选择音频文件 picks an audio file. A clip is uploaded (kind=voice)
// and sent alone at once. A refused upload stays in its tray with why, until removed.
import { clock, MAX_PHOTOS } from "./media.js";
import { closeMenu, openMenu } from "./menu.js";
import { canRecord, MAX_SECONDS, VoiceRecorder } from "./recorder.js";
import { UploadTray } from "./uploads.js";

const $ = (sel) => document.querySelector(sel);

/**
 * app: {client, state, sendMessage(conv, body, attachments) -> reply, showSendError(text,
 * code)}. Returns {photos (the tray), reset(): another conversation opens, composerHidden():
 * the open chat ended}.
 */
export function setupChatMedia(app) {
  const { client, state } = app;
  const token = () => client.token;

  const photos = new UploadTray({ el: $("#photo-tray"), kind: "image", max: MAX_PHOTOS, token });
  const voices = new UploadTray({ el: $("#voice-tray"), kind: "voice", max: 1, token });

  $("#attach-photo").addEventListener("click", () => $("#photo-input").click());
  $("#photo-input").addEventListener("change", (ev) => {
    const left = photos.add(ev.target.files);
    ev.target.value = ""; // the same file may be picked again
    if (left) app.showSendError(`一次最多 ${MAX_PHOTOS} 张图片，${left} 张没有加入 At most ${MAX_PHOTOS} photos`);
    $("#body").focus();
  });

  /** Upload a clip and send it alone (body ""), in the conversation open now. */
  async function sendVoice(blob, seconds = 0) {
    const conv = state.current;
    if (!conv) return;
    voices.clear();
    voices.add([blob], { seconds });
    const [stored] = await voices.settled();
    if (!stored) {
      const failed = voices.items[0];
      if (failed) app.showSendError(`语音未发送 Not sent: ${failed.error}`, `http_${failed.status}`);
      return;
    }
    if (state.current !== conv) return; // another conversation opened meanwhile
    const reply = await app.sendMessage(conv, "", [stored]);
    if (reply.t === "ok") voices.clearDone();
  }

  $("#voice-input").addEventListener("change", (ev) => {
    const [file] = ev.target.files;
    ev.target.value = "";
    if (file) sendVoice(file);
  });

  // Recording: tap 🎤 (录音) to start, tap it again or 发送 to stop and send.
  const recorder = new VoiceRecorder({
    onTick: (s) => { $("#rec-time").textContent = clock(s); },
    onLimit: () => finishRecording(true),
  });

  function showRecording(on) {
    $("#recorder").hidden = !on;
    const mic = $("#voice");
    mic.classList.toggle("recording", on);
    mic.textContent = on ? "⏹" : "🎤";
    mic.setAttribute("aria-label", on ? "停止并发送 Stop and send" : "语音 Voice");
    if (on) mic.removeAttribute("aria-haspopup");
    else mic.setAttribute("aria-haspopup", "menu");
  }

  async function startRecording() {
    try {
      await recorder.start();
    } catch (e) {
      app.showSendError(`无法使用麦克风 Microphone not available: ${e.name ?? e}`, "microphone");
      return;
    }
    $("#rec-time").textContent = clock(0);
    $("#rec-max").textContent = clock(MAX_SECONDS);
    showRecording(true);
    $("#rec-send").focus();
  }

  async function finishRecording(send = true) {
    if (!recorder.recording) return;
    showRecording(false);
    const take = await recorder.stop();
    $("#voice").focus();
    if (send && take && take.blob.size) await sendVoice(take.blob, take.seconds);
  }

  $("#voice").addEventListener("click", (ev) => {
    if (recorder.recording) {
      finishRecording(true);
      return;
    }
    const items = [];
    if (canRecord()) items.push({ id: "voice-record", label: "🎙 录音 Record", run: startRecording });
    items.push({ id: "voice-file", label: "🎵 选择音频文件 Pick an audio file",
                 run: () => $("#voice-input").click() });
    openMenu(ev.currentTarget, items, "语音 Voice");
  });
  $("#rec-send").addEventListener("click", () => finishRecording(true));
  $("#rec-cancel").addEventListener("click", () => finishRecording(false));

  return {
    photos,
    /** The composer is hidden (the chat ended): no recording goes on, nothing waits. */
    composerHidden() {
      if (recorder.recording) finishRecording(false);
      if (photos.count) photos.clear();
      if (voices.count) voices.clear();
    },
    reset() {
      closeMenu(false);
      photos.clear();
      voices.clear();
      finishRecording(false);
    },
  };
}
