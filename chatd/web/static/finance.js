// The shop's money as a page of the app: its balance, and the sales report whose refunds
// read «Возврат» (GET /api/v1/balance and /api/v1/reports/sales, docs/protocol.md 8).

import { h } from './dom.js';
import { errorText } from './errors.js';
import { formatDateTime, formatPrice } from './format.js';
import { getJson } from './http.js';

export class FinancePage {
  constructor(app) {
    this.app = app;
    this.loading = null;
    this.again = false;
    this.balances = h('div.balances', { 'aria-label': 'Баланс' });
    this.report = h('div.report');
    this.stamp = h('span.muted.finance-stamp');
    this.el = h('section.finance-page', { 'aria-label': 'Финансы' },
      h('header.finance-head',
        h('h2', 'Финансы'),
        this.stamp,
        h('button.btn.btn-plain.finance-refresh', { type: 'button', onclick: () => this.load() }, 'Обновить')),
      h('h3.finance-title', 'Баланс'),
      this.balances,
      h('h3.finance-title', 'Отчёт о реализации'),
      h('p.muted.finance-hint', 'Возвраты через чат показаны с обоснованием «Возврат»: сумма ' +
        'списывается с баланса магазина и возвращается покупателю.'),
      this.report);
  }

  /** Reads both again; a call while one runs reads once more after it. */
  async load() {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = this.read();
    try {
      await this.loading;
    } finally {
      this.loading = null;
    }
    if (this.again) {
      this.again = false;
      await this.load();
    }
    return undefined;
  }

  async read() {
    this.el.dataset.state = 'loading';
    try {
      const token = this.app.token;
      const [balance, sales] = await Promise.all([
        getJson(token, '/api/v1/balance'),
        getJson(token, '/api/v1/reports/sales'),
      ]);
      this.renderBalances(balance.balances);
      this.renderReport(sales.rows);
      this.stamp.textContent = `на ${formatDateTime(this.app.store.now())}`;
      this.el.dataset.state = 'loaded';
    } catch (error) {
      this.report.replaceChildren(h('div.form-error', { role: 'alert' }, errorText(error)));
      this.el.dataset.state = 'failed';
    }
  }

  renderBalances(balances) {
    if (!balances.length) {
      this.balances.replaceChildren(h('div.balance.empty', h('span.balance-value', formatPrice({ value: 0, currency: 'RUB' }))));
      return;
    }
    this.balances.replaceChildren(...balances.map((money) =>
      h(`div.balance${money.value < 0 ? '.negative' : ''}`, { dataset: { currency: money.currency } },
        h('span.balance-value', formatPrice(money)))));
  }

  renderReport(rows) {
    if (!rows.length) {
      this.report.replaceChildren(h('div.empty-tab', 'Операций пока нет'));
      return;
    }
    const newest = [...rows].sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
    this.report.replaceChildren(h('table.report-table',
      h('thead', h('tr', ['Дата', 'Заказ', 'Артикул WB', 'Товар', 'Сумма', 'Обоснование']
        .map((title) => h('th', { scope: 'col' }, title)))),
      h('tbody', newest.map((row) => h(`tr.report-row${row.reason === 'Возврат' ? '.refund' : ''}`,
        { dataset: { order: row.order } },
        h('td', formatDateTime(row.at)),
        h('td', row.order),
        h('td', row.article),
        h('td', row.name),
        h(`td.amount${row.amount.value < 0 ? '.negative' : ''}`, formatPrice(row.amount)),
        h('td.reason', row.reason))))));
  }
}
