// The socket to chatd (docs/protocol.md): hello with the cursor of the last event handled,
// reconnects with backoff, requests matched to replies by id, and a pace below the server's
// rate limit.

const SUBPROTOCOL = 'chatd.v1.json';
const REQUEST_TIMEOUT_MS = 20000;
const PING_EVERY_MS = 20000;
const PONG_WITHIN_MS = 10000;
// The server allows 20 frames a second with bursts of 40; stay below it.
const RATE_PER_SECOND = 12;
const BURST = 24;
// Reads and idempotent writes may be sent again after a reconnect; others fail instead.
const REPEATABLE = new Set(['chats', 'history', 'search', 'attachments', 'ping']);

export class ChatdError extends Error {
  constructor(code, message, details) {
    super(message || code);
    this.code = code;
    this.details = details || null;
  }
}

export class Connection {
  /**
   * handlers: onWelcome(welcome, {resumed}), onEvent(event), onRead(frame), onSynced(),
   * onReset() (the cursor was unknown: reload chats), onStatus(status), onFatal(message).
   * onSignal(frame): a `typing` or `presence` frame (1.1).
   * status: 'connecting' | 'offline' | 'syncing' | 'live' | 'closed'.
   */
  constructor({ url, token, handlers }) {
    this.url = url;
    this.token = token;
    this.handlers = handlers;
    this.ws = null;
    this.status = 'connecting';
    this.cursor = null;
    this.welcomeCursor = null;
    this.user = null;
    this.ready = false; // welcome received and replay (if any) finished
    this.pending = new Map(); // id -> {frame, resolve, reject, timer, sent}
    this.outbox = []; // ids waiting to be sent, in order
    this.fireAndForget = []; // frames without id (read marks)
    this.counter = 0;
    this.attempt = 0;
    this.tokens = BURST;
    this.refilledAt = performance.now();
    this.flushTimer = null;
    this.reconnectTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.stopped = false;
  }

  start() {
    window.addEventListener('offline', () => this.drop());
    window.addEventListener('online', () => this.reconnectNow());
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.drop();
  }

  /**
   * Goes on with a renewed token: the socket authenticated with the old one is closed by the
   * server at its `exp`, so a new one says `hello` with the new token and the cursor of the
   * last event handled, and misses nothing. Waits (up to a few seconds) for requests in
   * flight, which a socket closed under them could not all repeat.
   */
  async renew(token) {
    this.token = token;
    for (let waited = 0; waited < 5000 && this.inFlight(); waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const ws = this.ws;
    if (this.stopped || !ws) return; // the next `hello` carries the new token
    ws.onopen = ws.onmessage = ws.onclose = null;
    try {
      ws.close(1000, 'token renewed');
    } catch {
      // already closed
    }
    this.ws = null;
    this.ready = false;
    this.stopPing();
    this.failInFlight();
    this.attempt = 0;
    this.open();
  }

  /** A new token after the server refused the old one (a new link pasted into the tab): the
   * page connects again with it and its cursor, as after a lost connection. */
  resume(token) {
    if (!this.stopped) {
      this.renew(token);
      return;
    }
    this.token = token;
    this.stopped = false;
    const ws = this.ws;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try {
        ws.close();
      } catch {
        // already closed
      }
      this.ws = null;
    }
    this.ready = false;
    this.attempt = 0;
    this.open();
  }

  inFlight() {
    for (const entry of this.pending.values()) if (entry.sent) return true;
    return false;
  }

  // ---- requests ------------------------------------------------------------------------------

  /** Sends a request frame; resolves with its reply, rejects with a ChatdError. */
  request(frame) {
    const id = `r${++this.counter}`;
    return new Promise((resolve, reject) => {
      const entry = { frame: { ...frame, id }, resolve, reject, timer: null, sent: false };
      this.pending.set(id, entry);
      this.outbox.push(id);
      this.flush();
    });
  }

  /** A frame that gets no reply (read marks). Dropped while offline: the app sends again. */
  notify(frame) {
    if (!this.ready) return;
    this.fireAndForget.push(frame);
    this.flush();
  }

