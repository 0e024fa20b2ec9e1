// Seatline host SDK: embeds the Seatline softphone in a CRM page and drives
// it with the NXLink protocol (and Seatline's extensions), without the CRM
// writing any postMessage code.
//
//   import { SeatlinePhone } from 'https://YOUR-SEATLINE-HOST/sdk/seatline.js';
//   const phone = new SeatlinePhone({ container: '#phone' });
//   phone.on('dialStatus', (s) => console.log('call', s.callId, s.code));
//   phone.init({ email, password, lang: 'en-US', loginMethod: 0 });
//   phone.init({ token, lang: 'en-US' }); // a sign-in token from your back end
//   phone.callOut({ callee: '12025550100', countryCode: '1', orderId: 'T-42' });
//
// What it does for you:
// - creates the iframe with the `allow="microphone; autoplay"` attribute the
//   softphone needs for calls (without it the phone reports dialStatus -1);
// - posts only to the softphone's origin, never to '*';
// - accepts a message only from that origin and that iframe, and ignores
//   every other message the page receives;
// - keeps what you send until the softphone says `ready`, then sends it in
//   order, so `init` and `callOut` can be called right after construction.
//
// Types: seatline.d.ts beside this file (`/sdk/seatline.d.ts`).

/** Where the softphone lives on a Seatline server. */
const SOFTPHONE_PATH = '/admin/#/nxcc';

/** Features the iframe must allow for the softphone's calls. */
const NEEDED_FEATURES = ['microphone', 'autoplay'];

/** dialStatus codes of the protocol, by name. */
export const DialCode = Object.freeze({
  OUTBOUND_RINGING: 0,
  INBOUND_RINGING: 1,
  CONNECTED: 2,
  DISCONNECTED: 3,
  REGISTERED: 4,
  HUNG_UP: 5,
  NOT_SIGNED_IN: 6,
  REGISTRATION_FAILED: -1,
});

/** agentStatus codes of the protocol, by name. */
export const AgentCode = Object.freeze({
  IDLE: 1,
  BUSY: 2,
  MEETING: 3,
  MEAL: 4,
  RESTROOM: 5,
  SLEEP: 6,
  OTHER_BREAK: 7,
});

/** The message types the softphone sends to its host. */
export const SOFTPHONE_MESSAGES = Object.freeze(['ready', 'agentExists', 'login', 'agentStatus', 'dialStatus', 'callQuality', 'recording', 'logout', 'tokenInvalid']);

/**
 * @typedef {{type: string, content?: any}} Message
 * @typedef {(content: any, message: Message) => void} Listener
 * @typedef {{
 *   container?: Element|string|null, origin?: string, path?: string,
 *   iframe?: HTMLIFrameElement, width?: number|string, height?: number|string, title?: string,
 * }} Options
 */

/** The origin this file was loaded from: by default, the softphone's. */
function sdkOrigin() {
  try {
    return new URL(import.meta.url).origin;
  } catch (_) {
    return location.origin;
  }
}

/**
 * The iframe's `allow` attribute with the features the softphone needs added
 * to whatever it already allows.
 * @param {string} current
 */
function withNeededFeatures(current) {
  const parts = current.split(';').map((p) => p.trim()).filter(Boolean);
  const names = parts.map((p) => p.split(/\s+/)[0]);
  for (const f of NEEDED_FEATURES) if (!names.includes(f)) parts.push(f);
  return parts.join('; ');
}

/** Runs a listener; one that throws does not stop the others. */
/** @param {Function} fn @param {any[]} args */
function call(fn, ...args) {
  try {
    fn(...args);
  } catch (e) {
    const g = /** @type {any} */ (globalThis);
    if (typeof g.reportError === 'function') g.reportError(e);
    else console.error(e);
  }
}

export class SeatlinePhone {
  /** @param {Options} [options] */
  constructor(options = {}) {
    const src = new URL(options.path ?? SOFTPHONE_PATH, options.origin ?? sdkOrigin());
    /** The softphone's origin: the only one messages go to and are accepted from. */
    this.origin = src.origin;
    /** @type {HTMLIFrameElement} */
    this.iframe = options.iframe ?? document.createElement('iframe');
    this.ownsIframe = !options.iframe;
    /** True once the softphone has said `ready`; messages wait until then. */
    this.isReady = false;
    /** @type {Message[]} */
    this.queue = [];
    /** @type {Map<string, Set<Listener>>} */
    this.listeners = new Map();
    /** @type {Set<(message: Message) => void>} */
    this.received = new Set();
    /** @type {Set<(message: Message) => void>} */
    this.sent = new Set();
    this.destroyed = false;
    /** @type {() => void} */
    let resolveReady = () => {};
    /** Resolves when the softphone has said `ready` (the first time). */
    this.ready = /** @type {Promise<void>} */ (new Promise((r) => { resolveReady = r; }));
    this.resolveReady = resolveReady;
    this.onWindowMessage = this.onWindowMessage.bind(this);
    window.addEventListener('message', this.onWindowMessage);

    const f = this.iframe;
    // Set before the iframe loads: a permission policy applies from navigation on.
    f.setAttribute('allow', withNeededFeatures(f.getAttribute('allow') || ''));
    if (!options.iframe || options.width !== undefined) f.width = String(options.width ?? 256);
    if (!options.iframe || options.height !== undefined) f.height = String(options.height ?? 460);
    if (!f.title) f.title = options.title ?? 'Seatline softphone';
    f.src = src.href;
    const container = typeof options.container === 'string' ? document.querySelector(options.container) : options.container;
    if (options.container && !container) throw new Error(`Seatline: no element matches ${String(options.container)}`);
    if (container && f.parentNode !== container) container.append(f);
  }

