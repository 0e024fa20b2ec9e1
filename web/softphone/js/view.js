// The softphone's screens, drawn from the app state. Plain DOM, no framework:
// each render replaces the screen's content; user text goes in as text.

import { t } from './i18n.js';

/**
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {...(Node|string|null|false|undefined)} children
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c) el.append(c);
  return el;
}

/** @typedef {import('./app.js').State} State */
/** @typedef {import('./app.js').Actions} Actions */

/** @param {State} s @param {Actions} act */
function signInScreen(s, act) {
  const email = h('input', { id: 'email', type: 'email', autocomplete: 'username', value: s.emailDraft || '', 'aria-label': t('email'), placeholder: t('email'), required: true });
  const password = h('input', { id: 'password', type: 'password', autocomplete: 'current-password', 'aria-label': t('password'), placeholder: t('password'), required: true });
  const busy = s.phase === 'signingIn';
  const form = h('form', {
    class: 'signin',
    onsubmit: (/** @type {Event} */ e) => {
      e.preventDefault();
      act.signIn(/** @type {HTMLInputElement} */ (email).value, /** @type {HTMLInputElement} */ (password).value);
    },
  },
  h('h1', { text: t('signInTitle') }),
  h('label', {}, h('span', { text: t('email') }), email),
  h('label', {}, h('span', { text: t('password') }), password),
  s.notice ? h('p', { id: 'notice', class: `notice ${s.noticeKind || 'error'}`, role: 'alert', text: t(s.notice) }) : null,
  h('button', { id: 'signin', class: 'primary', type: 'submit', disabled: busy, text: busy ? t('signingIn') : t('signIn') }));
  return form;
}

/** @param {string} title @param {string} body @param {string} button @param {() => void} onClick @param {string} id */
function messageScreen(title, body, button, onClick, id) {
  return h('div', { class: 'message', id },
    h('h1', { text: title }),
    h('p', { text: body }),
    h('button', { class: 'primary', id: `${id}-button`, type: 'button', onclick: onClick, text: button }));
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

/** @param {State} s @param {Actions} act */
function dialPad(s, act) {
  const cc = h('input', { id: 'cc', class: 'cc', inputmode: 'numeric', value: s.dial.cc, 'aria-label': t('countryCode'), title: t('countryCode'), oninput: (/** @type {any} */ e) => { s.dial.cc = e.target.value.replace(/\D/g, ''); } });
  const num = h('input', { id: 'number', class: 'number', inputmode: 'tel', value: s.dial.number, placeholder: t('number'), 'aria-label': t('number'), oninput: (/** @type {any} */ e) => { s.dial.number = e.target.value; } });
  const keys = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#'].map((k) => h('button', {
    type: 'button', class: 'key', 'data-key': k,
    onclick: () => {
      if (act.key(k)) return;
      s.dial.number += k;
      /** @type {HTMLInputElement} */ (num).value = s.dial.number;
    },
  }, k));
  return h('div', { class: 'dialpad' },
    h('div', { class: 'dial-line' }, h('span', { class: 'plus', text: '+' }), cc, num,
      h('button', { type: 'button', class: 'erase', id: 'erase', title: t('erase'), 'aria-label': t('erase'), onclick: () => { s.dial.number = s.dial.number.slice(0, -1); /** @type {HTMLInputElement} */ (num).value = s.dial.number; } }, '⌫')),
    h('div', { class: 'keys' }, ...keys),
    h('button', { type: 'button', id: 'call', class: 'call', onclick: () => act.dial(), 'aria-label': t('call') }, h('span', { class: 'phone-icon', 'aria-hidden': 'true' }), t('call')));
}

/** @param {number} ms */
function clock(ms) {
  const sec = Math.max(0, Math.floor(ms / 1000));
  return `${String(Math.floor(sec / 60)).padStart(2, '0')}:${String(sec % 60).padStart(2, '0')}`;
}

