// The operator console: an admin signs in, then watches the tenant's live
// wallboard (pushed by the server, never polled) and acts on an agent:
// force a status, sign the agent out; the other tabs set the call center up
// (forms.js) and show its call records (records.js).

import { call, follow, saveToken, savedToken, signIn } from './api.js';
import { LANGS, lang, setLang, t } from './i18n.js';
import { el, h, table } from './dom.js';
import { TABS, skillsForm } from './forms.js';
import { records } from './records.js';

const STATUSES = [1, 2, 3, 4, 5, 6, 7];

/** Every tab, in the order of the bar. */
const VIEWS = ['wallboard', 'users', 'groups', 'numbers', 'trunks', 'policy', 'keys', 'webhook', 'recording', 'embed', 'records'];

/** @type {{token: string | null, board: any, stop: (() => void) | null, notice: {key: string, error: boolean} | null, signInError: string | null, view: string, userError: string | null}} */
const state = { token: null, board: null, stop: null, notice: null, signInError: null, view: 'wallboard', userError: null };

/** Seconds as m:ss, or h:mm:ss. @param {number} s */
export function clock(s) {
  const sec = Math.max(0, Math.floor(s));
  const hh = Math.floor(sec / 3600);
  const mm = Math.floor((sec % 3600) / 60);
  const ss = String(sec % 60).padStart(2, '0');
  return hh > 0 ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** @param {string} key @param {boolean} [error] */
function notify(key, error = false) {
  state.notice = { key, error };
  renderNotice();
}

function renderNotice() {
  const n = el('notice');
  n.hidden = !state.notice;
  n.className = state.notice && state.notice.error ? 'notice error' : 'notice';
  n.textContent = state.notice ? t(state.notice.key) : '';
}

function renderChrome() {
  document.title = `Seatline — ${t('title')}`;
  el('title').textContent = t('title');
  el('lang-label').textContent = t('language');
  /** @type {HTMLSelectElement} */ (el('lang')).value = lang();
  const out = el('sign-out');
  out.textContent = t('signOut');
  out.hidden = !state.token;
  el('tabs').hidden = !state.token;
  for (const v of VIEWS) {
    const b = el(`tab-${v}`);
    b.textContent = t(v === 'keys' ? 'apiKeys' : v === 'records' ? 'callRecords' : v);
    if (state.view === v) b.setAttribute('aria-current', 'page');
    else b.removeAttribute('aria-current');
  }
  renderNotice();
}

function renderSignIn() {
  state.board = null;
  el('live').textContent = '';
  const error = state.signInError ? h('p', { class: 'error-text', id: 'signin-error', role: 'alert', text: t(state.signInError) }) : null;
  const form = h('form', { class: 'signin', id: 'signin' }, [
    h('h1', { text: t('signInTitle') }),
    h('label', {}, [t('email'), h('input', { id: 'email', type: 'email', autocomplete: 'username', required: true })]),
    h('label', {}, [t('password'), h('input', { id: 'password', type: 'password', autocomplete: 'current-password', required: true })]),
    error,
    h('button', { class: 'primary', id: 'signin-button', type: 'submit', text: t('signIn') }),
  ]);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const email = /** @type {HTMLInputElement} */ (el('email')).value.trim();
    const password = /** @type {HTMLInputElement} */ (el('password')).value;
    if (!email || !password) { state.signInError = 'missingCredentials'; renderSignIn(); return; }
    const button = /** @type {HTMLButtonElement} */ (el('signin-button'));
    button.disabled = true;
    button.textContent = t('signingIn');
    const r = await signIn(email, password);
    if ('error' in r) {
      state.signInError = r.error;
      renderSignIn();
      /** @type {HTMLInputElement} */ (el('email')).value = email;
      return;
    }
    state.signInError = null;
    start(r.token);
  });
  el('screen').replaceChildren(form);
  renderChrome();
}

/** @param {string} token */
function start(token) {
  state.token = token;
  saveToken(token);
  state.notice = null;
  renderChrome();
  el('screen').replaceChildren(h('p', { class: 'empty', text: '…' }));
  state.stop = follow(token, {
    onBoard: (b) => { state.board = b; renderBoard(); },
    onEnd: () => ended('sessionExpired'),
    onLive: (live) => {
      const l = el('live');
      l.dataset.state = live ? 'on' : 'off';
      l.textContent = t(live ? 'live' : 'reconnecting');
    },
  });
}

/** @param {string | null} why */
function ended(why) {
  state.view = 'wallboard';
  if (state.stop) state.stop();
  state.stop = null;
  state.token = null;
  saveToken(null);
  state.signInError = why;
  renderSignIn();
}

