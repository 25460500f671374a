// «Вложения»: the chat's orders, photos and files in three tabs (Заказы / Фото / Файлы).

import { toast } from './dialog.js';
import { fill, h, icon } from './dom.js';
import { errorText } from './errors.js';
import { formatShortDate, formatSize } from './format.js';
import { initiateButton, opensNote, productCard, returnButton } from './returns.js';
import { buyerMayRequest, opensLater } from './returnwindow.js';

const TABS = [
  ['orders', 'Заказы'],
  ['photos', 'Фото'],
  ['files', 'Файлы'],
];

/** An image fetched with the token, shown when it arrives. */
export function imageThumb(files, attachment, className = 'thumb') {
  const img = h(`img.${className}`, { alt: attachment.name, title: attachment.name });
  const known = files.cached(attachment.id);
  if (known) {
    img.src = known;
  } else {
    files.url(attachment.id).then(
      (url) => { img.src = url; },
      () => { img.classList.add('broken'); },
    );
  }
  return h('button.photo-link', { type: 'button', title: attachment.name, onclick: () => showPhoto(files, attachment) }, img);
}

export function fileChip(files, attachment) {
  return h('button.file-chip', {
    type: 'button',
    title: `Скачать ${attachment.name}`,
    onclick: () => files.download(attachment.id, attachment.name).catch((e) => toast(errorText(e), 'error')),
  }, icon('file'), h('span.file-name', attachment.name), h('span.file-size', formatSize(attachment.size)));
}

/** The photo viewer: the photo fitted to the window (a small photo is enlarged, never shown
 * smaller than its thumbnail), its name, and a close button; Esc, the button or a click
 * beside the photo closes it, and the focus goes back where it was. */
export function showPhoto(files, attachment) {
  const opener = document.activeElement;
  const img = h('img.lightbox-image', { alt: attachment.name });
  const fit = () => {
    const { naturalWidth: width, naturalHeight: height } = img;
    if (!width || !height) return;
    const room = { width: window.innerWidth * 0.92, height: window.innerHeight * 0.8 };
    const scale = Math.min(room.width / width, room.height / height);
    img.style.width = `${Math.round(width * scale)}px`;
    img.style.height = `${Math.round(height * scale)}px`;
  };
  const close = () => {
    box.remove();
    document.removeEventListener('keydown', onKey, true);
    window.removeEventListener('resize', fit);
    if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
  };
  const onKey = (event) => {
    if (event.key !== 'Escape') return;
    event.preventDefault();
    event.stopPropagation();
    close();
  };
  const closeButton = h('button.lightbox-close', {
    type: 'button', title: 'Закрыть (Esc)', 'aria-label': 'Закрыть', onclick: close,
  }, icon('close'));
  const box = h('div.lightbox', {
    role: 'dialog', 'aria-modal': 'true', 'aria-label': attachment.name,
    onclick: (event) => {
      if (event.target === box || event.target.classList.contains('lightbox-figure')) close();
    },
  }, closeButton, h('figure.lightbox-figure', img, h('figcaption.lightbox-name', attachment.name)));
  img.addEventListener('load', fit);
  window.addEventListener('resize', fit);
  document.addEventListener('keydown', onKey, true);
  files.url(attachment.id).then((url) => { img.src = url; }, close);
  document.body.append(box);
  closeButton.focus();
}

export class AttachmentsPanel {
  constructor(app) {
    this.app = app;
    this.chatId = null;
    this.tab = 'orders';
    this.answer = null;
    this.loading = null;
    this.el = h('aside.attachments-panel', { hidden: true, 'aria-label': 'Вложения' });
  }

  get isOpen() {
    return !this.el.hidden;
  }

  open(chatId, tab) {
    if (chatId !== this.chatId) this.answer = null;
    this.chatId = chatId;
    if (tab) this.tab = tab;
    this.el.hidden = false;
    this.render();
    this.load();
  }

  close() {
    this.el.hidden = true;
  }

  /** The chat changed: fetch again when what the panel shows may have changed. */
  chatChanged(chatId) {
    if (!this.isOpen || chatId !== this.chatId) return;
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => this.load(), 150);
  }

  async load() {
    const chatId = this.chatId;
    try {
      const answer = await this.app.conn.request({ type: 'attachments', chat: chatId });
      if (chatId !== this.chatId) return;
      this.answer = answer;
      this.app.store.attachments(answer);
      this.render();
    } catch (error) {
      toast(errorText(error), 'error');
    }
  }

  render() {
    const answer = this.answer;
    const count = (key) => (answer ? answer[key].length : '…');
    const tabs = h('div.tabs', { role: 'tablist' }, TABS.map(([key, label]) =>
      h(`button.tab${this.tab === key ? '.active' : ''}`, {
        type: 'button',
        role: 'tab',
        'aria-selected': String(this.tab === key),
        dataset: { tab: key },
        onclick: () => {
          this.tab = key;
          this.render();
        },
      }, label, h('span.tab-count', String(count(key))))));
    const body = h('div.tab-body', { dataset: { tab: this.tab } });
    if (!answer) body.append(h('div.muted', 'Загрузка…'));
    else if (this.tab === 'orders') body.append(...this.orders(answer));
    else if (this.tab === 'photos') body.append(...this.photos(answer));
    else body.append(...this.filesList(answer));
    fill(this.el,
      h('div.panel-head',
        h('h3', 'Вложения'),
        h('button.icon-btn', { type: 'button', 'aria-label': 'Закрыть вложения', onclick: () => this.close() }, icon('close'))),
      tabs,
      body,
    );
  }

  orders(answer) {
    if (!answer.orders.length) return [h('div.empty-tab', 'Заказов нет')];
    const store = this.app.store;
    const chat = store.chat(answer.chat);
    const now = store.now();
    return answer.orders.map((entry) => {
      const order = entry.order;
      const claim = store.claimOfOrder(chat, order.id) ||
        (entry.claim ? { claim: entry.claim, state: entry.state } : null);
      const actions = [];
      let note = null;
      if (store.role === 'seller' && !claim && order.received_at) {
        actions.push(initiateButton(this.app, chat, order));
      }
      if (store.role === 'buyer') {
        if (buyerMayRequest(order, claim, now)) actions.push(returnButton(this.app, chat, order));
        const opens = opensLater(order, claim, now);
        if (opens) note = opensNote(opens);
      }
      return productCard(order, { files: this.app.files, state: claim ? claim.state : null, actions, note });
    });
  }

  photos(answer) {
    if (!answer.photos.length) return [h('div.empty-tab', 'Фотографий нет')];
    return [h('div.photo-grid', answer.photos.map((photo) =>
      h('figure.photo', { dataset: { file: photo.id } },
        imageThumb(this.app.files, photo, 'photo-thumb'),
        h('figcaption', formatShortDate(photo.at)))))];
  }

  filesList(answer) {
    if (!answer.files.length) return [h('div.empty-tab', 'Файлов нет')];
    return [h('div.file-list', answer.files.map((file) =>
      h('div.file-row', { dataset: { file: file.id } },
        fileChip(this.app.files, file),
        h('span.file-date', formatShortDate(file.at)))))];
  }
}
