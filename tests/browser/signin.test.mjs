// Sign-in, sign-out and the messages around them, driven from a host page
// of another origin.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './harness.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env.teardown(); });

test('the softphone announces ready, and it comes from the softphone origin', async () => {
  const tab = await env.open();
  const [first] = await tab.received();
  assert.equal(first.data.type, 'ready');
  assert.equal(first.origin, env.seatline.origin);
  assert.notEqual(new URL(tab.page.url()).origin, env.seatline.origin, 'host and softphone are different origins');
  await tab.page.close();
});

test('init with loginMethod 0 signs in silently: agentExists, login, agentStatus, dialStatus 4, in order', async () => {
  const tab = await env.open();
  const from = await tab.signIn();
  const msgs = (await tab.messages()).slice(from);
  assert.deepEqual(msgs, [
    { type: 'agentExists', content: { code: 1 } },
    { type: 'login', content: { email: 'agent1@demo.local', sipNum: '8001', groupNo: 'G001' } },
    { type: 'agentStatus', content: { code: 1 } },
    { type: 'dialStatus', content: { code: 4 } },
  ]);
  await tab.frame.locator('#who-email').waitFor();
  assert.equal(await tab.frame.locator('#who-email').textContent(), 'agent1@demo.local');
  const from2 = await tab.count();
  await tab.send({ type: 'loginOut' });
  await tab.waitFor((m) => m.type === 'logout', { from: from2 });
  await tab.frame.locator('#signin').waitFor();
  await tab.page.close();
});

test('an init posted from the iframe onload, before the app is ready, is not lost', async () => {
  const init = { type: 'init', content: { email: 'agent2@demo.local', password: 'demo1234', lang: 'en-US', loginMethod: 0 } };
  const tab = await env.open(undefined, init);
  const login = await tab.waitFor((m) => m.type === 'login');
  assert.equal(login.data.content.sipNum, '8002');
  const from = await tab.count();
  await tab.send({ type: 'loginOut' });
  await tab.waitFor((m) => m.type === 'logout', { from });
  await tab.page.close();
});

test('a wrong password shows a clear error in the page and posts no login', async () => {
  const tab = await env.open();
  await tab.send({ type: 'init', content: { email: 'agent1@demo.local', password: 'nope', lang: 'en-US', loginMethod: 0 } });
  const notice = tab.frame.locator('#notice');
  await notice.waitFor();
  assert.equal(await notice.textContent(), 'Wrong email or password.');
  const types = await tab.types();
  assert.ok(!types.includes('login') && !types.includes('agentExists'), `unexpected: ${types}`);
  await tab.page.close();
});

test('a user without a seat gets agentExists 2 and no login', async () => {
  const tab = await env.open();
  await tab.send({ type: 'init', content: { email: 'noseat@demo.local', password: 'demo1234', lang: 'en-US', loginMethod: 0 } });
  const hit = await tab.waitFor((m) => m.type === 'agentExists');
  assert.deepEqual(hit.data.content, { code: 2 });
  await tab.frame.locator('#noseat').waitFor();
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(!(await tab.types()).includes('login'));
  await tab.page.close();
});
