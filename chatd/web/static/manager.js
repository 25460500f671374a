// The marketplace manager's side: each claim that reached the managers with everything the
// parties wrote into it (the buyer's comment and photos, the shop's reason, how and when it
// came here), and the decision with its comment.

import { ask } from './dialog.js';
import { h } from './dom.js';
import { attachmentsView, eventNote } from './evidence.js';
import { NoteField } from './fields.js';
import { formatAge, formatAmount, formatDateTime } from './format.js';
import {
  MAX_REASON, amountOf, button, formFailure, nextStepNote, nonReturnableAdvice, productCard,
  sendFromDialog,
} from './returns.js';

const choosingMode = new Set();

export function isChoosingMode(claimId) {
  return choosingMode.has(claimId);
}

/** How a claim reached the managers, and when: escalated by its deadline or disputed. */
export function handover(store, chat, claimId) {
  const escalated = store.claimEvent(chat, claimId, 'return.escalated');
  if (escalated) return { kind: 'escalated', at: escalated.at, label: 'Продавец не ответил вовремя' };
  const disputed = store.claimEvent(chat, claimId, 'return.disputed');
  if (disputed) return { kind: 'disputed', at: disputed.at, label: 'Оспорено покупателем' };
  return null;
}

/** The claims of a chat that wait for a manager. */
export function waitingClaims(chat) {
  return [...chat.claims.values()].filter((claim) => claim.state === 'disputed');
}

/** Tags for the chat list: how each waiting claim came, and how long it has waited. */
export function waitingTags(store, chat) {
  return waitingClaims(chat).map((claim) => {
    const came = handover(store, chat, claim.claim);
    if (!came) return h('span.tag.tag-disputed', 'На рассмотрении');
    return h(`span.tag.tag-${came.kind}`, { title: `Передана ${formatDateTime(came.at)}` },
      `${came.label} · ${formatAge(store.now() - Date.parse(came.at))}`);
  });
}

/** When the chat's oldest waiting claim came to the managers (ms), or null when not known yet. */
export function waitingSince(store, chat) {
  let since = null;
  for (const claim of waitingClaims(chat)) {
    const came = handover(store, chat, claim.claim);
    const at = came ? Date.parse(came.at) : NaN;
    if (!Number.isNaN(at)) since = since === null ? at : Math.min(since, at);
  }
  return since;
}

/**
 * The manager's list as a queue: chats whose claims wait for a decision first, the longest
 * waiting on top (those whose handover is not loaded yet after them), then the decided ones,
 * latest first. Returns {waiting, decided}.
 */
export function managerQueue(store, chats) {
  const waiting = [];
  const decided = [];
  for (const chat of chats) {
    if (waitingClaims(chat).length) waiting.push({ chat, since: waitingSince(store, chat) });
    else decided.push(chat);
  }
  waiting.sort((a, b) => (a.since ?? Infinity) - (b.since ?? Infinity));
  return { waiting: waiting.map((entry) => entry.chat), decided };
}

const RESOLVED_STATES = new Set(['resolved_approved', 'resolved_rejected']);

/** How the managers decided a chat whose claims no longer wait: «Решено» and the outcome. */
export function decidedMark(store, chat) {
  const claims = [...chat.claims.values()];
  if (!claims.length || waitingClaims(chat).length) return null;
  let approved = false;
  let rejected = false;
  for (const claim of claims) {
    const resolved = store.claimEvent(chat, claim.claim, 'return.resolved');
    const decision = resolved?.data?.decision ||
      (claim.state === 'resolved_rejected' ? 'reject' : RESOLVED_STATES.has(claim.state) ? 'approve' : null);
    if (decision === 'approve') approved = true;
    if (decision === 'reject') rejected = true;
  }
  let text = 'Решено';
  if (approved && !rejected) text = 'Решено: возврат одобрен';
  else if (rejected && !approved) text = 'Решено: в возврате отказано';
  return h('span.decided', { dataset: { decided: approved && !rejected ? 'approve' : rejected && !approved ? 'reject' : 'mixed' } }, text);
}

