// The console's administration tabs: each lists what the tenant has and
// changes it through the admin API. Every field is checked here before
// anything is sent (the server checks again: its 4xx answer is shown next
// to the form, in the page's language, with the server's own detail).

import { call } from './api.js';
import { h, table } from './dom.js';
import { t } from './i18n.js';

/**
 * What a tab needs from the page around it.
 * @typedef {{
 *   token: () => string | null,
 *   ended: (why: string) => void,
 *   notify: (key: string, error?: boolean) => void,
 *   current: () => string,
 *   screen: HTMLElement,
 * }} Ctx
 */

/** @typedef {{status: number, body: any}} Answer */

/**
 * A string with `{name}` holes filled.
 * @param {string} key @param {Record<string, string | number>} [vars]
 */
export function tf(key, vars = {}) {
  return t(key).replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : `{${k}}`));
}

// ---- checks ------------------------------------------------------------------

/** A check: null when the value is good, else the message key and its values. @typedef {(v: string) => [string, Record<string, string | number>?] | null} Rule */

/** @type {Rule} */
export const required = (v) => (v.trim() ? null : ['errRequired']);

/** A whole number from `min` to `max` (empty passes: add `required`). @returns {Rule} */
export function whole(/** @type {number} */ min, /** @type {number} */ max) {
  return (v) => {
    if (!v.trim()) return null;
    const n = Number(v);
    return /^-?\d+$/.test(v.trim()) && n >= min && n <= max ? null : ['errRange', { min, max }];
  };
}

/** A phone number as E.164 digits, a leading + allowed. @type {Rule} */
export const e164 = (v) => (!v.trim() || /^\+?[1-9]\d{5,14}$/.test(v.trim()) ? null : ['errNumber']);

/** An http(s) URL with a host. @type {Rule} */
export const httpUrl = (v) => {
  if (!v.trim()) return null;
  try {
    const u = new URL(v.trim());
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname ? null : ['errUrl'];
  } catch (_) {
    return ['errUrl'];
  }
};

/** A serialized origin: scheme, host, optional port, nothing else. @type {Rule} */
export const origin = (v) =>
  /^https?:\/\/[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$/.test(v.trim()) || /^https?:\/\/\[[0-9a-f:.]+\](:\d{1,5})?$/.test(v.trim())
    ? null : ['errOrigin', { value: v.trim() }];

/** Between `min` and `max` characters. @returns {Rule} */
export function length(/** @type {number} */ min, /** @type {number} */ max) {
  return (v) => (!v.length || (v.length >= min && v.length <= max) ? null : ['errLength', { min, max }]);
}

/** Matches `re`, else `key`. @returns {Rule} */
export function pattern(/** @type {RegExp} */ re, /** @type {string} */ key) {
  return (v) => (!v.trim() || re.test(v.trim()) ? null : [key]);
}

// ---- forms -------------------------------------------------------------------

/**
 * One field of a form.
 * @typedef {{
 *   id: string, label: string,
 *   type?: 'text' | 'number' | 'password' | 'select' | 'checkbox' | 'textarea' | 'datetime-local' | 'email',
 *   value?: string | boolean, options?: [string, string][], rules?: Rule[], placeholder?: string,
 *   hint?: string, wide?: boolean,
 * }} Field
 */

/** @param {Field} f */
function input(f) {
  if (f.type === 'select') {
    const s = /** @type {HTMLSelectElement} */ (h('select', { id: f.id, name: f.id },
      (f.options || []).map(([v, label]) => h('option', { value: v, text: label }))));
    if (typeof f.value === 'string' && (f.options || []).some(([v]) => v === f.value)) s.value = f.value;
    return s;
  }
  if (f.type === 'checkbox') return h('input', { id: f.id, name: f.id, type: 'checkbox', checked: f.value === true });
  if (f.type === 'textarea') {
    const a = h('textarea', { id: f.id, name: f.id, rows: '3', placeholder: f.placeholder || '' });
    a.textContent = typeof f.value === 'string' ? f.value : '';
    return a;
  }
  return h('input', {
    id: f.id, name: f.id, type: f.type || 'text', autocomplete: 'off',
    value: typeof f.value === 'string' ? f.value : '', placeholder: f.placeholder || '',
  });
}

/** The value of a field by id: text trimmed, a box checked or not. @param {string} id */
export function value(id) {
  const e = /** @type {HTMLInputElement | null} */ (document.getElementById(id));
  if (!e) return '';
  return e.type === 'checkbox' ? (e.checked ? 'true' : '') : e.value.trim();
}

/**
 * A form whose fields are checked before `send` runs; its errors (the
 * checks' or the server's) show in `#ID-error` under it.
 * @param {{id: string, fields: Field[], submit: string, send: () => Promise<Answer | null>, done: (a: Answer) => void, ctx: Ctx, danger?: boolean}} spec
 */
export function form(spec) {
  const error = h('p', { class: 'error-text', id: `${spec.id}-error`, role: 'alert', hidden: true });
  const button = /** @type {HTMLButtonElement} */ (h('button', { class: 'primary', type: 'submit', id: `${spec.id}-submit`, text: t(spec.submit) }));
  const f = h('form', { class: 'admin-form', id: spec.id, novalidate: true }, [
    ...spec.fields.map((fd) => h('label', { class: fd.type === 'checkbox' ? 'check' : fd.wide ? 'wide' : '', 'data-field': fd.id }, [
      fd.type === 'checkbox' ? input(fd) : null,
      h('span', { text: t(fd.label) }),
      fd.type === 'checkbox' ? null : input(fd),
      fd.hint ? h('small', { text: t(fd.hint) }) : null,
    ])),
    h('div', { class: 'submit' }, [button]),
    error,
  ]);
  const show = (/** @type {string | null} */ text) => {
    // An older notice ("saved") is not left beside a new error.
    const notice = document.getElementById('notice');
    if (text && notice) notice.hidden = true;
    error.hidden = !text;
    error.textContent = text || '';
  };
  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    for (const fd of spec.fields) {
      const node = document.getElementById(fd.id);
      const label = node && node.closest('label');
      if (label && label.hidden) continue;
      node?.removeAttribute('aria-invalid');
      for (const rule of fd.rules || []) {
        const bad = rule(value(fd.id));
        if (bad) {
          node?.setAttribute('aria-invalid', 'true');
          node?.focus();
          show(`${t(fd.label)}: ${tf(bad[0], bad[1])}`);
          return;
        }
      }
    }
    show(null);
    button.disabled = true;
    const a = await spec.send().catch(() => null);
    button.disabled = false;
    if (!a) return show(t('serverUnreachable'));
    if (a.status === 401) return spec.ctx.ended('sessionExpired');
    if (a.status >= 400) return show(refusal(a));
    spec.done(a);
  });
  return f;
}

