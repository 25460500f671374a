// Returns in the chat, as on the seller portal: the product card, the shop's approve and
// refuse buttons with their dialogs, the buyer's «Вернуть товар» and «Оспорить решение»,
// and the manager's decision on a disputed claim.

import { ask, toast } from './dialog.js';
import { h, icon } from './dom.js';
import { formatAmount, formatDay, formatPrice } from './format.js';

export const CLAIM_STATE_LABELS = {
  awaiting_buyer: 'Ожидание подтверждения возврата покупателем',
  requested: 'Заявка на возврат ожидает решения продавца',
  approved: 'Возврат согласован',
  rejected: 'В возврате отказано',
  disputed: 'Заявка на рассмотрении у менеджера',
  resolved_approved: 'Менеджер одобрил возврат',
  resolved_rejected: 'Менеджер отклонил возврат',
  handed_in: 'Товар сдан в пункт выдачи',
  arrived: 'Товар поступил на склад',
  inspected: 'Товар проверен складом',
};

const ERROR_TEXTS = {
  conflict: 'Заявка уже рассмотрена или изменилась. Обновите чат.',
  amount_mismatch: 'Сумма возврата должна быть равна цене товара.',
  return_already_requested: 'Возврат этого товара через чат уже запрашивался.',
  forbidden: 'Это действие недоступно.',
  not_found: 'Заказ или заявка не найдены.',
  unavailable: 'Нет соединения с сервером. Попробуйте ещё раз.',
  timeout: 'Сервер не ответил вовремя. Попробуйте ещё раз.',
};

export function errorText(error) {
  if (error?.code === 'return_too_early' && error.details?.opens_at) {
    return `Вернуть товар через чат можно будет с ${formatDay(error.details.opens_at)}`;
  }
  return ERROR_TEXTS[error?.code] || error?.message || 'Не получилось. Попробуйте ещё раз.';
}

// The shop's step on a claim between «Согласиться на возврат» and the refund dialog.
const agreeing = new Set();

export function isAgreeing(claimId) {
  return agreeing.has(claimId);
}

/** The order card: «Товар выкуплен», name, size, colour, article, price; `extra` below. */
export function productCard(order, { state = null, actions = [], note = null } = {}) {
  const props = [];
  if (order.size) props.push(h('span', `Размер: ${order.size}`));
  if (order.color) props.push(h('span', `Цвет: ${order.color}`));
  return h('div.product-card', { dataset: { order: order.id } },
    h('div.card-head',
      h('span.card-status', order.received_at ? 'Товар выкуплен' : 'Заказ оформлен'),
      order.received_at ? h('span.card-received', `Товар получен ${formatDay(order.received_at)}`) : null),
    h('div.card-body',
      h('div.card-thumb', icon('box')),
      h('div.card-info',
        h('div.card-name', order.name),
        order.brand ? h('div.card-brand', order.brand) : null,
        props.length ? h('div.card-props', props) : null,
        h('div.card-article', `Артикул WB: ${order.article}`)),
      h('div.card-price', formatPrice(order.price))),
    state ? h(`div.card-state.state-${state}`, CLAIM_STATE_LABELS[state] || state) : null,
    note,
    actions.length ? h('div.card-actions', actions) : null);
}

function button(label, onclick, kind = 'plain') {
  return h(`button.btn.btn-${kind}`, { type: 'button', onclick }, label);
}

async function run(app, frame, done) {
  try {
    const ack = await app.conn.request(frame);
    if (done) done(ack);
    return ack;
  } catch (error) {
    toast(errorText(error), 'error');
    return null;
  }
}

// ---- the shop --------------------------------------------------------------------------------

function amountOf(chat, claimId) {
  const known = chat.amounts.get(claimId);
  if (known) return known;
  const claim = chat.claims.get(claimId);
  const order = claim && chat.orders.get(claim.order);
  return order ? order.price : null;
}

/** «Вы подтверждаете возврат денежных средств в размере 1186 Р?» then return.approve. */
async function approve(app, chat, claimId, mode) {
  const amount = amountOf(chat, claimId);
  if (!amount) {
    toast('Не удалось определить сумму возврата', 'error');
    return;
  }
  const choice = await ask({
    title: 'Полный возврат денежных средств',
    className: 'refund-dialog',
    body: [h('p', 'Вы подтверждаете возврат денежных средств в размере ',
      h('b.refund-amount', formatAmount(amount)), '?')],
    buttons: [
      { label: 'Подтвердить', value: 'confirm', kind: 'primary' },
      { label: 'Отменить', value: null, kind: 'plain' },
    ],
  });
  if (choice !== 'confirm') return; // «Отменить» only closes the dialog
  await run(app, { type: 'return.approve', claim: claimId, mode, amount }, () => {
    agreeing.delete(claimId);
    app.refresh(chat.id);
  });
}