function shortly(text, max = 90) {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** What the parties wrote into the chat's waiting claims, in a line or two for the queue: the
 * goods, the buyer's comment and photos, the shop's reason. */
export function evidencePreview(store, chat) {
  const lines = [];
  for (const claim of waitingClaims(chat)) {
    const order = chat.orders.get(claim.order);
    const requested = store.claimEvent(chat, claim.claim, 'return.requested');
    const rejected = store.claimEvent(chat, claim.claim, 'return.rejected');
    const photos = (requested?.data?.attachments || []).filter((a) => a.mime?.startsWith('image/')).length;
    const parts = [];
    if (order) parts.push(h('span.ev-order', order.name));
    if (requested?.data?.comment) parts.push(h('span.ev-comment', `«${shortly(requested.data.comment)}»`));
    if (photos) parts.push(h('span.ev-photos', `фото: ${photos}`));
    if (rejected?.data?.reason) parts.push(h('span.ev-reason', `Отказ: ${shortly(rejected.data.reason, 70)}`));
    if (parts.length) lines.push(h('div.chat-row.queue-evidence', parts));
  }
  return lines;
}

async function resolve(app, chat, claimId, decision, mode) {
  const comment = new NoteField({
    label: 'Комментарий к решению', max: MAX_REASON, placeholder: 'Покупатель и продавец увидят комментарий',
  });
  const failure = formFailure();
  const frame = { type: 'return.resolve', claim: claimId, decision };
  if (mode) frame.mode = mode;
  let title = 'Отклонить заявку на возврат?';
  let body = [h('p', 'Товар останется у покупателя.')];
  let confirm = { label: 'Отклонить', value: 'resolve', kind: 'danger' };
  if (decision === 'approve') {
    const amount = amountOf(chat, claimId);
    title = 'Одобрить возврат?';
    body = [h('p', amount
      ? ['Покупателю будут возвращены денежные средства в размере ', h('b', formatAmount(amount)), '.']
      : 'Покупателю будут возвращены денежные средства.'),
    h('p', mode === 'pvz' ? 'Товар нужно вернуть на ПВЗ.' : 'Возврат товара не нужен.')];
    confirm = { label: 'Подтвердить', value: 'resolve', kind: 'primary' };
  }
  const choice = await ask({
    title,
    className: 'resolve-dialog',
    body: [...body, comment.el, failure],
    buttons: [confirm, { label: 'Отменить', value: null, kind: 'plain' }],
    onConfirm: () => {
      const text = comment.value();
      return sendFromDialog(app, text ? { ...frame, comment: text } : frame, { field: comment, text, failure });
    },
  });
  if (choice !== 'resolve') return;
  choosingMode.delete(claimId);
  app.refresh(chat.id);
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

function step(title, at, ...body) {
  return h('div.claim-step',
    h('div.claim-step-head', h('span.claim-step-title', title), at ? h('span.muted', formatDateTime(at)) : null),
    body);
}

/** Everything on record about a claim, in the order it happened. */
function claimFile(app, chat, claim) {
  const store = app.store;
  const event = (kind) => store.claimEvent(chat, claim.claim, kind);
  const steps = [];
  const requested = event('return.requested');
  if (requested) {
    steps.push(step('Заявка покупателя', requested.at,
      eventNote(requested) || h('div.muted', 'Без комментария'),
      attachmentsView(app.files, requested.data.attachments)));
  } else {
    steps.push(h('div.muted.claim-loading', 'Загрузка заявки…'));
  }
  const rejected = event('return.rejected');
  if (rejected) {
    steps.push(step('Отказ продавца', rejected.at,
      eventNote(rejected) || h('div.muted', 'Причина не указана')));
  }
  const escalated = event('return.escalated');
  if (escalated) {
    steps.push(step('Продавец не ответил вовремя', escalated.at,
      h('div', 'Заявка передана менеджеру автоматически.')));
  }
  const disputed = event('return.disputed');
  if (disputed) steps.push(step('Покупатель оспорил решение', disputed.at));
  const resolved = event('return.resolved');
  if (resolved) steps.push(step('Решение менеджера', resolved.at, eventNote(resolved)));
  const came = claim.state === 'disputed' ? handover(store, chat, claim.claim) : null;
  return h('div.claim-file',
    came ? h('div.claim-age', `Ждёт решения менеджера ${formatAge(store.now() - Date.parse(came.at))}`) : null,
    steps);
}

/** The claims bar above the manager's chat: one card per claim that came to the managers. */
export function claimCards(app, chat) {
  const cards = [];
  for (const claim of chat.claims.values()) {
    const order = chat.orders.get(claim.order);
    if (!order || claim.state === 'awaiting_buyer' || claim.state === 'requested' || claim.state === 'closed') continue;
    const waiting = claim.state === 'disputed';
    const actions = waiting ? managerButtons(app, chat, claim.claim) : [];
    cards.push(productCard(order, {
      files: app.files,
      state: claim.state,
      actions,
      note: [
        claimFile(app, chat, claim),
        waiting ? nonReturnableAdvice(order) : nextStepNote('manager', app.store, chat, claim),
      ],
    }));
  }
  return cards;
}

/** Does the manager still miss the request of a claim the bar shows? */
export function missesRequests(store, chat) {
  return [...chat.claims.values()].some((claim) =>
    !['awaiting_buyer', 'requested', 'closed'].includes(claim.state) &&
    !store.claimEvent(chat, claim.claim, 'return.requested'));
}
