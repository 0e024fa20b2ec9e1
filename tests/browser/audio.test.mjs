// Real audio: the tab that holds the audio sends its (fake) microphone over
// WebRTC to the server, which relays it to the sandbox carrier over RTP;
// the echo comes back the same way and the page plays it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, softphone, hearsAudio } from './harness.mjs';

const inbound = (tab) => softphone(tab).evaluate(() => window.seatline.audio.inbound());

let env;
before(async () => { env = await setup(); });
after(async () => { await env.teardown(); });

/** Hangs up and waits for the end, so the next test finds the agent free. */
async function hangUpAndWait(tab) {
  const from = await tab.count();
  await tab.send({ type: 'hangUp' });
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from });
}

async function callEcho(tab, callee = '12025550100') {
  const from = await tab.count();
  await tab.send({ type: 'callOut', content: { caller: '', callee, countryCode: '1', orderId: 'a-1', params: '' } });
  const connected = await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 2, { from, timeout: 10000 });
  return connected.data.content;
}

test('microphone and speaker can be chosen before any call', async () => {
  const tab = await env.open();
  await tab.signIn('agent2@demo.local');
  await softphone(tab).locator('#devices').click();
  await softphone(tab).locator('#settings').waitFor();
  const mics = await softphone(tab).locator('#mic-select option').count();
  assert.ok(mics >= 2, `default + the fake microphone: ${mics}`);
  const value = await softphone(tab).locator('#mic-select option').nth(1).getAttribute('value');
  await softphone(tab).locator('#mic-select').selectOption(value);
  assert.ok((await softphone(tab).locator('#speaker-select option').count()) >= 1);
  await tab.send({ type: 'loginOut' });
  await tab.waitFor((m) => m.type === 'logout');
  await tab.page.context().close();
});

test('an echo call: the page receives the echo of its microphone (inbound packets, non-zero level)', async () => {
  const tab = await env.open();
  await tab.signIn();
  assert.equal(await softphone(tab).locator('#audio-where').textContent(), 'Audio in this tab');
  await callEcho(tab);
  const stats = await hearsAudio(tab);
  assert.ok(stats.packetsReceived > 25, JSON.stringify(stats));
  await tab.send({ type: 'hangUp' });
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5);
  await tab.page.context().close();
});

test('the ringback tone plays while the call rings, before any answer', async () => {
  const tab = await env.open();
  await tab.signIn('agent2@demo.local');
  const from = await tab.count();
  await tab.send({ type: 'callOut', content: { caller: '', callee: '12025550108', countryCode: '1' } });
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 0, { from });
  await hearsAudio(tab);
  await tab.send({ type: 'hangUp' });
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from });
  await tab.page.context().close();
});

test('DTMF digits from the keypad and from the host reach the sandbox', async () => {
  const tab = await env.open();
  await tab.signIn();
  const call = await callEcho(tab, '12025550101');
  await softphone(tab).locator('.key[data-key="4"]').click();
  await softphone(tab).locator('.key[data-key="2"]').click();
  await tab.send({ type: 'sendDtmf', content: { digits: '#9' } });
  const until = Date.now() + 8000;
  let digits = '';
  while (Date.now() < until) {
    const r = await fetch(`http://127.0.0.1:${env.seatline.port}/api/v1/sandbox/digits`);
    const body = await r.json();
    digits = (body.calls.find((c) => c.callee === call.callee) || {}).digits || '';
    if (digits === '42#9') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(digits, '42#9');
  await hangUpAndWait(tab);
  await tab.page.context().close();
});

test('hold and unhold: every tab sees it, and no audio flows while held', async () => {
  const tab = await env.open();
  await tab.signIn('agent2@demo.local');
  await callEcho(tab);
  await hearsAudio(tab);
  await softphone(tab).locator('#hold').click();
  await softphone(tab).locator('#hold[aria-pressed="true"]').waitFor();
  await new Promise((r) => setTimeout(r, 500));
  const a = await inbound(tab);
  await new Promise((r) => setTimeout(r, 1000));
  const b = await inbound(tab);
  assert.ok(b.packetsReceived - a.packetsReceived < 5, `held, yet ${b.packetsReceived - a.packetsReceived} packets came`);
  await tab.send({ type: 'unhold' });
  await softphone(tab).locator('#hold[aria-pressed="false"]').waitFor();
  await new Promise((r) => setTimeout(r, 1000));
  const c = await inbound(tab);
  assert.ok(c.packetsReceived - b.packetsReceived > 20, 'audio again after unhold');
  await tab.send({ type: 'mute' });
  await softphone(tab).locator('#mute[aria-pressed="true"]').waitFor();
  await hangUpAndWait(tab);
  await tab.page.context().close();
});

test('two tabs: only one holds the audio; closing it mid-call hands the audio to the other within 3 s', async () => {
  const ctx = await env.newBrowser();
  const a = await env.open(ctx);
  await a.signIn();
  const b = await env.open(ctx);
  await b.waitFor((m) => m.type === 'dialStatus' && m.content.code === 4);
  assert.equal(await softphone(a).locator('#audio-where').textContent(), 'Audio in this tab');
  assert.equal(await softphone(b).locator('#audio-where').textContent(), 'Audio in another tab');
  assert.equal(await softphone(b).evaluate(() => window.seatline.audio.pc), null, 'the second tab opens no audio');
  const call = await callEcho(a);
  await hearsAudio(a);
  const fromB = await b.count();
  await a.page.close();
  const t0 = Date.now();
  await b.page.bringToFront();
  await hearsAudio(b, 3000);
  const took = Date.now() - t0;
  assert.ok(took <= 3000, `took over in ${took} ms`);
  assert.ok(!(await b.messages()).slice(fromB).some((m) => m.type === 'dialStatus' && m.content.code === 5), 'the call went on');
  await b.send({ type: 'hangUp' });
  const end = await b.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from: fromB });
  assert.equal(end.data.content.callId, call.callId);
  await ctx.close();
});

