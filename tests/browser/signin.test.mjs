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
  await tab.page.context().close();
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
  await tab.page.context().close();
});

test('an init posted from the iframe onload, before the app is ready, is not lost', async () => {
  const init = { type: 'init', content: { email: 'agent2@demo.local', password: 'demo1234', lang: 'en-US', loginMethod: 0 } };
  const tab = await env.open(undefined, init);
  const login = await tab.waitFor((m) => m.type === 'login');
  assert.equal(login.data.content.sipNum, '8002');
  const from = await tab.count();
  await tab.send({ type: 'loginOut' });
  await tab.waitFor((m) => m.type === 'logout', { from });
  await tab.page.context().close();
});

test('a wrong password shows a clear error in the page and posts no login', async () => {
  const tab = await env.open();
  await tab.send({ type: 'init', content: { email: 'agent1@demo.local', password: 'nope', lang: 'en-US', loginMethod: 0 } });
  const notice = tab.frame.locator('#notice');
  await notice.waitFor();
  assert.equal(await notice.textContent(), 'Wrong email or password.');
  const types = await tab.types();
  assert.ok(!types.includes('login') && !types.includes('agentExists'), `unexpected: ${types}`);
  await tab.page.context().close();
});

test('a user without a seat gets agentExists 2 and no login', async () => {
  const tab = await env.open();
  await tab.send({ type: 'init', content: { email: 'noseat@demo.local', password: 'demo1234', lang: 'en-US', loginMethod: 0 } });
  const hit = await tab.waitFor((m) => m.type === 'agentExists');
  assert.deepEqual(hit.data.content, { code: 2 });
  await tab.frame.locator('#noseat').waitFor();
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(!(await tab.types()).includes('login'));
  await tab.page.context().close();
});

test('init without loginMethod shows the sign-in page; signing in there posts the same messages', async () => {
  const tab = await env.open();
  await tab.send({ type: 'init', content: { lang: 'en-US' } });
  await tab.frame.locator('#email').fill('agent1@demo.local');
  await tab.frame.locator('#password').fill('demo1234');
  const from = await tab.count();
  await tab.frame.locator('#signin').click();
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 4, { from });
  assert.deepEqual((await tab.types()).slice(from), ['agentExists', 'login', 'agentStatus', 'dialStatus']);
  // The UI's own sign-out button also posts logout.
  const from2 = await tab.count();
  await tab.frame.locator('#signout').click();
  await tab.waitFor((m) => m.type === 'logout', { from: from2 });
  await tab.page.context().close();
});

test('loginMethod 1 says single sign-on is not configured; toEmailLogin goes to the email page', async () => {
  const tab = await env.open();
  await tab.send({ type: 'init', content: { lang: 'en-US', loginMethod: 1 } });
  const sso = tab.frame.locator('#sso');
  await sso.waitFor();
  assert.match(await sso.textContent(), /not configured/);
  await tab.send({ type: 'toEmailLogin' });
  await tab.frame.locator('#email').waitFor();
  assert.equal(await sso.count(), 0);
  await tab.page.context().close();
});

test('toEmailLogin while signed in changes nothing now, and the email page follows the next logout', async () => {
  const tab = await env.open();
  await tab.send({ type: 'init', content: { lang: 'en-US', loginMethod: 1 } });
  await tab.frame.locator('#sso').waitFor();
  await tab.signIn();
  const from = await tab.count();
  await tab.send({ type: 'toEmailLogin' });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await tab.count(), from, 'no message');
  assert.equal(await tab.frame.locator('#who-email').count(), 1, 'still signed in');
  await tab.send({ type: 'loginOut' });
  await tab.waitFor((m) => m.type === 'logout', { from });
  await tab.frame.locator('#email').waitFor();
  await tab.page.context().close();
});

test('callOut while signed out answers dialStatus 6', async () => {
  const tab = await env.open();
  const from = await tab.count();
  await tab.send({ type: 'callOut', content: { caller: '', callee: '12025550100', countryCode: '1', orderId: 'o-1', params: '' } });
  const hit = await tab.waitFor((m) => m.type === 'dialStatus', { from });
  assert.deepEqual(hit.data, { type: 'dialStatus', content: { code: 6 } });
  await tab.page.context().close();
});

test('loginOut while signed out still answers logout', async () => {
  const tab = await env.open();
  const from = await tab.count();
  await tab.send({ type: 'loginOut' });
  await tab.waitFor((m) => m.type === 'logout', { from });
  await tab.page.context().close();
});

test('the host sets the status with setAgentStatus; a bad code changes nothing', async () => {
  const tab = await env.open();
  await tab.signIn('agent2@demo.local');
  let from = await tab.count();
  await tab.send({ type: 'setAgentStatus', content: { code: 7 } });
  await tab.waitFor((m) => m.type === 'agentStatus' && m.content.code === 7, { from });
  from = await tab.count();
  await tab.send({ type: 'setAgentStatus', content: { code: 42 } });
  await tab.send({ type: 'setAgentStatus', content: { code: 1 } });
  const next = await tab.waitFor((m) => m.type === 'agentStatus', { from });
  assert.equal(next.data.content.code, 1, 'code 42 was refused, 1 went through');
  await tab.send({ type: 'loginOut' });
  await tab.waitFor((m) => m.type === 'logout', { from });
  await tab.page.context().close();
});

test('a reload keeps the status the server holds', async () => {
  const tab = await env.open();
  await tab.signIn('agent2@demo.local');
  let from = await tab.count();
  await tab.frame.locator('#status-button').click();
  await tab.frame.locator('#status-menu li[data-code="5"]').click();
  await tab.waitFor((m) => m.type === 'agentStatus' && m.content.code === 5, { from });
  await tab.page.reload();
  await tab.frameReady();
  // The reloaded page resumes the session by itself and reports the held status.
  const login = await tab.waitFor((m) => m.type === 'agentStatus');
  assert.equal(login.data.content.code, 5);
  from = 0;
  await tab.send({ type: 'loginOut' });
  await tab.waitFor((m) => m.type === 'logout', { from });
  await tab.page.context().close();
});
