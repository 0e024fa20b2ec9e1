// Calls placed from the host (callOut) and the dial pad, through the
// server's SIP trunk to the sandbox carrier: the dialStatus sequence of
// every row of the sandbox table, with every field.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './harness.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env.teardown(); });

const FIELDS = ['code', 'callId', 'direction', 'caller', 'callee', 'orderId', 'params', 'other', 'callStartTimestamp', 'callConnectedTimestamp', 'callHangUpTimestamp'];

/** Waits for the dialStatus codes in order (after `from`); returns their contents. */
async function expectCodes(tab, from, codes, timeout = 10000) {
  const got = [];
  for (const code of codes) {
    const hit = await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === code, { from, timeout });
    const all = await tab.received();
    from = all.indexOf(all.find((r) => r.at === hit.at && r.data.content && r.data.content.code === code)) + 1;
    got.push(hit.data.content);
  }
  return got;
}

function callOut(callee, extra = {}) {
  return { type: 'callOut', content: { caller: '', callee, countryCode: '1', orderId: 'ord-1', params: '{"crm":"x"}', ...extra } };
}

test('a callOut right after init is placed: 0, 2 with every field, in both tabs; hangUp ends it with 5', async () => {
  const ctx = await env.newBrowser();
  const a = await env.open(ctx);
  const from = await a.count();
  await a.send({ type: 'init', content: { email: 'agent1@demo.local', password: 'demo1234', lang: 'en-US', loginMethod: 0 } });
  await a.send(callOut('12025550100'));
  const [ringing, connected] = await expectCodes(a, from, [0, 2]);
  for (const f of FIELDS) assert.ok(f in ringing, `dialStatus 0 has ${f}`);
  assert.equal(ringing.direction, 1);
  assert.equal(ringing.callee, '12025550100');
  assert.equal(ringing.orderId, 'ord-1');
  assert.equal(ringing.params, '{"crm":"x"}');
  assert.equal(ringing.callConnectedTimestamp, '');
  assert.equal(connected.callId, ringing.callId);
  assert.ok(connected.callConnectedTimestamp >= ringing.callStartTimestamp);
  // The agent is busy during the call.
  await a.waitFor((m) => m.type === 'agentStatus' && m.content.code === 2, { from });
  // A second tab opened during the call shows it and tells its host.
  const b = await env.open(ctx);
  const seen = await b.waitFor((m) => m.type === 'dialStatus' && m.content.code === 2);
  assert.equal(seen.data.content.callId, ringing.callId);
  await b.frame.locator('#call-panel[data-state="connected"]').waitFor();
  // Hang up from the host (our extension): both tabs get 5.
  const fromB = await b.count();
  await a.send({ type: 'hangUp' });
  const [ended] = await expectCodes(a, from, [5]);
  assert.equal(ended.callId, ringing.callId);
  assert.ok(ended.callHangUpTimestamp >= ended.callConnectedTimestamp);
  assert.ok(!('hangupCode' in ended));
  await expectCodes(b, fromB, [5]);
  await a.waitFor((m) => m.type === 'agentStatus' && m.content.code === 1, { from: from + 5 });
  await ctx.close();
});

const ROWS = [
  ['12025550101 answers at once with a tone', '12025550101', {}, [0, 2], 'hangUp'],
  ['12025550103 declines', '12025550103', {}, [0, 5], { sipCode: 603 }],
  ['12025550104 does not exist', '12025550104', {}, [0, 812, 5], { hangupCode: 812, sipCode: 404 }],
  ['12025550108 rings until cancelled', '12025550108', {}, [0], 'hangUp', { sipCode: 487 }],
  ['12025550120 hangs up by itself after 3 s', '12025550120', {}, [0, 2, 5], {}],
  ['12025550150 carrier failure', '12025550150', {}, [0, 800, 5], { hangupCode: 800, sipCode: 503 }],
  ['12025550186 is busy', '12025550186', {}, [0, 5], { sipCode: 486 }],
  ['the caller 12025550179 is refused by the carrier', '12025550100', { caller: '12025550179' }, [0, 819, 5], { hangupCode: 819, sipCode: 403 }],
  ['an invalid number is refused before dialing', '12345', {}, [812, 5], { hangupCode: 812 }],
  ['any other valid number rings 2 s and answers', '14155550123', { countryCode: '1' }, [0, 2], 'hangUp'],
];

