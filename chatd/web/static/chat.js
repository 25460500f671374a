// The open chat: header (back to the list on a phone, search, «Вложения», ⋮), the product
// card and messages with date separators, service messages with what the parties wrote into a
// claim, what happens next after an approval, the return controls, the manager's claims, the
// messages still on their way (outbox.js), and the composer. The newest messages stay in view
// while the panes around them change size (the connection banner, a refusal, the composer).

import { assignedLine, chooseOperator, transferButton } from './assign.js';
import { AttachmentsPanel } from './attachments.js';
import { Composer, showRules } from './composer.js';
import { toast } from './dialog.js';
import { fill, h, highlighted, icon, matchRanges } from './dom.js';
import { errorText } from './errors.js';
import { attachmentsView, eventNote } from './evidence.js';
import { dayKey, formatDay, formatTime } from './format.js';
import { claimCards, isChoosingMode, managerQueue, missesRequests } from './manager.js';
import { noteView } from './notes.js';
import {
  approvalMode, disputeButton, dueNote, initiateButton, isAgreeing, nextStepNote, nonReturnableAdvice,
  opensNote, productCard, returnButton, shopClaimButtons, shopMenuItems, withdrawButton,
} from './returns.js';
import { buyerMayRequest, opensLater } from './returnwindow.js';
import { sideOf } from './store.js';

const PAGE = 50;
const OLDER_PAGE = 100;

