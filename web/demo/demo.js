// The demo CRM: embeds the softphone with the host SDK (/sdk/seatline.js),
// as a CRM developer would, and logs every message in both directions.

import { SeatlinePhone } from '../sdk/seatline.js';

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

// The softphone is served from another origin than this page when we can
// (127.0.0.1 <-> localhost), so the demo exercises cross-origin embedding.
function softphoneOrigin() {
  const q = new URLSearchParams(location.search).get('softphone');
  if (q) return q;
  /** @type {Record<string, string>} */
  const swap = { '127.0.0.1': 'localhost', localhost: '127.0.0.1' };
  const host = swap[location.hostname];
  return host ? `${location.protocol}//${host}${location.port ? `:${location.port}` : ''}` : location.origin;
}

const ORIGIN = softphoneOrigin();
const log = $('log');
$('origins').textContent = `this page: ${location.origin} · softphone: ${ORIGIN}`;

/** @param {'in'|'out'} dir @param {unknown} msg */
function addLog(dir, msg) {
  const li = document.createElement('li');
  li.className = dir;
  const time = new Date().toLocaleTimeString(undefined, { hour12: false });
  const arrow = dir === 'out' ? 'CRM → softphone' : 'softphone → CRM';
  li.innerHTML = '<span class="time"></span><span class="dir"></span><code></code>';
  li.children[0].textContent = time;
  li.children[1].textContent = arrow;
  // The log shows what travelled, with the password masked on screen.
  li.children[2].textContent = JSON.stringify(msg, (k, v) => (k === 'password' && v ? '********' : v));
  log.prepend(li);
}

// The SDK creates the iframe (with the allow attribute the softphone needs),
// talks only to the softphone's origin, and keeps what we send until the
// softphone is ready.
const phone = new SeatlinePhone({ container: '#phone', origin: ORIGIN });
phone.iframe.id = 'iframe';
phone.onSend((m) => addLog('out', m));
phone.onMessage((m) => addLog('in', m));
phone.on('agentStatus', (s) => { $('sum-agent').textContent = String(s.code); });
phone.on('dialStatus', (s) => { $('sum-dial').textContent = String(s.code); });
phone.on('callQuality', (q) => {
  $('sum-quality').textContent = `MOS ${q.mos.toFixed(1)} · loss ${q.lossPct.toFixed(1)} % · jitter ${Math.round(q.jitterMs)} ms · RTT ${Math.round(q.rttMs)} ms`;
});
phone.on('dialStatus', (s) => { if (s.code === 5) { $('sum-quality').textContent = '–'; $('sum-recording').textContent = '–'; } });
phone.on('recording', (r) => {
  $('sum-recording').textContent = r.refused ? `refused: ${r.refused}` : (r.on ? 'recording' : 'stopped');
});
phone.on('login', (l) => { $('sum-login').textContent = `${l.email} · sip ${l.sipNum} · group ${l.groupNo}`; });
for (const type of /** @type {const} */ (['logout', 'tokenInvalid'])) {
  phone.on(type, () => {
    $('sum-login').textContent = '–';
    $('sum-agent').textContent = '–';
  });
}

function initContent() {
  const method = /** @type {HTMLSelectElement} */ ($('f-method')).value;
  const lang = /** @type {HTMLSelectElement} */ ($('f-lang')).value;
  /** @type {import('../sdk/seatline.js').InitContent} */
  const content = { lang };
  if (method === '0') {
    content.email = /** @type {HTMLInputElement} */ ($('f-email')).value;
    content.password = /** @type {HTMLInputElement} */ ($('f-password')).value;
  }
  if (method === '0' || method === '1') content.loginMethod = method === '0' ? 0 : 1;
  return content;
}

$('init-form').addEventListener('submit', (e) => { e.preventDefault(); phone.init(initContent()); });
$('send-email-login').addEventListener('click', () => phone.toEmailLogin());
$('send-logout').addEventListener('click', () => phone.loginOut());
$('clear-log').addEventListener('click', () => log.replaceChildren());