test('a reload mid-call keeps the call, and the reloaded page gets the audio back within 3 s', async () => {
  const tab = await env.open();
  await tab.signIn('agent2@demo.local');
  const call = await callEcho(tab);
  await hearsAudio(tab);
  await tab.page.reload();
  const t0 = Date.now();
  await tab.frameReady();
  // The reloaded page learns of the call in progress and tells its host.
  const again = await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 2);
  assert.equal(again.data.content.callId, call.callId);
  await hearsAudio(tab, 3000);
  assert.ok(Date.now() - t0 <= 3500, `audio back after ${Date.now() - t0} ms`);
  await softphone(tab).locator('#call-panel[data-state="connected"]').waitFor();
  await tab.send({ type: 'hangUp' });
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5);
  await tab.page.context().close();
});

test('without the allow attribute the audio tab reports dialStatus -1 and shows why', async () => {
  const ctx = await env.newBrowser();
  const page = await ctx.newPage();
  await page.goto(env.host.url(env.seatline.softphoneUrl) + '&noallow=1');
  const { Tab } = await import('./harness.mjs');
  const tab = new Tab(page);
  await tab.frameReady();
  await tab.send({ type: 'init', content: { email: 'agent1@demo.local', password: 'demo1234', lang: 'en-US', loginMethod: 0 } });
  const hit = await tab.waitFor((m) => m.type === 'dialStatus');
  assert.equal(hit.data.content.code, -1);
  const warning = tab.frame.locator('#audio-warning');
  await warning.waitFor();
  assert.match(await warning.textContent(), /allow="microphone/);
  await tab.send({ type: 'loginOut' });
  await tab.waitFor((m) => m.type === 'logout');
  await ctx.close();
});

test('the host receives callQuality during an echo call, and the call record holds its figures', async () => {
  const tab = await env.open();
  await tab.signIn();
  const from = await tab.count();
  const call = await callEcho(tab);
  // Measured by the media plane over both legs, every 5 s.
  const q = await tab.waitFor((m) => m.type === 'callQuality', { from, timeout: 15000 });
  const c = q.data.content;
  assert.equal(c.callId, call.callId);
  for (const k of ['lossPct', 'jitterMs', 'rttMs', 'mos']) assert.equal(typeof c[k], 'number', `${k}: ${JSON.stringify(c)}`);
  assert.ok(c.mos >= 4 && c.mos <= 4.5, `a loopback call sounds good: ${JSON.stringify(c)}`);
  assert.ok(c.lossPct >= 0 && c.lossPct < 1, JSON.stringify(c));
  await hangUpAndWait(tab);

  const base = `http://127.0.0.1:${env.seatline.port}`;
  const session = await (await fetch(`${base}/api/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'admin@demo.local', password: 'demo1234' }),
  })).json();
  const list = await (await fetch(`${base}/api/v1/admin/calls?limit=50`, {
    headers: { authorization: `Bearer ${session.token}` },
  })).json();
  const rec = list.calls.find((r) => r.callId === call.callId);
  assert.ok(rec, `the call is in the records: ${JSON.stringify(list.calls.map((r) => r.callId))}`);
  assert.equal(typeof rec.mos, 'number', JSON.stringify(rec));
  assert.equal(typeof rec.lossPct, 'number', JSON.stringify(rec));
  assert.ok(rec.mos >= 4, JSON.stringify(rec));
  await tab.page.context().close();
});
