// The composer: text (a draft per chat, kept across reloads), attachments (uploaded at once,
// sent by id), «Отправить» or Enter (Shift+Enter breaks the line), the rules at hand, and the
// contacts filter's refusal shown next to the input with what it found marked. Messages go
// out through the outbox (outbox.js), which sends each once, whenever the server is there.

import { ask, toast } from './dialog.js';
import { fill, h, highlighted, icon } from './dom.js';
import { codePointSpans } from './format.js';
import { errorText, uploadErrorText } from './errors.js';
import { NoteMode } from './notes.js';
import { TemplatePicker } from './templates.js';

export const RULES = [
  'Отвечать на обращения Покупателей следует аргументированно, в полном объеме и в соответствии ' +
    'с этикетом делового письма.',
  'Ответ необходимо дать в течение 10 дней с момента появления претензии или обращения в ЛК ' +
    'Продавца на Портале.',
  'В данных чатах запрещено приглашать покупателя перейти на другую площадку, социальную сеть или ' +
    'мессенджер. Нельзя обмениваться контактами с покупателем, игнорировать обращения и ' +
    'распространять персональные данные Покупателя.',
  'Необходимо давать корректные и своевременные ответы.',
  'Если вопрос касается условий работы площадки, сообщите покупателю, что он может обратиться в ' +
    'поддержку клиентского сервиса WB.',
];

export function showRules() {
  return ask({
    title: 'Правила оформления ответов',
    className: 'rules-dialog',
    body: [h('ul.rules', RULES.map((rule) => h('li', rule)))],
    buttons: [{ label: 'Понятно', value: null, kind: 'primary' }],
  });
}

export class Composer {
  /** onSent: called once a message of the open chat was queued to go out. */
  constructor(app, onSent) {
    this.app = app;
    this.onSent = onSent;
    this.chatId = null;
    this.textarea = null;
    this.uploads = new Map(); // chat -> [{name, status, file}]: files picked for the next message
  }

  pending(chatId = this.chatId) {
    if (!this.uploads.has(chatId)) this.uploads.set(chatId, []);
    return this.uploads.get(chatId);
  }

  /** The draft is kept as it is typed (app.drafts); nothing is left to save. */
  saveDraft() {
    if (this.chatId && this.textarea) this.app.drafts.set(this.chatId, this.textarea.value);
  }