const CONTACTS = [
  ['Echo test', '12025550100'],
  ['Tone', '12025550101'],
  ['Busy line', '12025550186'],
  ['Never answers', '12025550108'],
  ['Declines', '12025550103'],
  ['Hangs up after 3 s', '12025550120'],
];
let order = 1;
for (const [name, number] of CONTACTS) {
  const tr = document.createElement('tr');
  tr.innerHTML = '<td></td><td><code></code></td><td><button type="button" class="call">Call</button></td>';
  tr.children[0].textContent = name;
  /** @type {HTMLElement} */ (tr.querySelector('code')).textContent = `+${number}`;
  /** @type {HTMLElement} */ (tr.querySelector('button')).addEventListener('click', () => phone.callOut({
    callee: number, countryCode: '1', orderId: `demo-${order++}`, params: { customer: name },
  }));
  $('contacts').append(tr);
}

/** @type {[string, import('../sdk/seatline.js').AgentStatusCode][]} */
const STATUSES = [['1 Idle', 1], ['2 Busy', 2], ['3 Meeting', 3], ['4 Meal', 4], ['5 Restroom', 5], ['6 Sleep', 6], ['7 Other', 7]];
for (const [label, code] of STATUSES) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.addEventListener('click', () => phone.setAgentStatus(code));
  $('status-buttons').append(b);
}

/** @type {[string, () => void][]} */
const CALL_CONTROLS = [
  ['answer', () => phone.answer()], ['reject', () => phone.reject()], ['hangUp', () => phone.hangUp()],
  ['mute', () => phone.mute()], ['unmute', () => phone.unmute()], ['hold', () => phone.hold()], ['unhold', () => phone.unhold()],
  ['startRecording', () => phone.startRecording()], ['stopRecording', () => phone.stopRecording()],
];
for (const [label, run] of CALL_CONTROLS) {
  const b = document.createElement('button');
  b.type = 'button';
  b.id = `send-${label}`;
  b.textContent = label;
  b.addEventListener('click', run);
  $('call-buttons').append(b);
}
$('dtmf-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($('f-dtmf'));
  if (input.value) phone.sendDtmf(input.value);
  input.value = '';
});

// The vendor's document sends init from the iframe's onload; with the SDK,
// init can be called at once: it waits for the softphone's `ready`. The demo
// only signs in by itself when asked (?autologin=1), so a newcomer sees the page first.
if (new URLSearchParams(location.search).get('autologin') === '1') phone.init(initContent());

// The reason codes: each row names the rule of the demo data that gives its
// code, and its button places the call that breaks the rule.

/**
 * @typedef {{
 *   code: import('../sdk/seatline.js').HangupCode,
 *   meaning: string,
 *   rule: string,
 *   call: import('../sdk/seatline.js').CallOutOptions,
 *   user?: string,
 *   times?: number,
 * }} ReasonRow
 * `user`: the account to sign in as first; `times`: the button places up to
 * this many calls, one after the other, until one fails with the code.
 */

/** @type {ReasonRow[]} */
const REASONS = [
  {
    code: 810, meaning: 'Account in arrears', user: 'broke@demo.local',
    rule: 'The broke tenant has no credit: sign in as broke@demo.local, then call.',
    call: { callee: '12025550101', countryCode: '1' },
  },
  {
    code: 811, meaning: 'Country not allowed',
    rule: 'Germany (+49) is not in the demo tenant\u2019s countries (US and Canada, UK, Hong Kong, China, Mexico, Spain).',
    call: { callee: '4915112345678', countryCode: '49' },
  },
  {
    code: 812, meaning: 'Number invalid',
    rule: '12345 is not a phone number.',
    call: { callee: '12345', countryCode: '1' },
  },
  {
    code: 813, meaning: 'Session expired, sign in again',
    rule: 'A call placed after the session went idle longer than [sessions] idle_timeout_secs (5 h by default), before the server signs the tabs out (then: tokenInvalid, and callOut gets dialStatus 6).',
    call: { callee: '12025550100', countryCode: '1' },
  },
  {
    code: 814, meaning: 'Number on the blacklist',
    rule: '12025550166 is on the demo tenant\u2019s blacklist.',
    call: { callee: '12025550166', countryCode: '1' },
  },
  {
    code: 815, meaning: 'Call-frequency limit reached',
    rule: 'Five calls a minute per agent and number: the button calls Declines (12025550103) until one is refused, the sixth within a minute.',
    call: { callee: '12025550103', countryCode: '1' }, times: 6,
  },
  {
    code: 816, meaning: 'Caller number cannot be used',
    rule: 'The caller ID 12025550999 is not one of the demo tenant\u2019s numbers.',
    call: { callee: '12025550100', countryCode: '1', caller: '12025550999' },
  },
  {
    code: 817, meaning: 'Trial calls used up today', user: 'trial@demo.local',
    rule: 'The trial tenant may place two calls a day: sign in as trial@demo.local; the button places calls (hanging up each answered one) until one is refused, the third of the day.',
    call: { callee: '12025550101', countryCode: '1' }, times: 3,
  },
  {
    code: 819, meaning: 'Calling from the DID failed',
    rule: 'The caller ID 12025550179 is the demo tenant\u2019s, but the sandbox carrier will not carry it.',
    call: { callee: '12025550100', countryCode: '1', caller: '12025550179' },
  },
];

