// Modal dialogs and short notices.

import { h } from './dom.js';

/**
 * Shows a modal; resolves with the value of the button pressed, or null when it is closed
 * (Escape or «Отменить»). buttons: [{label, value, kind: 'primary' | 'danger' | 'plain'}].
 */
export function ask({ title, body = [], buttons, className = '' }) {
  return new Promise((resolve) => {
    const dialog = h(`dialog.modal${className ? '.' + className : ''}`);
    const finish = (value) => {
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    dialog.append(
      h('button.modal-close', { type: 'button', 'aria-label': 'Закрыть', onclick: () => finish(null) }, '×'),
      title ? h('h3.modal-title', title) : null,
      h('div.modal-body', body),
      h('div.modal-buttons', buttons.map((button) =>
        h(`button.btn.btn-${button.kind || 'plain'}`, {
          type: 'button',
          onclick: () => finish(button.value),
        }, button.label))),
    );
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      finish(null);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

let toastBox = null;

/** A notice at the bottom of the screen for a few seconds. */
export function toast(message, kind = 'info') {
  if (!toastBox) {
    toastBox = h('div.toasts', { role: 'status', 'aria-live': 'polite' });
    document.body.append(toastBox);
  }
  const note = h(`div.toast.toast-${kind}`, message);
  toastBox.append(note);
  setTimeout(() => note.remove(), kind === 'error' ? 6000 : 3500);
}
