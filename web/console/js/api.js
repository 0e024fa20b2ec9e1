// The console's calls to the server: sign-in, the admin API and the
// wallboard's event stream. The session token lives in sessionStorage (this
// tab only) and goes in the Authorization header, or as ?token= for the
// stream (EventSource cannot send headers).

const KEY = 'seatline.console.token';

/** @returns {string | null} */
export function savedToken() {
  try { return sessionStorage.getItem(KEY); } catch (_) { return null; }
}

/** @param {string | null} token */
export function saveToken(token) {
  try {
    if (token) sessionStorage.setItem(KEY, token);
    else sessionStorage.removeItem(KEY);
  } catch (_) { /* storage off: the tab keeps it in memory only */ }
}

/**
 * @typedef {{status: number, body: any}} Answer
 */

/**
 * @param {string} method
 * @param {string} path
 * @param {string | null} token
 * @param {unknown} [body]
 * @returns {Promise<Answer>}
 */
export async function call(method, path, token, body) {
  /** @type {Record<string, string>} */
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let json = null;
  try { json = await r.json(); } catch (_) { /* no body */ }
  return { status: r.status, body: json };
}

/**
 * Signs in; `token` when the account may use the console, else why not.
 * @param {string} email
 * @param {string} password
 * @returns {Promise<{token: string} | {error: string}>}
 */
export async function signIn(email, password) {
  let a;
  try {
    a = await call('POST', '/api/v1/sessions', null, { email, password });
  } catch (_) {
    return { error: 'serverUnreachable' };
  }
  if (a.status === 401) return { error: 'wrongPassword' };
  if (a.status === 429) return { error: 'tooManyAttempts' };
  if (a.status !== 200 || !a.body) return { error: 'serverUnreachable' };
  const token = a.body.token;
  if (typeof token !== 'string') return { error: 'notAdmin' };
  const check = await call('GET', '/api/v1/admin/wallboard', token);
  if (check.status === 403) {
    // Not an admin: the session just made is of no use here; end it.
    await call('DELETE', '/api/v1/sessions/current', token).catch(() => {});
    return { error: 'notAdmin' };
  }
  if (check.status !== 200) return { error: 'serverUnreachable' };
  return { token };
}

/**
 * Follows the wallboard: `onBoard` with each snapshot, `onEnd` when the
 * session is gone, `onLive` as the connection comes and goes. Returns a
 * function that closes it.
 * @param {string} token
 * @param {{onBoard: (b: any) => void, onEnd: () => void, onLive: (live: boolean) => void}} h
 */
export function follow(token, h) {
  const es = new EventSource(`/api/v1/admin/wallboard/stream?token=${encodeURIComponent(token)}`);
  es.addEventListener('wallboard', (e) => {
    h.onLive(true);
    try { h.onBoard(JSON.parse(/** @type {MessageEvent} */ (e).data)); } catch (_) { /* a bad event is skipped */ }
  });
  es.addEventListener('signedOut', () => { es.close(); h.onEnd(); });
  es.onerror = async () => {
    h.onLive(false);
    if (es.readyState !== EventSource.CLOSED) return;
    // Refused (not 200): is the session over, or is the server away?
    const a = await call('GET', '/api/v1/admin/wallboard', token).catch(() => null);
    if (a && (a.status === 401 || a.status === 403)) h.onEnd();
    else setTimeout(() => { stop = follow(token, h); }, 2000);
  };
  let stop = () => es.close();
  return () => stop();
}
