// The softphone's screens, drawn from the app state. Plain DOM, no framework.
//
// A screen is built once, when the app moves to it, and then only updated:
// each part of it is rebuilt when (and only when) the state it shows has
// changed, and the parts that hold what the user types or picks (the sign-in
// form, the dial pad, the device choice) are never rebuilt while they are on
// screen. The call timer changes one text node a second. User text always
// goes in as text, never as HTML.

import { lang, t } from './i18n.js';

/** @typedef {import('./app.js').State} State */
/** @typedef {import('./app.js').Actions} Actions */
/** @typedef {import('./app.js').CallView} CallView */

/**
 * @param {string} tag
 * @param {Record<string, any>} [attrs] `on...` are listeners, `text` the text content, others attributes
 * @param {...(Node|string|null|false|undefined)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c) el.append(c);
  return el;
}

/** Sets an element's text when it differs (no work, no mutation otherwise). */
/** @param {Node} el @param {string} text */
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/** Sets (or, with null, removes) an attribute when it differs. */
/** @param {Element} el @param {string} name @param {string|null} value */
function setAttr(el, name, value) {
  if (value === null) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== value) {
    el.setAttribute(name, value);
  }
}

/**
 * A place in a screen whose content is rebuilt only when its key changes.
 * The key is everything the content shows, so an equal key means nothing to do.
 */
class Slot {
  constructor() {
    /** @type {string|null} */
    this.key = null;
    /** @type {ChildNode} */
    this.node = document.createComment('');
  }

  /**
   * @param {string} key
   * @param {() => ChildNode|null} build
   * @returns {boolean} whether it was rebuilt
   */
  set(key, build) {
    if (key === this.key) return false;
    this.key = key;
    const next = build() || document.createComment('');
    this.node.replaceWith(next);
    this.node = next;
    return true;
  }
}

/** @typedef {{root: HTMLElement, update: (s: State) => void}} Screen */

/** @param {Actions} act @returns {Screen} */
function signInScreen(act) {
  const email = /** @type {HTMLInputElement} */ (h('input', { id: 'email', type: 'email', autocomplete: 'username', required: true }));
  const password = /** @type {HTMLInputElement} */ (h('input', { id: 'password', type: 'password', autocomplete: 'current-password', required: true }));
  const title = h('h1');
  const emailCaption = h('span');
  const passwordCaption = h('span');
  const notice = new Slot();
  const button = /** @type {HTMLButtonElement} */ (h('button', { id: 'signin', class: 'primary', type: 'submit' }));
  const form = h('form', {
    class: 'signin',
    onsubmit: (/** @type {Event} */ e) => {
      e.preventDefault();
      act.signIn(email.value, password.value);
    },
  },
  title,
  h('label', {}, emailCaption, email),
  h('label', {}, passwordCaption, password),
  notice.node,
  button);
  /** The email last put in the field by a sign-in attempt (not by typing). */
  let draft = '';
  return {
    root: form,
    update(s) {
      setText(title, t('signInTitle'));
      setText(emailCaption, t('email'));
      setText(passwordCaption, t('password'));
      for (const [input, key] of /** @type {[HTMLInputElement, string][]} */ ([[email, 'email'], [password, 'password']])) {
        setAttr(input, 'placeholder', t(key));
        setAttr(input, 'aria-label', t(key));
      }
      // A sign-in attempt (the host's init) shows its email; typing is never overwritten.
      if (s.emailDraft !== draft) {
        draft = s.emailDraft;
        if (draft && document.activeElement !== email) email.value = draft;
      }
      notice.set(`${s.notice}|${s.noticeKind}|${lang()}`, () => (s.notice
        ? h('p', { id: 'notice', class: `notice ${s.noticeKind || 'error'}`, role: 'alert', text: t(s.notice) })
        : null));
      const busy = s.phase === 'signingIn';
      button.disabled = busy;
      setText(button, busy ? t('signingIn') : t('signIn'));
    },
  };
}

/**
 * Single sign-on, configured: a button that opens the provider's popup (a
 * retry after a blocked popup), what happened last, and the way to email.
 * @param {Actions} act @returns {Screen}
 */
