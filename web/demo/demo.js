// The demo CRM: embeds the softphone the way the vendor's document shows,
// and logs every message in both directions.

// The softphone is served from another origin than this page when we can
// (127.0.0.1 <-> localhost), so the demo exercises cross-origin embedding.
function softphoneOrigin() {
  const q = new URLSearchParams(location.search).get('softphone');
  if (q) return q;
  const swap = { '127.0.0.1': 'localhost', localhost: '127.0.0.1' };
  const host = swap[location.hostname];
  return host ? `${location.protocol}//${host}${location.port ? `:${location.port}` : ''}` : location.origin;
}

const ORIGIN = softphoneOrigin();
const iframe = /** @type {HTMLIFrameElement} */ (document.getElementById('iframe'));
const log = /** @type {HTMLOListElement} */ (document.getElementById('log'));
document.getElementById('origins').textContent = `this page: ${location.origin} · softphone: ${ORIGIN}`;

/** @param {'in'|'out'} dir @param {any} msg */
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

/** @param {any} message */
function send(message) {
  addLog('out', message);
  iframe.contentWindow.postMessage(message, ORIGIN);
}

window.addEventListener('message', (e) => {
  if (e.origin !== ORIGIN || e.source !== iframe.contentWindow) return;
  const msg = e.data;
  addLog('in', msg);
  if (msg.type === 'agentStatus') document.getElementById('sum-agent').textContent = String(msg.content.code);
  if (msg.type === 'dialStatus') document.getElementById('sum-dial').textContent = String(msg.content.code);
  if (msg.type === 'login') document.getElementById('sum-login').textContent = `${msg.content.email} · sip ${msg.content.sipNum} · group ${msg.content.groupNo}`;
  if (msg.type === 'logout' || msg.type === 'tokenInvalid') {
    document.getElementById('sum-login').textContent = '–';
    document.getElementById('sum-agent').textContent = '–';
  }
});

function initMessage() {
  const method = /** @type {HTMLSelectElement} */ (document.getElementById('f-method')).value;
  const lang = /** @type {HTMLSelectElement} */ (document.getElementById('f-lang')).value;
  /** @type {any} */
  const content = { lang };
  if (method === '0') {
    content.email = /** @type {HTMLInputElement} */ (document.getElementById('f-email')).value;
    content.password = /** @type {HTMLInputElement} */ (document.getElementById('f-password')).value;
  }
  if (method !== '') content.loginMethod = Number(method);
  return { type: 'init', content };
}

document.getElementById('init-form').addEventListener('submit', (e) => { e.preventDefault(); send(initMessage()); });
document.getElementById('send-email-login').addEventListener('click', () => send({ type: 'toEmailLogin' }));
document.getElementById('send-logout').addEventListener('click', () => send({ type: 'loginOut' }));
document.getElementById('clear-log').addEventListener('click', () => log.replaceChildren());

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
  tr.querySelector('code').textContent = `+${number}`;
  tr.querySelector('button').addEventListener('click', () => send({
    type: 'callOut',
    content: { caller: '', callee: number, countryCode: '1', orderId: `demo-${order++}`, params: JSON.stringify({ customer: name }) },
  }));
  document.getElementById('contacts').append(tr);
}

const STATUSES = ['1 Idle', '2 Busy', '3 Meeting', '4 Meal', '5 Restroom', '6 Sleep', '7 Other'];
for (const s of STATUSES) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = s;
  b.addEventListener('click', () => send({ type: 'setAgentStatus', content: { code: Number(s[0]) } }));
  document.getElementById('status-buttons').append(b);
}

// As in the vendor's document: send init from the iframe's onload. Here the
// demo only signs in when asked (?autologin=1), so a newcomer sees the page first.
iframe.onload = () => {
  if (new URLSearchParams(location.search).get('autologin') === '1') send(initMessage());
};
iframe.src = `${ORIGIN}/admin/#/nxcc`;
