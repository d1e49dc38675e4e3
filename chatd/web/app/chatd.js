// chatd protocol client for the browser, shared by /app/ and /mod/ (import "/app/chatd.js").
//
// It speaks the JSON subprotocol "chatd.v1.json" (text frames, one map per frame), so the
// pages need no MessagePack library. See docs/protocol.md for every op, reply and event,
// and docs/web.md for why JSON.
//
//   const client = new ChatdClient({ tokenKey: "chatd.token" });
//   client.on("msg", (ev) => ...);          // any server event by its "t"
//   client.on("ready", ({ user }) => ...);  // after a (re)connect, and after auth if a token is kept
//   await client.start();
//   const reply = await client.call("interests");   // throws ChatdError on an "err" reply
//
// An "unavailable" reply (the server's store or broker failing for a moment) is retried by
// request() and call(): the same request with a new rid after the reply's retry_after ms
// (at most 5 s; exponential back-off when it is missing), up to 5 attempts within 30 s in
// all (RETRY); then the last reply is returned (or thrown) as any other. A msg.send without
// a cid is given a random one first, so a retry can never store the message twice. Other
// error codes are never retried.

export const SUBPROTOCOL = "chatd.v1.json";

/** The chatd WebSocket endpoint on the same host and port as the page. */
export function wsUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

/** An "err" reply (or a lost connection: code "disconnected"). */
export class ChatdError extends Error {
  constructor(reply) {
    super(`${reply.code}: ${reply.msg ?? ""}`);
    this.name = "ChatdError";
    this.code = reply.code;
    this.reply = reply;
  }
}

const ERROR_TEXT = {
  bad_request: "请求有误 (bad request)",
  unauthorized: "未登录或登录失败 (unauthorized)",
  forbidden: "没有权限 (forbidden)",
  not_found: "找不到 (not found)",
  conflict: "已存在，例如手机号已注册 (conflict)",
  invalid_code: "验证码错误或已过期 (invalid code)",
  underage: "未满 18 岁 (underage)",
  filtered: "内容含有敏感词，已被拦截 (filtered)",
  rate_limited: "操作太频繁，请稍后再试 (rate limited)",
  too_large: "内容太长 (too large)",
  internal: "服务器错误，请重试 (internal)",
  unavailable: "服务暂时不可用，请稍后重试 (unavailable)",
  disconnected: "连接已断开 (disconnected)",
};

const REASON_TEXT = {
  muted: "你已被禁言 (muted)",
  closed: "会话已结束 (closed)",
  blocked: "对方已屏蔽你 (blocked)",
  banned: "账号已被封禁 (banned)",
  not_moderator: "你不是管理员 (not a moderator)",
  moderator: "不能处理管理员 (moderator)",
  consent: "需要授权 (consent)",
  too_late: "已超过可撤回的时间，不能撤回了 (too late)",
  not_yours: "只能撤回自己的消息 (not yours)",
};

/** A short Chinese (and English) explanation of an error, for the UI. */
export function describeError(err) {
  if (!(err instanceof ChatdError)) return `出错了: ${err?.message ?? err}`;
  const r = err.reply;
  let text = ERROR_TEXT[r.code] ?? r.code;
  if (r.code === "forbidden" && r.reason) text = REASON_TEXT[r.reason] ?? `${text}: ${r.reason}`;
  if (r.code === "filtered" && r.category) text += ` · 类别 category: ${r.category}`;
  if (r.code === "bad_request" && r.field) text += ` · 字段 field: ${r.field}`;
  if (r.code === "too_large" && r.limit) text += ` · 上限 limit: ${r.limit}`;
  if ((r.code === "rate_limited" || r.code === "unavailable") && r.retry_after) {
    text += ` · ${Math.ceil(r.retry_after / 1000)} 秒后重试`;
  }
  if (r.until) text += ` · 直到 until ${new Date(r.until).toLocaleString()}`;
  return text;
}

/** A fresh random id, e.g. for the "cid" of msg.send. */
export function randomId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Retry policy of "unavailable" replies: attempts in all (1: no retry), the budget from the
 * first attempt after which no further one starts, the longest wait whatever retry_after
 * says, and the first back-off when a reply has no retry_after (all times in ms). A client
 * takes a copy (client.retry), which a page may change.
 */
export const RETRY = Object.freeze({ attempts: 5, total: 30_000, delayCap: 5_000, backoff: 100 });

