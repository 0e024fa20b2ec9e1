// The host SDK (/sdk/seatline.js), as a CRM uses it: a page of another
// origin imports it from the Seatline server, lets it create the iframe, and
// drives the softphone with its methods and typed events only.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './harness.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env.teardown(); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const AGENT1 = { email: 'agent1@demo.local', password: 'demo1234', lang: 'en-US', loginMethod: 0 };

/** Opens the SDK host page; returns the page once the SDK has made the phone. */
async function openSdkHost(init, ctx) {
  ctx = ctx || (await env.newBrowser());
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(env.host.sdkUrl(`${env.seatline.origin}/sdk/seatline.js`, init));
  await page.waitForFunction(() => window.phone || window.sdkError);
  assert.equal(await page.evaluate(() => window.sdkError || null), null, 'the SDK loads from the Seatline server');
  return page;
}

const events = (page) => page.evaluate(() => window.events);

/** Waits for the first SDK event (from index `from`) matching pred; returns it. */
async function waitEvent(page, pred, { from = 0, timeout = 10000 } = {}) {
  const until = Date.now() + timeout;
  for (;;) {
    const all = await events(page);
    const hit = all.slice(from).find(pred);
    if (hit) return hit;
    if (Date.now() > until) throw new Error(`no matching SDK event within ${timeout} ms; got ${JSON.stringify(all)}`);
    await sleep(25);
  }
}

const dial = (code) => (e) => e.type === 'dialStatus' && e.content.code === code;

test('the SDK drives the softphone from another origin: init before ready, status, callOut with dialStatus events, call controls, hangUp, loginOut', async () => {
  const page = await openSdkHost(AGENT1);
  // The iframe the SDK made: the softphone, with what it needs to use the microphone.
  const made = await page.evaluate(() => ({ src: phone.iframe.src, allow: phone.iframe.getAttribute('allow'), origin: phone.origin, w: phone.iframe.width, h: phone.iframe.height }));
  assert.equal(made.origin, env.seatline.origin, 'the softphone origin is where the SDK came from');
  assert.equal(made.src, env.seatline.softphoneUrl);
  assert.match(made.allow, /(^|;\s*)microphone(;|$)/);
  assert.match(made.allow, /(^|;\s*)autoplay(;|$)/);
  assert.deepEqual([made.w, made.h], ['256', '460']);
  assert.notEqual(new URL(page.url()).origin, env.seatline.origin, 'host and softphone are different origins');

  // init was sent before the softphone was ready: the SDK kept it, and the sign-in followed.
  assert.equal(await page.evaluate(() => window.readyAtInit), false);
  await waitEvent(page, dial(4));
  assert.deepEqual((await events(page)).map((e) => [e.type, e.content]), [
    ['ready', undefined],
    ['agentExists', { code: 1 }],
    ['login', { email: 'agent1@demo.local', sipNum: '8001', groupNo: 'G001' }],
    ['agentStatus', { code: 1 }],
    ['dialStatus', { code: 4 }],
  ]);
  assert.equal(await page.evaluate(() => phone.isReady), true);

  // Status from the host.
  let from = (await events(page)).length;
  await page.evaluate(() => phone.setAgentStatus(3));
  await waitEvent(page, (e) => e.type === 'agentStatus' && e.content.code === 3, { from });
  await page.evaluate(() => phone.setAgentStatus(1));
  await waitEvent(page, (e) => e.type === 'agentStatus' && e.content.code === 1, { from });

  // A call: 0, then 2, with the fields echoed; params given as an object travel as JSON.
  from = (await events(page)).length;
  await page.evaluate(() => phone.callOut({ callee: '12025550100', countryCode: '1', orderId: 'sdk-1', params: { crm: 'sdk' } }));
  const ringing = (await waitEvent(page, dial(0), { from })).content;
  const connected = (await waitEvent(page, dial(2), { from })).content;
  assert.equal(ringing.direction, 1);
  assert.equal(ringing.callee, '12025550100');
  assert.equal(ringing.orderId, 'sdk-1');
  assert.equal(ringing.params, '{"crm":"sdk"}');
  assert.equal(ringing.caller.length > 0, true, 'a caller ID from the pool');
  assert.equal(connected.callId, ringing.callId);

  // The call controls of the SDK reach the softphone.
  const frame = page.frameLocator('#iframe');
  await page.evaluate(() => phone.mute());
  await frame.locator('#mute[aria-pressed="true"]').waitFor();
  await page.evaluate(() => phone.unmute());
  await frame.locator('#mute[aria-pressed="false"]').waitFor();
  await page.evaluate(() => phone.hold());
  await frame.locator('#hold[aria-pressed="true"]').waitFor();
  await page.evaluate(() => phone.unhold());
  await frame.locator('#hold[aria-pressed="false"]').waitFor();
  await page.evaluate(() => phone.sendDtmf('7#'));
  let digits = '';
  for (const until = Date.now() + 8000; Date.now() < until && digits !== '7#'; await sleep(200)) {
    const body = await (await fetch(`http://127.0.0.1:${env.seatline.port}/api/v1/sandbox/digits`)).json();
    digits = (body.calls.find((c) => c.callee === '12025550100') || {}).digits || '';
  }
  assert.equal(digits, '7#');

  // hangUp ends it: 5, same call.
  await page.evaluate(() => phone.hangUp());
  const ended = (await waitEvent(page, dial(5), { from })).content;
  assert.equal(ended.callId, ringing.callId);
  assert.ok(!('hangupCode' in ended));

  // loginOut: logout.
  from = (await events(page)).length;
  await page.evaluate(() => phone.loginOut());
  await waitEvent(page, (e) => e.type === 'logout', { from });
  await page.context().close();
});

