// The bridge to the host page (the CRM): messages in and out with
// window.postMessage, in the vendor's literal shapes.
//
// When the server is configured with allowed origins, messages from any
// other origin are ignored and ours are posted only to the host's origin,
// never to '*'. Before sign-in the global list applies; once signed in, the
// tenant's own list (setAllowed), until the session ends.

/** @typedef {{type: string, content?: any}} HostMessage */

/** The window that embeds us: the parent frame, or the opener of a popup. */
function hostWindow() {
  if (window.parent && window.parent !== window) return window.parent;
  if (window.opener) return window.opener;
  return null;
}

/** The embedding page's origin, as far as the browser tells us. */
function embedderOrigin() {
  const anc = /** @type {any} */ (window.location).ancestorOrigins;
  if (anc && anc.length > 0) return anc[0];
  try {
    if (document.referrer) return new URL(document.referrer).origin;
  } catch (_) { /* no referrer */ }
  return null;
}

export class HostBridge {
  /**
   * @param {string[]} allowedOrigins empty: any origin (the vendor's way)
   * @param {(msg: HostMessage) => void} onMessage
   */
  constructor(allowedOrigins, onMessage) {
    this.onMessage = onMessage;
    /** @type {string[]} */
    this.allowed = [];
    /** Where we post. */
    this.target = '*';
    this.setAllowed(allowedOrigins);
    /** @type {{dir: 'in'|'out', msg: any}[]} kept for the page's own diagnostics */
    this.log = [];
  }

  /**
   * Switches to another list (the tenant's after sign-in, the global one
   * after sign-out). Posts go to the embedder when it is allowed, else to
   * the first allowed origin (where the browser drops them unless that is
   * the embedder): never to '*' while a list is set.
   * @param {string[]} allowedOrigins empty: any origin
   */
  setAllowed(allowedOrigins) {
    this.allowed = allowedOrigins.filter((o) => typeof o === 'string');
    const emb = embedderOrigin();
    this.target = this.allowed.length === 0 ? '*' : (emb && this.allowed.includes(emb) ? emb : this.allowed[0]);
  }

  /** Starts listening, after replaying what arrived before the app was ready. */
  start() {
    const w = /** @type {any} */ (window);
    const early = w.__seatlineInbox || [];
    w.__seatlineTakeover = true;
    window.addEventListener('message', (e) => this.receive(e.data, e.origin, e.source));
    for (const m of early.splice(0)) this.receive(m.data, m.origin, m.source);
  }

  /** @param {any} data @param {string} origin @param {any} source */
  receive(data, origin, source) {
    if (source === window) return; // our own posts when not embedded
    if (this.allowed.length > 0 && !this.allowed.includes(origin)) return;
    if (!data || typeof data !== 'object' || typeof data.type !== 'string') return;
    this.log.push({ dir: 'in', msg: data });
    this.onMessage({ type: data.type, content: data.content });
  }

  /** @param {string} type @param {any} [content] */
  post(type, content) {
    /** @type {HostMessage} */
    const msg = content === undefined ? { type } : { type, content };
    this.log.push({ dir: 'out', msg });
    const host = hostWindow();
    if (host) host.postMessage(msg, this.target);
  }
}
