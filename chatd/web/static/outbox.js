// Messages written but not yet accepted by the server. Each goes out with a nonce, so sending
// it again (after a lost connection, a restart of the server, a reload of the page) appends it
// once (docs/protocol.md 3). They stay in sessionStorage until acked, show at the end of their
// chat with how they stand, and go out by themselves once the page is connected again.

import { errorText } from './errors.js';

// The connection answers these when it could not get an answer: the message waits and goes
// out again (the same nonce, so at most once).
const WAIT_CODES = new Set(['unavailable', 'unauthorized']);
const RETRY_CODES = new Set(['timeout', 'rate_limited', 'internal']);
const RETRY_MS = 3000;

function newNonce() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function readSession(key) {
  try {
    const text = sessionStorage.getItem(key);
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

export class Outbox {
  /**
   * onChange(chatId): the chat's queued messages changed. onRefused(item, error): the server
   * refused a message for its content (contacts): it left the queue, the composer shows why.
   */
  constructor(app, userKey, { onChange, onRefused }) {
    this.app = app;
    this.key = `chatd.outbox.${userKey}`;
    this.onChange = onChange;
    this.onRefused = onRefused;
    this.inFlight = new Set(); // nonces whose request is with the connection
    const kept = readSession(this.key) || [];
    this.items = (Array.isArray(kept) ? kept : [])
      .filter((item) => item && item.nonce && item.chat && typeof item.text === 'string')
      .map((item) => ({ ...item, state: item.state === 'failed' ? 'failed' : 'waiting' }));
  }

  forChat(chatId) {
    return this.items.filter((item) => item.chat === chatId);
  }

  get size() {
    return this.items.length;
  }

  /** Queues a message and sends it as soon as the connection allows. */
  add(chatId, text, attachments) {
    const item = {
      nonce: newNonce(), chat: chatId, text, attachments, at: new Date().toISOString(), state: 'waiting',
    };
    this.items.push(item);
    this.save();
    this.submit(item);
    return item;
  }

  /** Sends everything that waits (after `welcome`: connected again, maybe with a new token). */
  submitAll() {
    for (const item of this.items) if (item.state !== 'failed') this.submit(item);
  }

  submit(item) {
    if (this.inFlight.has(item.nonce) || !this.items.includes(item)) return;
    this.inFlight.add(item.nonce);
    item.state = 'sending';
    item.error = null;
    this.onChange(item.chat);
    const frame = { type: 'send', chat: item.chat, text: item.text, nonce: item.nonce };
    if (item.attachments?.length) frame.attachments = item.attachments.map((file) => file.id);
    this.app.conn.request(frame).then(
      () => {
        this.inFlight.delete(item.nonce);
        this.remove(item);
      },
      (error) => this.failed(item, error),
    );
  }

  failed(item, error) {
    this.inFlight.delete(item.nonce);
    if (!this.items.includes(item)) return;
    if (WAIT_CODES.has(error.code) || RETRY_CODES.has(error.code)) {
      item.state = 'waiting';
      this.onChange(item.chat);
      if (RETRY_CODES.has(error.code)) {
        setTimeout(() => {
          if (item.state === 'waiting' && this.app.conn.ready) this.submit(item);
        }, RETRY_MS);
      }
      return;
    }
    if (error.code === 'contacts_forbidden') {
      this.remove(item);
      this.onRefused(item, error);
      return;
    }
    item.state = 'failed';
    item.error = errorText(error);
    this.save();
    this.onChange(item.chat);
  }

  retry(item) {
    if (item.state === 'failed') this.submit(item);
  }

  discard(item) {
    this.remove(item);
  }

  remove(item) {
    const at = this.items.indexOf(item);
    if (at < 0) return;
    this.items.splice(at, 1);
    this.save();
    this.onChange(item.chat);
  }

  save() {
    const kept = this.items.map(({ nonce, chat, text, attachments, at, state, error }) =>
      ({ nonce, chat, text, attachments, at, state: state === 'failed' ? 'failed' : 'waiting', error }));
    try {
      if (kept.length) sessionStorage.setItem(this.key, JSON.stringify(kept));
      else sessionStorage.removeItem(this.key);
    } catch {
      // storage unavailable: the queue lives as long as the page
    }
  }
}
