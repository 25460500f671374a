// Money and dates in Russian, as the marketplace shows them. Times are Moscow time.

export const TIME_ZONE = 'Europe/Moscow';

const longDay = new Intl.DateTimeFormat('ru-RU', {
  timeZone: TIME_ZONE, day: 'numeric', month: 'long', year: 'numeric',
});
const shortDay = new Intl.DateTimeFormat('ru-RU', {
  timeZone: TIME_ZONE, day: '2-digit', month: '2-digit', year: 'numeric',
});
const clock = new Intl.DateTimeFormat('ru-RU', {
  timeZone: TIME_ZONE, hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
});
const isoDay = new Intl.DateTimeFormat('en-CA', {
  timeZone: TIME_ZONE, year: 'numeric', month: '2-digit', day: '2-digit',
});

function asDate(value) {
  return value instanceof Date ? value : new Date(value);
}

/** «4 марта 2023 г.» */
export function formatDay(value) {
  return longDay.format(asDate(value));
}

/** «04.03.2023» */
export function formatShortDate(value) {
  return shortDay.format(asDate(value));
}

/** «10:01» */
export function formatTime(value) {
  return clock.format(asDate(value));
}

/** A key that is equal for two moments of the same Moscow calendar day: «2023-03-04». */
export function dayKey(value) {
  return isoDay.format(asDate(value));
}

const fractionDigits = new Map();

/** How many minor units a currency has (2 for RUB and BYN, 0 for JPY). */
export function minorDigits(currency) {
  if (!fractionDigits.has(currency)) {
    let digits = 2;
    try {
      digits = new Intl.NumberFormat('ru-RU', { style: 'currency', currency })
        .resolvedOptions().maximumFractionDigits;
    } catch {
      digits = 2;
    }
    fractionDigits.set(currency, digits);
  }
  return fractionDigits.get(currency);
}

function splitMoney(money) {
  const digits = minorDigits(money.currency);
  const scale = 10 ** digits;
  const negative = money.value < 0;
  const absolute = Math.abs(money.value);
  const whole = Math.trunc(absolute / scale);
  const fraction = digits ? String(absolute % scale).padStart(digits, '0') : '';
  return { negative, whole, fraction: /^0*$/.test(fraction) ? '' : fraction };
}

function groupThousands(whole) {
  return String(whole).replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
}

function joinMoney({ negative, whole, fraction }, grouped) {
  const number = grouped ? groupThousands(whole) : String(whole);
  return (negative ? '−' : '') + number + (fraction ? ',' + fraction : '');
}

/** On cards: «1 186 руб», «27,53 BYN». */
export function formatPrice(money) {
  const unit = money.currency === 'RUB' ? 'руб' : money.currency;
  return `${joinMoney(splitMoney(money), true)} ${unit}`;
}

/** In the refund confirmation: «1186 Р», «27,53 BYN». */
export function formatAmount(money) {
  const unit = money.currency === 'RUB' ? 'Р' : money.currency;
  return `${joinMoney(splitMoney(money), false)} ${unit}`;
}

/** «12,4 КБ» */
export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} Б`;
  const units = ['КБ', 'МБ', 'ГБ'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toLocaleString('ru-RU', { maximumFractionDigits: 1 })} ${units[unit]}`;
}

/** The spans the server reports are offsets in code points; JavaScript strings count UTF-16
 * units. Returns [start, end] pairs usable with String.prototype.slice. */
export function codePointSpans(text, spans) {
  const units = [0];
  for (const char of text) units.push(units[units.length - 1] + char.length);
  const at = (index) => units[Math.max(0, Math.min(index, units.length - 1))];
  return spans.map(([start, end]) => [at(start), at(end)]);
}

/** «04.03.2023, 10:01» */
export function formatDateTime(value) {
  return `${formatShortDate(value)}, ${formatTime(value)}`;
}

const MINUTE = 60 * 1000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** How long something has waited, roughly: «5 мин», «3 ч», «12 дн.». */
export function formatAge(ms) {
  const span = Math.max(0, ms);
  if (span < HOUR) return `${Math.floor(span / MINUTE)} мин`;
  if (span < DAY) return `${Math.floor(span / HOUR)} ч`;
  return `${Math.floor(span / DAY)} дн.`;
}