/** @param {State} s @param {Actions} act */
function callPanel(s, act) {
  const c = s.call;
  if (!c) return h('section', { id: 'call-panel', class: 'call-panel', 'data-state': 'idle' }, h('span', { text: t('noCall') }));
  const number = c.direction === 0 ? c.caller : c.callee;
  let label;
  let state;
  if (c.ended) {
    state = 'ended';
    label = c.reason ? t(`reason${c.reason}`) : t('callEnded');
  } else if (c.reason) {
    state = 'failed';
    label = t(`reason${c.reason}`);
  } else if (c.code === 2) {
    state = 'connected';
    label = `${t('callConnected')} ${clock(Date.now() - Number(c.callConnectedTimestamp))}`;
  } else if (c.code === 1) {
    state = 'incoming';
    label = t('callIncoming');
  } else {
    state = 'calling';
    label = t('callCalling');
  }
  return h('section', { id: 'call-panel', class: `call-panel active ${state}`, 'data-state': state, 'data-call-id': c.callId },
    h('div', { class: 'call-info' },
      h('span', { class: 'call-number', id: 'call-number', text: number ? `+${number}` : '' }),
      h('span', { class: 'call-state', id: 'call-state', text: label })),
    state === 'connected' ? h('div', { class: 'call-controls' },
      h('button', { type: 'button', id: 'mute', class: `ctl${s.muted ? ' on' : ''}`, 'aria-pressed': s.muted ? 'true' : 'false', onclick: () => act.mute(), text: s.muted ? t('unmute') : t('mute') }),
      h('button', { type: 'button', id: 'hold', class: `ctl${s.held ? ' on' : ''}`, 'aria-pressed': s.held ? 'true' : 'false', onclick: () => act.hold(), text: s.held ? t('unhold') : t('hold') })) : null,
    state === 'incoming' ? h('button', { type: 'button', id: 'answer', class: 'answer', onclick: () => act.answer(), title: t('answer'), 'aria-label': t('answer') }, h('span', { class: 'phone-icon', 'aria-hidden': 'true' })) : null,
    c.ended ? null : h('button', { type: 'button', id: state === 'incoming' ? 'reject' : 'hangup', class: 'hangup', onclick: () => (state === 'incoming' ? act.reject() : act.hangUp()), title: state === 'incoming' ? t('reject') : t('hangUp'), 'aria-label': state === 'incoming' ? t('reject') : t('hangUp') }, h('span', { class: 'phone-icon down', 'aria-hidden': 'true' })));
}

/** @param {State} s @param {Actions} act */
function settingsPanel(s, act) {
  if (!s.settingsOpen) return null;
  /** @param {any[]} list @param {string} id @param {(v: string) => void} on */
  const pick = (list, id, on) => h('select', { id, onchange: (/** @type {any} */ e) => on(e.target.value) },
    h('option', { value: '', text: t('defaultDevice') }),
    ...list.map((d, i) => h('option', { value: d.deviceId, text: d.label || `${t('device')} ${i + 1}` })));
  return h('div', { class: 'settings', id: 'settings' },
    h('label', {}, h('span', { text: t('microphone') }), pick(s.mics, 'mic-select', act.setMic)),
    h('label', {}, h('span', { text: t('speaker') }), pick(s.speakers, 'speaker-select', act.setSpeaker)));
}

/** @param {State} s @param {Actions} act */
function mainScreen(s, act) {
  return h('div', { class: 'main' },
    s.audio && s.phone === 'failed' ? h('p', { id: 'audio-warning', class: 'notice error', role: 'alert', text: t(s.phoneError) }) : null,
    h('div', { class: 'who' },
      h('span', { class: 'who-email', id: 'who-email', text: s.email || '' }),
      h('span', { class: 'who-seat', id: 'who-seat', text: s.seat ? `${t('seat')} ${s.seat.sipNum} · ${t('group')} ${s.seat.groupNo}` : '' })),
    statusPicker(s, act),
    callPanel(s, act),
    dialPad(s, act),
    settingsPanel(s, act),
    h('footer', { class: 'foot' },
      h('button', { type: 'button', id: 'devices', class: 'link', onclick: () => act.settings(), text: t('devices') }),
      h('span', { class: 'audio-where', id: 'audio-where', text: s.audio ? t('audioHere') : t('audioElsewhere') }),
      h('button', { type: 'button', id: 'signout', class: 'link', onclick: () => act.signOut(), text: t('signOut') })));
}

/** @param {State} s @param {Actions} act */
export function render(s, act) {
  const app = /** @type {HTMLElement} */ (document.getElementById('app'));
  const screen = /** @type {HTMLElement} */ (document.getElementById('screen'));
  const conn = /** @type {HTMLElement} */ (document.getElementById('conn'));
  const banner = /** @type {HTMLElement} */ (document.getElementById('banner'));
  let view;
  let name;
  if (s.phase === 'boot') {
    name = 'boot';
    view = h('div', { class: 'message' }, h('p', { text: t('loading') }));
  } else if (s.phase === 'signedIn') {
    name = 'main';
    view = mainScreen(s, act);
  } else if (s.page === 'sso') {
    name = 'sso';
    view = messageScreen(t('ssoTitle'), t('ssoNotConfigured'), t('useEmail'), () => act.showEmail(), 'sso');
  } else if (s.page === 'noseat') {
    name = 'noseat';
    view = messageScreen(t('noSeatTitle'), t('noSeat'), t('back'), () => act.showEmail(), 'noseat');
  } else {
    name = 'signin';
    view = signInScreen(s, act);
  }
  app.dataset.screen = name;
  screen.replaceChildren(view);
  const online = s.phase === 'signedIn' && s.linkUp;
  conn.dataset.state = online ? 'on' : (s.phase === 'signedIn' ? 'down' : 'off');
  conn.title = online ? t('connected') : t('offline');
  banner.hidden = !s.banner;
  banner.textContent = s.banner ? t(s.banner) : '';
}
