// The HTTP API with the page's Bearer token (docs/protocol.md 8): JSON reads, and the API's
// `{"error": {code, message, details}}` turned into the same ChatdError the socket gives.

import { ChatdError } from './connection.js';

export function bearer(token) {
  return { Authorization: `Bearer ${token}` };
}

/** The ChatdError an unsuccessful answer stands for. */
export async function errorOf(response) {
  try {
    const body = await response.json();
    if (body && body.error) return new ChatdError(body.error.code, body.error.message, body.error.details);
  } catch {
    // not JSON
  }
  if (response.status === 413) return new ChatdError('too_large', 'Файл больше 5 МБ');
  return new ChatdError('internal', `Ошибка ${response.status}`);
}

/** GET `path` of the API; resolves with its JSON, rejects with a ChatdError. */
export async function getJson(token, path) {
  let response;
  try {
    response = await fetch(path, { headers: bearer(token), cache: 'no-store' });
  } catch {
    throw new ChatdError('unavailable', 'Нет соединения с сервером');
  }
  if (!response.ok) throw await errorOf(response);
  return response.json();
}
