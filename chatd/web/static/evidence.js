// What the parties wrote into a claim (docs/protocol.md 11): the buyer's comment and photos on the
// request, the shop's reason for a refusal, the manager's comment on a decision. The same
// words show under the claim's events in the chat and in the manager's file of the claim.

import { fileChip, imageThumb } from './attachments.js';
import { h } from './dom.js';

// The event kinds that carry words of a party, the field, and how the page names it.
const NOTES = {
  'return.requested': ['comment', 'Комментарий покупателя'],
  'return.rejected': ['reason', 'Причина отказа'],
  'return.resolved': ['comment', 'Комментарий менеджера'],
};

export function claimNote(label, text) {
  return h('div.claim-note', h('span.claim-note-label', `${label}: `), h('span.claim-note-text', text));
}

/** The comment or reason an event of a claim carries, or null. */
export function eventNote(event) {
  const found = NOTES[event.kind];
  const text = found && event.data ? event.data[found[0]] : null;
  return typeof text === 'string' && text ? claimNote(found[1], text) : null;
}

/** Photos as thumbnails and other files as chips; null for none. */
export function attachmentsView(files, attachments) {
  const list = Array.isArray(attachments) ? attachments : [];
  const photos = list.filter((a) => a.mime.startsWith('image/'));
  const others = list.filter((a) => !a.mime.startsWith('image/'));
  if (!list.length) return null;
  return [
    photos.length ? h('div.msg-photos', photos.map((p) => imageThumb(files, p))) : null,
    others.length ? h('div.msg-files', others.map((f) => fileChip(files, f))) : null,
  ];
}