/** The server's refusal in clear words: ours for its code, its detail after. @param {Answer} a */
export function refusal(a) {
  const code = a.body && typeof a.body.error === 'string' ? a.body.error : '';
  const known = t(`e_${code}`) !== `e_${code}` ? t(`e_${code}`) : t('actionFailed');
  const detail = a.body && typeof a.body.message === 'string' ? a.body.message : `HTTP ${a.status}`;
  return `${known} (${detail})`;
}

/**
 * GETs `path`; the body, or null after telling the admin why not.
 * @param {Ctx} ctx @param {string} path
 */
async function load(ctx, path) {
  const a = await call('GET', path, ctx.token()).catch(() => null);
  if (!a) { ctx.notify('serverUnreachable', true); return null; }
  if (a.status === 401) { ctx.ended('sessionExpired'); return null; }
  if (a.status !== 200) { ctx.notify('loadFailed', true); return null; }
  return a.body;
}

/** @param {string} title @param {(Node | null)[]} children @param {string} [id] */
function card(title, children, id) {
  return h('section', id ? { class: 'card', id } : { class: 'card' }, [h('h2', { text: t(title) }), ...children]);
}

/** Milliseconds since the epoch as local date and time. @param {number | null | undefined} ms */
export function when(ms) {
  return typeof ms === 'number' ? new Date(ms).toLocaleString() : '—';
}

/** A small button in a row. @param {string} cls @param {string} label @param {() => void} click */
function rowButton(cls, label, click) {
  return h('button', { type: 'button', class: cls, text: t(label), click });
}

/** Runs a change from a row's button; a refusal shows as a notice. @param {Ctx} ctx @param {Promise<Answer>} p @param {string} ok @param {() => void} again */
async function act(ctx, p, ok, again) {
  const a = await p.catch(() => null);
  if (!a) return ctx.notify('serverUnreachable', true);
  if (a.status === 401) return ctx.ended('sessionExpired');
  if (a.status >= 400) {
    ctx.notify('actionFailed', true);
    const n = document.getElementById('notice');
    if (n) n.textContent = refusal(a);
    return;
  }
  ctx.notify(ok);
  again();
}

// ---- the tabs ----------------------------------------------------------------

const STRATEGIES = ['longestIdle', 'roundRobin', 'fewestCalls', 'ringAll', 'skills'];
const GROUP_NO = /^[A-Za-z0-9_-]{1,32}$/;

