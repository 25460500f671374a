// The composer: text, attachments (uploaded at once, sent by id), «Отправить», the rules at
// hand, and the contacts filter's refusal shown next to the input with what it found marked.

import { ask, toast } from './dialog.js';
import { fill, h, highlighted, icon } from './dom.js';
import { codePointSpans } from './format.js';
import { errorText } from './errors.js';

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

function newNonce() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export class Composer {
  /** onSent: called after a message of the open chat was accepted. */
  constructor(app, onSent) {
    this.app = app;
    this.onSent = onSent;
    this.chatId = null;
    this.textarea = null;
    this.drafts = new Map(); // chat -> {text, pending, nonce}
  }

  draft() {
    if (!this.drafts.has(this.chatId)) this.drafts.set(this.chatId, { text: '', pending: [], nonce: null });
    return this.drafts.get(this.chatId);
  }

  saveDraft() {
    if (this.chatId && this.textarea) this.draft().text = this.textarea.value;
  }

  /** The composer of a chat, with that chat's draft. */
  build(chatId) {
    this.chatId = chatId;
    const draft = this.draft();
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
      placeholder: 'Ваш комментарий', rows: 2, maxlength: 1000, 'aria-label': 'Ваш комментарий',
    });
    this.textarea.value = draft.text;
    this.textarea.addEventListener('input', () => {
      const current = this.draft();
      current.text = this.textarea.value;
      current.nonce = null; // an edited message is a new message
    });
    this.textarea.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    });
    this.sendButton = h('button.btn.btn-primary.send-btn', { type: 'button', onclick: () => this.send() }, 'Отправить');
    const composer = h('div.composer',
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
        ? h('div.composer-foot', h('button.btn.btn-link.rules-link', { type: 'button', onclick: showRules }, 'Правила оформления ответов'))
        : null);
    this.renderPending();
    return composer;
  }

  async upload(file) {
    const chatId = this.chatId;
    const draft = this.draft();
    const item = { name: file.name, status: 'uploading', file: null };
    draft.pending.push(item);
    draft.nonce = null;
    this.renderPending();
    try {
      item.file = await this.app.files.upload(file);
      item.status = 'done';
    } catch (error) {
      item.status = 'error';
      toast(`${file.name}: ${errorText(error)}`, 'error');
      draft.pending.splice(draft.pending.indexOf(item), 1);
    }
    if (this.chatId === chatId) this.renderPending();
  }

  renderPending() {
    if (!this.pendingBox) return;
    const draft = this.draft();
    this.pendingBox.replaceChildren(...draft.pending.map((item) =>
      h(`div.pending-file.${item.status}`, icon('file'), h('span', item.name),
        item.status === 'uploading' ? h('span.muted', ' загрузка…') : null,
        h('button.icon-btn.remove-file', {
          type: 'button', 'aria-label': `Убрать ${item.name}`,
          onclick: () => {
            draft.pending.splice(draft.pending.indexOf(item), 1);
            draft.nonce = null;
            this.renderPending();
          },
        }, icon('close')))));
    this.sendButton.disabled = draft.pending.some((item) => item.status === 'uploading');
  }

  async send() {
    const chatId = this.chatId;
    const draft = this.draft();
    const text = this.textarea.value;
    const attachments = draft.pending.filter((item) => item.status === 'done').map((item) => item.file.id);
    if (draft.pending.some((item) => item.status === 'uploading')) return;
    if (!text.trim() && !attachments.length) return;
    if (!draft.nonce) draft.nonce = newNonce();
    this.sendButton.disabled = true;
    try {
      const frame = { type: 'send', chat: chatId, text, nonce: draft.nonce };
      if (attachments.length) frame.attachments = attachments;
      await this.app.conn.request(frame);
      this.drafts.delete(chatId);
      if (this.chatId === chatId) {
        this.textarea.value = '';
        this.refusal.hidden = true;
        this.onSent();
        this.renderPending();
      }
    } catch (error) {
      if (this.chatId !== chatId) return;
      if (error.code === 'contacts_forbidden') this.showRefusal(text, error.details?.spans || []);
      else toast(errorText(error), 'error');
    } finally {
      this.sendButton.disabled = false;
    }
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