/**
 * Places one call and waits for its end, hanging it up when answered.
 * Resolves with its last dialStatus (code 5), or null when no call was
 * placed (not signed in, offline) or nothing came for a minute.
 * @param {import('../sdk/seatline.js').CallOutOptions} call
 * @returns {Promise<import('../sdk/seatline.js').CallDialStatus | null>}
 */
function placeCall(call) {
  return new Promise((resolve) => {
    /** @param {import('../sdk/seatline.js').CallDialStatus | null} end */
    const done = (end) => { off(); clearTimeout(timer); resolve(end); };
    const timer = setTimeout(() => done(null), 60_000);
    const off = phone.on('dialStatus', (s) => {
      // The phone's own states (6 not signed in, 3 offline, and 801 when the
      // softphone has no link) come without a call.
      if (!('callId' in s)) {
        if (s.code !== 4) done(null);
      } else if (s.direction === 1 && s.code === 2) {
        phone.hangUp();
      } else if (s.direction === 1 && s.code === 5) {
        done(s);
      }
    });
    phone.callOut({ ...call, orderId: `demo-${order++}`, params: { reason: 'demo' } });
  });
}

let placing = false;
/** @param {ReasonRow} row @param {HTMLButtonElement} button */
async function produce(row, button) {
  if (placing) return;
  placing = true;
  button.setAttribute('aria-busy', 'true');
  try {
    for (let i = 0; i < (row.times || 1); i++) {
      const end = await placeCall(row.call);
      if (!end || end.hangupCode) break;
    }
  } finally {
    placing = false;
    button.removeAttribute('aria-busy');
  }
}

/** Signs the softphone in as `email` (with the demo password in the form). @param {string} email */
function signInAs(email) {
  /** @type {HTMLInputElement} */ ($('f-email')).value = email;
  /** @type {HTMLSelectElement} */ ($('f-method')).value = '0';
  phone.init(initContent());
}

for (const row of REASONS) {
  const tr = document.createElement('tr');
  tr.innerHTML = '<td><code class="reason"></code></td><td></td><td class="rule"></td><td class="actions"></td>';
  /** @type {HTMLElement} */ (tr.querySelector('code')).textContent = String(row.code);
  tr.children[1].textContent = row.meaning;
  tr.children[2].textContent = row.rule;
  const actions = tr.children[3];
  const user = row.user;
  if (user) {
    const as = document.createElement('button');
    as.type = 'button';
    as.id = `as-${row.code}`;
    as.textContent = `Sign in as ${user.split('@')[0]}`;
    as.title = `init as ${user}`;
    as.addEventListener('click', () => signInAs(user));
    actions.append(as);
  }
  const b = document.createElement('button');
  b.type = 'button';
  b.id = `code-${row.code}`;
  b.className = 'call';
  b.textContent = row.times ? `Call (up to ${row.times}×)` : 'Call';
  b.title = `callOut ${JSON.stringify(row.call)}`;
  b.addEventListener('click', () => produce(row, b));
  actions.append(b);
  $('reason-codes').append(tr);
}
