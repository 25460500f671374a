// What the page keeps in localStorage for one user, so that it outlives a reload or a closed
// tab: drafts per chat, and messages written but not yet accepted by the server. Keys carry
// the user (role, id and shop), so two users of one browser never see each other's.

/** Who a token speaks for, read from its claims without checking them (the server does):
 * {role, sub, seller} of a JWT; for anything else (an API key), the token itself. */
export function tokenIdentity(token) {
  try {
    const part = token.split('.')[1];
    const text = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const bytes = Uint8Array.from(text, (ch) => ch.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    if (claims && typeof claims.sub === 'string' && typeof claims.role === 'string') {
      return { role: claims.role, sub: claims.sub, seller: claims.seller || '' };
    }
  } catch {
    // not a JWT
  }
  return { role: 'key', sub: token.slice(0, 24), seller: '' };
}

export function identityKey(identity) {
  return [identity.role, identity.sub, identity.seller].join(':');
}

export function readJson(key, fallback) {
  try {
    const text = localStorage.getItem(key);
    return text ? JSON.parse(text) : fallback;
  } catch {
    return fallback;
  }
}

export function writeJson(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // storage full or unavailable: the page goes on with what it holds in memory
  }
}

/** Drafts: the text typed in each chat's composer, kept as it is typed. */
export class Drafts {
  constructor(userKey) {
    this.key = `chatd.drafts.${userKey}`;
  }

  /** Read each time: another tab of the same user may have written since. */
  all() {
    const texts = readJson(this.key, {});
    return texts && typeof texts === 'object' ? texts : {};
  }

  get(chatId) {
    const text = this.all()[chatId];
    return typeof text === 'string' ? text : '';
  }

  set(chatId, text) {
    const texts = this.all();
    if (text) texts[chatId] = text;
    else delete texts[chatId];
    writeJson(this.key, Object.keys(texts).length ? texts : null);
  }
}
