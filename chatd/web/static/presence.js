// Whether the other side is here (docs/protocol.md, "Typing and presence"): for a shop's
// operator the buyer, for a buyer the shop (any of its operators). Every chat summary says it
// (`online` {buyer, seller}, kept by the store), and `presence{chat, side, online}` frames
// report each change after it. A green dot beside the name in the chat list, and «в сети» /
// «не в сети» under the name in the chat's header, where «… печатает…» takes its place while
// the other side types. A manager is no side and sees neither.

import { h } from './dom.js';

export class Presence {
  constructor(app) {
    this.app = app;
  }

  get store() {
    return this.app.store;
  }

  received(frame) {
    const chat = this.store.chats.get(frame.chat);
    if (!chat) return;
    chat.online = { ...(chat.online || {}), [frame.side]: frame.online };
    this.store.changed(chat.id);
  }

  /** true / false for the other side of `chat`, null when unknown (or for a manager). */
  online(chat) {
    const role = this.store.role;
    const side = role === 'seller' ? 'buyer' : role === 'buyer' ? 'seller' : null;
    if (!side || !chat.online || typeof chat.online[side] !== 'boolean') return null;
    return chat.online[side];
  }

  /** The chat list's dot, when the other side is online. */
  dot(chat) {
    return this.online(chat) ? h('span.presence-dot', { title: 'в сети', 'aria-label': 'в сети', role: 'img' }) : null;
  }

  /** The header's line under the name: typing, else online or not; null when unknown. */
  status(chat) {
    const typing = this.app.typing.line(chat);
    if (typing) return typing;
    const online = this.online(chat);
    if (online === null) return null;
    return h(`span.presence.${online ? 'online' : 'offline'}`, online ? 'в сети' : 'не в сети');
  }
}
