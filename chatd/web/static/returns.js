// Returns in the chat, as on the seller portal: the product card, the shop's approve, refuse
// and withdraw with their dialogs, and the buyer's «Вернуть товар» and «Оспорить решение».
// The manager's side is manager.js.

import { ask, toast } from './dialog.js';
import { h, icon } from './dom.js';
import { errorText } from './errors.js';
import { NoteField, PhotoPicker } from './fields.js';
import { formatAmount, formatDateTime, formatDay, formatPrice } from './format.js';

export const CLAIM_STATE_LABELS = {
  awaiting_buyer: 'Ожидание подтверждения возврата покупателем',
  requested: 'Заявка на возврат ожидает решения продавца',
  approved: 'Возврат согласован',
  rejected: 'В возврате отказано',
  disputed: 'Заявка на рассмотрении у менеджера',
  resolved_approved: 'Менеджер одобрил возврат',
  resolved_rejected: 'Менеджер отклонил возврат',
  closed: 'Предложение о возврате закрыто',
  handed_in: 'Товар сдан в пункт выдачи',
  arrived: 'Товар поступил на склад',
  inspected: 'Товар проверен складом',
};

// The lengths docs/protocol.md 11 allows: a request's comment, a refusal's reason, a decision's
// comment.
export const MAX_COMMENT = 1000;
export const MAX_REASON = 500;

// The portal's advice for goods that cannot be returned (food, supplements, pet food).
const NON_RETURNABLE_ADVICE = 'Товар из невозвратной категории. Если покупатель предоставил ' +
  'доказательства недостаточного качества или повреждения при доставке, рекомендуется одобрить ' +
  'возврат без возвращения товара на пункт выдачи: «Возврат товара не нужен».';

// The shop's step on a claim between «Согласиться на возврат» and the refund dialog.
const agreeing = new Set();

export function isAgreeing(claimId) {
  return agreeing.has(claimId);
}

/** The product's picture: the photo the order names (fetched with the token), else an icon. */
function productThumb(files, order) {
  const box = h('div.card-thumb', icon('box'));
  const known = files && typeof order.photo === 'string' ? files.cached(order.photo) : null;
  if (known) {
    box.replaceChildren(h('img.card-photo', { src: known, alt: order.name }));
  } else if (files && typeof order.photo === 'string' && order.photo) {
    files.url(order.photo).then(
      (url) => box.replaceChildren(h('img.card-photo', { src: url, alt: order.name })),
      () => {}, // no photo to show: the icon stays
    );
  }
  return box;
}

/**
 * The order card as on the portal: «Товар выкуплен», «brand / name», size and colour, the
 * article, the price; the claim's state, a note and the buttons below.
 */
export function productCard(order, { files = null, state = null, actions = [], note = null } = {}) {
  const props = [];
  if (order.size) props.push(h('span', `Размер: ${order.size}`));
  if (order.color) props.push(h('span', `Цвет: ${order.color}`));
  return h('div.product-card', { dataset: { order: order.id } },
    h('div.card-head',
      h('span.card-status', order.received_at ? 'Товар выкуплен' : 'Заказ оформлен'),
      order.non_returnable ? h('span.card-flag.non-returnable', 'Невозвратный товар') : null,
      order.received_at ? h('span.card-received', `Товар получен ${formatDay(order.received_at)}`) : null),
    h('div.card-body',
      productThumb(files, order),
      h('div.card-info',
        h('div.card-name',
          order.brand ? h('span.card-brand', order.brand) : null,
          order.brand ? h('span.card-sep', ' / ') : null,
          h('span.card-title', order.name)),
        props.length ? h('div.card-props', props) : null,
        h('div.card-article', `Артикул WB: ${order.article}`)),
      h('div.card-price', formatPrice(order.price))),
    state ? h(`div.card-state.state-${state}`, CLAIM_STATE_LABELS[state] || state) : null,
    note,
    actions.length ? h('div.card-actions', actions) : null);
}

/** The portal's advice next to the buttons for a request of non-returnable goods. */
export function nonReturnableAdvice(order) {
  return order.non_returnable ? h('div.card-advice', { role: 'note' }, NON_RETURNABLE_ADVICE) : null;
}

/** When the claim's wait ends by itself (`due` of the chat summary), for the side it waits for. */
export function dueNote(role, claim, marketplace) {
  if (!claim?.due) return null;
  if (role === 'seller' && claim.state === 'requested') {
    return h('div.card-due', `Решите до ${formatDateTime(claim.due)}: иначе заявка перейдёт ` +
      `на рассмотрение менеджеру ${marketplace}.`);
  }
  if (role === 'buyer' && claim.state === 'awaiting_buyer') {
    return h('div.card-due', `Предложение действует до ${formatDateTime(claim.due)}.`);
  }
  return null;
}

