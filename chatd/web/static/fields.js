// The fields of the claim dialogs: a text with its limit counted as you type, photos uploaded
// as they are picked (the same upload as the composer's), and the server's refusal shown
// next to the field at fault, with what the contacts filter found marked.

import { toast } from './dialog.js';
import { fill, h, highlighted, icon } from './dom.js';
import { uploadErrorText } from './errors.js';
import { codePointSpans } from './format.js';

const CONTACTS_HINT = 'В чате нельзя обмениваться контактами и приглашать на другие площадки ' +
  'или в мессенджеры. Уберите выделенное.';

/** A text field: `value()` is trimmed, as the server keeps it. */
export class NoteField {
  constructor({ label, max, required = false, placeholder = '', className = 'note-field' }) {
    this.required = required;
    this.max = max;
    this.input = h('textarea.note-input', { rows: 3, maxlength: max, placeholder, 'aria-label': label });
    this.counter = h('span.note-counter');
    this.error = h('div.field-error', { hidden: true, role: 'alert' });
    this.input.addEventListener('input', () => {
      this.error.hidden = true;
      this.count();
    });
    this.el = h(`div.field.${className}`,
      h('div.field-label', label, required ? null : h('span.muted', ' (необязательно)')),
      this.input,
      h('div.field-foot', this.error, this.counter));
    this.count();
  }

  count() {
    this.counter.textContent = `${this.input.value.length} / ${this.max}`;
  }

  value() {
    return this.input.value.trim();
  }

  /** False, with a word under the field, when a required text is missing. */
  check(missing) {
    if (!this.required || this.value()) return true;
    this.showError(missing);
    this.input.focus();
    return false;
  }

  showError(text, marked = null) {
    fill(this.error, h('div', text), marked);
    this.error.hidden = false;
  }

  /** The contacts filter's refusal of `sent`, the text as it went to the server. */
  showContacts(sent, spans) {
    const ranges = codePointSpans(sent, spans || []);
    this.showError(CONTACTS_HINT, ranges.length ? h('div.field-marked', highlighted(sent, ranges)) : null);
  }
}

/** Photos for a claim: each uploads at once; `ids()` are the ones ready to send. */
export class PhotoPicker {
  constructor(files, { label = 'Фото', max = 10 } = {}) {
    this.files = files;
    this.max = max;
    this.items = []; // {name, status: 'uploading' | 'done', file, preview}
    this.list = h('div.picked-photos');
    this.error = h('div.field-error', { hidden: true, role: 'alert' });
    this.input = h('input', {
      type: 'file', hidden: true, multiple: true, accept: 'image/jpeg,image/png',
      onchange: () => {
        for (const file of this.input.files) this.add(file);
        this.input.value = '';
      },
    });
    this.addButton = h('button.btn.btn-plain.add-photo', { type: 'button', onclick: () => this.input.click() },
      icon('clip'), 'Добавить фото');
    this.el = h('div.field.photo-field',
      h('div.field-label', label, h('span.muted', ' (необязательно)')),
      this.list,
      h('div.field-foot', this.addButton, this.input),
      this.error);
    this.render();
  }

  async add(file) {
    if (this.items.length >= this.max) {
      toast(`Можно приложить не больше ${this.max} фото`, 'error');
      return;
    }
    // The preview is the picked file itself: nothing waits for the upload to show it.
    const item = { name: file.name, status: 'uploading', file: null, preview: URL.createObjectURL(file) };
    this.items.push(item);
    this.error.hidden = true;
    this.render();
    try {
      item.file = await this.files.upload(file);
      item.status = 'done';
    } catch (error) {
      toast(`${file.name}: ${uploadErrorText(error)}`, 'error');
      this.remove(item);
      return;
    }
    this.render();
  }

  remove(item) {
    const at = this.items.indexOf(item);
    if (at >= 0) this.items.splice(at, 1);
    URL.revokeObjectURL(item.preview);
    this.render();
  }

  busy() {
    return this.items.some((item) => item.status === 'uploading');
  }

  ids() {
    return this.items.filter((item) => item.status === 'done').map((item) => item.file.id);
  }

  /** The server found contacts in these files' names. */
  showRefused(ids) {
    const names = this.items.filter((item) => item.file && ids.includes(item.file.id)).map((item) => item.name);
    this.error.textContent = `Уберите файлы с контактами в названии: ${names.join(', ')}`;
    this.error.hidden = false;
  }

  render() {
    this.list.replaceChildren(...this.items.map((item) =>
      h(`div.picked-photo.${item.status}`, { title: item.name },
        h('img', { src: item.preview, alt: item.name }),
        item.status === 'uploading' ? h('span.picked-status', 'загрузка…') : null,
        h('button.icon-btn.remove-photo', {
          type: 'button', 'aria-label': `Убрать ${item.name}`, onclick: () => this.remove(item),
        }, icon('close')))));
    this.addButton.disabled = this.items.length >= this.max;
  }

  /** Frees the previews once the dialog is gone. */
  dispose() {
    for (const item of this.items) URL.revokeObjectURL(item.preview);
  }
}
