// Bootstrap: the token from the link (#token=…, kept in sessionStorage; renewed before it
// expires through window.chatdRenewToken when the hosting page sets it), the connection,
// the store, the portal's navigation, and the pages: the chat's two panes, and the shop's
// finances (#page=finance).

import { ChatView } from './chat.js';
import { toast } from './dialog.js';
import { Connection } from './connection.js';
import { fill, h } from './dom.js';
import { errorText } from './errors.js';
import { Files } from './files.js';
import { FinancePage } from './finance.js';
import { Inbox } from './inbox.js';
import { Renewal } from './renewal.js';
import { Store } from './store.js';
import { TopNav, pagesOf } from './topnav.js';

const TOKEN_KEY = 'chatd.token';

function takeToken() {
  const params = new URLSearchParams(location.hash.slice(1));
  const fromLink = params.get('token');
  if (fromLink) {
    sessionStorage.setItem(TOKEN_KEY, fromLink);
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

// Deadlines turn overdue and claims age while nothing happens: the views look again this often.
const TICK_MS = 60 * 1000;

/** The page named in the address (#page=finance), else the chat. */
function pageFromLink() {
  return new URLSearchParams(location.hash.slice(1)).get('page') || 'chat';
}

const STATUS_TEXT = {
  connecting: 'Подключение…',
  offline: 'Нет соединения… Переподключаемся',
  syncing: 'Соединение восстановлено, загружаем пропущенное…',
};

class App {
  constructor(token) {
    this.token = token;
    this.store = new Store();
    this.files = new Files(token);
    this.marketplaceName = 'Wildberries';
    this.conn = new Connection({
      url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`,
      token,
      handlers: {
        onWelcome: (welcome, { resumed }) => this.welcome(welcome, resumed),
        onEvent: (event) => this.event(event),
        onRead: (frame) => this.store.read(frame),
        onSynced: () => this.synced(),
        onReset: () => this.reset(),
        onStatus: (status) => this.status(status),
        onFatal: (message) => this.fatal(message),
      },
    });
    this.renewal = new Renewal((renewed) => this.renewed(renewed));
    this.inbox = new Inbox(this);
    this.chatView = new ChatView(this);
    this.finance = new FinancePage(this);
    this.page = 'chat';
    this.banner = h('div.conn-banner', { role: 'status', hidden: true });
    this.who = h('div.topbar-user');
    this.brandName = h('span.brand-name', 'Партнёры');
    this.nav = new TopNav((page) => this.showPage(page));
    this.workspace = h('main.workspace', this.inbox.el, this.chatView.el);
    this.el = h('div.app',
      h('header.topbar', h('div.brand', h('span.brand-mark', 'WB'), this.brandName), this.nav.el, this.who),
      this.banner,
      this.workspace);
    this.store.addEventListener('change', (event) => this.changed(event.detail.chats));
    this.refreshTimer = null;
    this.financeTimer = null;
    setInterval(() => {
      this.inbox.render();
      this.chatView.tick();
    }, TICK_MS);
  }

  start() {
    document.body.replaceChildren(this.el);
    this.status('connecting');
    this.conn.start();
    this.renewal.schedule(this.token);
  }

  /** A renewed token (window.chatdRenewToken): the page goes on with it, drafts and all. */
  renewed(token) {
    this.token = token;
    this.files.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
    this.conn.renew(token);
  }

  marketplace() {
    return this.marketplaceName;
  }

  welcome(welcome, resumed) {
    this.store.setUser(welcome.user);
    this.store.setServerTime(welcome.server_time);
    document.body.dataset.role = welcome.user.role;
    if (resumed) {
      this.renderWho();
      if (this.page === 'finance') this.finance.load();
      return;
    }
    this.showPage(pageFromLink());
    this.inbox.load();
    if (welcome.user.role === 'buyer') this.openFromLink();
  }

  /** Shows one of the app's pages; a page the role has not is the chat. */
  showPage(page) {
    const role = this.store.role;
    const shown = pagesOf(role).has(page) ? page : 'chat';
    this.page = shown;
    document.body.dataset.page = shown;
    if (shown === 'finance') {
      this.workspace.replaceChildren(this.finance.el);
      this.finance.load();
    } else {
      this.workspace.replaceChildren(this.inbox.el, this.chatView.el);
    }
    // The page stays in the address, so a reload comes back to it.
    const params = new URLSearchParams(location.hash.slice(1));
    if (shown === 'chat') params.delete('page');
    else params.set('page', shown);
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
    this.nav.render(role, shown);
    this.renderWho();
  }

  /** Back after a disconnect with every missed event: read marks set meanwhile by other
   * tabs are not events, so the counts come from the server again. */
  synced() {
    this.inbox.load();
    this.chatView.markRead();
  }

  /** A buyer's link may name a shop (and an order): #shop=ID&order=ID opens that chat. */
  async openFromLink() {
    const params = new URLSearchParams(location.hash.slice(1));
    const seller = params.get('shop');
    if (!seller) return;
    const frame = { type: 'open', seller };
    if (params.get('order')) frame.order = params.get('order');
    try {
      const ack = await this.conn.request(frame);
      history.replaceState(null, '', location.pathname + location.search);
      await this.openChat(ack.chat);
    } catch (error) {
      toast(errorText(error), 'error');
    }
  }

  renderWho() {
    const user = this.store.user;
    if (!user) return;
    let shop = null;
    if (user.role === 'seller') {
      const any = this.store.sortedChats()[0];
      shop = any ? any.seller.name : user.seller;
    }
    const roleText = { seller: 'Оператор магазина', buyer: 'Покупатель', manager: 'Менеджер' }[user.role];
    this.brandName.textContent = { seller: 'Партнёры', buyer: 'Покупки', manager: 'Арбитраж' }[user.role] || '';
    fill(this.who,
      shop ? h('span.who-shop', shop) : null,
      h('span.who-name', user.name),
      h('span.who-role', roleText || user.role));
  }

  event(event) {
    if (event.author.role === 'system' && event.author.name) this.marketplaceName = event.author.name;
    const known = this.store.chats.get(event.chat);
    const fresh = this.store.event(event);
    if (!fresh) return;
    // A claim's event moves its deadlines (`due`, the chat's reply deadline), which only the
    // server computes: the summaries come again.
    if (!known || known.stub || !known.buyer || event.kind.startsWith('return.')) this.refreshChats();
    if (event.kind === 'refund.issued' && this.page === 'finance') {
      clearTimeout(this.financeTimer);
      this.financeTimer = setTimeout(() => this.finance.load(), 200);
    }
  }

  /** A chat we knew nothing about: its summary comes with the first page of chats. */
  refreshChats() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.inbox.load(), 200);
  }

  reset() {
    this.store.reset();
    this.inbox.load();
    this.chatView.reload();
  }

  changed(chatIds) {
    this.inbox.render();
    this.chatView.update(chatIds);
    if (this.store.role === 'seller') this.renderWho();
  }

  /** Opens a chat, and scrolls to `seq` when given (a search hit). */
  async openChat(chatId, seq) {
    await this.chatView.open(chatId);
    if (seq) await this.chatView.jumpTo(seq);
  }

  refresh(chatId) {
    this.chatView.update([chatId]);
  }

  status(status) {
    document.body.dataset.connection = status;
    const text = STATUS_TEXT[status];
    this.banner.hidden = !text;
    if (text) this.banner.textContent = text;
  }

  fatal(message) {
    this.renewal.stop();
    this.banner.hidden = false;
    this.banner.classList.add('fatal');
    this.banner.textContent = `${message === 'Сессия истекла' ? 'Сессия истекла' : 'Вход не выполнен'}. ` +
      'Откройте ссылку для входа ещё раз.';
    sessionStorage.removeItem(TOKEN_KEY);
  }
}

function loginScreen() {
  document.body.replaceChildren(h('div.login',
    h('div.brand', h('span.brand-mark', 'WB'), h('span.brand-name', 'Партнёры')),
    h('h1', 'Чат с покупателями'),
    h('p', 'Откройте ссылку для входа: её печатает «chatd serve --dev» (…/#token=…).')));
}

const token = takeToken();
if (token) {
  const app = new App(token);
  window.chatd = app; // for the browser console
  app.start();
} else {
  loginScreen();
}