/** «Отклонить заявку на возврат?» then return.reject. */
export async function refuse(app, chat, claimId) {
  const choice = await ask({
    title: 'Отклонить заявку на возврат?',
    className: 'reject-dialog',
    body: [
      h('p', 'Товар останется у покупателя.'),
      h('p', 'Покупатель может оспорить ваше решение, тогда заявка будет передана на ' +
        `рассмотрение менеджеру ${app.marketplace()}.`),
    ],
    buttons: [
      { label: 'Отклонить', value: 'reject', kind: 'danger' },
      { label: 'Отменить', value: null, kind: 'plain' },
    ],
  });
  if (choice !== 'reject') return;
  await run(app, { type: 'return.reject', claim: claimId }, () => {
    agreeing.delete(claimId);
    app.refresh(chat.id);
  });
}

/** The buttons under a claim awaiting the shop: agree/refuse, then the two ways to agree. */
export function shopClaimButtons(app, chat, claimId) {
  if (agreeing.has(claimId)) {
    return [
      button('Возврат на ПВЗ', () => approve(app, chat, claimId, 'pvz'), 'primary'),
      button('Возврат товара не нужен', () => approve(app, chat, claimId, 'no_return'), 'outline'),
    ];
  }
  return [
    button('Согласиться на возврат', () => {
      agreeing.add(claimId);
      app.refresh(chat.id);
    }, 'primary'),
    button('Отказать в возврате', () => refuse(app, chat, claimId), 'outline'),
  ];
}

export function initiateButton(app, chat, order) {
  return button('Инициировать процедуру возврата', () =>
    run(app, { type: 'return.initiate', chat: chat.id, order: order.id }), 'link');
}

/** Entries for the ⋮ menu: refusing stays possible after «Согласиться на возврат». */
export function shopMenuItems(app, chat) {
  const items = [];
  for (const claim of chat.claims.values()) {
    if (claim.state !== 'requested') continue;
    const order = chat.orders.get(claim.order);
    const many = [...chat.claims.values()].filter((c) => c.state === 'requested').length > 1;
    items.push({
      label: many && order ? `Отказать в возврате товара: ${order.name}` : 'Отказать в возврате товара',
      action: () => refuse(app, chat, claim.claim),
    });
  }
  return items;
}

// ---- the buyer -------------------------------------------------------------------------------

export function returnButton(app, chat, order) {
  return button('Вернуть товар', () =>
    run(app, { type: 'return.request', chat: chat.id, order: order.id }), 'primary');
}

export function disputeButton(app, chat, claimId) {
  return button('Оспорить решение', async () => {
    const choice = await ask({
      title: 'Оспорить решение продавца?',
      className: 'dispute-dialog',
      body: [h('p', `Заявка будет передана на рассмотрение менеджеру ${app.marketplace()}.`)],
      buttons: [
        { label: 'Оспорить', value: 'dispute', kind: 'primary' },
        { label: 'Отменить', value: null, kind: 'plain' },
      ],
    });
    if (choice === 'dispute') await run(app, { type: 'return.dispute', claim: claimId });
  }, 'outline');
}

/** May the buyer ask to return this order now (from the card)? */
export function buyerMayRequest(chat, order, claim) {
  if (!order.received_at) return false;
  return !claim || claim.state === 'awaiting_buyer';
}

// ---- the manager -----------------------------------------------------------------------------

const choosingMode = new Set();

async function resolve(app, chat, claimId, decision, mode) {
  if (decision === 'approve') {
    const amount = amountOf(chat, claimId);
    const choice = await ask({
      title: 'Одобрить возврат?',
      className: 'resolve-dialog',
      body: [h('p', amount
        ? ['Покупателю будут возвращены денежные средства в размере ', h('b', formatAmount(amount)), '.']
        : 'Покупателю будут возвращены денежные средства.'),
      h('p', mode === 'pvz' ? 'Товар нужно вернуть на ПВЗ.' : 'Возврат товара не нужен.')],
      buttons: [
        { label: 'Подтвердить', value: 'confirm', kind: 'primary' },
        { label: 'Отменить', value: null, kind: 'plain' },
      ],
    });
    if (choice !== 'confirm') return;
    await run(app, { type: 'return.resolve', claim: claimId, decision, mode }, () => {
      choosingMode.delete(claimId);
      app.refresh(chat.id);
    });
    return;
  }
  const choice = await ask({
    title: 'Отклонить заявку на возврат?',
    className: 'resolve-dialog',
    body: [h('p', 'Товар останется у покупателя.')],
    buttons: [
      { label: 'Отклонить', value: 'reject', kind: 'danger' },
      { label: 'Отменить', value: null, kind: 'plain' },
    ],
  });
  if (choice === 'reject') await run(app, { type: 'return.resolve', claim: claimId, decision: 'reject' });
}

export function managerButtons(app, chat, claimId) {
  if (choosingMode.has(claimId)) {
    return [
      button('Возврат на ПВЗ', () => resolve(app, chat, claimId, 'approve', 'pvz'), 'primary'),
      button('Возврат товара не нужен', () => resolve(app, chat, claimId, 'approve', 'no_return'), 'outline'),
      button('Назад', () => {
        choosingMode.delete(claimId);
        app.refresh(chat.id);
      }, 'link'),
    ];
  }
  return [
    button('Одобрить возврат', () => {
      choosingMode.add(claimId);
      app.refresh(chat.id);
    }, 'primary'),
    button('Отклонить возврат', () => resolve(app, chat, claimId, 'reject'), 'outline'),
  ];
}

export function isChoosingMode(claimId) {
  return choosingMode.has(claimId);
}
