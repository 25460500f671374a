// When the buyer may ask to return an order through the chat (docs/protocol.md 11): from the
// calendar day of purchase + 14 days on, at 00:00 Moscow time; at once for non-returnable
// goods and after the shop's own offer. The server decides; the page only keeps from the
// buyer a «Вернуть товар» that would be refused.

import { TIME_ZONE, dayKey } from './format.js';

export const RETURN_OPENS_DAYS = 14;

const wallClock = new Intl.DateTimeFormat('en-US', {
  timeZone: TIME_ZONE, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', second: '2-digit',
});

/** The time zone's offset from UTC at `instant` (ms), in ms: +3 h for Moscow. */
function zoneOffset(instant) {
  const parts = Object.fromEntries(wallClock.formatToParts(new Date(instant)).map((p) => [p.type, p.value]));
  const wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  return wall - Math.floor(instant / 1000) * 1000;
}

/** 00:00 of a calendar day in the marketplace's time zone; `day` may run past the month. */
export function localMidnight(year, month, day) {
  const wall = Date.UTC(year, month - 1, day);
  // The offset at the guess may differ from the one at the answer (a clock change between
  // them): a second step settles it.
  const guess = wall - zoneOffset(wall);
  return new Date(wall - zoneOffset(guess));
}

/** The first moment the buyer may ask to return `order` through the chat. */
export function returnOpensAt(order) {
  const [year, month, day] = dayKey(order.purchased_at).split('-').map(Number);
  return localMidnight(year, month, day + RETURN_OPENS_DAYS);
}

/**
 * May the buyer press «Вернуть товар» for `order` at `now` (ms)? Only for goods bought out,
 * once per order: a claim of the order allows it only while it is the shop's offer.
 */
export function buyerMayRequest(order, claim, now) {
  if (!order.received_at) return false;
  if (claim) return claim.state === 'awaiting_buyer';
  if (order.non_returnable) return true;
  return now >= returnOpensAt(order).getTime();
}

/** When the button appears, for an order bought out that is not returnable yet; else null. */
export function opensLater(order, claim, now) {
  if (!order.received_at || claim || order.non_returnable) return null;
  const opens = returnOpensAt(order);
  return opens.getTime() > now ? opens : null;
}
