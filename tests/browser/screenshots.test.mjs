// The demo CRM page works end to end, and the README's pictures are taken
// here from the real UI so they never go stale.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setup, launchProfile, SCREENSHOTS } from './harness.mjs';

let env;
before(async () => { env = await setup(); mkdirSync(SCREENSHOTS, { recursive: true }); });
after(async () => { await env.teardown(); });

test('the demo page signs agent1 in, logs both directions, and a second tab stays in step', async () => {
  const ctx = await launchProfile({ width: 1280, height: 720 });
  const page = await ctx.newPage();
  const demoUrl = `http://127.0.0.1:${env.seatline.port}/demo`;
  await page.goto(demoUrl);
  assert.match(await page.locator('#origins').textContent(), /softphone: http:\/\/localhost:/);
  await page.frameLocator('#iframe').locator('#email').waitFor();
  await page.locator('#send-init').click();
  await page.locator('#sum-login').filter({ hasText: 'agent1@demo.local' }).waitFor();
  await page.locator('#sum-dial').filter({ hasText: '4' }).waitFor();
  const log = await page.locator('#log li').allTextContents();
  assert.ok(log.some((l) => l.includes('CRM → softphone') && l.includes('"type":"init"')));
  assert.ok(log.some((l) => l.includes('softphone → CRM') && l.includes('"type":"login"')));
  assert.ok(!log.some((l) => l.includes('demo1234')), 'the password is not shown');

  // A second demo tab: same agent, kept in step.
  const page2 = await ctx.newPage();
  await page2.goto(demoUrl);
  await page2.locator('#sum-login').filter({ hasText: 'agent1@demo.local' }).waitFor();
  await page.bringToFront();
  await page.locator('#status-buttons button', { hasText: '3 Meeting' }).click();
  await page2.locator('#sum-agent').filter({ hasText: '3' }).waitFor({ timeout: 2000 });
  await page.locator('#status-buttons button', { hasText: '1 Idle' }).click();
  await page2.locator('#sum-agent').filter({ hasText: '1' }).waitFor({ timeout: 2000 });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(SCREENSHOTS, 'demo.png'), fullPage: true });
  await ctx.close();
});

test('softphone pictures at 256 x 460 and full page', async () => {
  const ctx = await env.newBrowser();
  const tab = await env.open(ctx);
  await tab.send({ type: 'init', content: { lang: 'en-US' } });
  await tab.frame.locator('#email').waitFor();
  await tab.page.locator('#iframe').screenshot({ path: join(SCREENSHOTS, 'softphone-signin.png') });
  await tab.signIn();
  await tab.frame.locator('#number').fill('2025550100');
  await tab.page.locator('#iframe').screenshot({ path: join(SCREENSHOTS, 'softphone.png') });
  await tab.frame.locator('#status-button').click();
  await tab.frame.locator('#status-menu').waitFor();
  await tab.page.locator('#iframe').screenshot({ path: join(SCREENSHOTS, 'softphone-status.png') });
  await tab.frame.locator('#status-menu li[data-code="4"]').click();
  await tab.waitFor((m) => m.type === 'agentStatus' && m.content.code === 4);

  // Full page: the softphone opened on its own.
  const full = await ctx.newPage();
  await full.setViewportSize({ width: 900, height: 700 });
  await full.goto(env.seatline.softphoneUrl);
  // First-party storage is not the framed softphone's: sign in on the page.
  await full.locator('#email').fill('agent1@demo.local');
  await full.locator('#password').fill('demo1234');
  await full.locator('#signin').click();
  await full.locator('#who-email').waitFor();
  assert.equal(await full.locator('#status-button').getAttribute('data-code'), '4');
  await full.screenshot({ path: join(SCREENSHOTS, 'softphone-fullpage.png') });

  // zh-CN, for the README.
  const zh = await env.open();
  await zh.send({ type: 'init', content: { lang: 'zh-CN' } });
  await zh.frame.locator('#email').waitFor();
  await zh.signIn('agent2@demo.local', 'demo1234', 'zh-CN');
  await zh.page.locator('#iframe').screenshot({ path: join(SCREENSHOTS, 'softphone-zh-CN.png') });
  await ctx.close();
});