test('the SDK ignores messages that are not from its softphone: other origins, and other frames of the softphone origin', async () => {
  const page = await openSdkHost();
  await waitEvent(page, (e) => e.type === 'ready');
  // Forged by the host page itself (another origin than the softphone).
  await page.evaluate(() => {
    window.postMessage({ type: 'login', content: { email: 'forged@evil' } }, '*');
    window.postMessage({ type: 'dialStatus', content: { code: 2, callId: 'forged' } }, '*');
  });
  // A second softphone frame (right origin, wrong window): its messages are not ours.
  await page.evaluate((url) => {
    window.otherFrame = [];
    const f = document.createElement('iframe');
    f.id = 'other';
    f.src = url;
    window.addEventListener('message', (e) => { if (e.source === f.contentWindow) window.otherFrame.push(e.data.type); });
    document.body.append(f);
  }, env.seatline.softphoneUrl);
  await page.waitForFunction(() => window.otherFrame.includes('ready'));
  // (Signed out, it answers loginOut with logout; a sign-in there would be shared with ours.)
  await page.evaluate(() => document.getElementById('other').contentWindow.postMessage({ type: 'loginOut' }, '*'));
  await page.waitForFunction(() => window.otherFrame.includes('logout'));
  await sleep(300);
  assert.deepEqual((await events(page)).map((e) => e.type), ['ready'], 'only our softphone\'s ready');

  // Listeners can be removed; the phone can be taken down.
  const left = await page.evaluate(async () => {
    let calls = 0;
    const off = phone.on('logout', () => { calls += 1; });
    off();
    phone.loginOut();
    await new Promise((r) => setTimeout(r, 1000));
    const heard = window.events.some((e) => e.type === 'logout');
    phone.destroy();
    return { calls, heard, iframe: !!document.getElementById('iframe') };
  });
  assert.deepEqual(left, { calls: 0, heard: true, iframe: false });
  await page.context().close();
});

test('the SDK gives the host callQuality with its content, for the connected call', async () => {
  // A hand on the softphone's WebSocket: the test adds a sample the server's media plane would send.
  const ctx = await env.newBrowser();
  /** @type {any} */
  let ws = null;
  await ctx.routeWebSocket((url) => url.pathname === '/ws', (route) => {
    route.connectToServer();
    ws = route;
  });
  const page = await openSdkHost({ ...AGENT1, email: 'agent2@demo.local' }, ctx);
  await waitEvent(page, dial(4));
  const from = (await events(page)).length;
  await page.evaluate(() => phone.callOut({ callee: '12025550100', countryCode: '1', orderId: 'sdk-q' }));
  const up = await waitEvent(page, dial(2), { from });
  const content = { callId: up.content.callId, lossPct: 5.5, jitterMs: 21, rttMs: 95.5, mos: 3.4 };
  ws.send(JSON.stringify({ ev: 'quality', content }));
  const got = await waitEvent(page, (e) => e.type === 'callQuality', { from });
  assert.deepEqual(got.content, content);
  assert.ok((await page.evaluate(async () => (await import(new URLSearchParams(location.search).get('sdk'))).SOFTPHONE_MESSAGES)).includes('callQuality'));
  await page.evaluate(() => phone.hangUp());
  await waitEvent(page, dial(5), { from });
  await ctx.close();
});
