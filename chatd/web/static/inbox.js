// The chat list on the left: name, date of the last message, unread count on an orange
// badge, the search box (names here, words across every chat from the server), the shop's
// filters, and for a manager the queue of claims: those waiting for a decision, the longest
// waiting first, with how each came, how long it has waited and what the parties wrote, then
// the decided ones, marked so.

import { searchHit } from './chat.js';
import { toast } from './dialog.js';
import { h, icon } from './dom.js';
import { errorText } from './errors.js';
import { ASSIGNMENT_FILTERS, FILTERS, assignmentByKey, filterByKey } from './filters.js';
import { formatShortDate } from './format.js';
import {
  decidedMark, evidencePreview, handover, managerQueue, waitingClaims, waitingTags,
} from './manager.js';

const KIND_SNIPPETS = {
  'chat.opened': 'Чат открыт',
};

/** Who has the chat, as the shop's list and chat say it. */
export function assigneeText(chat) {
  return chat.assignee ? `Ответственный: ${chat.assignee.name}` : 'Без ответственного';
}

const TITLES = {
  seller: 'Чат с покупателями',
  buyer: 'Чаты с продавцами',
  manager: 'Спорные заявки',
};

export class Inbox {
  constructor(app) {
    this.app = app;
    this.query = '';
    this.hits = null; // search results from the server, or null
    this.loadingPage = false;
    this.list = h('ul.chat-list', { role: 'listbox', 'aria-label': 'Диалоги' });
    this.list.addEventListener('scroll', () => {
      const list = this.list;
      if (list.scrollHeight - list.scrollTop - list.clientHeight < 60) this.loadMore();
    });
    this.hitsBox = h('div.search-hits', { hidden: true });
    this.input = h('input.inbox-search-input', { type: 'search', placeholder: 'Поиск', 'aria-label': 'Поиск' });
    let timer = null;
    this.input.addEventListener('input', () => {
      this.query = this.input.value.trim();
      this.render();
      clearTimeout(timer);
      timer = setTimeout(() => this.searchMessages(), 350);
    });
    this.title = h('h2.inbox-title');
    this.filter = null; // the key of the filter on, or null
    this.filters = h('div.inbox-filters', { role: 'group', 'aria-label': 'Фильтры', hidden: true });
    this.assignment = 'all'; // whose chats: all, mine, nobody's
    this.assignFilters = h('div.inbox-assign', { role: 'group', 'aria-label': 'Чьи чаты', hidden: true });
    this.el = h('aside.inbox',
      this.title,
      h('div.inbox-search', icon('search'), this.input),
      this.assignFilters,
      this.filters,
      this.list,
      this.hitsBox,
      app.notifier.el);
  }

  get store() {
    return this.app.store;
  }

  /** The first page of chats (again, after a reset). */
  async load() {
    try {
      const page = await this.app.conn.request({ type: 'chats', limit: 50 });
      for (const summary of page.chats) this.store.summary(summary);
      this.store.nextPage = page.before;
      this.loaded = true;
      this.render();
    } catch (error) {
      toast(errorText(error), 'error');
      return;
    }
    if (this.filtering()) this.loadAll();
    if (this.store.role === 'manager') this.learnHandovers();
  }

  filtering() {
    return Boolean(this.filter) || this.assignment !== 'all';
  }

  /** A filter looks at every chat, not only the first page. */
  async loadAll() {
    while (this.filtering() && this.store.nextPage) {
      const before = this.store.nextPage;
      await this.loadMore();
      if (this.store.nextPage === before) break; // the page failed; scrolling tries again
    }
  }

  /** A manager's queue says how each claim came (escalated or disputed), since when, and what
   * the parties wrote: that is in the claim's events, so each chat whose claim waits gets its
   * newest page. */
  async learnHandovers() {
    for (const chat of this.store.sortedChats()) {
      const unknown = waitingClaims(chat).some((claim) => !handover(this.store, chat, claim.claim) ||
        !this.store.claimEvent(chat, claim.claim, 'return.requested'));
      if (!unknown || chat.loaded) continue;
      try {
        const page = await this.app.conn.request({ type: 'history', chat: chat.id, limit: 100 });
        if (!chat.loaded) this.store.history(chat.id, page.events, page.more, undefined);
      } catch {
        // The tag stays without its age; opening the chat loads it again.
      }
    }
  }

