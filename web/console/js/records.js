// The call records tab: the records API's filters, a paged table, a CSV
// export of the same filters and, where a call was recorded, a player. The
// session goes in the Authorization header, so the CSV and the recordings
// are fetched here and handed to the browser as Blobs (a plain link could
// not carry the header).

import { call } from './api.js';
import { h, table } from './dom.js';
import { form, refusal, value, when, whole, tf } from './forms.js';
import { t } from './i18n.js';

/** @typedef {import('./forms.js').Ctx} Ctx */

/** The filters of the records shown, and the pages walked to get here. */
const view = {
  /** @type {URLSearchParams} */ query: new URLSearchParams(),
  /** @type {(string | null)[]} cursors of the pages before the one shown (null: the first) */ back: [],
  /** @type {string | null} */ cursor: null,
};

/** @type {string[]} Blob URLs of the players, let go at the next draw. */
let blobs = [];

/** A datetime-local value as ms since the epoch (the browser's time zone). @param {string} v */
function ms(v) {
  const n = new Date(v).getTime();
  return Number.isFinite(n) ? String(n) : null;
}

/** The filters of the form, as the API's query. */
function filters() {
  const q = new URLSearchParams();
  const from = value('records-from') && ms(value('records-from'));
  const to = value('records-to') && ms(value('records-to'));
  if (from) q.set('from', from);
  if (to) q.set('to', to);
  for (const [id, key] of [['records-agent', 'agent'], ['records-direction', 'direction'], ['records-outcome', 'outcome']]) {
    if (value(id)) q.set(key, value(id));
  }
  q.set('limit', value('records-limit') || '25');
  return q;
}

/** How a call ended, in words. @param {any} c */
function outcome(c) {
  if (c.callHangUpTimestamp == null) return t('outcome_inProgress');
  if (c.callConnectedTimestamp != null) return t('outcome_answered');
  if (c.hangupCode != null) return `${t('outcome_failed')} (${c.hangupCode})`;
  return c.sipCode != null ? `${t('outcome_unanswered')} (${c.sipCode})` : t('outcome_unanswered');
}

const DIRECTIONS = ['inbound', 'outbound', 'autoDialed'];

/** Fetches `path` with the session into a Blob, or null after saying why not. @param {Ctx} ctx @param {string} path */
async function blob(ctx, path) {
  const token = ctx.token();
  const r = await fetch(path, { headers: token ? { authorization: `Bearer ${token}` } : {} }).catch(() => null);
  if (!r) { ctx.notify('serverUnreachable', true); return null; }
  if (r.status === 401) { ctx.ended('sessionExpired'); return null; }
  if (!r.ok) {
    let body = null;
    try { body = await r.json(); } catch (_) { /* not JSON */ }
    ctx.notify('actionFailed', true);
    const n = document.getElementById('notice');
    if (n) n.textContent = refusal({ status: r.status, body });
    return null;
  }
  return r.blob();
}

/** The player of a recorded call, loaded when asked for. @param {Ctx} ctx @param {any} c */
function player(ctx, c) {
  if (!c.recording) return h('span', { class: 'hint', text: '—' });
  const cell = h('span', { class: 'player' });
  cell.append(h('button', { type: 'button', class: 'play', text: t('loadRecording'), click: async () => {
    const b = await blob(ctx, `/api/v1/calls/${encodeURIComponent(c.callId)}/recording`);
    if (!b) return;
    const url = URL.createObjectURL(b);
    blobs.push(url);
    cell.replaceChildren(h('audio', { controls: true, src: url, preload: 'auto', 'data-call-id': c.callId }));
  } }));
  return cell;
}

/** Saves the CSV of the filters shown (up to 10,000 rows). @param {Ctx} ctx */
async function exportCsv(ctx) {
  const q = new URLSearchParams(view.query);
  q.set('limit', '10000');
  const b = await blob(ctx, `/api/v1/calls.csv?${q}`);
  if (!b) return;
  const url = URL.createObjectURL(b);
  const a = /** @type {HTMLAnchorElement} */ (h('a', { href: url, download: 'calls.csv', hidden: true }));
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  ctx.notify('csvSaved');
}

