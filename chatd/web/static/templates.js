// The shop's canned replies (docs/protocol.md, "Canned replies"): one list per shop, shared by
// its operators. In the composer, «/» at the start opens a picker filtered by the shortcut or
// the title as the operator types (↑ ↓ choose, Enter or Tab inserts the text, Esc closes);
// «Шаблоны» under the input opens it at the caret. «Шаблоны ответов» (the chat's ⋮ menu, or
// the picker's foot) lists, adds, edits and deletes them; a text with contacts is refused at
// save with what the filter found marked, as a message is.

import { ask, toast } from './dialog.js';
import { fill, h } from './dom.js';
import { errorText } from './errors.js';
import { NoteField } from './fields.js';
import { bearer, errorOf, getJson } from './http.js';
import { ChatdError } from './connection.js';

const ROUTE = '/api/v1/templates';
const SHORTCUT = /^[a-z0-9_-]{1,32}$/;
const MAX_TITLE = 100;
const MAX_TEXT = 1000;
// What follows «/» while it is still a command: one line, not a whole message.
const COMMAND = /^\/([^\n]{0,60})$/;

/** The shop's templates, loaded once and again after each change. */
export class Templates {
  constructor(app) {
    this.app = app;
    this.list = null; // [{id, shortcut, title, text}] ordered by shortcut, once loaded
    this.loading = null;
    this.listeners = new Set();
  }

  /** Resolves with the list (the one already here unless `fresh`). */
  load(fresh = false) {
    if (this.list && !fresh) return Promise.resolve(this.list);
    if (!this.loading) {
      this.loading = getJson(this.app.token, ROUTE)
        .then((answer) => {
          this.list = answer.templates;
          this.changed();
          return this.list;
        })
        .finally(() => {
          this.loading = null;
        });
    }
    return this.loading;
  }

