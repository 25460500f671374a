// Private notes (docs/protocol.md, "The operator's day"): the shop's composer switches between
// «Сообщение» (to the buyer) and «Заметка» (for the shop's operators only). A note goes out as
// the `note` frame, never as a message, carries no files and sends no `typing`; in the chat it
// stands apart from the messages: yellow, with a lock and «Заметка для магазина». The buyer's
// page never receives one.

import { toast } from './dialog.js';
import { h } from './dom.js';
import { errorText } from './errors.js';
import { formatTime } from './format.js';

const LOCK = '<svg viewBox="0 0 24 24" width="14" height="14" aria-hidden="true">' +
  '<rect x="5" y="11" width="14" height="10" rx="2" fill="none" stroke="currentColor" stroke-width="2"/>' +
  '<path d="M8 11V8a4 4 0 0 1 8 0v3" fill="none" stroke="currentColor" stroke-width="2"/></svg>';

function lock() {
  return h('span.icon.icon-lock', { html: LOCK });
}

function newNonce() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const PLACEHOLDER = 'Заметка для магазина: покупатель её не увидит';
const MODE_KEY = 'chatd.noteChats';

// The chats whose composer was left on «Заметка» (for the tab's life): coming back to one, its
// draft is still a note, never a message to the buyer by surprise.
function noteChats() {
  try {
    const kept = JSON.parse(sessionStorage.getItem(MODE_KEY) || '[]');
    return new Set(Array.isArray(kept) ? kept : []);
  } catch {
    return new Set();
  }
}

function keepMode(chatId, on) {
  const chats = noteChats();
  if (on) chats.add(chatId);
  else chats.delete(chatId);
  try {
    sessionStorage.setItem(MODE_KEY, JSON.stringify([...chats]));
  } catch {
    // storage unavailable: the mode lives as long as the composer
  }
}

/** The «Сообщение» / «Заметка» switch of one chat's composer (a shop's operator only). */
export class NoteMode {
  /** composer: the Composer of `chatId` whose input, send button and attach button it switches. */
  constructor(app, composer, chatId) {
    this.app = app;
    this.composer = composer;
    this.chatId = chatId;
    this.on = false;
    this.messageButton = h('button.mode-btn.mode-message', {
      type: 'button', 'aria-pressed': 'true', onclick: () => this.set(false),
    }, 'Сообщение');
    this.noteButton = h('button.mode-btn.mode-note', {
      type: 'button', 'aria-pressed': 'false', title: 'Заметку видят только операторы магазина',
      onclick: () => this.set(true),
    }, lock(), 'Заметка');
    this.el = h('div.compose-mode', { role: 'group', 'aria-label': 'Что пишете' }, this.messageButton, this.noteButton);
    // Once the composer is built around it: the mode this chat was left in.
    if (noteChats().has(chatId)) queueMicrotask(() => this.set(true, false));
  }

  set(on, focus = true) {
    this.on = on;
    keepMode(this.chatId, on);
    this.messageButton.setAttribute('aria-pressed', String(!on));
    this.noteButton.setAttribute('aria-pressed', String(on));
    const { textarea, sendButton, root } = this.composer;
    root?.classList.toggle('note-mode', on);
    if (textarea) {
      textarea.placeholder = on ? PLACEHOLDER : 'Ваш комментарий';
      textarea.setAttribute('aria-label', on ? 'Заметка для магазина' : 'Ваш комментарий');
      if (focus) textarea.focus();
    }
    const label = sendButton?.querySelector('.send-label');
    if (label) label.textContent = on ? 'Сохранить заметку' : 'Отправить';
    if (sendButton) sendButton.title = on ? 'Сохранить заметку (Enter)' : 'Отправить (Enter); новая строка: Shift+Enter';
    const attach = root?.querySelector('.attach-btn');
    if (attach) attach.disabled = on; // notes carry no files
  }

  /** Sends the input's text as a note of `chatId`; the text comes back if it is refused. */
  async send(chatId) {
    const area = this.composer.textarea;
    const text = area.value;
    if (!text.trim()) return;
    area.value = '';
    this.app.drafts.set(chatId, '');
    this.composer.fit();
    try {
      await this.app.conn.request({ type: 'note', chat: chatId, text, nonce: newNonce() });
    } catch (error) {
      if (this.composer.chatId === chatId && !area.value) {
        area.value = text;
        this.app.drafts.set(chatId, text);
        this.composer.fit();
      } else if (!this.app.drafts.get(chatId)) {
        this.app.drafts.set(chatId, text);
      }
      toast(`Заметка не сохранена: ${errorText(error)}`, 'error');
    }
  }
}

/** A note in the chat: the operator's name, the time, the text, marked as the shop's own. */
export function noteView(event) {
  const operator = event.author?.operator?.name;
  return h('div.note-msg', { role: 'note' },
    h('div.note-head',
      h('span.note-label', lock(), 'Заметка для магазина'),
      operator ? h('span.note-author', operator) : null,
      h('span.msg-time', formatTime(event.at))),
    h('div.note-text', event.text || ''));
}
