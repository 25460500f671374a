// «печатает…» (docs/protocol.md, "Typing and presence"). While the person types in a chat's
// composer the page sends `typing{chat}`, at most once every 2 s (the server passes on no
// more), never for a private note. The other side's `typing{chat, side, name}` shows under the
// chat's name in the header («Анна печатает…») and in the chat list for a few seconds after
// the last one, or until a message from that side arrives. Nothing of it is stored.

import { h } from './dom.js';
import { sideOf } from './store.js';

export const TYPING_EVERY_MS = 2000;
// The server passes one on every 2 s at most: a little longer than two of them.
const SHOW_MS = 4500;

export class Typing {
  constructor(app) {
    this.app = app;
    this.sentAt = new Map(); // chat -> when this page last sent `typing` for it
    this.shown = new Map(); // chat -> {side, name, timer}: the other side types there
  }

  // ---- this side types ------------------------------------------------------------------------

  /** The person typed in the composer of `chatId` (the input now holds `text`). */
  typed(chatId, text) {
    if (!this.app.store.side || !this.app.conn.ready || !text.trim()) return;
    if (text.startsWith('/') && this.app.store.role === 'seller') return; // choosing a template
    const now = Date.now();
    if (now - (this.sentAt.get(chatId) || 0) < TYPING_EVERY_MS) return;
    this.sentAt.set(chatId, now);
    this.app.conn.notify({ type: 'typing', chat: chatId });
  }

  // ---- the other side types -------------------------------------------------------------------

  received(frame) {
    const known = this.shown.get(frame.chat);
    clearTimeout(known?.timer);
    const timer = setTimeout(() => this.clear(frame.chat), SHOW_MS);
    this.shown.set(frame.chat, { side: frame.side, name: frame.name, timer });
    if (!known || known.name !== frame.name) this.changed(frame.chat);
  }

  /** A live event: a message from the side that was typing ends its «печатает…». */
  eventArrived(event) {
    const known = this.shown.get(event.chat);
    if (known && sideOf(event.author) === known.side) this.clear(event.chat);
  }

  clear(chatId) {
    const known = this.shown.get(chatId);
    if (!known) return;
    clearTimeout(known.timer);
    this.shown.delete(chatId);
    this.changed(chatId);
  }

  changed(chatId) {
    if (!this.app.store.chats.has(chatId)) return;
    this.app.inbox.render();
    if (this.app.chatView.chatId === chatId && this.app.chatView.header) this.app.chatView.renderHeader();
  }

  /** The header's line: «Анна печатает…», or null. */
  line(chat) {
    const known = this.shown.get(chat.id);
    return known ? h('span.typing-line', { role: 'status' }, `${known.name} печатает…`) : null;
  }

  /** The chat list's snippet while the other side types, or null. */
  snippet(chat) {
    return this.shown.has(chat.id) ? h('span.chat-item-snippet.typing-snippet', 'печатает…') : null;
  }
}
