// Modal dialogs and short notices.

import { h } from './dom.js';

/**
 * Shows a modal; resolves with the value of the button pressed, or null when it is closed
 * (Escape or «Отменить»). buttons: [{label, value, kind: 'primary' | 'danger' | 'plain'}].
 *
 * With `onConfirm(value)`, a button with a value does not close the dialog by itself: the
 * dialog waits for onConfirm (its buttons disabled meanwhile) and stays open when it returns
 * false, so a form can show what the server refused next to the field at fault.
 */
export function ask({ title, body = [], buttons, className = '', onConfirm = null }) {
  return new Promise((resolve) => {
    const dialog = h(`dialog.modal${className ? '.' + className : ''}`);
    const finish = (value) => {
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    const press = async (value) => {
      if (value === null || !onConfirm) {
        finish(value);
        return;
      }
      for (const button of row.querySelectorAll('button')) button.disabled = true;
      let done = false;
      try {
        done = (await onConfirm(value)) !== false;
      } finally {
        for (const button of row.querySelectorAll('button')) button.disabled = false;
      }
      if (done) finish(value);
    };
    const row = h('div.modal-buttons', buttons.map((button) =>
      h(`button.btn.btn-${button.kind || 'plain'}`, {
        type: 'button',
        dataset: button.value === null ? { cancel: 'true' } : {},
        onclick: () => press(button.value),
      }, button.label)));
    dialog.append(
      h('button.modal-close', { type: 'button', 'aria-label': 'Закрыть', onclick: () => finish(null) }, '×'),
      title ? h('h3.modal-title', title) : null,
      h('div.modal-body', body),
      row,
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
  if (!toastBox || !toastBox.isConnected) {
    toastBox = h('div.toasts', { role: 'status', 'aria-live': 'polite' });
    document.body.append(toastBox);
  }
  const note = h(`div.toast.toast-${kind}`, message);
  toastBox.append(note);
  setTimeout(() => note.remove(), kind === 'error' ? 6000 : 3500);
}