/** Groups: list, create, routing. @param {Ctx} ctx */
async function groups(ctx) {
  const body = await load(ctx, '/api/v1/admin/groups');
  if (!body || ctx.current() !== 'groups') return;
  const list = /** @type {any[]} */ (body.groups || []);
  const again = () => groups(ctx);
  const rows = list.map((g) => h('tr', { 'data-group': g.group, 'data-strategy': g.strategy || '' }, [
    h('td', { text: g.group }),
    h('td', { text: g.name }),
    h('td', { class: 'num', text: String(g.acwSecs) }),
    h('td', { text: g.strategy ? t(`strategy_${g.strategy}`) : '—' }),
    h('td', { class: 'num', text: g.maxMissed == null ? '—' : String(g.maxMissed) }),
    h('td', { class: 'num', text: g.maxWaitSecs ? String(g.maxWaitSecs) : '—' }),
    h('td', { class: 'num', text: g.ringTimeoutSecs ? String(g.ringTimeoutSecs) : t('serverDefault') }),
  ]));
  const add = form({
    ctx, id: 'group-form', submit: 'addGroup',
    fields: [
      { id: 'group-no', label: 'groupNo', rules: [required, pattern(GROUP_NO, 'errGroupNo')], placeholder: 'G002' },
      { id: 'group-name', label: 'groupName', rules: [required, length(1, 100)] },
      { id: 'group-acw', label: 'acwSecs', type: 'number', value: '0', rules: [required, whole(0, 3600)] },
    ],
    send: () => call('POST', '/api/v1/admin/groups', ctx.token(),
      { group: value('group-no'), name: value('group-name'), acwSecs: Number(value('group-acw')) }),
    done: () => { ctx.notify('groupAdded'); again(); },
  });
  const first = list[0];
  // A group's name and wrap-up, changed in place.
  const change = form({
    ctx, id: 'edit-group-form', submit: 'saveGroup',
    fields: [
      { id: 'edit-group', label: 'group', type: 'select', options: list.map((g) => [g.group, `${g.group} · ${g.name}`]), rules: [required] },
      { id: 'edit-group-name', label: 'groupName', value: first ? first.name : '', rules: [required, length(1, 100)] },
      { id: 'edit-group-acw', label: 'acwSecs', type: 'number', value: String(first ? first.acwSecs : 0), rules: [required, whole(0, 3600)], hint: 'acwHint' },
    ],
    send: () => call('PUT', `/api/v1/admin/groups/${encodeURIComponent(value('edit-group'))}`, ctx.token(),
      { name: value('edit-group-name').trim(), acwSecs: Number(value('edit-group-acw')) }),
    done: () => { ctx.notify('groupSaved'); again(); },
  });
  change.querySelector('#edit-group')?.addEventListener('change', (e) => {
    const g = list.find((x) => x.group === /** @type {HTMLSelectElement} */ (e.target).value);
    if (!g) return;
    /** @type {HTMLInputElement} */ (change.querySelector('#edit-group-name')).value = g.name;
    /** @type {HTMLInputElement} */ (change.querySelector('#edit-group-acw')).value = String(g.acwSecs);
  });
  const routing = form({
    ctx, id: 'routing-form', submit: 'saveRouting',
    fields: [
      { id: 'routing-group', label: 'group', type: 'select', options: list.map((g) => [g.group, `${g.group} · ${g.name}`]), rules: [required] },
      { id: 'routing-strategy', label: 'strategy', type: 'select', options: STRATEGIES.map((s) => [s, t(`strategy_${s}`)]), value: first && first.strategy },
      { id: 'routing-ring', label: 'ringTimeoutSecs', type: 'number', value: String(first ? first.ringTimeoutSecs ?? 0 : 0), rules: [required, whole(0, 300)], hint: 'ringTimeoutHint' },
      { id: 'routing-missed', label: 'maxMissed', type: 'number', value: String(first ? first.maxMissed ?? 3 : 3), rules: [required, whole(0, 100)], hint: 'maxMissedHint' },
      { id: 'routing-wait', label: 'maxWaitSecs', type: 'number', value: String(first ? first.maxWaitSecs ?? 0 : 0), rules: [required, whole(0, 3600)], hint: 'maxWaitHint' },
      {
        id: 'routing-announce', label: 'announceLang', type: 'select', hint: 'announceHint', value: (first && first.announceLang) || '',
        options: [['', t('announceOff')], ['en-US', 'English'], ['es-MX', 'Español'], ['zh-CN', '中文']],
      },
      {
        id: 'routing-overflow', label: 'overflowGroup', type: 'select', value: overflowOf(first),
        options: [['', t('overflowNone')], [NUMBER, t('overflowToNumber')], ...list.map((g) => /** @type {[string, string]} */ ([g.group, `${g.group} · ${g.name}`]))],
      },
      { id: 'routing-overflow-number', label: 'overflowNumber', rules: [required, e164], placeholder: '14155550100', value: (first && first.overflowNumber) || '', hint: 'overflowNumberHint' },
    ],
    send: () => {
      const to = value('routing-overflow');
      return call('PUT', `/api/v1/admin/groups/${encodeURIComponent(value('routing-group'))}/routing`, ctx.token(),
        { strategy: value('routing-strategy'), maxMissed: Number(value('routing-missed')),
          maxWaitSecs: Number(value('routing-wait')), overflowGroup: to && to !== NUMBER ? to : null,
          overflowNumber: to === NUMBER ? value('routing-overflow-number').trim().replace(/^\+/, '') : null,
          ringTimeoutSecs: Number(value('routing-ring')), announceLang: value('routing-announce') || null });
    },
    done: () => { ctx.notify('routingSaved'); again(); },
  });
  // The number field only when the overflow goes to a number.
  const overflow = /** @type {HTMLSelectElement} */ (routing.querySelector('#routing-overflow'));
  const followOverflow = () => {
    /** @type {HTMLElement} */ (routing.querySelector('label[data-field="routing-overflow-number"]')).hidden = overflow.value !== NUMBER;
  };
  overflow.addEventListener('change', followOverflow);
  followOverflow();
  // Picking a group shows its settings.
  routing.querySelector('#routing-group')?.addEventListener('change', (e) => {
    const g = list.find((x) => x.group === /** @type {HTMLSelectElement} */ (e.target).value);
    if (!g) return;
    /** @type {HTMLSelectElement} */ (routing.querySelector('#routing-strategy')).value = g.strategy || 'longestIdle';
    /** @type {HTMLInputElement} */ (routing.querySelector('#routing-missed')).value = String(g.maxMissed ?? 3);
    /** @type {HTMLInputElement} */ (routing.querySelector('#routing-wait')).value = String(g.maxWaitSecs ?? 0);
    /** @type {HTMLInputElement} */ (routing.querySelector('#routing-ring')).value = String(g.ringTimeoutSecs ?? 0);
    /** @type {HTMLSelectElement} */ (routing.querySelector('#routing-announce')).value = g.announceLang || '';
    overflow.value = overflowOf(g);
    /** @type {HTMLInputElement} */ (routing.querySelector('#routing-overflow-number')).value = g.overflowNumber || '';
    followOverflow();
  });
  ctx.screen.replaceChildren(
    card('groups', [table(['groupNo', 'groupName', 'acwSecs', 'strategy', 'maxMissed', 'maxWaitSecs', 'ringTimeoutSecs'], rows, 'groups', 'none'), add, change]),
    card('routing', [routing]),
  );
}

/** The overflow select's value meaning "a number" (no group is named so: group numbers are letters and digits). */
const NUMBER = '#number';

/** Where a group's callers go when the wait runs out, as the overflow select says it. @param {any} g */
function overflowOf(g) {
  if (!g) return '';
  if (g.overflowNumber) return NUMBER;
  return g.overflowGroup || '';
}

/** A DID's route in words. @param {any} r */
function routeText(r) {
  if (!r) return t('routeNone');
  if (r.group && r.skill) return tf('routeToGroupSkill', { group: r.group, skill: r.skill });
  if (r.group) return tf('routeToGroup', { group: r.group });
  if (r.forwardTo) return tf('routeToNumber', { number: r.forwardTo });
  if (r.reject) return tf('routeReject', { code: r.reject });
  if (r.menu) return tf('routeMenu', { options: menuText(r.menu) });
  return '—';
}

