// With allowed origins configured, the softphone listens to and posts to
// those origins only, and only they may frame it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, startHost } from './harness.mjs';

let env;
let stranger;
before(async () => {
  // The allowed host's origin must be known before the server starts.
  stranger = await startHost();
  env = await setup({ allowedOrigins: ['__HOST__'] });
});
after(async () => { await env.teardown(); await stranger.stop(); });

test('an allowed host drives the softphone; its messages carry the softphone origin', async () => {
  const tab = await env.open();
  await tab.signIn();
  const got = await tab.received();
  assert.ok(got.every((r) => r.origin === env.seatline.origin));
  await tab.send({ type: 'loginOut' });
  await tab.waitFor((m) => m.type === 'logout');
  await tab.page.context().close();
});

test('a host of another origin is ignored and hears nothing', async () => {
  const ctx = await env.newBrowser();
  const page = await ctx.newPage();
  const blocked = [];
  page.on('console', () => {});
  page.on('response', (r) => { if (r.url().includes('/admin/')) blocked.push(r.headers()['content-security-policy']); });
  await page.goto(stranger.url(env.seatline.softphoneUrl));
  await new Promise((r) => setTimeout(r, 1500));
  // The CSP forbids this origin from framing the softphone at all.
  assert.ok(blocked.some((csp) => csp && csp.includes(`frame-ancestors 'self' ${env.host.origin}`)), `CSP: ${blocked}`);
  assert.deepEqual(await page.evaluate(() => window.received), []);
  await ctx.close();
});

test('messages from an origin that is not allowed are ignored even when the page is framed', async () => {
  // Open the softphone full-page and post to it from a window of the stranger origin.
  const ctx = await env.newBrowser();
  const page = await ctx.newPage();
  await page.goto(stranger.url('about:blank'));
  const popupPromise = page.waitForEvent('popup');
  await page.evaluate((url) => { window.phone = window.open(url); }, env.seatline.softphoneUrl);
  const popup = await popupPromise;
  await popup.waitForLoadState();
  await popup.waitForFunction(() => window.seatline && window.seatline.state.phase === 'signedOut');
  await page.evaluate(() => window.phone.postMessage({ type: 'init', content: { email: 'agent1@demo.local', password: 'demo1234', loginMethod: 0 } }, '*'));
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await popup.evaluate(() => window.seatline.state.phase), 'signedOut');
  await ctx.close();
});