/** @param {any} a */
function statusLabel(a) {
  if (!a.signedIn) return t('signedOut');
  const base = t(`status${a.code}`);
  return a.activity && a.activity !== 'none' ? `${base} · ${t(`activity${a.activity}`)}` : base;
}

/** @param {number} agentId @param {number} status */
async function forceStatus(agentId, status) {
  const a = await call('POST', `/api/v1/admin/agents/${agentId}/status`, state.token, { status }).catch(() => null);
  report(a, 'statusSet');
}

/** @param {number} agentId */
async function signOutAgent(agentId) {
  if (!window.confirm(t('confirmSignOut'))) return;
  const a = await call('POST', `/api/v1/admin/agents/${agentId}/sign-out`, state.token).catch(() => null);
  report(a, 'agentSignedOut');
}

/** @param {{status: number, body: any} | null} a @param {string} ok */
function report(a, ok) {
  if (!a) return notify('serverUnreachable', true);
  if (a.status === 401) return ended('sessionExpired');
  if (a.status === 200) return notify(ok);
  const known = ['busyWithCall', 'notSignedIn'];
  notify(a.body && known.includes(a.body.error) ? a.body.error : 'actionFailed', true);
}

/** @param {any} a */
function agentRow(a) {
  const id = a.agentId;
  const picker = /** @type {HTMLSelectElement} */ (h('select', { class: 'status-picker', 'aria-label': t('setStatus') },
    STATUSES.map((s) => h('option', { value: String(s), text: t(`status${s}`) }))));
  picker.value = String(a.status);
  const actions = id == null ? [] : [
    picker,
    h('button', { type: 'button', class: 'set-status', text: t('setStatus'), click: () => forceStatus(id, Number(picker.value)) }),
    h('button', { type: 'button', class: 'sign-out danger', text: t('signOutAgent'), disabled: !a.signedIn, click: () => signOutAgent(id) }),
  ];
  const pill = h('span', { class: 'pill', 'data-code': String(a.code), 'data-off': !a.signedIn, text: statusLabel(a) });
  return h('tr', { 'data-email': a.email || '', 'data-agent-id': String(id ?? ''), 'data-code': String(a.code), 'data-signed-in': String(a.signedIn), 'data-activity': a.activity }, [
    h('td', { text: a.email || `#${a.seatId}` }),
    h('td', { text: a.seat || '' }),
    h('td', { text: a.group }),
    h('td', { class: 'status' }, [pill]),
    h('td', { class: 'num time', text: clock(a.secsInStatus) }),
    h('td', {}, [h('div', { class: 'actions' }, actions)]),
  ]);
}

/** @param {any} b @param {any} c */
function callRow(b, c) {
  const agent = b.agents.find((/** @type {any} */ a) => a.seatId === c.seatId);
  return h('tr', { 'data-call-id': c.callId, 'data-state': c.state }, [
    h('td', { text: agent ? agent.email || `#${agent.seatId}` : c.forwardedTo ? `→ ${c.forwardedTo}` : '' }),
    h('td', { class: 'num', text: c.number }),
    h('td', { text: t(c.direction) }),
    h('td', {}, [h('span', { class: `pill ${c.state}`, text: t(c.state) })]),
    h('td', { class: 'num', text: clock(c.secs) }),
    h('td', { class: 'num', text: c.mos == null ? '—' : Number(c.mos).toFixed(1) }),
  ]);
}

function renderBoard() {
  const b = state.board;
  if (!b || state.view !== 'wallboard') return;
  // A picker the admin has open is not pulled from under them.
  const focused = document.activeElement;
  if (focused && focused.classList.contains('status-picker')) {
    setTimeout(renderBoard, 300);
    return;
  }
  const today = b.today;
  const sl = today.serviceLevelPct == null ? '—' : `${Math.round(today.serviceLevelPct)}%`;
  const tile = (/** @type {string} */ id, /** @type {string} */ label, /** @type {string} */ value) =>
    h('div', { class: 'tile', id }, [h('div', { class: 'label', text: t(label) }), h('div', { class: 'value num', text: value })]);
  el('screen').replaceChildren(
    h('div', { class: 'tiles', id: 'today' }, [
      tile('answered', 'answered', String(today.answered)),
      tile('abandoned', 'abandoned', String(today.abandoned)),
      tile('overflowed', 'overflowed', String(today.overflowed)),
      tile('service-level', 'serviceLevel', sl),
    ]),
    h('section', { class: 'card' }, [
      h('h2', { text: t('agents') }),
      table(['agent', 'seat', 'group', 'status', 'timeInStatus', 'actions'], b.agents.map(agentRow), 'agents', 'noAgents'),
    ]),
    h('section', { class: 'card' }, [
      h('h2', { text: t('calls') }),
      table(['agent', 'number', 'direction', 'state', 'duration', 'quality'], b.calls.map((/** @type {any} */ c) => callRow(b, c)), 'calls', 'none'),
    ]),
    h('section', { class: 'card' }, [
      h('h2', { text: t('queues') }),
      table(['group', 'waiting', 'longestWait'], b.queues.map((/** @type {any} */ q) => h('tr', { 'data-group': q.group }, [
        h('td', { text: q.group }),
        h('td', { class: 'num', text: String(q.waiting) }),
        h('td', { class: 'num', text: clock(q.longestWaitSecs) }),
      ])), 'queues', 'none'),
    ]),
  );
}

