// The chat list's filters beside the search (the shop's inbox): chats waiting for the shop's
// answer, those past the 10-day reply deadline, and those with a claim still open.

// A claim is open while it waits for someone's decision: the buyer's (the shop's offer), the
// shop's (a request) or a manager's (a dispute, or a request the shop let run out).
const OPEN_CLAIM_STATES = new Set(['awaiting_buyer', 'requested', 'disputed']);

export const FILTERS = [
  {
    key: 'unanswered',
    label: 'Без ответа',
    title: 'Покупатель ждёт ответа магазина',
    test: (chat) => Boolean(chat.replyDue),
  },
  {
    key: 'overdue',
    label: 'Просрочено',
    title: 'Срок ответа (10 дней) истёк',
    test: (chat, now) => Boolean(chat.replyDue) && Date.parse(chat.replyDue) < now,
  },
  {
    key: 'claims',
    label: 'С заявкой',
    title: 'Заявка на возврат ждёт решения',
    test: (chat) => [...chat.claims.values()].some((claim) => OPEN_CLAIM_STATES.has(claim.state)),
  },
];

export function filterByKey(key) {
  return FILTERS.find((filter) => filter.key === key) || null;
}