  onChange(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  changed() {
    for (const listener of this.listeners) listener(this.list);
  }

  /** Creates (`id` null) or replaces a template; resolves with it as kept. */
  async save(id, fields) {
    const answer = await this.call(id ? 'PUT' : 'POST', id ? `${ROUTE}/${encodeURIComponent(id)}` : ROUTE, fields);
    await this.load(true).catch(() => {});
    return answer;
  }

  async remove(id) {
    await this.call('DELETE', `${ROUTE}/${encodeURIComponent(id)}`);
    await this.load(true).catch(() => {});
  }

  async call(method, path, body) {
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: { ...bearer(this.app.token), ...(body ? { 'Content-Type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
    } catch {
      throw new ChatdError('unavailable', 'Нет соединения с сервером');
    }
    if (!response.ok) throw await errorOf(response);
    return response.status === 204 ? null : response.json();
  }

  /** The management screen. */
  manage() {
    return new TemplatesDialog(this).open();
  }
}

/** Templates whose shortcut or title holds every word of `query`; shortcuts that start with
 * it first, then the shop's order (by shortcut). */
export function filterTemplates(list, query) {
  const words = query.toLocaleLowerCase('ru-RU').split(/\s+/).filter(Boolean);
  const found = list.filter((template) => {
    const label = `${template.shortcut} ${template.title.toLocaleLowerCase('ru-RU')}`;
    return words.every((word) => label.includes(word));
  });
  const first = words[0] || '';
  return [
    ...found.filter((template) => first && template.shortcut.startsWith(first)),
    ...found.filter((template) => !first || !template.shortcut.startsWith(first)),
  ];
}

let pickerCount = 0;

/**
 * The picker under a composer's input. `slash`: the input is «/…» and the chosen text replaces
 * it; `insert` (opened by the button): the text goes in at the caret.
 */
export class TemplatePicker {
  constructor(app, textarea) {
    this.app = app;
    this.textarea = textarea;
    this.mode = null; // null (closed), 'slash' or 'insert'
    this.dismissed = false; // Esc closed it; it stays closed until the «/» is gone
    this.items = [];
    this.active = 0;
    this.id = `tpl-picker-${++pickerCount}`;
    this.el = h('div.template-picker', { id: this.id, hidden: true, role: 'listbox', 'aria-label': 'Шаблоны ответов' });
    this.el.addEventListener('mousedown', (event) => event.preventDefault()); // the input keeps focus
    textarea.setAttribute('aria-autocomplete', 'list');
    textarea.setAttribute('aria-controls', this.id);
    textarea.setAttribute('aria-expanded', 'false');
    textarea.addEventListener('input', () => this.follow());
    textarea.addEventListener('blur', () => this.close());
    // Capture: the picker's keys are its own before the composer's Enter sends.
    textarea.addEventListener('keydown', (event) => this.key(event), true);
    this.unsubscribe = app.templates.onChange(() => {
      if (!this.textarea.isConnected) this.unsubscribe();
      else if (this.mode) this.render();
    });
    this.button = h('button.btn.btn-link.templates-btn', {
      type: 'button', title: 'Вставить шаблон ответа (или наберите «/» в начале сообщения)',
      onclick: () => this.openAtCaret(),
    }, 'Шаблоны');
  }

  query() {
    if (this.mode !== 'slash') return '';
    const match = COMMAND.exec(this.textarea.value);
    return match ? match[1].trim() : '';
  }

  /** The input changed: «/…» at the start opens (or filters) the picker; anything else closes it. */
  follow() {
    const command = COMMAND.test(this.textarea.value);
    if (!command) {
      this.dismissed = false;
      this.close();
      return;
    }
    if (this.dismissed) return;
    this.open('slash');
  }

  openAtCaret() {
    this.dismissed = false;
    this.textarea.focus();
    this.open(COMMAND.test(this.textarea.value) ? 'slash' : 'insert');
  }

  open(mode) {
    const opening = this.mode !== mode;
    this.mode = mode;
    if (opening) this.active = 0;
    this.el.hidden = false;
    this.textarea.setAttribute('aria-expanded', 'true');
    this.render();
    if (!this.app.templates.list) {
      this.app.templates.load().catch((error) => {
        if (this.mode) fill(this.el, h('div.template-empty', errorText(error)));
      });
    }
  }

  close() {
    if (!this.mode) return;
    this.mode = null;
    this.el.hidden = true;
    this.textarea.setAttribute('aria-expanded', 'false');
    this.textarea.removeAttribute('aria-activedescendant');
  }

  render() {
    const list = this.app.templates.list;
    const manage = h('div.template-foot',
      h('button.btn.btn-link', {
        type: 'button',
        onclick: () => {
          this.close();
          this.app.templates.manage();
        },
      }, 'Настроить шаблоны'),
      h('span.template-hint', '↑ ↓ выбрать · Enter вставить · Esc закрыть'));
    if (!list) {
      fill(this.el, h('div.template-empty', 'Загрузка шаблонов…'), manage);
      return;
    }
    const query = this.query();
    this.items = filterTemplates(list, query);
    this.active = Math.min(this.active, Math.max(0, this.items.length - 1));
    const options = this.items.map((template, index) => h(`div.template-option${index === this.active ? '.active' : ''}`, {
      id: `${this.id}-${index}`,
      role: 'option',
      'aria-selected': String(index === this.active),
      dataset: { shortcut: template.shortcut },
      onclick: () => this.choose(template),
      onmousemove: () => {
        if (this.active !== index) this.move(index - this.active);
      },
    },
    h('div.template-label', h('span.template-shortcut', `/${template.shortcut}`), h('span.template-title', template.title)),
    h('div.template-text', template.text)));
    fill(this.el,
      options.length ? options : h('div.template-empty', list.length ? 'Нет подходящих шаблонов' : 'Шаблонов пока нет'),
      manage);
    this.showActive();
  }

  showActive() {
    const option = this.el.querySelector('.template-option.active');
    if (option) {
      this.textarea.setAttribute('aria-activedescendant', option.id);
      option.scrollIntoView({ block: 'nearest' });
    } else {
      this.textarea.removeAttribute('aria-activedescendant');
    }
  }

  move(by) {
    if (!this.items.length) return;
    this.active = (this.active + by + this.items.length) % this.items.length;
    for (const [index, option] of [...this.el.querySelectorAll('.template-option')].entries()) {
      option.classList.toggle('active', index === this.active);
      option.setAttribute('aria-selected', String(index === this.active));
    }
    this.showActive();
  }

  key(event) {
    if (!this.mode || event.isComposing) return;
    const chosen = this.items[this.active];
    switch (event.key) {
      case 'ArrowDown':
        this.move(1);
        break;
      case 'ArrowUp':
        this.move(-1);
        break;
      case 'Enter':
      case 'Tab':
        // Nothing to insert (or Shift+Enter): the key does what it always does.
        if (event.shiftKey || !chosen) {
          if (event.key === 'Enter') this.close();
          return;
        }
        this.choose(chosen);
        break;
      case 'Escape':
        this.dismissed = this.mode === 'slash';
        this.close();
        break;
      default:
        return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
  }

  /** The template's text in the input: instead of the «/…» typed, or at the caret. */
  choose(template) {
    const area = this.textarea;
    if (this.mode === 'insert') {
      const start = area.selectionStart ?? area.value.length;
      const end = area.selectionEnd ?? start;
      area.setRangeText(template.text, start, end, 'end');
    } else {
      area.value = template.text;
      area.setSelectionRange(area.value.length, area.value.length);
    }
    this.dismissed = false;
    this.close();
    area.focus();
    // The composer keeps the draft and fits the input; the other side hears typing.
    area.dispatchEvent(new Event('input', { bubbles: true }));
  }
}

// ---- the management screen ----------------------------------------------------------------------

class TemplatesDialog {
  constructor(templates) {
    this.templates = templates;
    this.body = h('div.templates-body');
    this.title = h('h3.modal-title', 'Шаблоны ответов');
    this.dialog = h('dialog.modal.templates-dialog', { 'aria-label': 'Шаблоны ответов' },
      h('button.modal-close', { type: 'button', 'aria-label': 'Закрыть', onclick: () => this.finish() }, '×'),
      this.title,
      this.body);
    this.dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      // Esc leaves a form for the list, and the list for the chat.
      if (this.editing) this.showList();
      else this.finish();
    });
    this.editing = false;
  }

  open() {
    document.body.append(this.dialog);
    this.dialog.showModal();
    this.showList();
    return new Promise((resolve) => {
      this.resolve = resolve;
    });
  }

  finish() {
    this.dialog.close();
    this.dialog.remove();
    this.resolve?.();
  }

  async showList(fresh = true) {
    this.editing = false;
    this.title.textContent = 'Шаблоны ответов';
    fill(this.body, h('div.muted.templates-loading', 'Загрузка…'));
    let list;
    try {
      list = await this.templates.load(fresh);
    } catch (error) {
      fill(this.body, h('div.form-error', errorText(error)));
      return;
    }
    if (this.editing) return;
    fill(this.body,
      h('p.templates-hint', 'Шаблоны общие для всех операторов магазина. Чтобы вставить шаблон, наберите ',
        h('kbd', '/'), ' в начале сообщения и начало команды или названия.'),
      list.length
        ? h('ul.template-list', list.map((template) => this.row(template)))
        : h('div.muted.templates-none', 'Шаблонов пока нет.'),
      h('div.modal-buttons',
        h('button.btn.btn-primary.add-template', { type: 'button', onclick: () => this.showForm(null) }, 'Добавить шаблон'),
        h('button.btn.btn-plain', { type: 'button', onclick: () => this.finish() }, 'Закрыть')));
  }

  row(template) {
    return h('li.template-row', { dataset: { shortcut: template.shortcut } },
      h('div.template-label', h('span.template-shortcut', `/${template.shortcut}`), h('span.template-title', template.title)),
      h('div.template-row-text', template.text),
      h('div.template-row-actions',
        h('button.btn.btn-link', { type: 'button', onclick: () => this.showForm(template) }, 'Изменить'),
        h('button.btn.btn-link.danger-link', { type: 'button', onclick: () => this.remove(template) }, 'Удалить')));
  }

  async remove(template) {
    const sure = await ask({
      title: 'Удалить шаблон?',
      body: [h('p', `«${template.title}» (/${template.shortcut}) пропадёт у всех операторов магазина.`)],
      buttons: [
        { label: 'Удалить', value: true, kind: 'danger' },
        { label: 'Отменить', value: null },
      ],
    });
    if (!sure) return;
    try {
      await this.templates.remove(template.id);
      toast('Шаблон удалён');
    } catch (error) {
      if (error.code !== 'not_found') toast(errorText(error), 'error');
    }
    this.showList(false);
  }

  showForm(template) {
    this.editing = true;
    this.title.textContent = template ? 'Изменить шаблон' : 'Новый шаблон';
    const shortcut = h('input.template-input.shortcut-input', {
      type: 'text', maxlength: 32, value: template?.shortcut || '', placeholder: 'delivery',
      autocapitalize: 'off', autocomplete: 'off', spellcheck: 'false', 'aria-label': 'Команда',
    });
    const shortcutError = h('div.field-error', { hidden: true, role: 'alert' });
    const title = h('input.template-input.title-input', {
      type: 'text', maxlength: MAX_TITLE, value: template?.title || '', placeholder: 'Сроки доставки',
      'aria-label': 'Название',
    });
    const titleError = h('div.field-error', { hidden: true, role: 'alert' });
    const text = new NoteField({ label: 'Текст', max: MAX_TEXT, required: true, className: 'template-text-field',
      placeholder: 'Текст, который вставится в сообщение' });
    text.input.rows = 5;
    text.input.value = template?.text || '';
    text.count();
    const formError = h('div.form-error', { hidden: true, role: 'alert' });
    for (const [input, error] of [[shortcut, shortcutError], [title, titleError]]) {
      input.addEventListener('input', () => {
        error.hidden = true;
      });
    }
    const problem = (el, error, message) => {
      error.textContent = message;
      error.hidden = false;
      el.focus();
      return false;
    };
    const save = async () => {
      formError.hidden = true;
      const fields = { shortcut: shortcut.value.trim(), title: title.value.trim(), text: text.input.value };
      if (!SHORTCUT.test(fields.shortcut)) {
        return problem(shortcut, shortcutError,
          'Команда: от 1 до 32 знаков — латинские строчные буквы, цифры, «_» и «-».');
      }
      if (!fields.title) return problem(title, titleError, 'Напишите название.');
      if (!text.check('Напишите текст шаблона.')) return false;
      button.disabled = true;
      try {
        await this.templates.save(template?.id || null, fields);
      } catch (error) {
        button.disabled = false;
        if (error.code === 'contacts_forbidden') {
          text.showContacts(fields.text, error.details?.spans);
          text.input.focus();
        } else if (error.code === 'conflict' && error.details?.shortcut) {
          problem(shortcut, shortcutError, `Шаблон с командой /${error.details.shortcut} уже есть.`);
        } else if (error.code === 'conflict') {
          formError.textContent = 'У магазина уже 200 шаблонов: удалите ненужные, чтобы добавить новый.';
          formError.hidden = false;
        } else if (error.code === 'not_found') {
          toast('Этот шаблон уже удалили', 'error');
          this.showList();
        } else {
          formError.textContent = errorText(error);
          formError.hidden = false;
        }
        return false;
      }
      toast(template ? 'Шаблон сохранён' : 'Шаблон добавлен');
      this.showList(false);
      return true;
    };
    const button = h('button.btn.btn-primary.save-template', { type: 'button', onclick: save }, 'Сохранить');
    fill(this.body,
      h('div.template-form',
        h('label.field',
          h('span.field-label', 'Команда'),
          h('div.shortcut-box', h('span.shortcut-slash', '/'), shortcut),
          h('span.field-hint', 'Латинские строчные буквы, цифры, «_» и «-»: её набирают после «/».'),
          shortcutError),
        h('label.field', h('span.field-label', 'Название'), title, titleError),
        text.el,
        formError,
        h('div.modal-buttons',
          button,
          h('button.btn.btn-plain', { type: 'button', onclick: () => this.showList(false) }, 'Отменить'))));
    (template ? text.input : shortcut).focus();
  }
}

