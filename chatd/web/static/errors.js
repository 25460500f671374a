// What the page tells a person when the server refuses something (error codes of
// docs/protocol.md 9), in the portal's words. The server's own `message` is for programs and
// in English: it is shown only when it is Russian (the words of `return_too_early`, or the
// page's own errors).

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
  rate_limited: 'Слишком много действий подряд. Подождите несколько секунд.',
  unauthorized: 'Вход не выполнен. Откройте ссылку для входа ещё раз.',
  too_large: 'Слишком большой объём данных.',
  bad_frame: 'Сервер не принял данные. Проверьте, что всё заполнено верно.',
  internal: 'На сервере произошла ошибка. Попробуйте ещё раз.',
};

const GENERIC = 'Не получилось. Попробуйте ещё раз.';
const CYRILLIC = /[А-Яа-яЁё]/;

export function errorText(error) {
  if (error?.code === 'return_too_early' && error.details?.opens_at) {
    return `Вернуть товар через чат можно будет с ${formatDay(error.details.opens_at)}. ` +
      'До этого возврат проходит через «Проверка товара».';
  }
  const message = typeof error?.message === 'string' ? error.message : '';
  if (ERROR_TEXTS[error?.code]) return ERROR_TEXTS[error.code];
  return CYRILLIC.test(message) ? message : GENERIC;
}

function megabytes(bytes) {
  return `${Math.round((bytes / (1024 * 1024)) * 10) / 10}`.replace('.', ',');
}

/** Why an upload (POST /api/v1/files) was refused: the server's codes in Russian. */
export function uploadErrorText(error) {
  switch (error?.code) {
    case 'too_large': {
      const quota = error.details?.quota;
      if (quota) {
        return `Загруженные, но не отправленные файлы занимают больше ${megabytes(quota)} МБ. ` +
          'Отправьте их в чате или удалите лишние и попробуйте позже.';
      }
      return 'Файл больше 5 МБ.';
    }
    case 'bad_frame':
      if (error.details?.empty) return 'Файл пустой: выберите другой.';
      return 'Можно прикрепить только фото (JPEG, PNG) или документ PDF.';
    case 'forbidden':
      return 'Прикреплять файлы здесь нельзя.';
    case 'unavailable':
      return 'Нет соединения с сервером: файл не загружен. Попробуйте ещё раз.';
    default:
      return errorText(error);
  }
}
