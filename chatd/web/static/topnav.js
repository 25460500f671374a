// The top navigation as on the seller portal. Only the pages this app has work (the chat,
// and the shop's finances under «Аналитика»); the portal's other sections are shown as plain
// greyed text, not links, so the shop finds its way as it does on the portal and nothing
// looks clickable that is not. On a narrow screen the sections give way to a menu button
// with the pages that open.

import { h, icon } from './dom.js';

const SELLER_NAV = [
  { label: 'Администрирование' },
  {
    label: 'Товары',
    items: [
      { label: 'Карточка товара' },
      { label: 'Отзывы и вопросы' },
      { label: 'Мои бренды' },
      { label: 'Рекомендации' },
      // Where the portal reviews returns before the 14 days of the chat have passed.
      { label: 'Проверка товара' },
      { label: 'Чат с покупателями', page: 'chat' },
    ],
  },
  { label: 'Поставки' },
  { label: 'Цены и скидки' },
  { label: 'Аналитика', items: [{ label: 'Финансовые отчёты', page: 'finance' }] },
  { label: 'Карта складов' },
  { label: 'Реклама' },
  { label: 'Маркетплейс' },
];

const BUYER_NAV = [{ label: 'Чаты', page: 'chat' }, { label: 'Заказы' }, { label: 'Возвраты' }];
const MANAGER_NAV = [{ label: 'Спорные заявки', page: 'chat' }];

const NAVS = { seller: SELLER_NAV, buyer: BUYER_NAV, manager: MANAGER_NAV };

const INERT_TITLE = 'Раздел портала: здесь не открывается';

/** The pages a role can open from the navigation. */
export function pagesOf(role) {
  const pages = new Set();
  for (const entry of NAVS[role] || []) {
    if (entry.page) pages.add(entry.page);
    for (const item of entry.items || []) if (item.page) pages.add(item.page);
  }
  return pages;
}

export class TopNav {
  /** onPage(page): an entry of a page this app has was chosen. */
  constructor(onPage) {
    this.onPage = onPage;
    this.el = h('nav.topnav', { 'aria-label': 'Разделы портала' });
    document.addEventListener('click', (event) => {
      if (!this.el.contains(event.target)) this.closeMenus();
    });
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') this.closeMenus();
    });
  }

  closeMenus() {
    for (const open of this.el.querySelectorAll('.nav-group.open, .nav-phone.open')) open.classList.remove('open');
  }

  render(role, page) {
    const entries = NAVS[role] || [];
    this.el.replaceChildren(...entries.map((entry) => this.group(entry, page)));
    const compact = this.compact(entries, page);
    if (compact) this.el.append(compact);
  }

  /** The phone's menu: the pages that open, nothing else. None for a single page. */
  compact(entries, page) {
    const pages = [];
    for (const entry of entries) {
      if (entry.page) pages.push(entry);
      for (const item of entry.items || []) if (item.page) pages.push(item);
    }
    if (pages.length < 2) return null;
    const group = h('div.nav-phone');
    const toggle = h('button.nav-toggle', {
      type: 'button', title: 'Разделы', 'aria-label': 'Разделы', 'aria-haspopup': 'true', 'aria-expanded': 'false',
      onclick: () => {
        const open = !group.classList.contains('open');
        this.closeMenus();
        group.classList.toggle('open', open);
        toggle.setAttribute('aria-expanded', String(open));
      },
    }, icon('menu'));
    group.append(toggle, h('div.nav-menu.nav-phone-menu', { role: 'menu', 'aria-label': 'Разделы' },
      pages.map((item) => this.link(item, page, 'nav-link', 'menuitem'))));
    return group;
  }

  group(entry, page) {
    const items = entry.items || [];
    const active = entry.page === page || items.some((item) => item.page === page);
    const group = h(`div.nav-group${active ? '.active' : ''}${items.length ? '.has-menu' : ''}`);
    let top;
    if (items.length) {
      top = h('button.nav-top', {
        type: 'button',
        'aria-haspopup': 'true',
        onclick: () => {
          const open = !group.classList.contains('open');
          this.closeMenus();
          group.classList.toggle('open', open);
        },
      }, entry.label);
    } else if (entry.page) {
      top = this.link(entry, page, 'nav-top');
    } else {
      top = h('span.nav-top.inert', { 'aria-disabled': 'true', title: INERT_TITLE }, entry.label);
    }
    group.append(top);
    if (items.length) {
      group.append(h('div.nav-menu', { role: 'menu', 'aria-label': entry.label },
        items.map((item) => (item.page
          ? this.link(item, page, 'nav-link', 'menuitem')
          : h('span.nav-link.inert', { role: 'menuitem', 'aria-disabled': 'true', title: INERT_TITLE }, item.label)))));
    }
    return group;
  }

  link(entry, page, className, role = null) {
    const current = entry.page === page;
    return h(`button.${className}${current ? '.current' : ''}`, {
      type: 'button',
      role,
      'aria-current': current ? 'page' : null,
      onclick: () => {
        this.closeMenus();
        this.onPage(entry.page);
      },
    }, entry.label);
  }
}