/** How an approved claim's goods go back (`pvz`, `no_return`), from its approval or the
 * manager's decision; null while neither is loaded. */
export function approvalMode(store, chat, claim) {
  for (const kind of ['return.resolved', 'return.approved']) {
    const mode = store.claimEvent(chat, claim.claim, kind)?.data?.mode;
    if (mode) return mode;
  }
  // The goods moved: they went to a pickup point.
  return ['handed_in', 'arrived', 'inspected'].includes(claim.state) ? 'pvz' : null;
}

// What happens after an approval, for each side, in the words of the service messages that
// will follow («Товар сдан в пункт выдачи.», «Товар поступил на склад.», «Денежные средства
// возвращены на баланс покупателя.»: protocol/texts.py).
function nextStepText(role, step, refunded) {
  const buyer = role === 'buyer';
  if (step === 'pvz') {
    return buyer
      ? 'Что дальше: отнесите товар в пункт выдачи заказов. Деньги вернутся на баланс, когда товар поступит на склад.'
      : 'Что дальше: покупатель сдаст товар в пункт выдачи. Деньги вернутся ему на баланс, когда товар поступит на склад.';
  }
  if (step === 'handed_in') {
    return buyer
      ? 'Что дальше: товар сдан в пункт выдачи. Деньги вернутся на баланс, когда он поступит на склад.'
      : 'Что дальше: товар едет на склад. Деньги вернутся покупателю, когда он поступит.';
  }
  const money = refunded ? 'Деньги возвращены на баланс' : 'Деньги вернутся на баланс';
  if (buyer) return `Что дальше: ничего не нужно, товар остаётся у вас. ${money}.`;
  if (role === 'seller') return `Что дальше: ничего не нужно, товар остаётся у покупателя. ${money} покупателя.`;
  return `Что дальше: товар остаётся у покупателя. ${money} покупателя.`;
}

/** The note under an approved claim's card that says what happens next, or null. */
export function nextStepNote(role, store, chat, claim) {
  if (!claim || !role) return null;
  const approved = claim.state === 'approved' || claim.state === 'resolved_approved';
  if (!approved && claim.state !== 'handed_in') return null;
  const mode = approvalMode(store, chat, claim);
  if (!mode) return null;
  const step = claim.state === 'handed_in' ? 'handed_in' : mode;
  const refunded = Boolean(store.claimEvent(chat, claim.claim, 'refund.issued'));
  return h(`div.card-next.next-${step}`, { role: 'note' }, nextStepText(role, step, refunded));
}

export function button(label, onclick, kind = 'plain') {
  return h(`button.btn.btn-${kind}`, { type: 'button', onclick }, label);
}

export async function run(app, frame, done) {
  try {
    const ack = await app.conn.request(frame);
    if (done) done(ack);
    return ack;
  } catch (error) {
    toast(errorText(error), 'error');
    return null;
  }
}

/**
 * Sends a dialog's frame. True closes the dialog: sent, or refused for a reason that the
 * dialog cannot mend (shown as a notice). False keeps it open with the refusal beside the
 * field at fault (the contacts filter's marks) or under the form.
 */
export async function sendFromDialog(app, frame, { field = null, text = '', photos = null, failure }) {
  try {
    await app.conn.request(frame);
    return true;
  } catch (error) {
    if (error.code === 'contacts_forbidden') {
      const details = error.details || {};
      if (photos && details.attachments?.length) photos.showRefused(details.attachments);
      if (field && (details.spans?.length || !details.attachments?.length)) field.showContacts(text, details.spans);
      return false;
    }
    if (error.code === 'bad_frame' || error.code === 'unavailable' || error.code === 'timeout' ||
        error.code === 'rate_limited') {
      failure.textContent = errorText(error);
      failure.hidden = false;
      return false;
    }
    toast(errorText(error), 'error');
    return true;
  }
}

export function formFailure() {
  return h('div.form-error', { hidden: true, role: 'alert' });
}

// ---- the shop --------------------------------------------------------------------------------