function ssoScreen(act) {
  const notice = new Slot();
  const start = /** @type {HTMLButtonElement} */ (h('button', { class: 'primary', id: 'sso-start', type: 'button', onclick: () => act.ssoStart() }));
  const root = h('div', { class: 'message', id: 'sso' },
    h('h1', { text: t('ssoTitle') }),
    h('p', { text: t('ssoPrompt') }),
    notice.node,
    start,
    h('button', { class: 'link', id: 'sso-email', type: 'button', onclick: () => act.showEmail(), text: t('useEmail') }));
  return {
    root,
    update(s) {
      notice.set(`${s.notice}|${s.noticeKind}|${s.ssoEmail}`, () => (s.notice
        ? h('p', { id: 'notice', class: `notice ${s.noticeKind || 'error'}`, role: 'alert', text: t(s.notice).replace('{email}', s.ssoEmail) })
        : null));
      start.disabled = s.phase === 'signingIn';
      setText(start, s.ssoBlocked ? t('ssoRetry') : t('ssoContinue'));
    },
  };
}

/** A screen with a title, a text and one button; rebuilt with the language. */
/** @param {string} title @param {string} body @param {string} button @param {() => void} onClick @param {string} id @returns {Screen} */
function messageScreen(title, body, button, onClick, id) {
  const root = h('div', { class: 'message', id },
    h('h1', { text: title }),
    h('p', { text: body }),
    h('button', { class: 'primary', id: `${id}-button`, type: 'button', onclick: onClick, text: button }));
  return { root, update() {} };
}

/** @param {State} s @param {Actions} act */
function statusPicker(s, act) {
  const agent = s.agent;
  if (!agent) return null;
  const locked = agent.activity === 'ringing' || agent.activity === 'inCall';
  const label = agent.activity !== 'none' ? t(`activity${agent.activity}`) : t(`status${agent.status}`);
  const current = h('button', {
    id: 'status-button', type: 'button', class: 'status-current', 'data-code': agent.code,
    'aria-haspopup': 'listbox', 'aria-expanded': s.menuOpen ? 'true' : 'false', disabled: locked,
    onclick: () => act.toggleMenu(),
  },
  h('span', { class: `dot s${agent.code}` }),
  h('span', { class: 'status-label', id: 'status-label', text: label }),
  h('span', { class: 'chev', 'aria-hidden': 'true', text: '▾' }));
  const menu = s.menuOpen ? h('ul', { class: 'status-menu', role: 'listbox', id: 'status-menu' },
    ...[1, 2, 3, 4, 5, 6, 7].map((code) => h('li', {
      role: 'option', 'data-code': code, 'aria-selected': agent.status === code && agent.activity === 'none' ? 'true' : 'false',
      tabindex: 0, onclick: () => act.pickStatus(code),
      onkeydown: (/** @type {KeyboardEvent} */ e) => { if (e.key === 'Enter') act.pickStatus(code); },
    }, h('span', { class: `dot s${code}` }), h('span', { text: t(`status${code}`) })))) : null;
  return h('div', { class: 'status' }, h('span', { class: 'caption', text: t('status') }), current, menu);
}

/**
 * The dial pad: built once per main screen, so the number being typed stays;
 * only its labels follow the language.
 * @param {State} s @param {Actions} act
 */
