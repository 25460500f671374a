// What the page tells a person when the server refuses something (error codes of
// docs/protocol.md 9), in the portal's words.

import { formatDay } from './format.js';

const ERROR_TEXTS = {
  conflict: 'Заявка уже рассмотрена или изменилась. Обновите чат.',
  amount_mismatch: 'Сумма возврата должна быть равна цене товара.',
  return_already_requested: 'Возврат этого товара через чат уже запрашивался.',
  contacts_forbidden: 'В чате нельзя обмениваться контактами и приглашать на другие площадки.',
  forbidden: 'Это действие недоступно.',
  not_found: 'Заказ или заявка не найдены.',
  unavailable: 'Нет соединения с сервером. Попробуйте ещё раз.',
  timeout: 'Сервер не ответил вовремя. Попробуйте ещё раз.',
};

export function errorText(error) {
  if (error?.code === 'return_too_early' && error.details?.opens_at) {
    return `Вернуть товар через чат можно будет с ${formatDay(error.details.opens_at)}. ` +
      'До этого возврат проходит через «Проверка товара».';
  }
  return ERROR_TEXTS[error?.code] || error?.message || 'Не получилось. Попробуйте ещё раз.';
}
