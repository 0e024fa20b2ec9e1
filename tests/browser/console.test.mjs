// The operator console in the browser: an admin signs in at /console/ and
// watches the live wallboard (Server-Sent Events, no polling) follow an
// agent's softphone: a status change, and a sandbox echo call from ringing
// to connected to gone, each within a second; the admin forces the agent's
// status and the softphone follows. A non-admin is refused with a clear
// message. Takes docs/screenshots/console-wallboard.png.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setup, SCREENSHOTS } from './harness.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env.teardown(); });

/** Waits until `probe()` is truthy; returns how long it took (ms). */
async function within(ms, probe, what) {
  const start = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - start;
    if (Date.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function openConsole(email) {
  return env.openConsole(email, { viewport: { width: 1200, height: 820 }, signedIn: false });
}

test('a non-admin is refused with a clear message', async () => {
  const page = await openConsole('agent2@demo.local');
  await page.locator('#signin-error').waitFor();
  assert.match(await page.locator('#signin-error').textContent(), /not a tenant administrator/);
  assert.equal(await page.locator('#agents').count(), 0);
  // Every string in every language; the page follows the language picked.
  const missing = await page.evaluate(async () => (await import('/console/js/i18n.js')).missingKeys());
  assert.deepEqual(missing, { 'en-US': [], 'zh-CN': [], 'es-MX': [] });
  await page.locator('#lang').selectOption('zh-CN');
  assert.equal(await page.locator('#signin-error').textContent(), '此账号不是租户管理员，控制台仅供管理员使用。');
  assert.equal(await page.locator('#signin-button').textContent(), '登录');
  await page.context().close();
});

test('the wallboard follows the softphone within a second, and the softphone follows the console', async () => {
  const page = await openConsole('admin@demo.local');
  await page.locator('#agents').waitFor();
  // EventSource, not polling: count the wallboard requests from here on.
  const polled = [];
  page.on('request', (r) => { if (r.url().endsWith('/api/v1/admin/wallboard')) polled.push(r.url()); });

  const tab = await env.open();
  await tab.signIn('agent1@demo.local');
  const row = page.locator('#agents tr[data-email="agent1@demo.local"]');
  await row.waitFor();
  assert.equal(await row.getAttribute('data-signed-in'), 'true');

  // The agent picks Meal in the softphone.
  await tab.frame.locator('#status-button').click();
  await tab.frame.locator('#status-menu').waitFor();
  const picked = Date.now();
  await tab.frame.locator('#status-menu li[data-code="4"]').click();
  await within(1000, async () => (await row.getAttribute('data-code')) === '4', 'the row shows Meal');
  console.log(`status change on the wallboard after ${Date.now() - picked} ms`);
  assert.match(await row.locator('td.status').textContent(), /Meal/);

  // A sandbox echo call: ringing, connected, gone.
  let from = await tab.count();
  await tab.send({ type: 'callOut', content: { caller: '', callee: '12025550100', countryCode: '1', orderId: 'console-1' } });
  const ringing = await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 0, { from });
  const callRow = page.locator(`#calls tr[data-call-id="${ringing.data.content.callId}"]`);
  const rangIn = await within(1000, async () => (await callRow.count()) === 1, 'the call shows');
  assert.equal(await callRow.getAttribute('data-state'), 'ringing');
  const up = await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 2, { from, timeout: 10000 });
  const upIn = await within(1000, async () => (await callRow.getAttribute('data-state')) === 'connected', 'connected shows');
  assert.match(await callRow.textContent(), /12025550100/);
  assert.match(await callRow.textContent(), /Outbound/);
  // The duration moves while the call is up (the once-a-second refresh).
  await within(2500, async () => /0:0[1-9]/.test(await callRow.locator('td:nth-child(5)').textContent()), 'the duration moves');
  await page.screenshot({ path: join(SCREENSHOTS, 'console-wallboard.png'), fullPage: true });

  from = await tab.count();
  await tab.send({ type: 'hangUp' });
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from });
  const goneIn = await within(1000, async () => (await callRow.count()) === 0, 'the call goes');
  console.log(`call on the wallboard: ringing after ${rangIn} ms, connected after ${upIn} ms (${up.data.content.callId}), gone after ${goneIn} ms`);

  // The supervisor forces Meeting; the softphone follows.
  from = await tab.count();
  await within(1000, async () => (await row.getAttribute('data-activity')) === 'none', 'the agent is out of the call');
  await row.locator('select.status-picker').selectOption('3');
  await row.locator('button.set-status').click();
  const forced = await tab.waitFor((m) => m.type === 'agentStatus' && m.content.code === 3, { from, timeout: 1000 });
  assert.equal(forced.data.content.code, 3);
  await within(1000, async () => (await tab.frame.locator('#status-button').getAttribute('data-code')) === '3', 'the softphone shows Meeting');
  await within(1000, async () => (await row.getAttribute('data-code')) === '3', 'the row shows Meeting');

  // The supervisor signs the agent out: the softphone is told its session ended.
  from = await tab.count();
  await row.locator('button.sign-out').click();
  await tab.waitFor((m) => m.type === 'tokenInvalid', { from, timeout: 3000 });
  await within(1000, async () => (await row.getAttribute('data-signed-in')) === 'false', 'the row shows signed out');

  assert.deepEqual(polled, [], 'no polling: every update came by the stream');
  await tab.page.context().close();
  await page.context().close();
});

test('the Users tab adds a user with a seat, shows the API\'s refusals, and the new agent signs in', async () => {
  const page = await openConsole('admin@demo.local');
  await page.locator('#agents').waitFor();
  await page.locator('#tab-users').click();
  await page.locator('#users tr[data-email="agent1@demo.local"]').waitFor();

  // Refused: the API's reason is shown, nothing is added.
  await page.locator('#new-email').fill('not-an-email');
  await page.locator('#new-password').fill('secret-pass-1');
  await page.locator('#add-user-button').click();
  await page.locator('#user-error').waitFor();
  assert.match(await page.locator('#user-error').textContent(), /not added: email is an email address/);
  assert.equal(await page.locator('#users tr[data-email="not-an-email"]').count(), 0);

  await page.locator('#new-email').fill('agent9@demo.local');
  await page.locator('#new-password').fill('secret-pass-9');
  await page.locator('#new-seat').fill('8109');
  await page.locator('#new-group').fill('G001');
  await page.locator('#add-user-button').click();
  const row = page.locator('#users tr[data-email="agent9@demo.local"]');
  await row.waitFor();
  assert.match(await row.textContent(), /8109/);
  assert.equal(await page.locator('#user-error').count(), 0);

  // The new agent signs in through the softphone and shows on the wallboard.
  const tab = await env.open();
  await tab.signIn('agent9@demo.local', 'secret-pass-9');
  await page.locator('#tab-wallboard').click();
  const agentRow = page.locator('#agents tr[data-email="agent9@demo.local"]');
  await agentRow.waitFor({ timeout: 2000 });
  assert.equal(await agentRow.getAttribute('data-signed-in'), 'true');
  await tab.page.context().close();
  await page.context().close();
});
