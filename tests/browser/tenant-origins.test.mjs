// A tenant's own host origins (PUT /api/v1/admin/embed): before sign-in the
// global list applies (here none: any origin); once an agent has signed in,
// the softphone listens to and posts to the tenant's origins only.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, startHost } from './harness.mjs';

let env;
let stranger;
let base;
let admin;

const callOut = (callee) => ({ type: 'callOut', content: { caller: '', callee, countryCode: '1', orderId: 'ord-t', params: '' } });

async function api(path, opts = {}) {
  const r = await fetch(`${base}${path}`, { ...opts, headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}`, ...(opts.headers || {}) } });
  return { status: r.status, body: await r.json().catch(() => null) };
}

/** The softphone frame of a host page. */
async function softphoneFrame(page) {
  for (let i = 0; i < 200; i++) {
    const f = page.frames().find((fr) => fr.url().includes('/admin/'));
    if (f) return f;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('no softphone frame');
}

before(async () => {
  stranger = await startHost();
  env = await setup();
  base = `http://127.0.0.1:${env.seatline.port}`;
  const r = await fetch(`${base}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'admin@demo.local', password: 'demo1234' }) });
  admin = (await r.json()).token;
  const set = await api('/api/v1/admin/embed', { method: 'PUT', body: JSON.stringify({ allowedOrigins: ['https://other-crm.example', env.host.origin] }) });
  assert.equal(set.status, 200, JSON.stringify(set.body));
});
after(async () => { await env.teardown(); await stranger.stop(); });

test('an allowed host signs in and drives the softphone, which posts to that origin only', async () => {
  const ctx = await env.newBrowser();
  const tab = await env.open(ctx);
  const frame = await softphoneFrame(tab.page);
  // Before sign-in: the global list, empty here, so any origin.
  assert.equal(await frame.evaluate(() => window.seatline.hostTarget()), '*');
  const from = await tab.signIn();
  assert.equal(await frame.evaluate(() => window.seatline.hostTarget()), env.host.origin);
  await tab.send(callOut('12025550100'));
  const ringing = await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 0, { from });
  assert.equal(ringing.data.content.callee, '12025550100');
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 2, { from });
  await tab.send({ type: 'hangUp' });
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from });
  // A second tab joins the session it finds in the browser: the server
  // gives it the tenant's list too.
  const second = await env.open(ctx);
  await second.waitFor((m) => m.type === 'dialStatus' && m.content.code === 4);
  const secondFrame = await softphoneFrame(second.page);
  assert.equal(await secondFrame.evaluate(() => window.seatline.hostTarget()), env.host.origin);
  await second.page.close();
  await tab.send({ type: 'loginOut' });
  await tab.waitFor((m) => m.type === 'logout', { from });
  // Signed out: the global list again.
  assert.equal(await frame.evaluate(() => window.seatline.hostTarget()), '*');
  await ctx.close();
});

test('a host of another origin hears nothing after sign-in and its callOut is ignored', async () => {
  const ctx = await env.newBrowser();
  const page = await ctx.newPage();
  await page.goto(stranger.url(env.seatline.softphoneUrl));
  // Before sign-in the global list (any origin) applies: the stranger hears ready.
  await page.waitForFunction(() => window.received.some((r) => r.data.type === 'ready'));
  const frame = await softphoneFrame(page);
  await page.evaluate(() => window.hostSend({ type: 'init', content: { email: 'agent2@demo.local', password: 'demo1234', lang: 'en-US', loginMethod: 0 } }));
  await frame.waitForFunction(() => window.seatline.state.phase === 'signedIn', null, { timeout: 8000 });
  // The tenant's list applies: posts go to its first origin, never to '*'.
  assert.equal(await frame.evaluate(() => window.seatline.hostTarget()), 'https://other-crm.example');
  await page.evaluate((m) => window.hostSend(m), callOut('12025550177'));
  await new Promise((r) => setTimeout(r, 2000));
  // No answer of any kind since ready (not even the sign-in's), and no call placed.
  const heard = await page.evaluate(() => window.received.map((r) => r.data.type));
  assert.deepEqual(heard, ['ready'], `the stranger heard ${JSON.stringify(heard)}`);
  assert.equal(await frame.evaluate(() => window.seatline.state.call == null), true);
  const calls = await api('/api/v1/admin/calls?limit=50');
  assert.equal(calls.status, 200);
  assert.ok(!calls.body.calls.some((c) => c.callee === '12025550177'), JSON.stringify(calls.body.calls));
  await ctx.close();
});

test('a bad origin list is refused and the softphone keeps the one set', async () => {
  const bad = await api('/api/v1/admin/embed', { method: 'PUT', body: JSON.stringify({ allowedOrigins: [`${stranger.origin}/crm`] }) });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error, 'badOrigin');
  const got = await api('/api/v1/admin/embed');
  assert.deepEqual(got.body, { allowedOrigins: ['https://other-crm.example', env.host.origin] });
});
