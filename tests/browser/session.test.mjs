// Session expiry: a short idle timeout in the test config.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './harness.mjs';

let env;
before(async () => { env = await setup({ idleTimeoutSecs: 2 }); });
after(async () => { await env.teardown(); });

test('an idle session expires: every tab posts tokenInvalid and returns to sign-in', async () => {
  const ctx = await env.newBrowser();
  const a = await env.open(ctx);
  const from = await a.signIn();
  const b = await env.open(ctx);
  await b.waitFor((m) => m.type === 'login');
  const hitA = await a.waitFor((m) => m.type === 'tokenInvalid', { from, timeout: 8000 });
  await b.waitFor((m) => m.type === 'tokenInvalid', { timeout: 8000 });
  assert.ok(hitA);
  await a.frame.locator('#notice').waitFor();
  assert.match(await a.frame.locator('#notice').textContent(), /session has ended/);
  // A reload with the dead token stays signed out.
  await a.page.reload();
  await a.frameReady();
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(!(await a.types()).includes('login'));
  await ctx.close();
});

test('callOut after the session expired answers dialStatus 6', async () => {
  const tab = await env.open();
  await tab.signIn();
  await tab.waitFor((m) => m.type === 'tokenInvalid', { timeout: 8000 });
  const from = await tab.count();
  await tab.send({ type: 'callOut', content: { caller: '', callee: '12025550100', countryCode: '1' } });
  const hit = await tab.waitFor((m) => m.type === 'dialStatus', { from });
  assert.equal(hit.data.content.code, 6);
  await tab.page.context().close();
});
