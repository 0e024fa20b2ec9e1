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
phone.on('dialStatus', (s) => { if (s.code === 5) $('sum-quality').textContent = '–'; });
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