function dialPad(s, act) {
  const cc = /** @type {HTMLInputElement} */ (h('input', { id: 'cc', class: 'cc', inputmode: 'numeric', value: s.dial.cc, oninput: (/** @type {Event} */ e) => { s.dial.cc = /** @type {HTMLInputElement} */ (e.target).value.replace(/\D/g, ''); } }));
  const num = /** @type {HTMLInputElement} */ (h('input', { id: 'number', class: 'number', inputmode: 'tel', value: s.dial.number, oninput: (/** @type {Event} */ e) => { s.dial.number = /** @type {HTMLInputElement} */ (e.target).value; } }));
  const keys = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#'].map((k) => h('button', {
    type: 'button', class: 'key', 'data-key': k,
    onclick: () => {
      if (act.key(k)) return;
      s.dial.number += k;
      num.value = s.dial.number;
    },
  }, k));
  const erase = h('button', { type: 'button', class: 'erase', id: 'erase', onclick: () => { s.dial.number = s.dial.number.slice(0, -1); num.value = s.dial.number; } }, '⌫');
  const callText = document.createTextNode('');
  const call = h('button', { type: 'button', id: 'call', class: 'call', onclick: () => act.dial() }, h('span', { class: 'phone-icon', 'aria-hidden': 'true' }), callText);
  const root = h('div', { class: 'dialpad' },
    h('div', { class: 'dial-line' }, h('span', { class: 'plus', text: '+' }), cc, num, erase),
    h('div', { class: 'keys' }, ...keys),
    call);
  return {
    root,
    update() {
      setAttr(cc, 'aria-label', t('countryCode'));
      setAttr(cc, 'title', t('countryCode'));
      setAttr(num, 'placeholder', t('number'));
      setAttr(num, 'aria-label', t('number'));
      setAttr(erase, 'title', t('erase'));
      setAttr(erase, 'aria-label', t('erase'));
      setAttr(call, 'aria-label', t('call'));
      setText(callText, t('call'));
    },
  };
}

/** @param {number} ms */
export function clock(ms) {
  const sec = Math.max(0, Math.floor(ms / 1000));
  return `${String(Math.floor(sec / 60)).padStart(2, '0')}:${String(sec % 60).padStart(2, '0')}`;
}

/** The running call timer: the one text node the clock changes, and since when. */
/** @type {{node: Text|null, since: number}} */
const timer = { node: null, since: 0 };

/** Advances the call timer: changes its text node only. Called each second. */
export function tick() {
  if (timer.node && timer.node.isConnected) timer.node.data = clock(Date.now() - timer.since);
}

/** @param {CallView} c */
function callState(c) {
  if (c.ended) return { state: 'ended', label: c.reason ? t(`reason${c.reason}`) : t('callEnded') };
  if (c.reason) return { state: 'failed', label: t(`reason${c.reason}`) };
  if (c.code === 2) return { state: 'connected', label: t('callConnected') };
  if (c.code === 1) return { state: 'incoming', label: t('callIncoming') };
  return { state: 'calling', label: t('callCalling') };
}

/** Below these the agent is warned that the call sounds poor. */
export const POOR_MOS = 3.6;
export const POOR_LOSS_PCT = 3;

/** @param {number} pct a loss to show: one decimal under 10 %, whole above */
function lossText(pct) {
  return pct < 10 ? String(Math.round(pct * 10) / 10) : String(Math.round(pct));
}

/**
 * The warning of a connected call that sounds poor ('' when it sounds fine):
 * the loss when that is the cause, else just that the connection is poor.
 * @param {State} s
 */
function qualityWarning(s) {
  const c = s.call;
  const q = s.quality;
  if (!c || !q || c.ended || c.code !== 2 || q.callId !== c.callId) return '';
  if (q.lossPct > POOR_LOSS_PCT) return t('qualityPoorLoss').replace('{loss}', lossText(q.lossPct));
  if (q.mos < POOR_MOS) return t('qualityPoor');
  return '';
}

/** A mute or hold toggle: an icon, with its word where there is room. */
/** @param {string} id @param {boolean} on @param {string} word @param {() => void} onClick */
function toggle(id, on, word, onClick) {
  return h('button', { type: 'button', id, class: `ctl${on ? ' on' : ''}`, 'aria-pressed': on ? 'true' : 'false', title: word, 'aria-label': word, onclick: onClick },
    h('span', { class: `icon ${id}-icon`, 'aria-hidden': 'true' }),
    h('span', { class: 'ctl-text', text: word }));
}

