// Files: uploads (POST /api/v1/files) and downloads with the Bearer token, shown through
// blob URLs (a plain <img src> cannot carry the token).

import { ChatdError } from './connection.js';
import { bearer, errorOf } from './http.js';

export const MAX_FILE_BYTES = 5 * 1024 * 1024;
export const ACCEPTED_TYPES = ['image/jpeg', 'image/png', 'application/pdf'];

export class Files {
  constructor(token) {
    this.token = token;
    this.blobs = new Map(); // file id -> Promise<blob URL>
    this.ready = new Map(); // file id -> blob URL, once fetched
  }

  /** The blob URL of a file fetched already, else null: an image drawn again shows at once,
   * without a moment of no picture (which would change the height of what holds it). */
  cached(id) {
    return this.ready.get(id) || null;
  }

  headers() {
    return bearer(this.token);
  }

  /** A blob URL for the file, fetched once per page. */
  url(id) {
    if (!this.blobs.has(id)) {
      const loading = fetch(`/api/v1/files/${encodeURIComponent(id)}`, { headers: this.headers() })
        .then(async (response) => {
          if (!response.ok) throw await errorOf(response);
          const url = URL.createObjectURL(await response.blob());
          this.ready.set(id, url);
          return url;
        });
      loading.catch(() => this.blobs.delete(id));
      this.blobs.set(id, loading);
    }
    return this.blobs.get(id);
  }

  /** Uploads one file; resolves with {id, name, mime, size, sha256}. */
  async upload(file) {
    if (file.type && !ACCEPTED_TYPES.includes(file.type)) {
      throw new ChatdError('bad_frame', 'Можно прикрепить фото (JPEG, PNG) или документ PDF');
    }
    if (file.size === 0) {
      // The server refuses it too («the file is empty»): said before anything is sent.
      throw new ChatdError('bad_frame', 'Файл пустой', { empty: true });
    }
    if (file.size > MAX_FILE_BYTES) {
      throw new ChatdError('too_large', 'Файл больше 5 МБ');
    }
    const body = new FormData();
    body.append('file', file, file.name);
    let response;
    try {
      response = await fetch('/api/v1/files', { method: 'POST', headers: this.headers(), body });
    } catch {
      throw new ChatdError('unavailable', 'Нет соединения с сервером');
    }
    if (!response.ok) throw await errorOf(response);
    return response.json();
  }

  /** Saves the file under its name. */
  async download(id, name) {
    const url = await this.url(id);
    const link = document.createElement('a');
    link.href = url;
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
  }
}
