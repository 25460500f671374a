// Giving a chat to another operator of the shop (docs/protocol.md, "The operator's day"):
// «Передать» in the chat's header lists the operators the shop is known to have
// (GET /api/v1/operators) and sends `assign`; and the shop's service line for each
// `chat.assigned` («Чат взят в работу: Анна», «Чат передан: Олег», who passed it beside).

import { toast } from './dialog.js';
import { fill, h } from './dom.js';
import { errorText } from './errors.js';
import { formatTime } from './format.js';
import { getJson } from './http.js';

/** Sends `assign` for `chat` (`operator` an id, or null for nobody). */
export function assign(app, chatId, operator) {
  return app.conn.request({ type: 'assign', chat: chatId, operator })
    .catch((error) => toast(error.code === 'not_found' ? 'Такого оператора у магазина нет' : errorText(error), 'error'));
}

/** «Передать»: the header's button that opens the list of operators. */
export function transferButton(app, chat) {
  return h('button.btn.btn-link.assign-btn.transfer-btn', {
    type: 'button', 'aria-haspopup': 'dialog', onclick: () => chooseOperator(app, chat.id),
  }, 'Передать');
}

/** A dialog (a sheet on a phone) with the shop's operators; the one chosen gets the chat. */
export function chooseOperator(app, chatId) {
  const me = app.store.user?.id;
  const list = h('div.operator-list', { role: 'listbox', 'aria-label': 'Операторы магазина' },
    h('div.muted', 'Загрузка…'));
  const dialog = h('dialog.modal.assign-dialog', { 'aria-label': 'Передать чат' },
    h('button.modal-close', { type: 'button', 'aria-label': 'Закрыть', onclick: () => finish() }, '×'),
    h('h3.modal-title', 'Передать чат'),
    h('p.muted.assign-hint', 'Выберите, кто из операторов магазина будет отвечать в этом чате.'),
    list,
    h('div.modal-buttons', h('button.btn.btn-plain', { type: 'button', onclick: () => finish() }, 'Отменить')));
  const finish = () => {
    dialog.close();
    dialog.remove();
  };
  dialog.addEventListener('cancel', (event) => {
    event.preventDefault();
    finish();
  });
  const pick = (operator) => {
    finish();
    assign(app, chatId, operator);
  };
  const option = (id, name, note) => {
    const current = (app.store.chat(chatId).assignee?.id || null) === id;
    return h(`button.operator-option${current ? '.current' : ''}`, {
      type: 'button', role: 'option', 'aria-selected': String(current), dataset: { operator: id || '' },
      onclick: () => pick(id),
    }, h('span.operator-name', name), note ? h('span.operator-note', note) : null,
    current ? h('span.operator-current', 'сейчас отвечает') : null);
  };
  document.body.append(dialog);
  dialog.showModal();
  getJson(app.token, '/api/v1/operators').then((answer) => {
    const operators = [...answer.operators].sort((a, b) => (a.id === me ? -1 : b.id === me ? 1 : a.name.localeCompare(b.name, 'ru')));
    fill(list,
      operators.map((operator) => option(operator.id, operator.name, operator.id === me ? 'вы' : null)),
      option(null, 'Без ответственного', null));
    list.querySelector('.operator-option')?.focus();
  }, (error) => {
    fill(list, h('div.form-error', errorText(error)));
  });
}

/** The shop's own service line for a `chat.assigned` (the buyer never receives these). */
export function assignedLine(event) {
  const operator = event.data?.operator;
  const by = event.data?.by;
  let text;
  let who = null;
  if (!operator) {
    text = 'Ответственный снят';
    if (by) who = `снял(а) ${by.name}`;
  } else if (by && by.id === operator.id) {
    text = `Чат взят в работу: ${operator.name}`;
  } else {
    text = `Чат передан: ${operator.name}`;
    if (by) who = `передал(а) ${by.name}`;
  }
  return h('div.assigned-note',
    h('span.assigned-text', text),
    who ? h('span.assigned-by', who) : null,
    h('span.msg-time', formatTime(event.at)));
}