  /** The composer of a chat, with that chat's draft. */
  build(chatId) {
    this.chatId = chatId;
    this.refusal = h('div.refusal', { hidden: true, role: 'alert' });
    this.pendingBox = h('div.pending-files');
    this.fileInput = h('input', {
      type: 'file', hidden: true, multiple: true, accept: 'image/jpeg,image/png,application/pdf',
      onchange: () => {
        for (const file of this.fileInput.files) this.upload(file);
        this.fileInput.value = '';
      },
    });
    this.textarea = h('textarea.composer-input', {
      placeholder: 'Ваш комментарий', rows: 1, maxlength: 1000, 'aria-label': 'Ваш комментарий',
      enterkeyhint: 'send',
    });
    this.textarea.value = this.app.drafts.get(chatId);
    this.textarea.addEventListener('input', () => {
      this.app.drafts.set(chatId, this.textarea.value);
      this.fit();
      if (!this.notes?.on) this.app.typing.typed(chatId, this.textarea.value); // a note is no typing
    });
    // The shop's: «/» opens its canned replies (templates.js); «Заметка» writes a private note (notes.js).
    const shop = this.app.store.role === 'seller';
    this.picker = shop ? new TemplatePicker(this.app, this.textarea) : null;
    this.notes = shop ? new NoteMode(this.app, this, chatId) : null;
    // Enter sends; Shift+Enter (and Enter while an input method composes) breaks the line.
    this.textarea.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    });
    this.sendButton = h('button.btn.btn-primary.send-btn', {
      type: 'button', title: 'Отправить (Enter); новая строка: Shift+Enter', onclick: () => this.send(),
    }, h('span.send-label', 'Отправить'), icon('send'));
    const composer = h('div.composer',
      this.picker?.el,
      this.refusal,
      this.pendingBox,
      h('div.composer-row',
        h('button.icon-btn.attach-btn', {
          type: 'button', title: 'Прикрепить фото или документ', 'aria-label': 'Прикрепить фото или документ',
          onclick: () => this.fileInput.click(),
        }, icon('clip')),
        this.fileInput,
        this.textarea,
        this.sendButton),
      this.app.store.role === 'seller'
        ? h('div.composer-foot', this.notes.el, this.picker.button,
          h('button.btn.btn-link.rules-link', { type: 'button', onclick: showRules }, 'Правила оформления ответов'))
        : null);
    this.root = composer;
    this.renderPending();
    requestAnimationFrame(() => this.fit());
    return composer;
  }

  /** The input grows with its text, up to its max-height. */
  fit() {
    const area = this.textarea;
    if (!area || !area.isConnected) return;
    area.style.height = 'auto';
    area.style.height = `${area.scrollHeight + 2}px`;
  }

  async upload(file) {
    const chatId = this.chatId;
    const list = this.pending(chatId);
    const item = { name: file.name, status: 'uploading', file: null };
    list.push(item);
    this.renderPending();
    try {
      item.file = await this.app.files.upload(file);
      item.status = 'done';
    } catch (error) {
      item.status = 'error';
      toast(`${file.name}: ${uploadErrorText(error)}`, 'error');
      list.splice(list.indexOf(item), 1);
    }
    if (this.chatId === chatId) this.renderPending();
  }

  renderPending() {
    if (!this.pendingBox) return;
    const list = this.pending();
    this.pendingBox.replaceChildren(...list.map((item) =>
      h(`div.pending-file.${item.status}`, icon('file'), h('span.pending-name', item.name),
        item.status === 'uploading' ? h('span.muted', ' загрузка…') : null,
        h('button.icon-btn.remove-file', {
          type: 'button', 'aria-label': `Убрать ${item.name}`,
          onclick: () => {
            list.splice(list.indexOf(item), 1);
            this.renderPending();
          },
        }, icon('close')))));
    this.sendButton.disabled = list.some((item) => item.status === 'uploading');
  }

  /** Queues the message (app.outbox): it shows at once and goes out as soon as it can, once. */
  send() {
    const chatId = this.chatId;
    if (this.notes?.on) {
      if (!this.textarea.value.trim()) return;
      this.notes.send(chatId);
      this.onSent();
      return;
    }
    const list = this.pending(chatId);
    if (list.some((item) => item.status === 'uploading')) return;
    const text = this.textarea.value;
    const attachments = list.filter((item) => item.status === 'done').map((item) => item.file);
    if (!text.trim() && !attachments.length) return;
    this.app.outbox.add(chatId, text, attachments);
    this.textarea.value = '';
    this.app.drafts.set(chatId, '');
    this.uploads.delete(chatId);
    this.refusal.hidden = true;
    this.renderPending();
    this.fit();
    this.onSent();
  }

  /** The server refused a queued message for contacts: its text comes back to the input
   * (unless something else was typed since), with what was found marked. */
  refused(item, error) {
    const spans = error.details?.spans || [];
    if (item.chat !== this.chatId || !this.textarea) {
      if (!this.app.drafts.get(item.chat)) this.app.drafts.set(item.chat, item.text);
      toast(errorText(error), 'error');
      return;
    }
    if (!this.textarea.value) {
      this.textarea.value = item.text;
      this.app.drafts.set(item.chat, item.text);
      const list = this.pending();
      if (!list.length) {
        for (const file of item.attachments || []) list.push({ name: file.name, status: 'done', file });
      }
      this.renderPending();
      this.fit();
    }
    this.showRefusal(item.text, spans);
  }

  showRefusal(text, spans) {
    const ranges = codePointSpans(text, spans);
    fill(this.refusal,
      h('div.refusal-title', 'Сообщение не отправлено: в чате нельзя обмениваться контактами и ' +
        'приглашать на другие площадки или в мессенджеры. Уберите выделенное.'),
      h('div.refusal-text', highlighted(text, ranges)),
      this.app.store.role === 'seller'
        ? h('button.btn.btn-link', { type: 'button', onclick: showRules }, 'Правила оформления ответов') : null,
      h('button.icon-btn.refusal-close', { type: 'button', 'aria-label': 'Скрыть', onclick: () => { this.refusal.hidden = true; } }, icon('close')),
    );
    this.refusal.hidden = false;
  }
}
