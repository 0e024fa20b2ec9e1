// Several tabs: one WebSocket each, the server's state pushed to all.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, launchBrowser } from './harness.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env.teardown(); });

test('a status change in one tab reaches the other tab (and its host) within a second', async () => {
  const ctx = await env.newBrowser();
  const a = await env.open(ctx);
  await a.signIn();
  // The second tab of this browser joins the same session by itself.
  const b = await env.open(ctx);
  await b.waitFor((m) => m.type === 'dialStatus' && m.content.code === 4);
  assert.deepEqual((await b.types()).slice(1), ['agentExists', 'login', 'agentStatus', 'dialStatus']);

  for (const code of [3, 6, 1]) {
    const fromA = await a.count();
    const fromB = await b.count();
    await a.page.bringToFront();
    await a.frame.locator('#status-button').click();
    const clicked = await a.page.evaluate(() => Date.now());
    await a.frame.locator(`#status-menu li[data-code="${code}"]`).click();
    const inA = await a.waitFor((m) => m.type === 'agentStatus', { from: fromA });
    const inB = await b.waitFor((m) => m.type === 'agentStatus', { from: fromB });
    assert.equal(inA.data.content.code, code);
    assert.equal(inB.data.content.code, code);
    assert.ok(inB.at - clicked < 1000, `tab B heard it ${inB.at - clicked} ms after the click`);
    assert.equal(await b.frame.locator('#status-button').getAttribute('data-code'), String(code));
  }
  await ctx.close();
});

test('the same agent in two browsers stays in step', async () => {
  const a = await env.open(await env.newBrowser());
  const b = await env.open(await env.newBrowser());
  await a.signIn('agent2@demo.local');
  await b.signIn('agent2@demo.local');
  const fromA = await a.count();
  await b.send({ type: 'setAgentStatus', content: { code: 4 } });
  const hit = await a.waitFor((m) => m.type === 'agentStatus', { from: fromA });
  assert.equal(hit.data.content.code, 4);
  // Signing out in one browser leaves the other signed in.
  const fromB = await b.count();
  await b.send({ type: 'loginOut' });
  await b.waitFor((m) => m.type === 'logout', { from: fromB });
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(!(await a.types()).includes('logout'));
  await a.send({ type: 'loginOut' });
  await a.waitFor((m) => m.type === 'logout');
  await a.page.context().close();
  await b.page.context().close();
});

test('signing out in one tab signs out every tab of the browser, each posting logout', async () => {
  const ctx = await env.newBrowser();
  const a = await env.open(ctx);
  await a.signIn();
  const b = await env.open(ctx);
  await b.waitFor((m) => m.type === 'login');
  const c = await env.open(ctx);
  await c.waitFor((m) => m.type === 'login');
  const from = await Promise.all([a, b, c].map((t) => t.count()));
  await b.frame.locator('#signout').click();
  for (const [i, t] of [a, b, c].entries()) {
    await t.waitFor((m) => m.type === 'logout', { from: from[i] });
    await t.frame.locator('#signin').waitFor();
  }
  // A new tab opened afterwards is signed out too.
  const d = await env.open(ctx);
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(!(await d.types()).includes('login'));
  await ctx.close();
});

test('where the browser denies the frame storage, a new tab still joins the session of the open one', async () => {
  const browser = await launchBrowser({ denyFrameStorage: true });
  const ctx = await browser.newContext();
  const a = await env.open(ctx);
  const denied = await a.page.frames()[1].evaluate(() => { try { localStorage.getItem('x'); return false; } catch (_) { return true; } });
  assert.ok(denied, 'this test needs a browser that denies third-party storage');
  await a.signIn();
  const b = await env.open(ctx);
  await b.waitFor((m) => m.type === 'login');
  const from = await b.count();
  await a.send({ type: 'setAgentStatus', content: { code: 6 } });
  await b.waitFor((m) => m.type === 'agentStatus' && m.content.code === 6, { from });
  await a.send({ type: 'loginOut' });
  await b.waitFor((m) => m.type === 'logout', { from });
  await browser.close();
});

test('a dropped connection reports dialStatus 3, then 4 when it is back, with the status kept', async () => {
  const ctx = await env.newBrowser();
  const a = await env.open(ctx);
  await a.signIn('agent2@demo.local');
  let from = await a.count();
  await a.send({ type: 'setAgentStatus', content: { code: 3 } });
  await a.waitFor((m) => m.type === 'agentStatus' && m.content.code === 3, { from });
  from = await a.count();
  await env.seatline.restart(800);
  await a.waitFor((m) => m.type === 'dialStatus' && m.content.code === 3, { from });
  await a.waitFor((m) => m.type === 'dialStatus' && m.content.code === 4, { from, timeout: 15000 });
  // The session and the status outlived the server restart.
  assert.ok(!(await a.types()).slice(from).includes('logout'));
  await a.frame.locator('#status-button[data-code="3"]').waitFor({ timeout: 3000 });
  await ctx.close();
});
