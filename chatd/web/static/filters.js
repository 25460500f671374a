// The chat list's filters beside the search (the shop's inbox): chats waiting for the shop's
// answer, those past the 10-day reply deadline, and those with a claim still open; and whose
// chats they are: mine, nobody's, all.

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

// Whose chats (version 1.1's assignment): shown once the server tells who has each chat
// (summaries' `assignee`). One of them is always on; «Все» by default.
export const ASSIGNMENT_FILTERS = [
  { key: 'all', label: 'Все', title: 'Все чаты магазина', test: () => true },
  {
    key: 'mine',
    label: 'Мои',
    title: 'Чаты, за которые отвечаете вы',
    test: (chat, me) => Boolean(chat.assignee) && chat.assignee.id === me,
  },
  {
    key: 'nobody',
    label: 'Без ответственного',
    title: 'Чаты, которые никто не взял',
    test: (chat) => !chat.assignee,
  },
];

export function assignmentByKey(key) {
  return ASSIGNMENT_FILTERS.find((filter) => filter.key === key) || ASSIGNMENT_FILTERS[0];
}