/** @param {State} s @param {Actions} act */
function callPanel(s, act) {
  const c = s.call;
  timer.node = null;
  if (!c) return h('section', { id: 'call-panel', class: 'call-panel', 'data-state': 'idle' }, h('span', { text: t('noCall') }));
  const number = c.direction === 0 ? c.caller : c.callee;
  const shown = number ? `+${number}` : '';
  const { state, label } = callState(c);
  const stateLine = h('span', { class: 'call-state', id: 'call-state', text: label });
  if (state === 'connected') {
    timer.since = Number(c.callConnectedTimestamp) || Date.now();
    timer.node = document.createTextNode(clock(Date.now() - timer.since));
    stateLine.append(' ', h('span', { class: 'call-timer', id: 'call-timer' }, timer.node));
    // The agent always sees that the call is being recorded.
    if (s.recording) stateLine.append(' ', h('span', { class: 'rec', id: 'recording', role: 'status', title: t('recordingLong'), text: t('recording') }));
  }
  const incoming = state === 'incoming';
  const warning = qualityWarning(s);
  return h('section', { id: 'call-panel', class: `call-panel active ${state}${warning ? ' warned' : ''}`, 'data-state': state, 'data-call-id': c.callId },
    h('div', { class: 'call-info' },
      // Long numbers shrink, and past that end in an ellipsis; the title has them whole.
      h('span', { class: `call-number${shown.length > 13 ? ' long' : ''}`, id: 'call-number', title: shown, text: shown }),
      stateLine),
    state === 'connected' ? h('div', { class: 'call-controls' },
      toggle('mute', s.muted, s.muted ? t('unmute') : t('mute'), () => act.mute()),
      toggle('hold', s.held, s.held ? t('unhold') : t('hold'), () => act.hold())) : null,
    incoming ? h('button', { type: 'button', id: 'answer', class: 'answer', onclick: () => act.answer(), title: t('answer'), 'aria-label': t('answer') }, h('span', { class: 'phone-icon', 'aria-hidden': 'true' })) : null,
    c.ended ? null : h('button', { type: 'button', id: incoming ? 'reject' : 'hangup', class: 'hangup', onclick: () => (incoming ? act.reject() : act.hangUp()), title: incoming ? t('reject') : t('hangUp'), 'aria-label': incoming ? t('reject') : t('hangUp') }, h('span', { class: 'phone-icon down', 'aria-hidden': 'true' })),
    // A line of its own under the call, the panel's whole width.
    warning ? h('p', { id: 'quality-warning', class: 'quality-warning', role: 'status', text: warning }) : null);
}

/** What the call panel shows, but for the running timer: its key. @param {State} s */
function callKey(s) {
  const c = s.call;
  if (!c) return `none|${lang()}`;
  const { state, label } = callState(c);
  return JSON.stringify([c.callId, c.direction, c.caller, c.callee, c.callConnectedTimestamp, state, label, s.muted, s.held, s.recording, qualityWarning(s), lang()]);
}

/** @param {State} s @param {Actions} act */
function settingsPanel(s, act) {
  if (!s.settingsOpen) return null;
  /** @param {MediaDeviceInfo[]} list @param {string} id @param {string} chosen @param {(v: string) => void} on */
  const pick = (list, id, chosen, on) => h('select', { id, onchange: (/** @type {Event} */ e) => on(/** @type {HTMLSelectElement} */ (e.target).value) },
    h('option', { value: '', text: t('defaultDevice'), selected: chosen === '' }),
    ...list.map((d, i) => h('option', { value: d.deviceId, text: d.label || `${t('device')} ${i + 1}`, selected: d.deviceId === chosen })));
  return h('div', { class: 'settings', id: 'settings' },
    h('label', {}, h('span', { text: t('microphone') }), pick(s.mics, 'mic-select', s.micId, act.setMic)),
    h('label', {}, h('span', { text: t('speaker') }), pick(s.speakers, 'speaker-select', s.speakerId, act.setSpeaker)));
}

/** @param {State} s */
function settingsKey(s) {
  if (!s.settingsOpen) return 'closed';
  /** @param {MediaDeviceInfo[]} l */
  const ids = (l) => l.map((d) => `${d.deviceId}:${d.label}`);
  // The choices themselves are not in the key: the select shows them already.
  return JSON.stringify([ids(s.mics), ids(s.speakers), lang()]);
}

