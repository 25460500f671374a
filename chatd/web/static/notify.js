// Telling a person about new messages: the unread count in the tab's title, and a browser
// notification for a message that arrives while the tab is hidden. The browser's permission
// is asked only when the person says so, from a small offer in the chat list that appears once
// they have written something (never when the page loads), and that can be dismissed for good.

import { h, icon } from './dom.js';
import { readJson, writeJson } from './storage.js';
import { sideOf } from './store.js';

const TITLES = {
  seller: 'Чат с покупателями',
  buyer: 'Чаты с продавцами',
  manager: 'Спорные заявки',
};
const DISMISSED_KEY = 'chatd.notifications.dismissed';

function supported() {
  return typeof window.Notification === 'function';
}

export class Notifier {
  constructor(app) {
    this.app = app;
    this.offered = false;
    this.el = h('div.notify-offer', { hidden: true, role: 'note' });
  }

  get store() {
    return this.app.store;
  }

  /** What the title counts: unread messages for a buyer or a shop; claims waiting for a
   * decision for a manager. */
  count() {
    let total = 0;
    for (const chat of this.store.sortedChats()) {
      if (this.store.side) total += chat.unread || 0;
      else total += [...chat.claims.values()].filter((claim) => claim.state === 'disputed').length;
    }
    return total;
  }

  updateTitle() {
    const base = TITLES[this.store.role] || 'Чат с покупателями';
    const count = this.count();
    const title = count > 0 ? `(${count > 99 ? '99+' : count}) ${base}` : base;
    if (document.title !== title) document.title = title;
  }

  /** A live event: a notification when it is a message of the other side and the tab is
   * hidden, once the person allowed them. */
  event(event) {
    if (!this.store.side || !event.text) return;
    if (sideOf(event.author) === this.store.side) return;
    if (document.visibilityState !== 'hidden') return;
    if (!supported() || Notification.permission !== 'granted') return;
    const chat = this.store.chats.get(event.chat);
    const from = this.store.role === 'seller' ? chat?.buyer?.name : chat?.seller?.name;
    try {
      const note = new Notification(from || event.author.name || 'Новое сообщение', {
        body: event.text.length > 160 ? `${event.text.slice(0, 157)}…` : event.text,
        tag: `chatd-${event.chat}`,
        lang: 'ru',
      });
      note.onclick = () => {
        window.focus();
        this.app.openChat(event.chat);
        note.close();
      };
    } catch {
      // a browser that allows notifications only from a service worker: the title still counts
    }
  }

  /** The person wrote something: now is the moment to offer notifications, once. */
  offer() {
    if (this.offered || !this.store.side || !supported()) return;
    if (Notification.permission !== 'default' || readJson(DISMISSED_KEY, false)) return;
    this.offered = true;
    this.el.replaceChildren(
      icon('bell'),
      h('span.notify-text', 'Сообщать о новых сообщениях, когда вкладка свёрнута?'),
      h('button.btn.btn-link.notify-allow', { type: 'button', onclick: () => this.allow() }, 'Включить'),
      h('button.icon-btn.notify-dismiss', {
        type: 'button', 'aria-label': 'Не сейчас', title: 'Не сейчас', onclick: () => this.dismiss(),
      }, icon('close')));
    this.el.hidden = false;
  }

  async allow() {
    this.el.hidden = true;
    try {
      await Notification.requestPermission();
    } catch {
      // the browser said neither yes nor no
    }
  }

  dismiss() {
    this.el.hidden = true;
    writeJson(DISMISSED_KEY, true);
  }
}
