// A menu (IVR) set up in the console alone: the admin gives DID
// 12025550172 a menu ("1" Spanish-speaking agents of G001, "2" anyone of
// G001) after a bad one is caught in the page, and uploads its prompt. A
// sandbox caller to that DID is answered at once and hears the prompt (its
// level, measured at the sandbox side), the wallboard shows the call in
// the menu; the caller presses 1 and the call rings agent2, who speaks
// Spanish, never agent1, who has been idle longer; agent2 answers it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setup, sineWav, until, SCREENSHOTS } from './harness.mjs';

const DID = '12025550172';
let env;
let base;
before(async () => {
  env = await setup();
  base = `http://127.0.0.1:${env.seatline.port}`;
});
after(async () => { await env.teardown(); });

test('a menu and its prompt set in the console: the caller hears the prompt, presses 1 and rings the agent with the skill', async () => {
  const page = await env.openConsole('admin@demo.local', { viewport: { width: 1200, height: 900 } });
  await page.locator('#tab-numbers').click();
  await page.locator(`#dids tr[data-number="${DID}"]`).waitFor();
  await page.locator('#did-number').selectOption(DID);
  await page.locator('#did-kind').selectOption('menu');
  // A line that is no option is caught in the page, and nothing is sent.
  await page.locator('#did-menu').fill('1 = G001 es\n1 = G001');
  await page.locator('#did-form-submit').click();
  await page.locator('#did-form-error:not([hidden])').waitFor();
  assert.match(await page.locator('#did-form-error').textContent(), /key = group/);
  await page.locator('#did-menu').fill('1 = G001 es\n2 = G001');
  await page.locator('#did-menu-timeout').fill('20');
  await page.locator('#did-menu-default').fill('7');
  await page.locator('#did-form-submit').click();
  await page.locator('#did-form-error:not([hidden])', { hasText: 'keys' }).waitFor();
  await page.locator('#did-menu-default').fill('2');
  await page.locator('#did-form-submit').click();
  const row = page.locator(`#dids tr[data-number="${DID}"] .route`, { hasText: 'Menu: 1 → G001 (es), 2 → G001' });
  await row.waitFor();

  // Its prompt: first none (the music plays), then a WAV uploaded here.
  await page.locator('#did-number').selectOption(DID);
  await page.locator('#prompt-status[data-own="false"]', { hasText: DID }).waitFor();
  await page.locator('#prompt-file').setInputFiles({ name: 'menu.wav', mimeType: 'audio/wav', buffer: sineWav(16000, 2) });
  await page.locator('#prompt-upload').click();
  await page.locator('#prompt-status[data-own="true"]', { hasText: '2 s' }).waitFor();
  // The menu comes back into the form to edit.
  assert.equal(await page.locator('#did-kind').inputValue(), 'menu');
  assert.equal(await page.locator('#did-menu').inputValue(), '1 = G001 es\n2 = G001');
  await page.screenshot({ path: join(SCREENSHOTS, 'console-menu.png'), fullPage: true });

  // agent2 speaks Spanish (set through the API; the console's skills form
  // has its own test); agent1 signs in first, so it idled longer.
  const admin = await fetch(`${base}/api/v1/sessions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'admin@demo.local', password: 'demo1234' }),
  }).then((r) => r.json());
  const users = await fetch(`${base}/api/v1/admin/users`, { headers: { authorization: `Bearer ${admin.token}` } }).then((r) => r.json());
  const agent2 = users.users.find((u) => u.email === 'agent2@demo.local');
  const put = await fetch(`${base}/api/v1/admin/users/${agent2.id}/skills`, {
    method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${admin.token}` },
    body: JSON.stringify({ skills: { es: 3 } }),
  });
  assert.equal(put.status, 204);
  const a = await env.open();
  await a.signIn('agent1@demo.local');
  const b = await env.open();
  await b.signIn('agent2@demo.local');
  const fromA = await a.count();
  const fromB = await b.count();

  await page.locator('#tab-wallboard').click();
  await page.locator('#agents').waitFor();
  await env.sandboxCall(DID, '14155550123', '', '1');
  // Answered and choosing: the wallboard shows it in the menu.
  await page.locator('#calls tr[data-state="menu"]').first().waitFor({ timeout: 3000 });
  const ring = (await b.waitFor((m) => m.type === 'dialStatus' && m.content.code === 1, { from: fromB, timeout: 8000 })).data.content;
  assert.equal(ring.callee, DID);
  // Before the key the caller heard the prompt: about -9 dBFS (the
  // built-in music is near -24).
  const heard = await until('the sandbox saw the call answered', 2000, async () => {
    const calls = await env.sandboxCalls();
    return calls.reverse().find((c) => c.to === DID && c.state === 'answered');
  });
  assert.ok(heard.heardPackets >= 40, `packets: ${heard.heardPackets}`);
  assert.ok(heard.heardPeakDbfs > -12 && heard.heardPeakDbfs < -6, `the prompt: ${heard.heardPeakDbfs} dBFS`);
  await b.send({ type: 'answer' });
  await b.waitFor((m) => m.type === 'dialStatus' && m.content.code === 2, { from: fromB });
  await page.locator('#calls tr[data-state="connected"]').first().waitFor({ timeout: 3000 });
  const rangA = (await a.messages()).slice(fromA).filter((m) => m.type === 'dialStatus');
  assert.deepEqual(rangA, [], 'agent1 never rang');
  await b.send({ type: 'hangUp' });
  await b.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from: fromB });
  await a.page.context().close();
  await b.page.context().close();
  await page.context().close();
});