/** The tenant's users, and a form that adds one (the API's checks, its messages shown). */
async function renderUsers() {
  if (state.view !== 'users') return;
  const a = await call('GET', '/api/v1/admin/users', state.token).catch(() => null);
  if (!a) return notify('serverUnreachable', true);
  if (a.status === 401) return ended('sessionExpired');
  if (state.view !== 'users') return;
  const list = (a.body && a.body.users) || [];
  const rows = list.map((/** @type {any} */ u) => h('tr', { 'data-email': u.email }, [
    h('td', { text: u.email }),
    h('td', { text: t(`role${u.role}`) }),
    h('td', { text: u.seat || '' }),
    h('td', { text: u.group || '' }),
    h('td', { text: t(u.enabled ? 'yes' : 'no') }),
  ]));
  const field = (/** @type {string} */ id, /** @type {string} */ label, /** @type {string} */ type) =>
    h('label', {}, [t(label), h('input', { id, type, autocomplete: 'off' })]);
  const role = h('select', { id: 'new-role' }, ['agent', 'admin'].map((r) => h('option', { value: r, text: t(`role${r}`) })));
  const error = state.userError ? h('p', { class: 'error-text', id: 'user-error', role: 'alert', text: `${t('userRefused')} ${state.userError}` }) : null;
  // The server checks every field (one set of rules, its messages shown).
  const form = h('form', { class: 'add-user', id: 'add-user', novalidate: true }, [
    field('new-email', 'email', 'email'),
    field('new-password', 'password', 'password'),
    h('label', {}, [t('role'), role]),
    field('new-seat', 'seat', 'text'),
    field('new-group', 'group', 'text'),
    h('button', { class: 'primary', type: 'submit', id: 'add-user-button', text: t('addUser') }),
  ]);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ (el(id)).value.trim();
    /** @type {Record<string, string>} */
    const body = { email: value('new-email'), password: /** @type {HTMLInputElement} */ (el('new-password')).value, role: value('new-role') };
    if (value('new-seat')) body.seat = value('new-seat');
    if (value('new-group')) body.group = value('new-group');
    const r = await call('POST', '/api/v1/admin/users', state.token, body).catch(() => null);
    if (!r) return notify('serverUnreachable', true);
    if (r.status === 401) return ended('sessionExpired');
    state.userError = r.status === 201 ? null : String((r.body && r.body.message) || r.status);
    if (r.status === 201) notify('userAdded');
    renderUsers();
  });
  el('screen').replaceChildren(h('section', { class: 'card' }, [
    h('h2', { text: t('users') }),
    table(['email', 'role', 'seat', 'group', 'enabled'], rows, 'users', 'none'),
    form,
    error,
  ]), skillsForm(ctx, list));
}

/** What a form tab needs from the page. */
const ctx = {
  token: () => state.token,
  ended,
  notify,
  current: () => state.view,
  get screen() { return el('screen'); },
};

/** Draws the tab shown. */
function renderView() {
  const view = state.view;
  if (view === 'users') renderUsers();
  else if (view === 'records') records(ctx);
  else if (TABS[view]) TABS[view](ctx);
  else renderBoard();
}

/** @param {string} view */
function show(view) {
  state.view = view;
  state.userError = null;
  state.notice = null;
  renderChrome();
  if (view !== 'wallboard') el('screen').replaceChildren(h('p', { class: 'empty', text: '…' }));
  renderView();
}

function main() {
  const wanted = new URLSearchParams(location.search).get('lang') || navigator.language;
  setLang(LANGS.includes(wanted) ? wanted : 'en-US');
  el('lang').addEventListener('change', (e) => {
    setLang(/** @type {HTMLSelectElement} */ (e.target).value);
    renderChrome();
    if (!state.token) renderSignIn();
    else renderView();
  });
  for (const v of VIEWS) el(`tab-${v}`).addEventListener('click', () => show(v));
  el('sign-out').addEventListener('click', async () => {
    const token = state.token;
    ended(null);
    if (token) await call('DELETE', '/api/v1/sessions/current', token).catch(() => {});
  });
  const token = savedToken();
  if (token) start(token);
  else renderSignIn();
}

main();