  async loadMore() {
    if (!this.store.nextPage || this.loadingPage) return;
    this.loadingPage = true;
    try {
      const page = await this.app.conn.request({ type: 'chats', before: this.store.nextPage, limit: 50 });
      for (const summary of page.chats) this.store.summary(summary);
      this.store.nextPage = page.before;
    } catch (error) {
      toast(errorText(error), 'error');
    } finally {
      this.loadingPage = false;
    }
  }

  title_() {
    return TITLES[this.store.role] || 'Чаты';
  }

  name(chat) {
    const role = this.store.role;
    if (role === 'seller') return chat.buyer.name;
    if (role === 'buyer') return chat.seller.name;
    return `${chat.buyer.name} — ${chat.seller.name}`;
  }

  snippet(chat) {
    const last = chat.last;
    if (!last) return '';
    if (last.text) return last.text;
    if (last.data?.attachments?.length) return `Вложение: ${last.data.attachments.map((a) => a.name).join(', ')}`;
    if (last.kind === 'chat.assigned') return last.data?.operator ? `Ответственный: ${last.data.operator.name}` : 'Ответственный снят';
    return KIND_SNIPPETS[last.kind] || '';
  }

  setFilter(key) {
    this.filter = this.filter === key ? null : key;
    this.render();
    if (this.filter) this.loadAll();
  }

  /** «Все» / «Мои» / «Без ответственного», once the server tells who has each chat. */
  renderAssignFilters(chats) {
    this.assignFilters.hidden = this.store.role !== 'seller' || !this.store.assignments;
    if (this.assignFilters.hidden) return;
    const me = this.store.user?.id;
    this.assignFilters.replaceChildren(...ASSIGNMENT_FILTERS.map((filter) => {
      const on = this.assignment === filter.key;
      const count = chats.filter((chat) => filter.test(chat, me)).length;
      return h(`button.assign-chip${on ? '.on' : ''}`, {
        type: 'button',
        title: filter.title,
        'aria-pressed': String(on),
        dataset: { assign: filter.key },
        onclick: () => {
          this.assignment = filter.key;
          this.render();
          if (filter.key !== 'all') this.loadAll();
        },
      }, filter.label, h('span.filter-count', String(count)));
    }));
  }

  renderFilters(chats, now) {
    this.renderAssignFilters(chats);
    this.filters.hidden = this.store.role !== 'seller';
    if (this.filters.hidden) return;
    this.filters.replaceChildren(...FILTERS.map((filter) => {
      const on = this.filter === filter.key;
      const count = chats.filter((chat) => filter.test(chat, now)).length;
      return h(`button.filter-chip${on ? '.on' : ''}`, {
        type: 'button',
        title: filter.title,
        'aria-pressed': String(on),
        dataset: { filter: filter.key },
        onclick: () => this.setFilter(filter.key),
      }, filter.label, h('span.filter-count', String(count)));
    }));
  }

  /** The small marks under a chat: overdue and open claims for the shop; how each claim
   * came and its age for a manager. */
  tags(chat, now) {
    const role = this.store.role;
    if (role === 'manager') return [...waitingTags(this.store, chat), decidedMark(this.store, chat)].filter(Boolean);
    if (role !== 'seller') return [];
    const tags = FILTERS.filter((filter) => filter.key !== 'unanswered' && filter.test(chat, now))
      .map((filter) => h(`span.tag.tag-${filter.key}`, filter.key === 'claims' ? 'Заявка на возврат' : filter.label));
    if (chat.assignee) {
      const mine = chat.assignee.id === this.store.user?.id;
      tags.push(h(`span.assignee${mine ? '.mine' : ''}`, { title: assigneeText(chat) }, mine ? 'Вы' : chat.assignee.name));
    }
    return tags;
  }