/** Milliseconds to wait after the `attempt`-th attempt was answered "unavailable". */
export function retryDelay(reply, attempt, policy = RETRY) {
  const after = reply.retry_after;
  if (typeof after === "number" && Number.isFinite(after) && after >= 0) {
    return Math.min(after, policy.delayCap);
  }
  // No hint from the server: exponential back-off with jitter, so that the clients of one
  // failing node do not all come back at the same instant.
  const base = Math.min(policy.backoff * 2 ** (attempt - 1), policy.delayCap);
  return base * (0.5 + Math.random() / 2);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One WebSocket session that reconnects by itself and resumes with "auth" when a token is
 * kept in localStorage under `tokenKey`.
 *
 * Events: every server event by its "t" ("msg", "match.found", ...), and
 *   "ready"   {user}    connected (user is null when there is no kept token)
 *   "status"  {state}   "connecting" | "open" | "closed"
 *   "logout"  {reason, self}  the session ended (close 4001, or auth refused): the token is
 *                       dropped. `reason` is the close reason ("session ended" when another
 *                       device revoked it) or the refusal's text; `self` is true when this
 *                       page asked for it (logout(), or endSession() of its own session)
 */
export class ChatdClient {
  constructor({ url = wsUrl(), tokenKey = "chatd.token", pingEvery = 60_000 } = {}) {
    this.url = url;
    this.tokenKey = tokenKey;
    this.pingEvery = pingEvery;
    this.user = null;
    this.ws = null;
    this.nextRid = 1;
    this.pending = new Map();
    this.handlers = new Map();
    this.stopped = false;
    this.retryDelay = 500;
    this.pingTimer = null;
    this.retry = { ...RETRY };
    this.ending = false; // this page asked to end its session: the 4001 that follows is expected
  }

  get token() {
    return localStorage.getItem(this.tokenKey);
  }

  set token(value) {
    if (value) localStorage.setItem(this.tokenKey, value);
    else localStorage.removeItem(this.tokenKey);
  }

  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return () => this.handlers.get(type).delete(fn);
  }

  emit(type, data) {
    for (const fn of this.handlers.get(type) ?? []) {
      try {
        fn(data);
      } catch (e) {
        console.error(`handler of ${type} failed`, e);
      }
    }
  }

  /** Open the connection (resolves once open and, with a kept token, authenticated). */
  start() {
    this.stopped = false;
    return new Promise((resolve) => {
      const off = this.on("ready", (d) => {
        off();
        resolve(d);
      });
      this.open();
    });
  }

  open() {
    this.emit("status", { state: "connecting" });
    const ws = new WebSocket(this.url, SUBPROTOCOL);
    this.ws = ws;
    ws.onopen = async () => {
      this.retryDelay = 500;
      this.emit("status", { state: "open" });
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.request("ping").catch(() => {}), this.pingEvery);
      this.user = null;
      this.ending = false;
      const token = this.token;
      if (token) {
        try {
          this.user = (await this.call("auth", { token })).user;
        } catch (e) {
          if (e.code === "unauthorized" || e.code === "forbidden") {
            this.token = null;
            this.emit("logout", { reason: describeError(e), self: false });
          } else {
            return; // the connection dropped: onclose reconnects
          }
        }
      }
      this.emit("ready", { user: this.user });
    };
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      clearInterval(this.pingTimer);
      this.failPending();
      this.emit("status", { state: "closed", code: ev.code });
      if (ev.code === 4001) {
        this.token = null;
        this.user = null;
        this.emit("logout", { reason: ev.reason || "session ended", self: this.ending });
        this.ending = false;
      }
      if (!this.stopped) {
        // A session that ended (4001) is no failure: connect again at once, for the login form.
        setTimeout(() => this.open(), ev.code === 4001 ? 0 : this.retryDelay);
        if (ev.code !== 4001) this.retryDelay = Math.min(this.retryDelay * 2, 10_000);
      }
    };
  }

  receive(data) {
    let obj;
    try {
      obj = JSON.parse(data);
    } catch {
      console.error("undecodable frame");
      return;
    }
    if (obj.t === "ok" || obj.t === "err") {
      const p = this.pending.get(obj.rid);
      if (p) {
        this.pending.delete(obj.rid);
        p.resolve(obj);
      } else if (obj.t === "err") {
        console.warn("error reply without a request", obj);
      }
    } else {
      this.emit(obj.t, obj);
    }
  }

  failPending() {
    for (const p of this.pending.values()) {
      p.resolve({ t: "err", code: "disconnected", msg: "connection closed" });
    }
    this.pending.clear();
  }

  /**
   * Send one request; resolves with its reply map ("ok" or "err"). "unavailable" replies are
   * retried (see RETRY): each attempt has a new rid, the fields (and so the cid) stay.
   */
  async request(op, fields = {}) {
    if (op === "msg.send" && fields.cid === undefined) fields = { ...fields, cid: randomId() };
    const deadline = Date.now() + this.retry.total;
    for (let attempt = 1; ; attempt++) {
      const reply = await this.requestOnce(op, fields);
      if (reply.t !== "err" || reply.code !== "unavailable") return reply;
      if (attempt >= this.retry.attempts || this.stopped) return reply;
      const delay = retryDelay(reply, attempt, this.retry);
      if (Date.now() + delay >= deadline) return reply;
      await sleep(delay);
    }
  }

  /** One attempt of a request: a fresh rid, resolved by the reply with that rid. */
  requestOnce(op, fields) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      return Promise.resolve({ t: "err", code: "disconnected", msg: "not connected" });
    }
    const rid = this.nextRid++;
    return new Promise((resolve) => {
      this.pending.set(rid, { resolve });
      this.ws.send(JSON.stringify({ ...fields, t: op, rid }));
    });
  }

  /** Like request() (retries included), but an "err" reply throws a ChatdError. */
  async call(op, fields = {}) {
    const reply = await this.request(op, fields);
    if (reply.t === "err") throw new ChatdError(reply);
    return reply;
  }

  /** register / login: keeps the token so a reload resumes the session. */
  async signIn(op, fields) {
    const reply = await this.call(op, fields);
    this.token = reply.token;
    this.user = reply.user;
    return reply.user;
  }

  /** End this session on the server; the token is dropped whatever the reply. */
  async logout() {
    this.ending = true;
    await this.request("logout");
    this.token = null;
    this.user = null;
  }

  /**
   * session.revoke of this connection's own session (`id` from "sessions"): like logout(),
   * the server closes this connection with 4001 after the reply, and the "logout" event says
   * `self: true`. An "err" reply (other than a lost connection) keeps the session and is
   * returned as it is.
   */
  async revokeOwnSession(id) {
    this.ending = true;
    const reply = await this.request("session.revoke", { id });
    if (reply.t === "err" && reply.code !== "disconnected") {
      this.ending = false;
      return reply;
    }
    this.token = null;
    this.user = null;
    return reply;
  }

  stop() {
    this.stopped = true;
    clearInterval(this.pingTimer);
    this.ws?.close(1000);
  }
}
