// Voice recording for /app/ with MediaRecorder: the microphone is opened on start and
// released on stop; the recording ends by itself after MAX_SECONDS.
//
// The recorder's blob is sent as it is, never re-encoded. The first type of RECORD_TYPES
// this browser can record is used: Firefox records Ogg/Opus and Safari MP4/AAC, which the
// server takes; Chrome records only WebM/Opus (and Opus in MP4), which the server refuses
// with 415 until its WebM support lands (it will then store it as Ogg/Opus).

export const MAX_SECONDS = 60;
export const RECORD_TYPES = ["audio/ogg;codecs=opus", "audio/webm;codecs=opus", "audio/mp4"];

export function canRecord() {
  return !!(navigator.mediaDevices?.getUserMedia && globalThis.MediaRecorder);
}

export function recordingType() {
  return RECORD_TYPES.find((t) => MediaRecorder.isTypeSupported(t)) ?? "";
}

export class VoiceRecorder {
  /** onTick(seconds): about 4 times a second while recording. onLimit(): MAX_SECONDS reached
   *  (the recording is stopped; call stop() for its blob). */
  constructor({ onTick = () => {}, onLimit = () => {} } = {}) {
    this.onTick = onTick;
    this.onLimit = onLimit;
    this.rec = null;
  }

  get recording() {
    return this.rec !== null;
  }

  /** Ask for the microphone and start; throws when it is refused or missing. */
  async start() {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const type = recordingType();
    const rec = new MediaRecorder(stream, type ? { mimeType: type } : {});
    const chunks = [];
    rec.addEventListener("dataavailable", (ev) => {
      if (ev.data.size) chunks.push(ev.data);
    });
    this.done = new Promise((resolve) => {
      rec.addEventListener("stop", () => {
        for (const track of stream.getTracks()) track.stop();
        resolve(new Blob(chunks, { type: rec.mimeType || type }));
      });
    });
    this.started = performance.now();
    this.rec = rec;
    rec.start(250);
    this.timer = setInterval(() => {
      const s = this.seconds;
      this.onTick(Math.min(s, MAX_SECONDS));
      if (s >= MAX_SECONDS) this.onLimit();
    }, 250);
  }

  get seconds() {
    return this.rec ? (performance.now() - this.started) / 1000 : 0;
  }

  /** Stop: resolves to {blob, seconds} (blob.type is what was recorded). */
  async stop() {
    if (!this.rec) return null;
    const seconds = Math.min(this.seconds, MAX_SECONDS);
    clearInterval(this.timer);
    const rec = this.rec;
    this.rec = null;
    if (rec.state !== "inactive") rec.stop();
    return { blob: await this.done, seconds };
  }

  /** Stop and throw the recording away. */
  async cancel() {
    await this.stop();
  }
}