  render() {
    this.title.textContent = this.title_();
    const now = this.store.now();
    const query = this.query.toLocaleLowerCase('ru-RU');
    const all = this.store.sortedChats();
    this.renderFilters(all, now);
    const filter = this.store.role === 'seller' ? filterByKey(this.filter) : null;
    const whose = this.store.role === 'seller' && this.store.assignments ? assignmentByKey(this.assignment) : null;
    const me = this.store.user?.id;
    const chats = all.filter((chat) =>
      (!query || this.name(chat).toLocaleLowerCase('ru-RU').includes(query)) &&
      (!filter || filter.test(chat, now)) &&
      (!whose || whose.test(chat, me)));
    const items = this.store.role === 'manager' ? this.queueItems(chats, now) : chats.map((chat) => this.item(chat, now));
    if (!chats.length) {
      let none = this.store.role === 'manager' ? 'Спорных заявок нет' : 'Диалогов пока нет';
      if (query) none = 'Никого не найдено';
      else if (filter || (whose && whose.key !== 'all')) none = 'Таких диалогов нет';
      items.push(h('li.chat-empty', this.loaded ? none : 'Загрузка…'));
    }
    this.list.replaceChildren(...items);
    if (this.loaded) this.list.dataset.loaded = 'true';
    this.renderHits();
  }

  item(chat, now) {
    const current = this.app.chatView.chatId;
    const manager = this.store.role === 'manager';
    const evidence = manager ? evidencePreview(this.store, chat) : [];
    return h(`li.chat-item${chat.id === current ? '.active' : ''}`, {
      role: 'option',
      'aria-selected': String(chat.id === current),
      dataset: { chat: chat.id },
      onclick: () => this.app.openChat(chat.id),
    },
    h('div.chat-row',
      h('span.chat-item-name', this.name(chat)),
      this.app.presence.dot(chat),
      h('span.chat-item-date', chat.last ? formatShortDate(chat.last.at) : '')),
    evidence.length ? evidence : h('div.chat-row',
      this.app.typing.snippet(chat) || h('span.chat-item-snippet', this.snippet(chat)),
      chat.unread > 0 ? h('span.badge', { 'aria-label': `Непрочитанных: ${chat.unread}` }, String(chat.unread)) : null),
    this.tagRow(chat, now));
  }

  /** The manager's list: the waiting claims as a queue, then the decided ones. */
  queueItems(chats, now) {
    const { waiting, decided } = managerQueue(this.store, chats);
    const items = [];
    if (waiting.length) {
      items.push(h('li.queue-head', { role: 'presentation', title: 'Сначала те, что ждут дольше всех' }, 'Ждут решения',
        h('span.queue-count', String(waiting.length))));
      items.push(...waiting.map((chat) => this.item(chat, now)));
    }
    if (decided.length) {
      items.push(h('li.queue-head.queue-decided', { role: 'presentation' }, 'Решённые',
        h('span.queue-count', String(decided.length))));
      items.push(...decided.map((chat) => this.item(chat, now)));
    }
    return items;
  }

  tagRow(chat, now) {
    const tags = this.tags(chat, now);
    return tags.length ? h('div.chat-row.chat-tags', tags) : null;
  }

  async searchMessages() {
    const q = this.query;
    if (q.length < 2) {
      this.hits = null;
      this.renderHits();
      return;
    }
    try {
      const answer = await this.app.conn.request({ type: 'search', q });
      if (q !== this.query) return;
      this.hits = answer.events;
      this.renderHits();
    } catch (error) {
      toast(errorText(error), 'error');
    }
  }

  renderHits() {
    const hits = this.query.length >= 2 ? this.hits : null;
    this.hitsBox.hidden = !hits;
    this.el.classList.toggle('searching', Boolean(hits));
    if (!hits) return;
    this.hitsBox.replaceChildren(
      h('div.hits-title', 'Найдено в сообщениях'),
      ...(hits.length ? hits.map((event) => {
        const chat = this.store.chats.get(event.chat);
        const hit = searchHit(event, this.query, () => this.app.openChat(event.chat, event.seq));
        if (chat?.buyer && this.name(chat) !== event.author.name) hit.prepend(h('div.hit-chat', this.name(chat)));
        return hit;
      }) : [h('div.muted.search-empty', 'Ничего не найдено')]),
    );
  }
}
