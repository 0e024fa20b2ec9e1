// Token sign-in (our extension): the CRM's back end gets a one-time token
// with its API key and its page sends init {token, lang}, so no password
// crosses postMessage. A used token shows the error (in the page's language)
// and the host gets tokenInvalid. An admin's revocation reaches every open
// tab of the agent, in every browser, within 2 s.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './harness.mjs';

let env;
let api;
let key;

/** @param {string} method @param {string} path @param {string} bearer @param {any} [body] */
async function call(method, path, bearer, body) {
  const r = await fetch(`${api}${path}`, {
    method,
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

/** A fresh sign-in token for `email`, as a CRM's back end gets it. */
async function freshToken(email = 'agent1@demo.local') {
  const r = await call('POST', '/api/v1/sign-in-tokens', key, { email });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.token;
}

before(async () => {
  env = await setup();
  api = `http://127.0.0.1:${env.seatline.port}`;
  const admin = await fetch(`${api}/api/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'admin@demo.local', password: 'demo1234' }),
  }).then((r) => r.json());
  const made = await call('POST', '/api/v1/admin/api-keys', admin.token, { name: 'crm', scopes: ['users:write'] });
  assert.equal(made.status, 201);
  key = made.body.key;
});
after(async () => { await env.teardown(); });

/** Signs `tab` in with `token`; resolves when the phone is ready. */
async function tokenSignIn(tab, token, lang = 'en-US') {
  const from = await tab.count();
  await tab.send({ type: 'init', content: { token, lang } });
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 4, { from });
  return from;
}

test('init with a fresh token signs in; the same token again shows the error and posts tokenInvalid', async () => {
  const token = await freshToken();
  const tab = await env.open();
  const from = await tokenSignIn(tab, token);
  const login = await tab.waitFor((m) => m.type === 'login', { from });
  assert.deepEqual(login.data.content, { email: 'agent1@demo.local', sipNum: '8001', groupNo: 'G001' });
  const types = (await tab.types()).slice(from);
  assert.deepEqual(types.slice(0, 3), ['agentExists', 'login', 'agentStatus']);
  assert.ok(!types.includes('tokenInvalid'));

  // The same token in a new iframe, in another browser: used up.
  for (const [lang, text] of [
    ['en-US', 'This sign-in link has expired or was already used. Reload the page to get a new one.'],
    ['zh-CN', '登录凭证已过期或已被使用，请刷新页面重新获取。'],
    ['es-MX', 'Este acceso ya venció o ya se usó. Recarga la página para obtener uno nuevo.'],
  ]) {
    const again = await env.open();
    await again.send({ type: 'init', content: { token, lang } });
    await again.waitFor((m) => m.type === 'tokenInvalid');
    const notice = again.frame.locator('#notice');
    await notice.waitFor();
    assert.equal(await notice.textContent(), text);
    assert.ok(!(await again.types()).includes('login'), 'not signed in');
    await again.page.context().close();
  }
  // A made-up or absurd token: the same, and nothing else changes.
  const bad = await env.open();
  await bad.send({ type: 'init', content: { token: 'x'.repeat(5000), lang: 'en-US' } });
  await bad.waitFor((m) => m.type === 'tokenInvalid');
  const n = await bad.count();
  await bad.send({ type: 'init', content: { token: 'made-up', lang: 'en-US' } });
  await bad.waitFor((m) => m.type === 'tokenInvalid', { from: n });
  assert.ok(!(await bad.types()).includes('login'));
  await bad.page.context().close();
  // The first tab is still signed in.
  assert.ok(!(await tab.types()).slice(from).includes('tokenInvalid'));
  await tab.page.context().close();
});

test('an expired token is refused the same way', async () => {
  const r = await call('POST', '/api/v1/sign-in-tokens', key, { email: 'agent2@demo.local', ttlSeconds: 1 });
  assert.equal(r.status, 201);
  await new Promise((res) => setTimeout(res, 1100));
  const tab = await env.open();
  await tab.send({ type: 'init', content: { token: r.body.token, lang: 'en-US' } });
  await tab.waitFor((m) => m.type === 'tokenInvalid');
  await tab.frame.locator('#notice').waitFor();
  assert.match(await tab.frame.locator('#notice').textContent(), /expired or was already used/);
  await tab.page.context().close();
});

test('revoking the agent reaches every open tab of every browser within 2 s', async () => {
  // Browser A: a tab signed in with a token, and a second tab that joins it.
  const ctxA = await env.newBrowser();
  const a1 = await env.open(ctxA);
  await tokenSignIn(a1, await freshToken());
  const a2 = await env.open(ctxA);
  await a2.waitFor((m) => m.type === 'login');
  // Browser B: its own session, from its own token.
  const b = await env.open();
  await tokenSignIn(b, await freshToken());
  const users = await call('GET', '/api/v1/admin/users', key);
  const id = users.body.users.find((u) => u.email === 'agent1@demo.local').id;

  const froms = await Promise.all([a1, a2, b].map((t) => t.count()));
  const t0 = Date.now();
  const r = await call('DELETE', `/api/v1/admin/users/${id}/sessions`, key);
  assert.equal(r.status, 204);
  const hits = await Promise.all([a1, a2, b].map((t, i) => t.waitFor((m) => m.type === 'tokenInvalid', { from: froms[i], timeout: 2000 })));
  for (const hit of hits) assert.ok(hit.at - t0 < 2000, `tokenInvalid after ${hit.at - t0} ms`);
  for (const t of [a1, a2, b]) {
    await t.frame.locator('#notice').waitFor();
    assert.match(await t.frame.locator('#notice').textContent(), /session has ended/);
  }
  // A reload finds the token dead: still signed out.
  await b.page.reload();
  await b.frameReady();
  await new Promise((res) => setTimeout(res, 500));
  assert.ok(!(await b.types()).includes('login'));
  await ctxA.close();
  await b.page.context().close();
});