  /** @param {MessageEvent} e */
  onWindowMessage(e) {
    // Only the softphone in our own iframe: not another origin, not another frame.
    if (e.origin !== this.origin || e.source !== this.iframe.contentWindow) return;
    const data = e.data;
    if (!data || typeof data !== 'object' || typeof data.type !== 'string') return;
    /** @type {Message} */
    const message = data.content === undefined ? { type: data.type } : { type: data.type, content: data.content };
    if (message.type === 'ready') {
      this.isReady = true;
      this.resolveReady();
      for (const m of this.queue.splice(0)) this.post(m);
    }
    for (const fn of [...this.received]) call(fn, message);
    const set = this.listeners.get(message.type);
    if (set) for (const fn of [...set]) call(fn, message.content, message);
  }

  /** @param {Message} message */
  post(message) {
    const w = this.iframe.contentWindow;
    if (!w) { this.queue.push(message); return; }
    w.postMessage(message, this.origin);
    for (const fn of [...this.sent]) call(fn, message);
  }

  /**
   * Sends any message to the softphone (kept until it is ready).
   * @param {string} type @param {any} [content]
   */
  send(type, content) {
    if (this.destroyed) throw new Error('Seatline: this phone was destroyed');
    /** @type {Message} */
    const message = content === undefined ? { type } : { type, content };
    if (this.isReady) this.post(message);
    else this.queue.push(message);
  }

  /**
   * Listens to one message type from the softphone; returns a function that stops it.
   * @param {string} type @param {Listener} fn
   */
  on(type, fn) {
    let set = this.listeners.get(type);
    if (!set) { set = new Set(); this.listeners.set(type, set); }
    set.add(fn);
    return () => this.off(type, fn);
  }

  /** @param {string} type @param {Listener} fn */
  off(type, fn) {
    const set = this.listeners.get(type);
    if (set) set.delete(fn);
  }

  /** Like `on`, for the next message of that type only. @param {string} type @param {Listener} fn */
  once(type, fn) {
    /** @type {Listener} */
    const wrapped = (content, message) => { this.off(type, wrapped); fn(content, message); };
    return this.on(type, wrapped);
  }

  /** Every message from the softphone, whatever its type. @param {(message: Message) => void} fn */
  onMessage(fn) {
    this.received.add(fn);
    return () => { this.received.delete(fn); };
  }

  /** Every message sent to the softphone, as it is posted. @param {(message: Message) => void} fn */
  onSend(fn) {
    this.sent.add(fn);
    return () => { this.sent.delete(fn); };
  }

  // The protocol's messages (NXLink).

  /** @param {{email?: string, password?: string, token?: string, lang?: string, loginMethod?: number}} [content] */
  init(content = {}) { this.send('init', content); }

  toEmailLogin() { this.send('toEmailLogin'); }

  /**
   * @param {{callee: string, countryCode: string, caller?: string, orderId?: string, params?: string|object}} c
   */
  callOut(c) {
    this.send('callOut', {
      caller: c.caller ?? '',
      callee: c.callee,
      countryCode: c.countryCode,
      orderId: c.orderId ?? '',
      params: typeof c.params === 'string' ? c.params : (c.params === undefined ? '' : JSON.stringify(c.params)),
    });
  }

  loginOut() { this.send('loginOut'); }

  // Seatline's extensions.

  hangUp() { this.send('hangUp'); }

  answer() { this.send('answer'); }

  reject() { this.send('reject'); }

  mute() { this.send('mute'); }

  unmute() { this.send('unmute'); }

  hold() { this.send('hold'); }

  unhold() { this.send('unhold'); }

  /** Records the call in progress, where the agent's group records on demand. */
  startRecording() { this.send('startRecording'); }

  stopRecording() { this.send('stopRecording'); }

  /** @param {string} digits */
  sendDtmf(digits) { this.send('sendDtmf', { digits }); }

  /** @param {number} code */
  setAgentStatus(code) { this.send('setAgentStatus', { code }); }

  /** Stops listening and removes the iframe (when the SDK created it). */
  destroy() {
    if (this.destroyed) return;
    this.destroyed = true;
    window.removeEventListener('message', this.onWindowMessage);
    this.listeners.clear();
    this.received.clear();
    this.sent.clear();
    this.queue = [];
    if (this.ownsIframe) this.iframe.remove();
  }
}