/** A menu's options as the admin types them: "1 = G001", "2 = G002 es". @param {any} m */
function menuLines(m) {
  return Object.entries(m.options || {}).map(([k, o]) => `${k} = ${o.group}${o.skill ? ` ${o.skill}` : ''}`);
}

/** A menu in one line: "1 → G001, 2 → G002 (es)". @param {any} m */
function menuText(m) {
  return Object.entries(m.options || {}).map(([k, o]) => `${k} → ${o.group}${o.skill ? ` (${o.skill})` : ''}`).join(', ');
}

/** One option line: key = group [skill]. */
const MENU_LINE = /^\s*([0-9*#])\s*=\s*([A-Za-z0-9_-]{1,32})(?:\s+([A-Za-z0-9_-]{1,32}))?\s*$/;

/** The menu's lines, or null when one is not an option. @param {string} v */
function parseMenu(v) {
  /** @type {Record<string, {group: string, skill?: string}>} */
  const options = {};
  const lines = v.split('\n').filter((l) => l.trim());
  if (!lines.length || lines.length > 12) return null;
  for (const l of lines) {
    const m = MENU_LINE.exec(l);
    if (!m || options[m[1]]) return null;
    options[m[1]] = m[3] ? { group: m[2], skill: m[3] } : { group: m[2] };
  }
  return options;
}

/** @type {Rule} */
const menuRule = (v) => (parseMenu(v) ? null : ['errMenuLine']);

/** A skill's name, as the server takes it. */
const SKILL = /^[A-Za-z0-9_-]{1,32}$/;
/** Skills as an admin types them: "es:5, vip:2" (levels 1 to 10). */
const SKILLS = /^\s*[A-Za-z0-9_-]{1,32}\s*:\s*([1-9]|10)\s*(,\s*[A-Za-z0-9_-]{1,32}\s*:\s*([1-9]|10)\s*)*$/;

/**
 * An agent's skills, below the Users list: pick the agent, its skills show
 * ("es:5, vip:2"); an empty field clears them.
 * @param {Ctx} ctx @param {any[]} users the tenant's users
 */
export function skillsForm(ctx, users) {
  const agents = users.filter((u) => u.seat);
  const f = form({
    ctx, id: 'skills-form', submit: 'saveSkills',
    fields: [
      { id: 'skills-user', label: 'agent', type: 'select', options: agents.map((u) => [String(u.id), u.email]), rules: [required] },
      { id: 'skills-value', label: 'skills', rules: [pattern(SKILLS, 'errSkills')], placeholder: 'es:5, vip:2', hint: 'skillsHint', wide: true },
    ],
    send: () => {
      /** @type {Record<string, number>} */
      const skills = {};
      for (const pair of value('skills-value').split(',').filter((p) => p.trim())) {
        const [name, level] = pair.split(':');
        skills[name.trim()] = Number(level);
      }
      return call('PUT', `/api/v1/admin/users/${encodeURIComponent(value('skills-user'))}/skills`, ctx.token(), { skills });
    },
    done: () => ctx.notify('skillsSaved'),
  });
  const who = /** @type {HTMLSelectElement} */ (f.querySelector('#skills-user'));
  const shown = /** @type {HTMLInputElement} */ (f.querySelector('#skills-value'));
  // The agent's skills, once loaded: never over what the admin typed
  // meanwhile, nor from an older request than the last.
  let asked = 0;
  const fill = async () => {
    if (!who.value) return;
    const mine = ++asked;
    const before = shown.value;
    const agent = who.value;
    const body = await load(ctx, `/api/v1/admin/users/${encodeURIComponent(agent)}/skills`);
    if (mine !== asked || !body || !body.skills) return;
    if (shown.value === before) shown.value = Object.entries(body.skills).map(([n, l]) => `${n}:${l}`).join(', ');
    shown.dataset.agent = agent;
  };
  who.addEventListener('change', fill);
  fill();
  return card('agentSkills', [f], 'skills');
}

/** The DID last routed: the form shows it again after the list reloads. */
let lastDid = '';

/** Numbers (DIDs): where each goes. @param {Ctx} ctx */
async function numbers(ctx) {
  const [body, gs] = await Promise.all([load(ctx, '/api/v1/admin/dids'), load(ctx, '/api/v1/admin/groups')]);
  if (!body || !gs || ctx.current() !== 'numbers') return;
  const dids = /** @type {any[]} */ (body.dids || []);
  const rows = dids.map((d) => h('tr', { 'data-number': d.number }, [
    h('td', { class: 'num', text: d.number }),
    h('td', { class: 'route', text: routeText(d.route) }),
    h('td', { text: t(d.pool ? 'yes' : 'no') }),
  ]));
  const f = form({
    ctx, id: 'did-form', submit: 'saveRoute',
    fields: [
      { id: 'did-number', label: 'did', type: 'select', options: dids.map((d) => [d.number, d.number]), value: lastDid, rules: [required] },
      { id: 'did-kind', label: 'routeKind', type: 'select', options: [['group', t('kindGroup')], ['forwardTo', t('kindForward')], ['reject', t('kindReject')], ['menu', t('kindMenu')]] },
      { id: 'did-group', label: 'group', type: 'select', options: (gs.groups || []).map((/** @type {any} */ g) => [g.group, `${g.group} · ${g.name}`]), rules: [required] },
      { id: 'did-skill', label: 'requiredSkill', rules: [pattern(SKILL, 'errSkill')], placeholder: 'es', hint: 'requiredSkillHint' },
      { id: 'did-forward', label: 'forwardTo', rules: [required, e164], placeholder: '14155550100' },
      { id: 'did-reject', label: 'rejectCode', type: 'number', value: '486', rules: [required, whole(400, 699)], hint: 'rejectHint' },
      { id: 'did-menu', label: 'menuOptions', type: 'textarea', rules: [required, menuRule], placeholder: '1 = G001\n2 = G002 es', hint: 'menuOptionsHint', wide: true },
      { id: 'did-menu-timeout', label: 'menuTimeout', type: 'number', value: '10', rules: [required, whole(1, 300)] },
      {
        id: 'did-menu-default', label: 'menuDefault', hint: 'menuDefaultHint', placeholder: '1',
        rules: [(v) => (!v.trim() || (parseMenu(value('did-menu')) || {})[v.trim()] ? null : ['errMenuDefault'])],
      },
    ],
    send: () => {
      const kind = value('did-kind');
      lastDid = value('did-number');
      /** @type {Record<string, unknown>} */
      const menu = { options: parseMenu(value('did-menu')), timeoutSecs: Number(value('did-menu-timeout')) };
      if (value('did-menu-default').trim()) menu.default = value('did-menu-default').trim();
      const body = kind === 'group' ? { group: value('did-group'), skill: value('did-skill') || null }
        : kind === 'forwardTo' ? { forwardTo: value('did-forward').replace(/^\+/, '') }
          : kind === 'menu' ? { menu }
            : { reject: Number(value('did-reject')) };
      return call('PUT', `/api/v1/admin/dids/${encodeURIComponent(value('did-number'))}/route`, ctx.token(), body);
    },
    done: () => { ctx.notify('routeSaved'); numbers(ctx); },
  });
  // Only the field of the route picked is shown (and checked); the prompt
  // card with a menu only.
  const kinds = /** @type {HTMLSelectElement} */ (f.querySelector('#did-kind'));
  const prompt = h('div', { id: 'prompt-card' });
  const follow = () => {
    prompt.hidden = kinds.value !== 'menu';
    for (const [k, id] of [['group', 'did-group'], ['group', 'did-skill'], ['forwardTo', 'did-forward'], ['reject', 'did-reject'],
      ['menu', 'did-menu'], ['menu', 'did-menu-timeout'], ['menu', 'did-menu-default']]) {
      const label = /** @type {HTMLElement} */ (f.querySelector(`label[data-field="${id}"]`));
      label.hidden = kinds.value !== k;
    }
  };
  kinds.addEventListener('change', follow);
  // A DID with a menu: its options come back into the form to edit.
  const pick = /** @type {HTMLSelectElement} */ (f.querySelector('#did-number'));
  const fill = () => {
    const d = dids.find((x) => x.number === pick.value);
    const m = d && d.route && d.route.menu;
    if (!m) return;
    kinds.value = 'menu';
    /** @type {HTMLTextAreaElement} */ (f.querySelector('#did-menu')).value = menuLines(m).join('\n');
    /** @type {HTMLInputElement} */ (f.querySelector('#did-menu-timeout')).value = String(m.timeoutSecs || 10);
    /** @type {HTMLInputElement} */ (f.querySelector('#did-menu-default')).value = m.default || '';
  };
  pick.addEventListener('change', () => { fill(); follow(); promptOf(pick.value); });
  fill();
  follow();
  /** The prompt card of the DID picked in the form. @param {string} did */
  const promptOf = async (did) => {
    if (!did) return prompt.replaceChildren();
    const r = await fetch(`/api/v1/admin/dids/${encodeURIComponent(did)}/prompt`, { headers: { authorization: `Bearer ${ctx.token()}` } }).catch(() => null);
    if (ctx.current() !== 'numbers' || pick.value !== did) return;
    const m = r && r.ok ? await r.json() : null;
    prompt.replaceChildren(clipCard(ctx, {
      name: 'prompt', path: `/api/v1/admin/dids/${encodeURIComponent(did)}/prompt`, own: !!m,
      status: m ? tf('promptOwn', { did, seconds: Math.round(m.seconds) }) : tf('promptNone', { did }),
      title: 'menuPrompt', file: 'promptFile', hint: 'promptHint', upload: 'uploadPrompt', reset: 'removePrompt', saved: 'promptSaved',
      again: () => promptOf(did),
    }));
  };
  ctx.screen.replaceChildren(card('numbers', [table(['did', 'route', 'callerIdPool'], rows, 'dids', 'none'), f]), prompt);
  promptOf(pick.value);
}

const TRUNK_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** Trunks: list, add or replace, delete. @param {Ctx} ctx */
async function trunks(ctx) {
  const body = await load(ctx, '/api/v1/admin/trunks');
  if (!body || ctx.current() !== 'trunks') return;
  const list = /** @type {any[]} */ (body.trunks || []);
  const rows = list.map((tr) => h('tr', { 'data-trunk': tr.name, 'data-shared': String(!!tr.shared) }, [
    h('td', { text: tr.name }),
    h('td', { text: tr.shared ? t('shared') : tr.uri || '' }),
    h('td', { text: tr.transport || '' }),
    h('td', {}, [h('span', { class: 'pill', 'data-code': tr.up ? '1' : '2', text: t(tr.up ? 'up' : 'down') })]),
    h('td', { class: 'num', text: tr.position == null ? '' : String(tr.position) }),
    h('td', {}, tr.shared ? [] : [rowButton('delete-trunk danger', 'delete', () => {
      if (!window.confirm(tf('confirmDeleteTrunk', { name: tr.name }))) return;
      act(ctx, call('DELETE', `/api/v1/admin/trunks/${encodeURIComponent(tr.name)}`, ctx.token()), 'trunkDeleted', () => trunks(ctx));
    })]),
  ]));
  const f = form({
    ctx, id: 'trunk-form', submit: 'saveTrunk',
    fields: [
      { id: 'trunk-name', label: 'trunkName', rules: [required, pattern(TRUNK_NAME, 'errTrunkName')], placeholder: 'carrier-1' },
      { id: 'trunk-uri', label: 'trunkUri', rules: [required, pattern(/^sips?:[^\s@]+$/, 'errSipUri')], placeholder: 'sip:sip.carrier.example:5060' },
      { id: 'trunk-transport', label: 'transport', type: 'select', options: [['udp', 'UDP'], ['tcp', 'TCP'], ['tls', 'TLS']] },
      { id: 'trunk-username', label: 'username', rules: [length(1, 128)] },
      { id: 'trunk-password', label: 'password', type: 'password', rules: [length(1, 128)], hint: 'passwordKeptHint' },
      { id: 'trunk-inbound', label: 'inboundFrom', placeholder: '203.0.113.10, 198.51.100.0/24', hint: 'inboundFromHint' },
      { id: 'trunk-position', label: 'position', type: 'number', value: '0', rules: [required, whole(-1000, 1000)] },
      { id: 'trunk-register', label: 'register', type: 'checkbox' },
    ],
    send: () => {
      /** @type {Record<string, unknown>} */
      const b = {
        uri: value('trunk-uri'), transport: value('trunk-transport'), register: value('trunk-register') === 'true',
        position: Number(value('trunk-position')),
        inboundFrom: value('trunk-inbound').split(/[\s,]+/).filter(Boolean),
      };
      if (value('trunk-username')) b.username = value('trunk-username');
      const pw = /** @type {HTMLInputElement} */ (document.getElementById('trunk-password')).value;
      if (pw) b.password = pw;
      return call('PUT', `/api/v1/admin/trunks/${encodeURIComponent(value('trunk-name'))}`, ctx.token(), b);
    },
    done: (a) => { ctx.notify(a.status === 201 ? 'trunkAdded' : 'trunkSaved'); trunks(ctx); },
  });
  ctx.screen.replaceChildren(card('trunks', [table(['trunkName', 'trunkUri', 'transport', 'health', 'position', 'actions'], rows, 'trunks', 'none'), f]));
}

/** Policy: the call rules, and the blacklist. @param {Ctx} ctx */
async function policy(ctx) {
  const [p, bl] = await Promise.all([load(ctx, '/api/v1/admin/policy'), load(ctx, '/api/v1/admin/blacklist')]);
  if (!p || !bl || ctx.current() !== 'policy') return;
  const countries = pattern(/^\d{1,3}([\s,]+\d{1,3})*$/, 'errCountries');
  const f = form({
    ctx, id: 'policy-form', submit: 'savePolicy',
    fields: [
      { id: 'policy-balance', label: 'balanceCents', type: 'number', value: String(p.balanceCents), rules: [required, whole(-1e12, 1e12)], hint: 'balanceHint' },
      { id: 'policy-countries', label: 'allowedCountries', value: (p.allowedCountries || []).join(', '), rules: [countries], hint: 'countriesHint', wide: true },
      { id: 'policy-trial-calls', label: 'trialCallsPerDay', type: 'number', value: String(p.trialCallsPerDay), rules: [required, whole(0, 1e6)] },
      { id: 'policy-callee-day', label: 'maxPerCalleeDay', type: 'number', value: String(p.maxCallsPerCalleePerDay), rules: [required, whole(0, 1e6)], hint: 'zeroNoLimit' },
      { id: 'policy-callee-minute', label: 'maxPerCalleeMinute', type: 'number', value: String(p.maxCallsPerCalleePerMinute ?? 0), rules: [required, whole(0, 1000)], hint: 'zeroNoLimit' },
      { id: 'policy-trial', label: 'trial', type: 'checkbox', value: !!p.trial },
    ],
    send: () => call('PUT', '/api/v1/admin/policy', ctx.token(), {
      balanceCents: Number(value('policy-balance')),
      allowedCountries: value('policy-countries').split(/[\s,]+/).filter(Boolean),
      trial: value('policy-trial') === 'true',
      trialCallsPerDay: Number(value('policy-trial-calls')),
      maxCallsPerCalleePerDay: Number(value('policy-callee-day')),
      maxCallsPerCalleePerMinute: Number(value('policy-callee-minute')),
    }),
    done: () => { ctx.notify('policySaved'); policy(ctx); },
  });
  const rows = (/** @type {string[]} */ (bl.numbers || [])).map((n) => h('tr', { 'data-number': n }, [
    h('td', { class: 'num', text: n }),
    h('td', {}, [rowButton('unblock danger', 'remove', () =>
      act(ctx, call('DELETE', `/api/v1/admin/blacklist/${encodeURIComponent(n)}`, ctx.token()), 'unblocked', () => policy(ctx)))]),
  ]));
  const add = form({
    ctx, id: 'blacklist-form', submit: 'block',
    fields: [{ id: 'blacklist-number', label: 'number', rules: [required, e164], placeholder: '14155550100' }],
    send: () => call('PUT', `/api/v1/admin/blacklist/${encodeURIComponent(value('blacklist-number').replace(/^\+/, ''))}`, ctx.token()),
    done: () => { ctx.notify('blocked'); policy(ctx); },
  });
  ctx.screen.replaceChildren(card('policy', [f]), card('blacklist', [table(['number', 'actions'], rows, 'blacklist', 'none'), add]));
}

const SCOPES = ['records:read', 'recordings:read', 'webhooks:write', 'users:write'];

/** The key just made: shown once, gone at the next visit of the tab. @type {{name: string, key: string} | null} */
let freshKey = null;

/** API keys: list, create (the key shown once), revoke. @param {Ctx} ctx */
async function keys(ctx) {
  const body = await load(ctx, '/api/v1/admin/api-keys');
  if (!body || ctx.current() !== 'keys') return;
  const live = (/** @type {any[]} */ (body.keys || [])).filter((k) => k.revokedAt == null);
  const rows = live.map((k) => h('tr', { 'data-key-id': String(k.id), 'data-name': k.name }, [
    h('td', { text: k.name }),
    h('td', { class: 'num', text: `${k.prefix}…` }),
    h('td', { text: (k.scopes || []).join(', ') }),
    h('td', { text: when(k.createdAt) }),
    h('td', { text: when(k.lastUsedAt) }),
    h('td', {}, [rowButton('delete-key danger', 'delete', () => {
      if (!window.confirm(tf('confirmDeleteKey', { name: k.name }))) return;
      act(ctx, call('DELETE', `/api/v1/admin/api-keys/${k.id}`, ctx.token()), 'keyDeleted', () => keys(ctx));
    })]),
  ]));
  const f = form({
    ctx, id: 'key-form', submit: 'createKey',
    fields: [
      { id: 'key-name', label: 'keyName', rules: [required, length(1, 64)], placeholder: 'crm' },
      ...SCOPES.map((s) => /** @type {Field} */ ({ id: `key-scope-${s.replace(':', '-')}`, label: `scope_${s}`, type: 'checkbox' })),
    ],
    send: async () => {
      const scopes = SCOPES.filter((s) => value(`key-scope-${s.replace(':', '-')}`) === 'true');
      if (!scopes.length) return { status: 400, body: { error: 'noScope', message: SCOPES.join(', ') } };
      return call('POST', '/api/v1/admin/api-keys', ctx.token(), { name: value('key-name'), scopes });
    },
    done: (a) => {
      freshKey = { name: a.body.name, key: a.body.key };
      ctx.notify('keyCreated');
      keys(ctx).then(() => { freshKey = null; });
    },
  });
  const shown = freshKey ? h('div', { class: 'secret', id: 'key-secret-box', role: 'status' }, [
    h('p', { text: tf('keyShownOnce', { name: freshKey.name }) }),
    h('code', { id: 'key-secret', text: freshKey.key }),
    h('button', { type: 'button', id: 'key-copy', text: t('copy'), click: async (e) => {
      const key = document.getElementById('key-secret')?.textContent || '';
      const b = /** @type {HTMLButtonElement} */ (e.target);
      try { await navigator.clipboard.writeText(key); b.textContent = t('copied'); } catch (_) { b.textContent = t('copyFailed'); }
    } }),
  ]) : null;
  ctx.screen.replaceChildren(card('apiKeys', [shown, table(['keyName', 'prefix', 'scopes', 'created', 'lastUsed', 'actions'], rows, 'keys', 'none'), f]));
}

/** Webhook: set, delete, the deliveries. @param {Ctx} ctx */
async function webhook(ctx) {
  const token = ctx.token();
  const [hook, log] = await Promise.all([
    call('GET', '/api/v1/admin/webhook', token).catch(() => null),
    load(ctx, '/api/v1/admin/webhook/deliveries?limit=50'),
  ]);
  if (!hook || !log || ctx.current() !== 'webhook') return;
  if (hook.status === 401) return ctx.ended('sessionExpired');
  const set = hook.status === 200 ? hook.body : null;
  const f = form({
    ctx, id: 'webhook-form', submit: 'saveWebhook',
    fields: [
      { id: 'webhook-url', label: 'webhookUrl', value: set ? set.url : '', rules: [required, httpUrl, length(1, 2048)], placeholder: 'https://crm.example.com/hooks/seatline', wide: true },
      { id: 'webhook-secret', label: 'webhookSecret', type: 'password', rules: [required, length(16, 256)], hint: 'secretHint' },
    ],
    send: () => call('PUT', '/api/v1/admin/webhook', ctx.token(),
      { url: value('webhook-url'), secret: /** @type {HTMLInputElement} */ (document.getElementById('webhook-secret')).value }),
    done: () => { ctx.notify('webhookSaved'); webhook(ctx); },
  });
  const state = h('p', { id: 'webhook-state', text: set ? tf('webhookIsSet', { url: set.url }) : t('webhookNotSet') });
  const del = set ? h('button', { type: 'button', id: 'webhook-delete', class: 'danger', text: t('deleteWebhook'), click: () => {
    if (!window.confirm(t('confirmDeleteWebhook'))) return;
    act(ctx, call('DELETE', '/api/v1/admin/webhook', ctx.token()), 'webhookDeleted', () => webhook(ctx));
  } }) : null;
  const rows = (/** @type {any[]} */ (log.deliveries || [])).map((d) => h('tr', { 'data-delivery-id': d.deliveryId, 'data-state': d.state }, [
    h('td', { text: when(d.createdAt) }),
    h('td', { class: 'num', text: d.callId }),
    h('td', { text: t(`delivery_${d.state}`) }),
    h('td', { class: 'num', text: String(d.attempts) }),
    h('td', { text: d.lastStatus == null ? (d.lastError || '—') : String(d.lastStatus) }),
  ]));
  ctx.screen.replaceChildren(
    card('webhook', [state, f, del]),
    card('deliveries', [table(['created', 'callId', 'state', 'attempts', 'lastResult'], rows, 'deliveries', 'none')]),
  );
}

const MODES = ['off', 'all', 'onDemand'];

/** Recording: the tenant's mode, each group's own, the retention. @param {Ctx} ctx */
async function recording(ctx) {
  const [r, gs, m] = await Promise.all([load(ctx, '/api/v1/admin/recording'), load(ctx, '/api/v1/admin/groups'), load(ctx, '/api/v1/admin/music')]);
  if (!r || !gs || !m || ctx.current() !== 'recording') return;
  const groupsOf = /** @type {any[]} */ (gs.groups || []);
  const own = /** @type {Record<string, string>} */ (r.groups || {});
  const modes = MODES.map((m) => /** @type {[string, string]} */ ([m, t(`mode_${m}`)]));
  const f = form({
    ctx, id: 'recording-form', submit: 'saveRecording',
    fields: [
      { id: 'recording-mode', label: 'recordingMode', type: 'select', options: modes, value: r.mode },
      { id: 'recording-days', label: 'retentionDays', type: 'number', value: String(r.retentionDays), rules: [required, whole(1, 3650)] },
      ...groupsOf.map((g) => /** @type {Field} */ ({
        id: `recording-group-${g.group}`, label: tf('groupMode', { group: g.group }), type: 'select',
        options: [['', t('mode_inherit')], ...modes], value: own[g.group] || '',
      })),
    ],
    send: () => {
      /** @type {Record<string, string>} */
      const groups = {};
      for (const g of groupsOf) if (value(`recording-group-${g.group}`)) groups[g.group] = value(`recording-group-${g.group}`);
      return call('PUT', '/api/v1/admin/recording', ctx.token(), { mode: value('recording-mode'), retentionDays: Number(value('recording-days')), groups });
    },
    done: () => { ctx.notify('recordingSaved'); recording(ctx); },
  });
  ctx.screen.replaceChildren(card('recording', [h('p', { class: 'hint', text: t('recordingHint') }), f]), clipCard(ctx, {
    name: 'music', path: '/api/v1/admin/music', own: m.source === 'tenant',
    status: m.source === 'tenant' ? tf('musicOwn', { seconds: Math.round(m.seconds) }) : t('musicBuiltin'),
    title: 'waitingMusic', file: 'musicFile', hint: 'musicHint', upload: 'uploadMusic', reset: 'useBuiltin', saved: 'musicSaved',
    again: () => recording(ctx),
  }));
}

/** The largest music file the server takes. */
const MUSIC_LIMIT = 8 * 1024 * 1024;

/**
 * An audio file the tenant gives callers (the waiting music, a DID's menu
 * prompt): what plays now, a WAV upload (sent as it is, the server converts
 * it) and a button to remove it.
 * @param {Ctx} ctx
 * @param {{name: string, path: string, own: boolean, status: string, title: string, file: string, hint: string,
 *   upload: string, reset: string, saved: string, again: () => void}} c
 */
function clipCard(ctx, c) {
  const status = h('p', { id: `${c.name}-status`, 'data-own': String(c.own), text: c.status });
  const file = /** @type {HTMLInputElement} */ (h('input', { id: `${c.name}-file`, type: 'file', accept: 'audio/wav,audio/x-wav,.wav' }));
  const error = h('p', { class: 'error-text', id: `${c.name}-error`, role: 'alert', hidden: true });
  const show = (/** @type {string | null} */ text) => { error.hidden = !text; error.textContent = text || ''; };
  const upload = /** @type {HTMLButtonElement} */ (h('button', { class: 'primary', type: 'button', id: `${c.name}-upload`, text: t(c.upload) }));
  const reset = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', id: `${c.name}-reset`, text: t(c.reset), disabled: !c.own }));
  /** @param {Response | null} r */
  const after = async (r) => {
    upload.disabled = false;
    if (!r) return show(t('serverUnreachable'));
    if (r.status === 401) return ctx.ended('sessionExpired');
    if (r.status >= 400) return show(refusal({ status: r.status, body: await r.json().catch(() => null) }));
    show(null);
    ctx.notify(c.saved);
    c.again();
  };
  upload.addEventListener('click', async () => {
    const f = file.files && file.files[0];
    if (!f) return show(t('errNoFile'));
    if (f.size > MUSIC_LIMIT) return show(tf('errFileTooBig', { mib: 8 }));
    upload.disabled = true;
    const headers = { authorization: `Bearer ${ctx.token()}`, 'content-type': 'audio/wav' };
    after(await fetch(c.path, { method: 'PUT', headers, body: f }).catch(() => null));
  });
  reset.addEventListener('click', async () => {
    after(await fetch(c.path, { method: 'DELETE', headers: { authorization: `Bearer ${ctx.token()}` } }).catch(() => null));
  });
  return card(c.title, [
    status,
    h('div', { class: 'admin-form' }, [
      h('label', { class: 'wide' }, [h('span', { text: t(c.file) }), file, h('small', { text: t(c.hint) })]),
      h('div', { class: 'submit' }, [upload, reset]),
    ]),
    error,
  ], c.name);
}

/** Embed: the tenant's host (CRM) origins. @param {Ctx} ctx */
async function embed(ctx) {
  const e = await load(ctx, '/api/v1/admin/embed');
  if (!e || ctx.current() !== 'embed') return;
  const lines = (/** @type {string} */ v) => v.split(/[\s,]+/).filter(Boolean);
  /** @type {import('./forms.js').Rule} */
  const origins = (v) => {
    const list = lines(v);
    if (list.length > 20) return ['errTooMany', { max: 20 }];
    for (const o of list) { const bad = origin(o); if (bad) return bad; }
    return null;
  };
  const f = form({
    ctx, id: 'embed-form', submit: 'saveOrigins',
    fields: [{ id: 'embed-origins', label: 'allowedOrigins', type: 'textarea', value: (e.allowedOrigins || []).join('\n'), rules: [origins], placeholder: 'https://crm.example.com', hint: 'originsHint', wide: true }],
    send: () => call('PUT', '/api/v1/admin/embed', ctx.token(), { allowedOrigins: lines(value('embed-origins')) }),
    done: () => { ctx.notify('originsSaved'); embed(ctx); },
  });
  const now = (e.allowedOrigins || []).length
    ? h('ul', { id: 'origins' }, e.allowedOrigins.map((/** @type {string} */ o) => h('li', { text: o })))
    : h('p', { id: 'origins', class: 'hint', text: t('originsGlobal') });
  ctx.screen.replaceChildren(card('embed', [now, f]));
}

/** The tabs this module draws, by name. */
export const TABS = /** @type {Record<string, (ctx: Ctx) => Promise<void>>} */ ({
  groups, numbers, trunks, policy, keys, webhook, recording, embed,
});