/** The records tab. @param {Ctx} ctx */
export async function records(ctx) {
  const q = new URLSearchParams(view.query);
  if (view.cursor) q.set('cursor', view.cursor);
  if (!q.has('limit')) q.set('limit', '25');
  const a = await call('GET', `/api/v1/calls?${q}`, ctx.token()).catch(() => null);
  if (ctx.current() !== 'records') return;
  if (!a) return ctx.notify('serverUnreachable', true);
  if (a.status === 401) return ctx.ended('sessionExpired');
  for (const u of blobs) URL.revokeObjectURL(u);
  blobs = [];
  const calls = a.status === 200 ? /** @type {any[]} */ (a.body.calls || []) : [];
  const next = a.status === 200 ? a.body.nextCursor : null;
  const rows = calls.map((c) => h('tr', { 'data-call-id': c.callId, 'data-recorded': String(!!c.recording) }, [
    h('td', { text: when(c.callStartTimestamp) }),
    h('td', { text: t(DIRECTIONS[c.direction] || 'outbound') }),
    h('td', { class: 'num', text: c.caller || '' }),
    h('td', { class: 'num', text: c.callee || '' }),
    h('td', { text: c.agent || '' }),
    h('td', { text: outcome(c) }),
    h('td', { class: 'num', text: c.talkSeconds == null ? '—' : String(c.talkSeconds) }),
    h('td', {}, [player(ctx, c)]),
  ]));
  const was = (/** @type {string} */ k) => view.query.get(k) || '';
  const local = (/** @type {string} */ k) => {
    const v = was(k);
    if (!v) return '';
    const d = new Date(Number(v));
    return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  };
  const f = form({
    ctx, id: 'records-form', submit: 'applyFilters',
    fields: [
      { id: 'records-from', label: 'from', type: 'datetime-local', value: local('from') },
      { id: 'records-to', label: 'to', type: 'datetime-local', value: local('to') },
      { id: 'records-agent', label: 'agentEmail', type: 'email', value: was('agent'), rules: [(v) => (!v || /^[^\s@]+@[^\s@]+$/.test(v) ? null : ['errEmail'])] },
      { id: 'records-direction', label: 'direction', type: 'select', value: was('direction'), options: [['', t('any')], ...DIRECTIONS.map((d) => /** @type {[string, string]} */ ([d, t(d)]))] },
      { id: 'records-outcome', label: 'outcome', type: 'select', value: was('outcome'), options: [['', t('any')], ...['answered', 'unanswered', 'failed', 'inProgress'].map((o) => /** @type {[string, string]} */ ([o, t(`outcome_${o}`)]))] },
      { id: 'records-limit', label: 'pageSize', type: 'number', value: was('limit') || '25', rules: [whole(1, 1000)] },
    ],
    send: async () => {
      const from = value('records-from') && ms(value('records-from'));
      const to = value('records-to') && ms(value('records-to'));
      if (from && to && Number(from) >= Number(to)) return { status: 400, body: { error: 'badRange', message: `${t('from')} < ${t('to')}` } };
      // Checked by the server before the table changes: a refusal shows here.
      const probe = filters();
      probe.set('limit', '1');
      return call('GET', `/api/v1/calls?${probe}`, ctx.token());
    },
    done: () => {
      view.query = filters();
      view.back = [];
      view.cursor = null;
      records(ctx);
    },
  });
  const pager = h('div', { class: 'pager' }, [
    h('button', { type: 'button', id: 'records-prev', text: t('previousPage'), disabled: view.back.length === 0, click: () => {
      view.cursor = view.back.pop() ?? null;
      records(ctx);
    } }),
    h('span', { class: 'hint', id: 'records-page', text: tf('pageNo', { n: view.back.length + 1 }) }),
    h('button', { type: 'button', id: 'records-next', text: t('nextPage'), disabled: !next, click: () => {
      view.back.push(view.cursor);
      view.cursor = next;
      records(ctx);
    } }),
    h('button', { type: 'button', id: 'records-csv', class: 'primary', text: t('exportCsv'), click: () => exportCsv(ctx) }),
  ]);
  const error = a.status === 200 ? null : h('p', { class: 'error-text', role: 'alert', text: refusal(a) });
  ctx.screen.replaceChildren(h('section', { class: 'card' }, [
    h('h2', { text: t('callRecords') }),
    f,
    error,
    table(['started', 'direction', 'caller', 'callee', 'agent', 'outcome', 'talkSecs', 'recording'], rows, 'records', 'none'),
    pager,
  ]));
}