export class ChatView {
  constructor(app) {
    this.app = app;
    this.chatId = null;
    this.nodes = new Map(); // seq -> {key, el}: rendered events are reused
    this.composerPart = new Composer(app, () => {
      this.stickToBottom = true;
      this.scrollToBottom();
      this.app.notifier.offer();
    });
    // The messages' box shrinks when a banner, a refusal or a longer draft takes room: a reader
    // who was at the bottom stays there.
    this.resizes = new ResizeObserver(() => {
      if (this.stickToBottom && this.messages) this.scrollToBottom();
    });
    this.scrolledByHand = -Infinity;
    this.loadingOlder = false;
    this.stickToBottom = true;
    this.searchOpen = false;
    this.panel = new AttachmentsPanel(app);
    this.el = h('section.chat-pane');
    this.renderPlaceholder();
    document.addEventListener('visibilitychange', () => {
      this.app.store.viewing = this.visibleChat();
      this.markRead();
    });
    document.addEventListener('click', (event) => {
      if (this.menu && !this.menu.contains(event.target) && !event.target.closest('.menu-btn')) {
        this.closeMenu();
      }
    });
    document.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape' || !this.menu) return;
      event.preventDefault();
      this.closeMenu();
      this.header?.querySelector('.menu-btn')?.focus();
    });
  }

  get store() {
    return this.app.store;
  }

  get chat() {
    return this.chatId ? this.store.chat(this.chatId) : null;
  }

  visibleChat() {
    return document.visibilityState === 'visible' ? this.chatId : null;
  }

  renderPlaceholder() {
    fill(this.el, h('div.placeholder',
      h('div.placeholder-art', icon('search')),
      h('div.placeholder-text', 'Выберите диалог в списке слева')));
  }

  /** Shows a chat; loads its newest events when they are not here yet. */
  async open(chatId) {
    if (chatId === this.chatId) return;
    this.composerPart.saveDraft();
    this.chatId = chatId;
    this.store.viewing = this.visibleChat();
    this.nodes.clear();
    this.stickToBottom = true;
    this.searchOpen = false;
    this.closeMenu();
    this.build();
    this.render();
    this.app.inbox.render();
    const chat = this.chat;
    const loads = [];
    if (!chat.loaded) loads.push(this.loadNewest());
    if (this.store.role === 'manager') loads.push(this.loadOrders());
    if (this.panel.isOpen) this.panel.open(chatId);
    await Promise.all(loads);
    if (this.store.role === 'manager') await this.loadClaimRequests(chatId);
  }

  /** The manager decides on what the buyer asked: older pages until every claim's request
   * is here (a long chat may have pushed it off the newest page). */
  async loadClaimRequests(chatId) {
    const chat = this.store.chat(chatId);
    while (this.chatId === chatId && chat.loaded && chat.more && missesRequests(this.store, chat)) {
      if (!(await this.loadOlder(OLDER_PAGE))) break;
    }
  }

  /** Back to the list (a phone's one column): no chat is open, so none is read. */
  close() {
    if (!this.chatId) return;
    this.composerPart.saveDraft();
    this.chatId = null;
    this.store.viewing = null;
    this.closeMenu();
    this.panel.close();
    if (this.messages) this.resizes.unobserve(this.messages);
    this.messages = null;
    this.renderPlaceholder();
    this.app.inbox.render();
  }

  /** The open chat's queued messages changed. */
  outboxChanged(chatId) {
    if (chatId === this.chatId && this.messages) this.renderMessages();
  }

  /** Online or not: the queued messages say whether they are going out. */
  statusChanged() {
    if (this.chatId && this.messages && this.app.outbox.forChat(this.chatId).length) this.renderMessages();
  }

  /** Everything was forgotten (bad cursor): load the open chat again. */
  reload() {
    if (!this.chatId) return;
    this.nodes.clear();
    const chatId = this.chatId;
    const loads = [this.loadNewest()];
    if (this.store.role === 'manager') loads.push(this.loadOrders());
    if (this.panel.isOpen) this.panel.load();
    if (this.store.role === 'manager') Promise.all(loads).then(() => this.loadClaimRequests(chatId));
  }

  async loadNewest() {
    const chatId = this.chatId;
    try {
      const page = await this.app.conn.request({ type: 'history', chat: chatId, limit: PAGE });
      this.store.history(chatId, page.events, page.more, undefined);
    } catch (error) {
      toast(errorText(error), 'error');
    }
  }

  async loadOlder(limit = PAGE) {
    const chat = this.chat;
    if (!chat || !chat.more || this.loadingOlder) return false;
    this.loadingOlder = true;
    try {
      const before = this.store.oldestSeq(chat);
      const page = await this.app.conn.request({ type: 'history', chat: chat.id, before, limit });
      this.store.history(chat.id, page.events, page.more, before);
      return true;
    } catch (error) {
      toast(errorText(error), 'error');
      return false;
    } finally {
      this.loadingOlder = false;
    }
  }

  async loadOrders() {
    try {
      const answer = await this.app.conn.request({ type: 'attachments', chat: this.chatId });
      this.store.attachments(answer);
    } catch (error) {
      toast(errorText(error), 'error');
    }
  }

  /** Scrolls to an event (from a search hit), loading older pages until it is here. */
  async jumpTo(seq) {
    const chat = this.chat;
    if (!chat) return;
    if (!chat.loaded) await this.loadNewest();
    while (!chat.events.has(seq) && chat.more) {
      if (!(await this.loadOlder(OLDER_PAGE))) break;
    }
    this.renderMessages();
    const target = this.messages.querySelector(`[data-seq="${seq}"]`);
    if (!target) return;
    this.stickToBottom = false;
    target.scrollIntoView({ block: 'center' });
    target.classList.add('flash');
    setTimeout(() => target.classList.remove('flash'), 2500);
  }

  // ---- layout ----------------------------------------------------------------------------------

  build() {
    this.header = h('header.chat-head');
    this.searchBar = h('div.chat-search', { hidden: true });
    this.claimsBar = h('aside.claims-bar', { hidden: true, 'aria-label': 'Заявки на возврат' });
    if (this.messages) this.resizes.unobserve(this.messages);
    this.messages = h('div.messages', { role: 'log', 'aria-live': 'polite' });
    this.resizes.observe(this.messages);
    this.messages.addEventListener('scroll', () => this.onScroll());
    for (const type of ['wheel', 'touchmove', 'mousedown', 'keydown']) {
      this.messages.addEventListener(type, () => { this.scrolledByHand = performance.now(); }, { passive: true });
    }
    this.messages.addEventListener('load', () => {
      if (this.stickToBottom) this.scrollToBottom();
    }, true);
    this.composer = this.store.side ? this.composerPart.build(this.chatId) : h('div.readonly-note',
      'Менеджер читает переписку и принимает решение по спорной заявке; писать в чат он не может.');
    // The manager's claims stand in a column of their own beside the chat, full height, so
    // everything the parties wrote is in view while deciding.
    fill(this.el,
      h('div.chat-main', this.header, this.searchBar, this.messages, this.composer),
      this.claimsBar,
      this.panel.el,
    );
  }

  render() {
    if (!this.chatId) return;
    this.renderHeader();
    this.renderClaimsBar();
    this.renderMessages();
  }

  /** Time passed: deadlines turn overdue, the return window opens, claims wait longer. */
  tick() {
    if (this.chatId) this.render();
  }

  /** The store changed these chats. */
  update(chatIds) {
    if (!this.chatId || !chatIds.includes(this.chatId)) return;
    this.render();
    this.markRead();
    this.panel.chatChanged(this.chatId);
  }

  counterpart(chat) {
    const role = this.store.role;
    if (role === 'seller') return chat.buyer?.name || '';
    if (role === 'buyer') return chat.seller?.name || '';
    return `${chat.buyer?.name || ''} — ${chat.seller?.name || ''}`;
  }

  renderHeader() {
    const chat = this.chat;
    const due = this.store.role === 'seller' && chat.replyDue ? this.replyDue(chat.replyDue) : null;
    const whose = this.store.role === 'seller' && this.store.assignments ? this.assignLine(chat) : null;
    fill(this.header,
      h('button.icon-btn.back-btn', {
        type: 'button', title: 'К списку чатов', 'aria-label': 'К списку чатов', onclick: () => this.app.closeChat(),
      }, icon('back')),
      h('div.chat-title',
        h('span.chat-name', this.counterpart(chat)),
        // Online or not, or «… печатает…» (presence.js, typing.js).
        h('div.chat-status', this.store.role === 'buyer' ? h('span.chat-sub', 'Продавец') : null, this.app.presence.status(chat)),
        due,
        whose),
      h('div.head-actions',
        h('button.icon-btn.search-btn', {
          type: 'button', title: 'Поиск по чату', 'aria-label': 'Поиск по чату',
          onclick: () => this.toggleSearch(),
        }, icon('search')),
        h('button.btn.btn-plain.attachments-btn', {
          type: 'button', title: 'Вложения', 'aria-label': 'Вложения',
          onclick: () => (this.panel.isOpen ? this.panel.close() : this.panel.open(this.chatId)),
        }, icon('attach'), h('span.btn-label', 'Вложения')),
        h('button.icon-btn.menu-btn', {
          type: 'button', title: 'Ещё', 'aria-label': 'Ещё', onclick: (event) => this.toggleMenu(event),
        }, icon('more'))),
    );
    // An open ⋮ menu stays open while the chat changes under it.
    if (this.menu) this.header.append(this.menu);
  }

  /** Who of the shop has the chat, and taking it (or giving it back) in one click. */
  assignLine(chat) {
    const me = this.store.user?.id;
    const mine = chat.assignee?.id === me;
    const assign = (operator) => this.app.conn.request({ type: 'assign', chat: chat.id, operator })
      .catch((error) => toast(errorText(error), 'error'));
    let who = 'Без ответственного';
    if (mine) who = 'Ответственный: вы';
    else if (chat.assignee) who = `Ответственный: ${chat.assignee.name}`;
    return h('div.assign-line',
      h('span.assign-who', who),
      mine
        ? h('button.btn.btn-link.assign-btn', { type: 'button', onclick: () => assign(null) }, 'Снять с себя')
        : h('button.btn.btn-link.assign-btn', { type: 'button', onclick: () => assign(me) }, 'Взять себе'),
      transferButton(this.app, chat));
  }

  replyDue(due) {
    const overdue = Date.parse(due) < Date.now();
    return h(`div.reply-due${overdue ? '.overdue' : ''}`, { title: 'Срок ответа: 10 дней с обращения' },
      `Ответить до ${formatDay(due)}, ${formatTime(due)}`, overdue ? ' — срок истёк' : '');
  }

  toggleMenu(event) {
    event.stopPropagation();
    if (this.menu) {
      this.closeMenu();
      return;
    }
    const items = [];
    if (this.store.role === 'seller') items.push(...shopMenuItems(this.app, this.chat));
    items.push({ label: 'Вложения', action: () => this.panel.open(this.chatId) });
    items.push({ label: 'Поиск по чату', action: () => this.toggleSearch(true) });
    if (this.store.role === 'seller' && this.store.assignments) {
      items.push({ label: 'Передать чат', action: () => chooseOperator(this.app, this.chatId) });
    }
    if (this.store.role === 'seller') items.push({ label: 'Шаблоны ответов', action: () => this.app.templates.manage() });
    if (this.store.role === 'seller') items.push({ label: 'Правила оформления ответов', action: showRules });
    this.menu = h('div.menu-popup', { role: 'menu', 'aria-label': 'Ещё' }, items.map((item) =>
      h('button.menu-item', {
        type: 'button',
        role: 'menuitem',
        onclick: () => {
          this.closeMenu();
          item.action();
        },
      }, item.label)));
    this.header.append(this.menu);
    this.menu.querySelector('.menu-item')?.focus();
  }

  closeMenu() {
    this.menu?.remove();
    this.menu = null;
  }

  // ---- search in the history -----------------------------------------------------------------

  toggleSearch(open = !this.searchOpen) {
    this.searchOpen = open;
    this.searchBar.hidden = !open;
    if (!open) return;
    const input = h('input.search-input', { type: 'search', placeholder: 'Поиск по чату', 'aria-label': 'Поиск по чату' });
    const results = h('div.search-results');
    let timer = null;
    input.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.search(input.value, results), 300);
    });
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        clearTimeout(timer);
        this.search(input.value, results);
      }
      if (event.key === 'Escape') this.toggleSearch(false);
    });
    this.searchBar.replaceChildren(h('div.search-row', icon('search'), input,
      h('button.icon-btn', { type: 'button', 'aria-label': 'Закрыть поиск', onclick: () => this.toggleSearch(false) }, icon('close'))),
    results);
    input.focus();
  }

  async search(query, results) {
    const q = query.trim();
    if (q.length < 2) {
      results.replaceChildren();
      return;
    }
    try {
      const answer = await this.app.conn.request({ type: 'search', q, chat: this.chatId });
      if (!answer.events.length) {
        results.replaceChildren(h('div.muted.search-empty', 'Ничего не найдено'));
        return;
      }
      results.replaceChildren(...answer.events.map((event) => searchHit(event, q, () => this.jumpTo(event.seq))));
    } catch (error) {
      toast(errorText(error), 'error');
    }
  }

  // ---- the manager's claims ------------------------------------------------------------------

  renderClaimsBar() {
    if (this.store.role !== 'manager') return;
    const cards = claimCards(this.app, this.chat);
    this.claimsBar.hidden = !cards.length;
    // The queue goes on from here: the claim that has waited longest among the others.
    const next = managerQueue(this.store, this.store.sortedChats()).waiting.find((chat) => chat.id !== this.chatId);
    this.claimsBar.replaceChildren(h('div.claims-title', 'Заявки на возврат'), ...cards,
      next ? h('button.btn.btn-link.next-claim', { type: 'button', onclick: () => this.app.openChat(next.id) },
        `Следующая в очереди: ${next.buyer?.name || ''} — ${next.seller?.name || ''} →`) : null);
  }

  // ---- messages --------------------------------------------------------------------------------

  renderMessages() {
    const chat = this.chat;
    const box = this.messages;
    const before = { height: box.scrollHeight, top: box.scrollTop, first: box.querySelector('[data-seq]')?.dataset.seq };
    const events = this.store.sortedEvents(chat);
    const latestCard = new Map(); // order id -> seq of the last event that shows its card
    for (const event of events) {
      const order = event.data?.order;
      if (order && typeof order === 'object') latestCard.set(order.id, event.seq);
    }
    const children = [];
    if (chat.more && chat.loaded) {
      children.push(h('button.btn.btn-link.load-older', { type: 'button', onclick: () => this.loadOlder() },
        'Показать более ранние сообщения'));
    }
    if (!chat.loaded && !events.length) children.push(h('div.muted.loading', 'Загрузка…'));
    let day = null;
    for (const event of events) {
      const key = dayKey(event.at);
      if (key !== day) {
        children.push(h('div.day-sep', h('span', formatDay(event.at))));
        day = key;
      }
      const renderKey = this.renderKey(chat, event, latestCard);
      let cached = this.nodes.get(event.seq);
      if (!cached || cached.key !== renderKey) {
        cached = { key: renderKey, el: this.renderEvent(chat, event, latestCard) };
        this.nodes.set(event.seq, cached);
      }
      if (cached.el) children.push(cached.el);
    }
    children.push(...this.app.outbox.forChat(chat.id).map((item) => this.queued(item)));
    box.replaceChildren(...children);
    const first = box.querySelector('[data-seq]')?.dataset.seq;
    if (this.stickToBottom) {
      this.scrollToBottom();
    } else if (before.first && first !== before.first) {
      box.scrollTop = box.scrollHeight - before.height + before.top;
    }
  }

  scrollToBottom() {
    this.messages.scrollTop = this.messages.scrollHeight;
  }

  onScroll() {
    const box = this.messages;
    // Only the reader's own scrolling (wheel, touch, keys, the scrollbar) decides whether the
    // view follows the newest messages: a scroll the layout caused (the box or its content
    // changed size for a moment) leaves that as it was.
    if (performance.now() - this.scrolledByHand < 1000) {
      this.stickToBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    }
    if (box.scrollTop < 40 && this.chat?.more && this.chat.loaded) this.loadOlder();
  }

  claimOf(chat, event) {
    const data = event.data || {};
    if (data.claim) return chat.claims.get(data.claim) || null;
    if (data.order && typeof data.order === 'object') return this.store.claimOfOrder(chat, data.order.id);
    return null;
  }

  renderKey(chat, event, latestCard) {
    const claim = this.claimOf(chat, event);
    const order = event.data?.order && typeof event.data.order === 'object' ? event.data.order : null;
    // The buyer's button depends on the time as well: the return window opens at midnight.
    const now = this.store.now();
    const returnWindow = order && this.store.role === 'buyer'
      ? `${buyerMayRequest(order, claim, now)}${Boolean(opensLater(order, claim, now))}` : '';
    return [
      claim ? claim.state : '',
      claim ? isAgreeing(claim.claim) : '',
      claim ? isChoosingMode(claim.claim) : '',
      claim?.due || '',
      claim ? approvalMode(this.store, chat, claim) || '' : '',
      claim ? Boolean(this.store.claimEvent(chat, claim.claim, 'refund.issued')) : '',
      order ? latestCard.get(order.id) === event.seq : '',
      returnWindow,
    ].join('|');
  }

  renderEvent(chat, event, latestCard) {
    const data = event.data || {};
    const order = data.order && typeof data.order === 'object' ? data.order : null;
    const claim = this.claimOf(chat, event);
    const isLatest = order ? latestCard.get(order.id) === event.seq : false;
    const mine = this.store.side ? sideOf(event.author) === this.store.side : sideOf(event.author) === 'seller';
    const wrap = (...children) => h(`div.event.kind-${event.kind.replace('.', '-')}${mine ? '.mine' : ''}`,
      { dataset: { seq: String(event.seq), kind: event.kind } }, children);
    switch (event.kind) {
      case 'chat.opened':
        return order && isLatest ? wrap(this.card(chat, event, order, claim, isLatest)) : null;
      case 'message':
        return wrap(this.bubble(event));
      case 'return.requested':
        return wrap(this.card(chat, event, order, claim, isLatest), this.bubble(event));
      case 'return.initiated':
        return wrap(this.service(event), order ? this.card(chat, event, order, claim, isLatest) : null);
      case 'chat.assigned':
        return wrap(assignedLine(event));
      case 'note':
        return wrap(noteView(event));
      case 'return.rejected': {
        const extra = this.store.role === 'buyer' && claim && claim.state === 'rejected'
          ? h('div.service-actions', disputeButton(this.app, chat, claim.claim)) : null;
        return wrap(this.service(event, extra));
      }
      default:
        return event.text ? wrap(this.service(event)) : null;
    }
  }

  card(chat, event, order, claim, isLatest) {
    const role = this.store.role;
    const actions = [];
    const notes = [];
    if (role === 'seller') {
      if (claim && claim.state === 'requested' && event.kind === 'return.requested') {
        // The portal's advice for non-returnable goods stands next to the buttons.
        notes.push(nonReturnableAdvice(order), dueNote(role, claim, this.app.marketplace()));
        actions.push(...shopClaimButtons(this.app, chat, claim.claim, order));
      } else if (claim && claim.state === 'awaiting_buyer' && event.kind === 'return.initiated') {
        actions.push(withdrawButton(this.app, chat, claim.claim));
      } else if (!claim && order.received_at && isLatest) {
        actions.push(initiateButton(this.app, chat, order));
      }
    } else if (role === 'buyer' && isLatest) {
      const now = this.store.now();
      if (buyerMayRequest(order, claim, now)) actions.push(returnButton(this.app, chat, order));
      const opens = opensLater(order, claim, now);
      if (opens) notes.push(opensNote(opens));
      notes.push(dueNote(role, claim, this.app.marketplace()));
    }
    const state = claim && (event.kind !== 'chat.opened' || isLatest) ? claim.state : null;
    if (state) notes.push(nextStepNote(role, this.store, chat, claim));
    return productCard(order, { files: this.app.files, state, actions, note: notes });
  }

  authorLabel(event) {
    const author = event.author;
    if (author.role === 'seller' && author.operator && this.store.role !== 'buyer') {
      return `${author.name} · ${author.operator.name}`;
    }
    return author.name;
  }

  /** A message, or the buyer's request with its comment and photos. */
  bubble(event) {
    const side = sideOf(event.author);
    const mine = this.store.side ? side === this.store.side : side === 'seller';
    return h(`div.msg.${mine ? 'mine' : 'theirs'}`,
      h('div.msg-head', h('span.msg-author', this.authorLabel(event)), h('span.msg-time', formatTime(event.at))),
      event.text ? h('div.msg-text', event.text) : null,
      eventNote(event),
      attachmentsView(this.app.files, event.data?.attachments));
  }

  /** A message still on its way: how it stands, and for one the server refused, why, with
   * «Отправить ещё раз» and «Удалить». Not a `.msg`: it is not in the chat yet. */
  queued(item) {
    const outbox = this.app.outbox;
    let status;
    if (item.state === 'failed') status = `Не отправлено: ${item.error || 'ошибка'}`;
    else if (this.app.conn.ready) status = 'Отправляется…';
    else status = 'Ждёт соединения, отправится автоматически';
    return h(`div.event.queued.${item.state}`, { dataset: { nonce: item.nonce } },
      h('div.outbox-msg',
        h('div.msg-head', h('span.msg-author', 'Вы'), h('span.outbox-status', icon('clock'), status)),
        item.text ? h('div.outbox-text', item.text) : null,
        item.attachments?.length
          ? h('div.msg-files', item.attachments.map((file) => h('span.file-chip', icon('file'), h('span.file-name', file.name))))
          : null,
        item.state === 'failed' ? h('div.outbox-actions',
          h('button.btn.btn-link', { type: 'button', onclick: () => outbox.retry(item) }, 'Отправить ещё раз'),
          h('button.btn.btn-link.danger-link', { type: 'button', onclick: () => outbox.discard(item) }, 'Удалить'))
          : null));
  }

  /** A service message; a refusal's reason or a decision's comment below its text. */
  service(event, extra = null) {
    return h('div.service',
      h('div.service-head', h('span.service-author', event.author.name || this.app.marketplace()),
        h('span.msg-time', formatTime(event.at))),
      h('div.service-text', event.text || ''),
      eventNote(event),
      extra);
  }

  // ---- read marks ------------------------------------------------------------------------------

  markRead() {
    const chat = this.chat;
    if (!chat || !this.store.side || document.visibilityState !== 'visible') return;
    const last = this.store.lastSeq(chat);
    if (last > chat.readSent && chat.loaded && this.app.conn.ready) {
      this.app.conn.notify({ type: 'read', chat: chat.id, seq: last });
      chat.readSent = last;
    }
    if (chat.unread) {
      chat.unread = 0;
      this.store.changed(chat.id);
    }
  }
}

export function searchHit(event, query, onclick) {
  const text = event.text || '';
  return h('button.search-hit', { type: 'button', onclick, dataset: { seq: String(event.seq) } },
    h('div.hit-head', h('span.hit-author', event.author.name),
      h('span.hit-date', `${formatDay(event.at)}, ${formatTime(event.at)}`)),
    h('div.hit-text', highlighted(text, matchRanges(text, query))));
}