  flush() {
    clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (!this.ready || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    const now = performance.now();
    this.tokens = Math.min(BURST, this.tokens + ((now - this.refilledAt) / 1000) * RATE_PER_SECOND);
    this.refilledAt = now;
    while (this.tokens >= 1 && (this.fireAndForget.length || this.outbox.length)) {
      if (this.fireAndForget.length) {
        this.raw(this.fireAndForget.shift());
      } else {
        const id = this.outbox.shift();
        const entry = this.pending.get(id);
        if (!entry) continue;
        entry.sent = true;
        clearTimeout(entry.timer);
        entry.timer = setTimeout(() => this.settle(id, null, new ChatdError('timeout',
          'Сервер не ответил вовремя')), REQUEST_TIMEOUT_MS);
        this.raw(entry.frame);
      }
      this.tokens -= 1;
    }
    if (this.fireAndForget.length || this.outbox.length) {
      const wait = Math.max(10, ((1 - this.tokens) / RATE_PER_SECOND) * 1000);
      this.flushTimer = setTimeout(() => this.flush(), wait);
    }
  }

  raw(frame) {
    this.ws.send(JSON.stringify(frame));
  }

  settle(id, reply, error) {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    clearTimeout(entry.timer);
    if (error) entry.reject(error);
    else entry.resolve(reply);
  }

  // ---- the socket ----------------------------------------------------------------------------

  open() {
    if (this.stopped) return;
    clearTimeout(this.reconnectTimer);
    this.setStatus(this.cursor ? 'offline' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(this.url, SUBPROTOCOL);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      const hello = { type: 'hello', id: 'hello', token: this.token };
      if (this.cursor) hello.since = this.cursor;
      this.raw(hello);
    };
    ws.onmessage = (message) => {
      if (ws !== this.ws) return;
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      this.receive(frame);
    };
    ws.onclose = (close) => this.closed(ws, close.code, close.reason);
    ws.onerror = () => {};
  }

  receive(frame) {
    switch (frame.type) {
      case 'welcome': {
        const resumed = this.cursor !== null;
        this.user = frame.user;
        this.welcomeCursor = frame.cursor;
        this.attempt = 0;
        if (!resumed) this.cursor = frame.cursor;
        this.handlers.onWelcome?.(frame, { resumed });
        if (resumed) this.setStatus('syncing');
        else this.goLive();
        return;
      }
      case 'event':
        try {
          this.handlers.onEvent?.(frame);
        } finally {
          this.cursor = frame.cursor;
        }
        return;
      case 'synced':
        this.cursor = frame.cursor;
        this.goLive();
        this.handlers.onSynced?.();
        return;
      case 'read':
        this.handlers.onRead?.(frame);
        return;
      case 'typing':
      case 'presence':
        // Version 1.1's signals: no id, not events, nothing to resume from.
        this.handlers.onSignal?.(frame);
        return;
      case 'error':
        if (frame.code === 'bad_cursor') {
          // Unknown cursor (another log): live events follow welcome.cursor; reload.
          this.cursor = this.welcomeCursor;
          this.goLive();
          this.handlers.onReset?.();
          return;
        }
        if (frame.code === 'unauthorized') {
          this.fatal(frame.message);
          return;
        }
        if (frame.code === 'rate_limited' && frame.id && this.pending.has(frame.id)) {
          const entry = this.pending.get(frame.id);
          clearTimeout(entry.timer);
          entry.sent = false;
          const wait = Math.ceil((frame.details?.retry_after || 0.5) * 1000);
          this.tokens = 0;
          setTimeout(() => {
            if (this.pending.has(frame.id)) {
              this.outbox.unshift(frame.id);
              this.flush();
            }
          }, wait);
          return;
        }
        if (frame.id) this.settle(frame.id, null, new ChatdError(frame.code, frame.message, frame.details));
        return;
      default:
        if (frame.id && this.pending.has(frame.id)) this.settle(frame.id, frame, null);
    }
  }

  goLive() {
    this.ready = true;
    this.setStatus('live');
    this.startPing();
    this.flush();
  }

  closed(ws, code, reason) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.ready = false;
    this.stopPing();
    this.failInFlight();
    if (this.stopped) return;
    if (code === 4001) {
      this.fatal(reason === 'token expired' ? 'Сессия истекла' : reason || 'Нет доступа');
      return;
    }
    this.setStatus(this.cursor ? 'offline' : 'connecting');
    this.scheduleReconnect();
  }

  /** Requests already sent get no answer on a dead socket: repeat reads, fail the rest. */
  failInFlight() {
    const again = [];
    for (const [id, entry] of this.pending) {
      if (!entry.sent) continue;
      clearTimeout(entry.timer);
      entry.sent = false;
      if (REPEATABLE.has(entry.frame.type) || ((entry.frame.type === 'send' || entry.frame.type === 'note') && entry.frame.nonce)) {
        again.push(id);
      } else {
        this.settle(id, null, new ChatdError('unavailable', 'Нет соединения с сервером'));
      }
    }
    this.outbox.unshift(...again);
    this.fireAndForget = [];
  }

  /** Treats the socket as lost now (no network, or no pong). */
  drop() {
    const ws = this.ws;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    try {
      ws.close();
    } catch {
      // already closed
    }
    this.closed(ws, 1006, '');
    this.ws = null;
  }

  reconnectNow() {
    if (this.stopped || this.ws) return;
    this.attempt = 0;
    this.open();
  }

  scheduleReconnect() {
    clearTimeout(this.reconnectTimer);
    if (navigator.onLine === false) return; // the 'online' event reconnects
    const delay = Math.min(5000, 250 * 2 ** this.attempt) + Math.random() * 250;
    this.attempt += 1;
    this.reconnectTimer = setTimeout(() => this.open(), delay);
  }

  startPing() {
    this.stopPing();
    this.pingTimer = setInterval(() => {
      if (!this.ready) return;
      clearTimeout(this.pongTimer);
      this.pongTimer = setTimeout(() => this.drop(), PONG_WITHIN_MS);
      this.request({ type: 'ping' }).then(() => clearTimeout(this.pongTimer), () => {});
    }, PING_EVERY_MS);
  }

  stopPing() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
  }

  fatal(message) {
    this.stopped = true;
    this.ready = false;
    this.stopPing();
    clearTimeout(this.reconnectTimer);
    for (const id of [...this.pending.keys()]) {
      this.settle(id, null, new ChatdError('unauthorized', message));
    }
    this.setStatus('closed');
    this.handlers.onFatal?.(message);
  }

  setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    this.handlers.onStatus?.(status);
  }
}