export function amountOf(chat, claimId) {
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

/** «Отклонить заявку на возврат?» with the reason the buyer and the manager will read. */
export async function refuse(app, chat, claimId) {
  const reason = new NoteField({
    label: 'Причина отказа', max: MAX_REASON, required: true,
    placeholder: 'Покупатель и менеджер увидят причину',
  });
  const failure = formFailure();
  const choice = await ask({
    title: 'Отклонить заявку на возврат?',
    className: 'reject-dialog',
    body: [
      h('p', 'Товар останется у покупателя.'),
      h('p', 'Покупатель может оспорить ваше решение, тогда заявка будет передана на ' +
        `рассмотрение менеджеру ${app.marketplace()}.`),
      reason.el,
      failure,
    ],
    buttons: [
      { label: 'Отклонить', value: 'reject', kind: 'danger' },
      { label: 'Отменить', value: null, kind: 'plain' },
    ],
    onConfirm: () => {
      if (!reason.check('Укажите причину отказа')) return false;
      const text = reason.value();
      return sendFromDialog(app, { type: 'return.reject', claim: claimId, reason: text },
        { field: reason, text, failure });
    },
  });
  if (choice !== 'reject') return;
  agreeing.delete(claimId);
  app.refresh(chat.id);
}

/** The buttons under a claim awaiting the shop: agree/refuse, then the two ways to agree.
 * For non-returnable goods the portal recommends «Возврат товара не нужен»: it leads. */
export function shopClaimButtons(app, chat, claimId, order) {
  if (agreeing.has(claimId)) {
    const keepGoods = order?.non_returnable;
    return [
      button('Возврат на ПВЗ', () => approve(app, chat, claimId, 'pvz'), keepGoods ? 'outline' : 'primary'),
      button('Возврат товара не нужен', () => approve(app, chat, claimId, 'no_return'),
        keepGoods ? 'primary' : 'outline'),
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

/** The shop takes back its offer before the buyer took it up. */
async function withdraw(app, chat, claimId) {
  const choice = await ask({
    title: 'Отозвать предложение о возврате?',
    className: 'withdraw-dialog',
    body: [h('p', 'Покупатель больше не сможет вернуть этот товар через чат.')],
    buttons: [
      { label: 'Отозвать', value: 'withdraw', kind: 'danger' },
      { label: 'Отменить', value: null, kind: 'plain' },
    ],
  });
  if (choice === 'withdraw') await run(app, { type: 'return.withdraw', claim: claimId });
}

export function withdrawButton(app, chat, claimId) {
  return button('Отозвать предложение', () => withdraw(app, chat, claimId), 'outline');
}

/** Entries for the ⋮ menu: refusing stays possible after «Согласиться на возврат», and an
 * offer the buyer has not taken up may be withdrawn. */
export function shopMenuItems(app, chat) {
  const items = [];
  const claims = [...chat.claims.values()];
  const label = (text, claim, state) => {
    const order = chat.orders.get(claim.order);
    const many = claims.filter((c) => c.state === state).length > 1;
    return many && order ? `${text}: ${order.name}` : text;
  };
  for (const claim of claims) {
    if (claim.state === 'requested') {
      items.push({
        label: label('Отказать в возврате товара', claim, 'requested'),
        action: () => refuse(app, chat, claim.claim),
      });
    } else if (claim.state === 'awaiting_buyer') {
      items.push({
        label: label('Отозвать предложение о возврате', claim, 'awaiting_buyer'),
        action: () => withdraw(app, chat, claim.claim),
      });
    }
  }
  return items;
}

// ---- the buyer -------------------------------------------------------------------------------

/** «Вернуть товар?»: the buyer confirms (one request per order), with a comment and photos. */
async function requestReturn(app, chat, order) {
  const comment = new NoteField({
    label: 'Комментарий', max: MAX_COMMENT, placeholder: 'Опишите, что не так с товаром',
  });
  const photos = new PhotoPicker(app.files, { label: 'Фото товара' });
  const failure = formFailure();
  await ask({
    title: 'Вернуть товар?',
    className: 'request-dialog',
    body: [
      h('p.request-order', h('b', order.name), `, артикул ${order.article}`),
      h('p', 'Запросить возврат товара через чат можно только один раз: повторную заявку по ' +
        'этому заказу отправить не получится.'),
      comment.el,
      photos.el,
      failure,
    ],
    buttons: [
      { label: 'Отправить заявку', value: 'request', kind: 'primary' },
      { label: 'Отменить', value: null, kind: 'plain' },
    ],
    onConfirm: () => {
      if (photos.busy()) {
        failure.textContent = 'Дождитесь, пока загрузятся фото.';
        failure.hidden = false;
        return false;
      }
      const frame = { type: 'return.request', chat: chat.id, order: order.id };
      const text = comment.value();
      if (text) frame.comment = text;
      const ids = photos.ids();
      if (ids.length) frame.attachments = ids;
      return sendFromDialog(app, frame, { field: comment, text, photos, failure });
    },
  });
  photos.dispose();
}

export function returnButton(app, chat, order) {
  return button('Вернуть товар', () => requestReturn(app, chat, order), 'primary');
}

/** For an order bought out whose return through the chat opens later. */
export function opensNote(opensAt) {
  return h('div.card-opens', `Вернуть товар через чат можно будет с ${formatDay(opensAt)}. ` +
    'До этого возврат проходит через «Проверка товара».');
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
