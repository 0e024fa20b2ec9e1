// Single sign-on (init loginMethod 1) against an OpenID Connect provider run
// by the test on loopback (oidc-provider.mjs: discovery, JWKS, ID tokens
// really signed with RS256). The softphone opens the provider in a popup;
// the popup comes back to Seatline, which signs the agent in and hands the
// session to the iframe, which goes on exactly as after a password. A wrong
// audience, an expired token, a bad signature, an unverified email and an
// unknown email are each refused with their message and no session; a
// blocked popup gets a message and a retry button.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, Tab } from './harness.mjs';
import { startProvider } from './oidc-provider.mjs';

const CLIENT_ID = 'seatline-test-client';
const CLIENT_SECRET = 'sso-test-client-secret-4f1c9a';

let env;
let idp;
let api;

before(async () => {
  idp = await startProvider({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  env = await setup({ sso: { issuer: idp.issuer, client_id: CLIENT_ID, client_secret: CLIENT_SECRET } });
  api = `http://127.0.0.1:${env.seatline.port}`;
});
after(async () => {
  await env.teardown();
  await idp.stop();
});

/** A host tab whose softphone shows the SSO page (init loginMethod 1). */
async function ssoTab(lang = 'en-US') {
  const tab = await env.open();
  await tab.send({ type: 'init', content: { lang, loginMethod: 1 } });
  await tab.frame.locator('#sso-start').waitFor();
  return tab;
}

/** Clicks the SSO button; resolves with the popup once it has loaded. */
async function clickThrough(tab) {
  const [popup] = await Promise.all([
    tab.page.context().waitForEvent('page'),
    tab.frame.locator('#sso-start').click(),
  ]);
  return popup;
}

test('the SSO page signs the agent in through the provider popup, as a password would', async () => {
  idp.mode = 'ok';
  idp.email = 'agent1@demo.local';
  const tab = await ssoTab();
  assert.equal(await tab.frame.locator('#sso-start').textContent(), 'Continue with single sign-on');
  const from = await tab.count();
  const tokensBefore = idp.tokens;
  const popup = await clickThrough(tab);
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 4, { from, timeout: 15000 });
  const types = (await tab.types()).slice(from);
  assert.deepEqual(types.slice(0, 3), ['agentExists', 'login', 'agentStatus']);
  const login = await tab.waitFor((m) => m.type === 'login', { from });
  assert.deepEqual(login.data.content, { email: 'agent1@demo.local', sipNum: '8001', groupNo: 'G001' });
  assert.equal(idp.tokens, tokensBefore + 1, 'the code was exchanged once');
  // The popup closed itself.
  for (let i = 0; i < 100 && !popup.isClosed(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(popup.isClosed(), 'the popup closed');
  await tab.frame.locator('#who-email').waitFor();
  assert.equal(await tab.frame.locator('#who-email').textContent(), 'agent1@demo.local');

  // Signing out returns to the SSO page (the last init asked for it).
  const n = await tab.count();
  await tab.send({ type: 'loginOut' });
  await tab.waitFor((m) => m.type === 'logout', { from: n });
  await tab.frame.locator('#sso-start').waitFor();
  await tab.page.context().close();
});

const REFUSALS = [
  ['wrongAudience', 'agent1@demo.local', "The identity provider's answer could not be verified. Try again, or ask your administrator."],
  ['expired', 'agent1@demo.local', "The identity provider's answer could not be verified. Try again, or ask your administrator."],
  ['badSignature', 'agent1@demo.local', "The identity provider's answer could not be verified. Try again, or ask your administrator."],
  ['unverified', 'agent1@demo.local', 'Your email address is not verified by your identity provider.'],
  ['unknownEmail', 'agent1@demo.local', 'There is no account for nobody@demo.local. Ask your administrator.'],
];

test('a wrong audience, an expired token, a bad signature, an unverified and an unknown email are refused', async () => {
  const tab = await ssoTab();
  const from = await tab.count();
  for (const [mode, email, text] of REFUSALS) {
    idp.mode = /** @type {any} */ (mode);
    idp.email = email;
    const tokensBefore = idp.tokens;
    const popup = await clickThrough(tab);
    const notice = tab.frame.locator('#notice');
    await tab.frame.locator('#notice.error').waitFor({ timeout: 15000 });
    assert.equal(await notice.textContent(), text, mode);
    assert.equal(idp.tokens, tokensBefore + 1, `${mode}: refused after the token exchange, by the checks`);
    // The popup stays and says why too.
    await popup.locator('#sso-message').waitFor();
    assert.ok((await popup.locator('#sso-message').textContent()).length > 10);
    await popup.close();
  }
  // No sign-in happened: nothing was posted to the host, no session kept.
  assert.deepEqual((await tab.types()).slice(from), []);
  const stored = await tab.page.frames().find((f) => f.url().includes('/admin/')).evaluate(() => localStorage.getItem('seatline.session'));
  assert.equal(stored, null);
  idp.mode = 'ok';
  await tab.page.context().close();
});

test('the refusals are shown in the three languages', async () => {
  for (const [lang, text] of [
    ['zh-CN', '您的邮箱地址未经身份提供方验证。'],
    ['es-MX', 'Tu proveedor de identidad no ha verificado tu correo.'],
  ]) {
    const tab = await ssoTab(lang);
    idp.mode = 'unverified';
    const popup = await clickThrough(tab);
    await tab.frame.locator('#notice.error').waitFor({ timeout: 15000 });
    assert.equal(await tab.frame.locator('#notice').textContent(), text);
    await popup.close();
    await tab.page.context().close();
  }
  idp.mode = 'ok';
});

test('a blocked popup says so and offers a retry, which then works', async () => {
  idp.mode = 'ok';
  const tab = await ssoTab();
  const frame = tab.page.frames().find((f) => f.url().includes('/admin/'));
  await frame.evaluate(() => {
    const w = /** @type {any} */ (window);
    w.realOpen = window.open;
    window.open = () => null;
  });
  await tab.frame.locator('#sso-start').click();
  await tab.frame.locator('#notice').waitFor();
  assert.equal(await tab.frame.locator('#notice').textContent(),
    'The browser blocked the sign-in window. Allow pop-ups for this site, then try again.');
  assert.equal(await tab.frame.locator('#sso-start').textContent(), 'Try again');
  await frame.evaluate(() => { window.open = /** @type {any} */ (window).realOpen; });
  const from = await tab.count();
  await clickThrough(tab);
  await tab.waitFor((m) => m.type === 'login', { from, timeout: 15000 });
  await tab.page.context().close();
});

test('messages from other windows are not taken as the SSO answer', async () => {
  const tab = await ssoTab();
  const frame = tab.page.frames().find((f) => f.url().includes('/admin/'));
  // The host page (another origin) and the frame itself forge an answer.
  const body = { email: 'agent1@demo.local', agentExists: 1, token: 'forged', seat: { sipNum: '8001', groupNo: 'G001' } };
  await tab.page.evaluate((b) => document.getElementById('iframe').contentWindow.postMessage({ seatlineSso: b }, '*'), body);
  await frame.evaluate((b) => window.postMessage({ seatlineSso: b }, location.origin), body);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await tab.frame.locator('#sso-start').count(), 1, 'still on the SSO page');
  assert.equal(await tab.count(), 1, 'only ready was posted');
  await tab.page.context().close();
});

test('without a provider for the iframe\'s tenant, the page says SSO is not configured', async () => {
  const page = await (await env.newBrowser()).newPage();
  await page.goto(env.host.url(`${env.seatline.origin}/admin/?tenant=999#/nxcc`));
  const tab = new Tab(page);
  await tab.frameReady();
  await tab.send({ type: 'init', content: { lang: 'en-US', loginMethod: 1 } });
  await tab.frame.locator('#sso').waitFor();
  assert.match(await tab.frame.locator('#sso').textContent(), /not configured/);
  await page.context().close();
  const r = await fetch(`${api}/api/v1/sso?tenant=999`).then((x) => x.json());
  assert.deepEqual(r, { configured: false });
  assert.deepEqual(await fetch(`${api}/api/v1/sso`).then((x) => x.json()), { configured: true });
  assert.deepEqual(await fetch(`${api}/api/v1/sso?tenant=1`).then((x) => x.json()), { configured: true });
});

/** Runs a sign-in without a browser: start, the provider, the callback page. */
async function flowByFetch(query = '') {
  const start = await fetch(`${env.seatline.origin}/sso/start${query}`, { redirect: 'manual' });
  assert.equal(start.status, 303, await start.text());
  const authorize = await fetch(start.headers.get('location'), { redirect: 'manual' });
  assert.equal(authorize.status, 302);
  const back = authorize.headers.get('location');
  assert.ok(back.startsWith(`${env.seatline.origin}/sso/callback?`), back);
  const page = await fetch(back);
  const html = await page.text();
  const m = html.match(/<script id="sso-result" type="application\/json">(.*?)<\/script>/);
  assert.ok(m, html);
  return { html, result: JSON.parse(m[1]), back, headers: page.headers };
}

test('a tenant\'s own provider restricts its domains; a replayed callback and a disabled user are refused; nothing secret is logged', async () => {
  idp.mode = 'ok';
  idp.email = 'agent1@demo.local';
  const admin = await fetch(`${api}/api/v1/sessions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'admin@demo.local', password: 'demo1234' }),
  }).then((r) => r.json());
  const put = await fetch(`${api}/api/v1/admin/sso`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ issuer: idp.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, allowedDomains: ['other.example'] }),
  });
  assert.equal(put.status, 200, await put.text());
  const refused = await flowByFetch('?tenant=1');
  assert.equal(refused.result.error, 'domainNotAllowed');
  // The global provider (no tenant) has no such restriction.
  const ok = await flowByFetch();
  assert.equal(ok.result.email, 'agent1@demo.local');
  assert.equal(ok.result.agentExists, 1);
  assert.equal(typeof ok.result.token, 'string');
  assert.equal(ok.headers.get('cache-control'), 'no-store');
  assert.match(ok.headers.get('content-security-policy'), /script-src 'self'/);
  // The same callback again: its state is used up.
  const again = await fetch(ok.back).then((r) => r.text());
  assert.match(again, /"error":"expired"/);
  // A disabled user is refused as at a password sign-in.
  const users = await fetch(`${api}/api/v1/admin/users`, { headers: { authorization: `Bearer ${admin.token}` } }).then((r) => r.json());
  const agent2 = users.users.find((u) => u.email === 'agent2@demo.local').id;
  const off = await fetch(`${api}/api/v1/admin/users/${agent2}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ disabled: true }),
  });
  assert.equal(off.status, 200, await off.text());
  idp.email = 'agent2@demo.local';
  const disabled = await flowByFetch();
  assert.equal(disabled.result.error, 'accountDisabled');
  assert.equal(disabled.result.token, undefined);
  idp.email = 'agent1@demo.local';
  // Back to the global provider for the tenant.
  const del = await fetch(`${api}/api/v1/admin/sso`, { method: 'DELETE', headers: { authorization: `Bearer ${admin.token}` } });
  assert.equal(del.status, 204);
  assert.equal((await flowByFetch('?tenant=1')).result.agentExists, 1);

  const logs = env.seatline.output();
  for (const secret of [CLIENT_SECRET, ...idp.issued, ok.result.token]) {
    assert.ok(!logs.includes(secret), `a secret in the logs: ${secret.slice(0, 12)}…`);
  }
});
