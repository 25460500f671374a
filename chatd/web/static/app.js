// Bootstrap: the token from the link (#token=…, kept in sessionStorage; renewed before it
// expires through window.chatdRenewToken when the hosting page sets it; a new link pasted
// into the same tab takes effect at once, without a reload), the connection, the store,
// drafts and the queue of messages to send, the title's unread count and notifications, the
// portal's navigation, and the pages: the chat's two panes (two screens on a phone), and the
// shop's finances (#page=finance).

import { ChatView } from './chat.js';
import { toast } from './dialog.js';
import { Connection } from './connection.js';
import { fill, h } from './dom.js';
import { errorText } from './errors.js';
import { Files } from './files.js';
import { FinancePage } from './finance.js';
import { Inbox } from './inbox.js';
import { Notifier } from './notify.js';
import { Outbox } from './outbox.js';
import { Presence } from './presence.js';
import { Renewal } from './renewal.js';
import { Drafts, identityKey, tokenIdentity } from './storage.js';
import { Store } from './store.js';
import { Templates } from './templates.js';
import { TopNav, pagesOf } from './topnav.js';
import { Typing } from './typing.js';

const TOKEN_KEY = 'chatd.token';

/** The token a link carries (#token=… or ?token=…), taken out of the address; null without. */
function tokenFromLink() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const query = new URLSearchParams(location.search);
  const token = hash.get('token') || query.get('token');
  if (!token) return null;
  hash.delete('token');
  query.delete('token');
  const search = query.toString();
  const rest = hash.toString();
  history.replaceState(null, '', location.pathname + (search ? `?${search}` : '') + (rest ? `#${rest}` : ''));
  return token;
}

function takeToken() {
  const fromLink = tokenFromLink();
  if (fromLink) sessionStorage.setItem(TOKEN_KEY, fromLink);
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
    this.identity = tokenIdentity(token);
    const userKey = identityKey(this.identity);
    this.store = new Store();
    this.files = new Files(token);
    this.drafts = new Drafts(userKey);
    this.notifier = new Notifier(this);
    // The operator's day: the shop's canned replies, «печатает…», who is online.
    this.templates = new Templates(this);
    this.typing = new Typing(this);
    this.presence = new Presence(this);
    this.outbox = new Outbox(this, userKey, {
      onChange: (chatId) => this.chatView.outboxChanged(chatId),
      onRefused: (item, error) => this.chatView.composerPart.refused(item, error),
    });
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
        onSignal: (frame) => (frame.type === 'typing' ? this.typing.received(frame) : this.presence.received(frame)),
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
    this.ticker = setInterval(() => {
      this.inbox.render();
      this.chatView.tick();
    }, TICK_MS);
    // A message still queued would be lost with the tab: the browser asks before closing it.
    this.beforeUnload = (event) => {
      if (!this.outbox.size) return;
      event.preventDefault();
      event.returnValue = '';
    };
  }

  start() {
    document.body.replaceChildren(this.el);
    this.status('connecting');
    this.conn.start();
    this.renewal.schedule(this.token);
    window.addEventListener('beforeunload', this.beforeUnload);
  }

  /** Another user's link replaces this app in the tab. */
  stop() {
    this.conn.stop();
    this.renewal.stop();
    clearInterval(this.ticker);
    window.removeEventListener('beforeunload', this.beforeUnload);
    this.chatView.composerPart.saveDraft();
  }

  /** A link pasted into the tab while the app runs: the same user's token is taken at once
   * (after «Вход не выполнен» too), keeping the open chat, its scroll and the drafts; the
   * link's shop, order or page opens as on load. Another user's returns false: that user gets
   * an app of their own. */
  followLink(token) {
    if (token && identityKey(tokenIdentity(token)) !== identityKey(this.identity)) return false;
    if (token && token !== this.token) {
      const wasClosed = this.conn.stopped;
      this.token = token;
      this.files.token = token;
      this.banner.classList.remove('fatal');
      if (wasClosed) {
        this.conn.resume(token);
      } else {
        this.conn.renew(token);
      }
      this.renewal.schedule(token);
    }
    const params = new URLSearchParams(location.hash.slice(1));
    if (params.get('page') && this.store.user) this.showPage(params.get('page'));
    if (params.get('shop') && this.store.role === 'buyer') this.openFromLink();
    return true;
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
    // Queued messages go out now, each once (a nonce each), after the missed events.
    this.outbox.submitAll();
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
    this.typing.eventArrived(event);
    this.notifier.event(event);
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
    this.notifier.updateTitle();
    if (this.store.role === 'seller') this.renderWho();
  }

  /** Opens a chat, and scrolls to `seq` when given (a search hit). */
  async openChat(chatId, seq) {
    if (this.page !== 'chat') this.showPage('chat');
    const opening = this.chatView.open(chatId);
    this.workspace.classList.add('has-chat');
    await opening;
    if (seq) await this.chatView.jumpTo(seq);
  }

  /** Back to the list (the phone's one column shows the list or the chat). */
  closeChat() {
    this.chatView.close();
    this.workspace.classList.remove('has-chat');
  }

  refresh(chatId) {
    this.chatView.update([chatId]);
  }

  status(status) {
    document.body.dataset.connection = status;
    if (status !== 'closed') this.banner.classList.remove('fatal');
    const text = STATUS_TEXT[status];
    this.banner.hidden = !text;
    if (text) this.banner.textContent = text;
    this.chatView.statusChanged();
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
  document.title = 'Чат с покупателями';
  document.body.replaceChildren(h('div.login',
    h('div.brand', h('span.brand-mark', 'WB'), h('span.brand-name', 'Партнёры')),
    h('h1', 'Чат с покупателями'),
    h('p', 'Откройте ссылку для входа: её печатает «chatd serve --dev» (…/#token=…).')));
}

let app = null;

function launch(token) {
  app = new App(token);
  window.chatd = app; // for the browser console
  app.start();
}

// A link pasted into the address bar of an open tab changes only the hash: no reload.
window.addEventListener('hashchange', () => {
  const token = tokenFromLink();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  if (app && app.followLink(token)) return;
  if (!token) return;
  app?.stop();
  launch(token);
});

const token = takeToken();
if (token) launch(token);
else loginScreen();
