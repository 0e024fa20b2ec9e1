// The connection to the Seatline server: the sign-in API and one WebSocket
// per tab. The session token is kept in this page's own storage (shared by
// the tabs of one browser), never in a cookie: inside a CRM's iframe,
// browsers block or partition third-party cookies.

const TOKEN_KEY = 'seatline.session';

/** @typedef {{token: string, email: string}} StoredSession */

// The tabs of one browser share one session. localStorage carries it across
// reloads; where the browser denies storage to a third-party frame (blocked
// third-party cookies, incognito), the session lives in memory and the tabs
// hand it to each other over a BroadcastChannel.
const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(TOKEN_KEY) : null;
/** @type {StoredSession|null} */
let memory = null;

/** @returns {StoredSession|null} */
export function loadSession() {
  try {
    const v = JSON.parse(localStorage.getItem(TOKEN_KEY) || 'null');
    return v && typeof v.token === 'string' ? v : null;
  } catch (_) {
    return memory;
  }
}

/** @param {StoredSession|null} s */
export function storeSession(s) {
  memory = s;
  try {
    if (s) localStorage.setItem(TOKEN_KEY, JSON.stringify(s));
    else localStorage.removeItem(TOKEN_KEY);
  } catch (_) { /* storage denied: memory and the channel carry it */ }
  if (channel) channel.postMessage({ kind: 'set', session: s });
}

/** Asks the other tabs of this browser for their session (when storage has none). */
/** @returns {Promise<StoredSession|null>} */
export function askOtherTabs(waitMs = 250) {
  const own = loadSession();
  if (own || !channel) return Promise.resolve(own);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(memory), waitMs);
    const onTell = (/** @type {MessageEvent} */ e) => {
      if (e.data && e.data.kind === 'tell' && e.data.session) {
        clearTimeout(timer);
        channel.removeEventListener('message', onTell);
        memory = e.data.session;
        resolve(memory);
      }
    };
    channel.addEventListener('message', onTell);
    channel.postMessage({ kind: 'ask' });
  });
}

/** @param {(s: StoredSession|null) => void} fn called when another tab changes the session */
export function onSessionChange(fn) {
  window.addEventListener('storage', (e) => {
    if (e.key === TOKEN_KEY || e.key === null) fn(loadSession());
  });
  if (!channel) return;
  channel.addEventListener('message', (e) => {
    const d = e.data || {};
    if (d.kind === 'ask' && memory) channel.postMessage({ kind: 'tell', session: memory });
    if (d.kind === 'set') {
      memory = d.session;
      fn(d.session);
    }
  });
}

export async function fetchEmbedConfig() {
  try {
    const r = await fetch('/api/v1/embed');
    if (r.ok) return await r.json();
  } catch (_) { /* defaults below */ }
  return { allowedOrigins: [] };
}

/**
 * The host origins of a session's tenant (its own list, else the global
 * one); null when the server did not say (unreachable, session ended).
 * @param {string} token
 * @returns {Promise<string[]|null>}
 */
export async function fetchSessionOrigins(token) {
  try {
    const r = await fetch('/api/v1/embed', { headers: { authorization: `Bearer ${token}` } });
    if (!r.ok) return null;
    const body = await r.json();
    return Array.isArray(body.allowedOrigins) ? body.allowedOrigins : null;
  } catch (_) {
    return null;
  }
}

/**
 * @param {string} email @param {string} password
 * @returns {Promise<{ok: true, body: any} | {ok: false, error: string}>}
 */
export async function signIn(email, password) {
  let r;
  try {
    r = await fetch('/api/v1/sessions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password }),
    });
  } catch (_) {
    return { ok: false, error: 'serverUnreachable' };
  }
  const body = await r.json().catch(() => ({}));
  if (r.ok) return { ok: true, body };
  if (r.status === 401) return { ok: false, error: 'wrongPassword' };
  if (r.status === 400) return { ok: false, error: 'missingCredentials' };
  if (r.status === 403) return { ok: false, error: 'accountDisabled' };
  return { ok: false, error: 'serverUnreachable' };
}

/**
 * Signs in with a one-time sign-in token the host's back end got for this
 * agent (our extension): the password never reaches the host page.
 * @param {string} token
 * @returns {Promise<{ok: true, body: any} | {ok: false, error: string}>}
 */
export async function signInWithToken(token) {
  let r;
  try {
    r = await fetch('/api/v1/sessions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    });
  } catch (_) {
    return { ok: false, error: 'serverUnreachable' };
  }
  const body = await r.json().catch(() => ({}));
  if (r.ok) return { ok: true, body };
  // Used, expired or unknown (a malformed one alike).
  if (r.status === 401 || r.status === 400) return { ok: false, error: 'signInTokenInvalid' };
  if (r.status === 403) return { ok: false, error: 'accountDisabled' };
  return { ok: false, error: 'serverUnreachable' };
}

/** @param {string} token */
export async function signOut(token) {
  try {
    await fetch('/api/v1/sessions/current', { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
  } catch (_) { /* the server ends the session by expiry if it never hears */ }
}

/**
 * One tab's WebSocket: authenticates with the token, reconnects with
 * backoff, and detects a dead link with pings.
 */
export class Link {
  /**
   * @param {string} token
   * @param {{onEvent: (ev: any) => void, onDown: () => void}} handlers
   */
  constructor(token, handlers) {
    this.token = token;
    this.handlers = handlers;
    this.closed = false;
    this.attempt = 0;
    /** @type {WebSocket|null} */
    this.ws = null;
    this.pingTimer = 0;
    this.lastHeard = Date.now();
    this.connect();
  }

  connect() {
    if (this.closed) return;
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      this.lastHeard = Date.now();
      ws.send(JSON.stringify({ op: 'auth', token: this.token }));
    };
    ws.onmessage = (m) => {
      this.lastHeard = Date.now();
      let ev;
      try { ev = JSON.parse(m.data); } catch (_) { return; }
      if (ev.ev === 'ready') this.attempt = 0;
      if (ev.ev === 'pong') return;
      this.handlers.onEvent(ev);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      clearInterval(this.pingTimer);
      this.ws = null;
      if (this.closed) return;
      this.handlers.onDown();
      const delay = Math.min(5000, 300 * 2 ** this.attempt++);
      setTimeout(() => this.connect(), delay);
    };
    clearInterval(this.pingTimer);
    this.pingTimer = window.setInterval(() => {
      if (ws.readyState !== WebSocket.OPEN) return;
      if (Date.now() - this.lastHeard > 30000) { ws.close(); return; }
      ws.send(JSON.stringify({ op: 'ping' }));
    }, 10000);
  }

  /** @param {any} op */
  send(op) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(op));
      return true;
    }
    return false;
  }

  close() {
    this.closed = true;
    clearInterval(this.pingTimer);
    if (this.ws) this.ws.close();
    this.ws = null;
  }
}

/**
 * Whether single sign-on is configured for the iframe's tenant (or the
 * global provider when it names none); false when the server cannot say.
 * @param {string} tenant
 * @returns {Promise<boolean>}
 */
export async function fetchSsoConfigured(tenant) {
  try {
    const q = tenant ? `?tenant=${encodeURIComponent(tenant)}` : '';
    const r = await fetch(`/api/v1/sso${q}`);
    if (!r.ok) return false;
    const body = await r.json();
    return body.configured === true;
  } catch (_) {
    return false;
  }
}
