// Renewing the page's token before it expires (docs/browser-app.md, "Renewing the token"):
// the page that hosts the app sets `window.chatdRenewToken = async (token) => newToken`, and
// the app asks it for a new token shortly before `exp` instead of asking for a new link.

// Asked this long before `exp`, or at a third of the remaining life for a short token: far
// enough ahead that a slow answer, a retry and a small clock skew still come in time.
const AHEAD_MS = 60 * 1000;
// A hook that failed is asked again this much later, until the token has expired.
const RETRY_MS = 5 * 1000;

/** The token's `exp` in milliseconds, or null for a token without one (an API key). */
export function expiresAt(token) {
  const parts = String(token).split('.');
  if (parts.length !== 3) return null;
  try {
    const json = atob(parts[1].replace(/-/g, '+').replace(/_/g, '/'));
    const exp = JSON.parse(json).exp;
    return typeof exp === 'number' ? exp * 1000 : null;
  } catch {
    return null;
  }
}

export class Renewal {
  /** onToken(newToken): the app takes the token (reconnects with it, keeps its state). */
  constructor(onToken) {
    this.onToken = onToken;
    this.timer = null;
  }

  /** Plans the renewal of `token`; a token without `exp` never needs one. */
  schedule(token) {
    clearTimeout(this.timer);
    const exp = expiresAt(token);
    if (exp === null) return;
    const left = exp - Date.now();
    const ahead = Math.min(AHEAD_MS, left / 3);
    this.timer = setTimeout(() => this.renew(token, exp), Math.max(0, left - ahead));
  }

  async renew(token, exp) {
    // Looked up now rather than at load: a hosting page may set the hook at any time.
    const hook = window.chatdRenewToken;
    if (typeof hook !== 'function') return; // the server closes the socket at `exp`: a new link
    let renewed = null;
    try {
      renewed = await hook(token);
    } catch (error) {
      console.warn('chatdRenewToken failed:', error);
    }
    if (typeof renewed === 'string' && renewed && renewed !== token) {
      this.onToken(renewed);
      this.schedule(renewed);
    } else if (Date.now() + RETRY_MS < exp) {
      this.timer = setTimeout(() => this.renew(token, exp), RETRY_MS);
    }
  }

  stop() {
    clearTimeout(this.timer);
  }
}