/** @param {State} s @param {Actions} act @returns {Screen} */
function mainScreen(s, act) {
  const warning = new Slot();
  const email = h('span', { class: 'who-email', id: 'who-email' });
  const seat = h('span', { class: 'who-seat', id: 'who-seat' });
  const status = new Slot();
  const call = new Slot();
  const pad = dialPad(s, act);
  const settings = new Slot();
  const devicesButton = h('button', { type: 'button', id: 'devices', class: 'link', onclick: () => act.settings() });
  const where = h('span', { class: 'audio-where', id: 'audio-where' });
  const signOut = h('button', { type: 'button', id: 'signout', class: 'link', onclick: () => act.signOut() });
  const root = h('div', { class: 'main' },
    warning.node,
    h('div', { class: 'who' }, email, seat),
    status.node,
    call.node,
    pad.root,
    settings.node,
    h('footer', { class: 'foot' }, devicesButton, where, signOut));
  return {
    root,
    update(s) {
      const failed = s.audio && s.phone === 'failed';
      warning.set(failed ? `${s.phoneError}|${lang()}` : '', () => (failed ? h('p', { id: 'audio-warning', class: 'notice error', role: 'alert', text: t(s.phoneError) }) : null));
      setText(email, s.email || '');
      setText(seat, s.seat ? `${t('seat')} ${s.seat.sipNum} · ${t('group')} ${s.seat.groupNo}` : '');
      status.set(JSON.stringify([s.agent, s.menuOpen, lang()]), () => statusPicker(s, act));
      call.set(callKey(s), () => callPanel(s, act));
      tick();
      pad.update();
      settings.set(settingsKey(s), () => settingsPanel(s, act));
      setText(devicesButton, t('devices'));
      setText(where, s.audio ? t('audioHere') : t('audioElsewhere'));
      setText(signOut, t('signOut'));
    },
  };
}

/** @param {State} s */
function screenName(s) {
  if (s.phase === 'boot') return 'boot';
  if (s.phase === 'signedIn') return 'main';
  if (s.page === 'sso') return 'sso';
  if (s.page === 'noseat') return 'noseat';
  return 'signin';
}

/** @param {string} name @param {State} s @param {Actions} act @returns {Screen} */
function buildScreen(name, s, act) {
  switch (name) {
    case 'boot': return { root: h('div', { class: 'message' }, h('p', { text: t('loading') })), update() {} };
    case 'main': return mainScreen(s, act);
    case 'sso': return s.sso === 'on' ? ssoScreen(act) : messageScreen(t('ssoTitle'), t('ssoNotConfigured'), t('useEmail'), () => act.showEmail(), 'sso');
    case 'noseat': return messageScreen(t('noSeatTitle'), t('noSeat'), t('back'), () => act.showEmail(), 'noseat');
    default: return signInScreen(act);
  }
}

/** The screen on display, and its key: the screens with inputs are kept across languages. */
/** @type {{key: string, screen: Screen|null}} */
const shown = { key: '', screen: null };

/** Brings the page up to date with the state; touches only what changed. */
/** @param {State} s @param {Actions} act */
export function render(s, act) {
  const app = /** @type {HTMLElement} */ (document.getElementById('app'));
  const screen = /** @type {HTMLElement} */ (document.getElementById('screen'));
  const conn = /** @type {HTMLElement} */ (document.getElementById('conn'));
  const banner = /** @type {HTMLElement} */ (document.getElementById('banner'));
  const name = screenName(s);
  const key = name === 'signin' || name === 'main' ? name : `${name}|${lang()}${name === 'sso' ? `|${s.sso}` : ''}`;
  if (key !== shown.key || !shown.screen) {
    timer.node = null;
    const next = buildScreen(name, s, act);
    screen.replaceChildren(next.root);
    shown.key = key;
    shown.screen = next;
  }
  shown.screen.update(s);
  if (app.dataset.screen !== name) app.dataset.screen = name;
  const online = s.phase === 'signedIn' && s.linkUp;
  const connState = online ? 'on' : (s.phase === 'signedIn' ? 'down' : 'off');
  if (conn.dataset.state !== connState) conn.dataset.state = connState;
  setAttr(conn, 'title', online ? t('connected') : t('offline'));
  if (banner.hidden !== !s.banner) banner.hidden = !s.banner;
  setText(banner, s.banner ? t(s.banner) : '');
}
