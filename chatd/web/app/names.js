// Nicknames of other users, for /app/. Messages, quotes and typing events carry only user
// ids. A 1:1 peer's nickname comes with "convs" and "match.found" (remember()); anyone else,
// such as a group's members or the author of a quote, is looked up lazily with "profiles".
// A render asks get() for each name it shows. Unknown ids are collected and sent together
// once the render is done, at most PROFILES_BATCH per call, and onLearned() is called
// (the page renders again) when names arrive. The cache lives as long as the page.

/** The server answers "profiles" for at most this many ids per call (docs/protocol.md). */
export const PROFILES_BATCH = 100;

/** Calls that failed for these reasons are asked again the next time the name is shown. */
const RETRY_CODES = new Set(["disconnected", "rate_limited", "unavailable", "internal"]);

export class Names {
  /** client: anything with request(op, fields) -> reply map (a ChatdClient). */
  constructor(client, onLearned = () => {}) {
    this.client = client;
    this.onLearned = onLearned;
    this.known = new Map(); // id -> nickname
    this.asked = new Set(); // ids asked about (queued, in flight or answered), never asked twice
    this.queue = new Set();
    this.timer = 0;
    this.generation = 0; // clear() starts a new one: late replies of the old are dropped
  }

  remember(id, nickname) {
    if (id && nickname) this.known.set(id, nickname);
  }

  /** The nickname of `id`, or undefined while it is unknown (it is then looked up, once). */
  get(id) {
    const name = this.known.get(id);
    if (name !== undefined || !id) return name;
    if (!this.asked.has(id)) {
      this.asked.add(id);
      this.queue.add(id);
      if (!this.timer) this.timer = setTimeout(() => this.flush(), 0);
    }
    return undefined;
  }

  async flush() {
    this.timer = 0;
    const generation = this.generation;
    const ids = [...this.queue];
    this.queue.clear();
    let learned = false;
    for (let i = 0; i < ids.length; i += PROFILES_BATCH) {
      const batch = ids.slice(i, i + PROFILES_BATCH);
      const reply = await this.client.request("profiles", { users: batch });
      if (generation !== this.generation) return;
      if (reply.t === "err") {
        if (RETRY_CODES.has(reply.code)) for (const id of batch) this.asked.delete(id);
        continue;
      }
      // Ids the server left out (no shared conversation, a block, a deleted account) stay
      // unknown until retryMissing() (after a reconnect): the page shows "用户 <id>".
      for (const [id, p] of Object.entries(reply.users ?? {})) {
        if (p?.nickname && this.known.get(id) !== p.nickname) {
          this.known.set(id, p.nickname);
          learned = true;
        }
      }
    }
    if (learned) this.onLearned();
  }

  /** After a reconnect: ids that were left out may be asked again (they may have joined). */
  retryMissing() {
    for (const id of this.asked) {
      if (!this.known.has(id) && !this.queue.has(id)) this.asked.delete(id);
    }
  }

  /** Another user signs in on this page: forget everything. */
  clear() {
    clearTimeout(this.timer);
    this.timer = 0;
    this.generation += 1;
    this.known.clear();
    this.asked.clear();
    this.queue.clear();
  }
}