test('every row of the sandbox table gives its dialStatus sequence and codes', async () => {
  const tab = await env.open();
  await tab.signIn('agent2@demo.local');
  for (const [name, callee, extra, codes, then, hungUpFields] of ROWS) {
    let endFields = hungUpFields;
    const from = await tab.count();
    await tab.send(callOut(callee, extra));
    const got = await expectCodes(tab, from, codes);
    const ids = new Set(got.map((g) => g.callId));
    assert.equal(ids.size, 1, `${name}: one callId`);
    let end = got[got.length - 1];
    if (then === 'hangUp') {
      await tab.send({ type: 'hangUp' });
      [end] = await expectCodes(tab, from + codes.length, [5]);
    } else {
      endFields = then;
    }
    assert.equal(end.code, 5, name);
    for (const [k, v] of Object.entries(endFields || {})) assert.equal(end[k], v, `${name}: ${k}`);
    if (!endFields || !('hangupCode' in endFields)) assert.ok(!('hangupCode' in end), `${name}: no hangupCode`);
    // Every message of the call has every field.
    for (const g of got) for (const f of FIELDS) assert.ok(f in g, `${name}: ${f} in ${g.code}`);
    // A placed call made the agent busy; it ends back at the pre-call status.
    if (codes[0] === 0) await tab.waitFor((m) => m.type === 'agentStatus' && m.content.code === 1, { from: from + 1 });
  }
  await tab.page.context().close();
});

test('the dial pad places a call; the in-call view shows it and its hang-up button ends it', async () => {
  const tab = await env.open();
  await tab.signIn();
  const from = await tab.count();
  await tab.frame.locator('#number').fill('2025550100');
  await tab.frame.locator('#call').click();
  await tab.frame.locator('#call-panel[data-state="calling"]').waitFor();
  assert.equal(await tab.frame.locator('#call-number').textContent(), '+12025550100');
  await expectCodes(tab, from, [0, 2]);
  await tab.frame.locator('#call-panel[data-state="connected"]').waitFor();
  assert.match(await tab.frame.locator('#call-state').textContent(), /Connected 00:0\d/);
  // The demo tenant records on demand: the host starts it, the agent sees REC.
  await tab.send({ type: 'startRecording' });
  await tab.frame.locator('#recording').waitFor();
  await tab.page.locator('#iframe').screenshot({ path: new URL('../../docs/screenshots/softphone-call.png', import.meta.url).pathname });
  await tab.frame.locator('#hangup').click();
  await expectCodes(tab, from, [5]);
  await tab.frame.locator('#call-panel[data-state="ended"]').waitFor();
  await tab.page.context().close();
});

test('the call policy set by the tenant admin refuses calls with its codes (811, 814, 810, 817), and a second call gives 801', async () => {
  const base = `http://127.0.0.1:${env.seatline.port}`;
  const signIn = await fetch(`${base}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'admin@demo.local', password: 'demo1234' }) });
  const { token } = await signIn.json();
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const setPolicy = async (p) => {
    const r = await fetch(`${base}/api/v1/admin/policy`, { method: 'PUT', headers: auth, body: JSON.stringify({ balanceCents: 100000, allowedCountries: [], trial: false, trialCallsPerDay: 10, maxCallsPerCalleePerDay: 0, ...p }) });
    assert.equal(r.status, 204);
  };
  const tab = await env.open();
  await tab.signIn('agent2@demo.local');
  const refused = async (callee, code, extra = {}) => {
    const from = await tab.count();
    await tab.send(callOut(callee, extra));
    const [first, end] = await expectCodes(tab, from, [code, 5]);
    assert.equal(end.hangupCode, code);
    assert.equal(end.callId, first.callId);
    for (const f of FIELDS) assert.ok(f in first, `${code}: ${f}`);
  };
  await setPolicy({ allowedCountries: ['1'] });
  await refused('85221234567', 811, { countryCode: '852' });
  await fetch(`${base}/api/v1/admin/blacklist/12025550101`, { method: 'PUT', headers: auth });
  await refused('12025550101', 814);
  await fetch(`${base}/api/v1/admin/blacklist/12025550101`, { method: 'DELETE', headers: auth });
  await setPolicy({ balanceCents: 0 });
  await refused('12025550101', 810);
  await setPolicy({ trial: true, trialCallsPerDay: 0 });
  await refused('12025550101', 817);
  await setPolicy({});
  // A second callOut while a call rings: the phone cannot take it (801).
  const from = await tab.count();
  await tab.send(callOut('12025550108'));
  await expectCodes(tab, from, [0]);
  await tab.send(callOut('12025550100'));
  const [busy, end] = await expectCodes(tab, from, [801, 5]);
  assert.equal(end.hangupCode, 801);
  assert.notEqual(busy.callId, (await tab.messages()).find((m) => m.type === 'dialStatus' && m.content.code === 0).content.callId);
  await tab.send({ type: 'hangUp' });
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5 && m.content.sipCode === 487, { from });
  await tab.page.context().close();
});
