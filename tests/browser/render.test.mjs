// The softphone redraws only what changed: what the agent picks or types is
// never thrown away by a redraw (the call timer's tick, a host message), and
// the in-call view fits the 256 px frame.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './harness.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env.teardown(); });

const softphone = (tab) => tab.page.frames().find((f) => f.url().includes('/admin/'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('the device choice survives a call: the chosen microphone and speaker stay selected through seconds of a connected call', async () => {
  const tab = await env.open();
  await tab.signIn('agent2@demo.local');
  const phone = softphone(tab);
  await phone.locator('#devices').click();
  await phone.locator('#settings').waitFor();
  // The last device of each list: a fake device, not the system default.
  const pickLast = async (id) => {
    const options = phone.locator(`#${id} option`);
    const n = await options.count();
    assert.ok(n >= 2, `${id}: the default and at least one device, got ${n}`);
    const value = await options.nth(n - 1).getAttribute('value');
    assert.ok(value, `${id}: a device id`);
    await phone.locator(`#${id}`).selectOption(value);
    return value;
  };
  const mic = await pickLast('mic-select');
  const speakerCount = await phone.locator('#speaker-select option').count();
  const speaker = speakerCount >= 2 ? await pickLast('speaker-select') : '';

  // Mark the select: a redraw that replaced it would lose the mark.
  await phone.evaluate(() => { document.getElementById('mic-select').dataset.mark = 'kept'; });
  const from = await tab.count();
  await tab.send({ type: 'callOut', content: { caller: '', callee: '12025550100', countryCode: '1', orderId: 'dev-1', params: '' } });
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 2, { from, timeout: 10000 });
  await phone.locator('#call-panel[data-state="connected"]').waitFor();
  const t0 = await phone.locator('#call-timer').textContent();
  await sleep(3500);
  // The timer ran, and the choice is still there.
  assert.notEqual(await phone.locator('#call-timer').textContent(), t0, 'the call timer ticks');
  assert.equal(await phone.locator('#mic-select').inputValue(), mic);
  if (speaker) assert.equal(await phone.locator('#speaker-select').inputValue(), speaker);
  assert.equal(await phone.locator('#mic-select').getAttribute('data-mark'), 'kept', 'the select was not redrawn');

  const end = await tab.count();
  await tab.send({ type: 'hangUp' });
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from: end });
  // Still chosen after the call, too.
  assert.equal(await phone.locator('#mic-select').inputValue(), mic);
  await tab.page.context().close();
});

test('in a connected call, each second changes the timer text and nothing else; the number fits the 256 px panel', async () => {
  const tab = await env.open();
  await tab.signIn();
  const phone = softphone(tab);
  const from = await tab.count();
  await tab.send({ type: 'callOut', content: { caller: '', callee: '12025550100', countryCode: '1' } });
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 2, { from, timeout: 10000 });
  await phone.locator('#call-panel[data-state="connected"]').waitFor();
  await sleep(300);
  await phone.evaluate(() => {
    window.mutations = [];
    new MutationObserver((list) => {
      for (const m of list) {
        const el = m.target.nodeType === Node.TEXT_NODE ? m.target.parentElement : m.target;
        window.mutations.push(`${m.type}:${el && (el.id || el.className || el.tagName)}`);
      }
    }).observe(document.getElementById('app'), { subtree: true, childList: true, attributes: true, characterData: true });
  });
  await sleep(3200);
  const seen = await phone.evaluate(() => window.mutations);
  assert.ok(seen.length >= 2, `the timer ticked: ${JSON.stringify(seen)}`);
  assert.deepEqual([...new Set(seen)], ['characterData:call-timer'], 'only the timer text changed');

  // The callee's number is shown whole at 256 px, and in full in its title.
  const fit = await phone.locator('#call-number').evaluate((el) => ({ scroll: el.scrollWidth, client: el.clientWidth, title: el.title, text: el.textContent }));
  assert.equal(fit.text, '+12025550100');
  assert.equal(fit.title, '+12025550100');
  assert.ok(fit.scroll <= fit.client, `the number fits: ${JSON.stringify(fit)}`);
  const panel = await phone.locator('#call-panel').evaluate((el) => ({ scroll: el.scrollWidth, client: el.clientWidth }));
  assert.ok(panel.scroll <= panel.client, `the panel does not overflow: ${JSON.stringify(panel)}`);
  const end = await tab.count();
  await tab.send({ type: 'hangUp' });
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from: end });
  await tab.page.context().close();
});

test('a half-typed password survives host messages (init, toEmailLogin, a language change, an unknown type)', async () => {
  const tab = await env.open();
  await tab.send({ type: 'init', content: { lang: 'en-US' } });
  const phone = softphone(tab);
  await phone.locator('#password').waitFor();
  await phone.locator('#email').fill('agent1@demo.local');
  await phone.locator('#password').click();
  await phone.locator('#password').pressSequentially('demo12');
  for (const msg of [
    { type: 'init', content: { lang: 'en-US' } },
    { type: 'toEmailLogin' },
    { type: 'somethingNew', content: { x: 1 } },
    { type: 'init', content: { lang: 'es-MX' } },
  ]) {
    await tab.send(msg);
    await sleep(300);
    assert.equal(await phone.locator('#password').inputValue(), 'demo12', `after ${JSON.stringify(msg)}`);
    assert.equal(await phone.locator('#email').inputValue(), 'agent1@demo.local', `after ${JSON.stringify(msg)}`);
  }
  // The language changed around the form, which kept the text and the focus.
  assert.equal(await phone.locator('h1').textContent(), 'Acceso de agente');
  assert.equal(await phone.evaluate(() => document.activeElement && document.activeElement.id), 'password');
  // The agent finishes typing and signs in.
  const from = await tab.count();
  await phone.locator('#password').pressSequentially('34');
  await phone.locator('#signin').click();
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 4, { from });
  await tab.send({ type: 'loginOut' });
  await tab.waitFor((m) => m.type === 'logout', { from });
  await tab.page.context().close();
});

test('a number typed on the dial pad survives status changes and host messages', async () => {
  const tab = await env.open();
  await tab.signIn('agent2@demo.local');
  const phone = softphone(tab);
  await phone.locator('#number').fill('20255501');
  const from = await tab.count();
  await tab.send({ type: 'setAgentStatus', content: { code: 3 } });
  await tab.waitFor((m) => m.type === 'agentStatus' && m.content.code === 3, { from });
  await tab.send({ type: 'init', content: { lang: 'zh-CN', email: 'agent2@demo.local', password: 'demo1234', loginMethod: 0 } });
  await tab.waitFor((m) => m.type === 'login', { from });
  await phone.locator('#status-button[data-code="3"]').waitFor();
  assert.equal(await phone.locator('#number').inputValue(), '20255501');
  assert.equal(await phone.locator('#signout').textContent(), '退出登录');
  await tab.send({ type: 'setAgentStatus', content: { code: 1 } });
  await tab.send({ type: 'loginOut' });
  await tab.waitFor((m) => m.type === 'logout', { from });
  await tab.page.context().close();
});

test('a quality sample from the server reaches the host as callQuality, and a poor one warns in the call panel until it recovers or the call ends', async () => {
  // The server's WebSocket, with a hand on it: the test adds the quality
  // samples the media plane would send (everything else passes through).
  const ctx = await env.newBrowser();
  /** @type {any} */
  let ws = null;
  await ctx.routeWebSocket((url) => url.pathname === '/ws', (route) => {
    route.connectToServer();
    ws = route;
  });
  const tab = await env.open(ctx);
  await tab.signIn('agent2@demo.local');
  const phone = softphone(tab);
  let from = await tab.count();
  await tab.send({ type: 'callOut', content: { caller: '', callee: '12025550100', countryCode: '1', orderId: 'q-1' } });
  const up = await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 2, { from, timeout: 10000 });
  const callId = up.data.content.callId;
  await phone.locator('#call-panel[data-state="connected"]').waitFor();
  assert.ok(ws, 'the softphone\'s WebSocket is routed');
  const sample = (q) => ws.send(JSON.stringify({ ev: 'quality', content: { callId, ...q } }));
  const warning = phone.locator('#quality-warning');

  // Good quality: to the host exactly as it came, and no warning.
  from = await tab.count();
  const good = { lossPct: 0.2, jitterMs: 4.5, rttMs: 38, mos: 4.4 };
  sample(good);
  const got = await tab.waitFor((m) => m.type === 'callQuality', { from });
  assert.deepEqual(got.data, { type: 'callQuality', content: { callId, ...good } });
  assert.equal(await warning.count(), 0);

  // Loss above 3 %: the warning says how much, and fits the 256 px panel in every language.
  const fits = () => phone.evaluate(() => {
    const w = /** @type {HTMLElement} */ (document.getElementById('quality-warning'));
    const p = /** @type {HTMLElement} */ (document.getElementById('call-panel'));
    const a = w.getBoundingClientRect();
    const b = p.getBoundingClientRect();
    const hangup = /** @type {HTMLElement} */ (document.getElementById('hangup')).getBoundingClientRect();
    return {
      inside: a.left >= b.left && a.right <= b.right && a.bottom <= b.bottom,
      unclipped: w.scrollWidth <= w.clientWidth,
      panelFits: b.right <= document.documentElement.clientWidth,
      hangupBeside: hangup.top < a.top && hangup.right <= b.right,
    };
  });
  sample({ lossPct: 4.2, jitterMs: 30, rttMs: 120, mos: 3.9 });
  await warning.waitFor();
  assert.equal(await warning.textContent(), 'Poor connection: 4.2 % loss');
  assert.deepEqual(await fits(), { inside: true, unclipped: true, panelFits: true, hangupBeside: true }, 'en-US');
  for (const [lang, text] of [['zh-CN', '网络质量差：丢包 4.2%'], ['es-MX', 'Conexión deficiente: 4.2 % de pérdida']]) {
    const at = await tab.count();
    await tab.send({ type: 'init', content: { lang, email: 'agent2@demo.local', password: 'demo1234', loginMethod: 0 } });
    await tab.waitFor((m) => m.type === 'login', { from: at });
    await phone.locator(`#quality-warning:has-text("${text}")`).waitFor();
    assert.deepEqual(await fits(), { inside: true, unclipped: true, panelFits: true, hangupBeside: true }, lang);
  }
  await tab.send({ type: 'init', content: { lang: 'en-US', email: 'agent2@demo.local', password: 'demo1234', loginMethod: 0 } });
  await phone.locator('#quality-warning:has-text("Poor connection: 4.2 % loss")').waitFor();

  // Recovered: the warning goes; a low MOS with little loss warns without a figure.
  sample(good);
  await warning.waitFor({ state: 'detached' });
  sample({ lossPct: 1, jitterMs: 60, rttMs: 400, mos: 3.2 });
  await phone.locator('#quality-warning:has-text("Poor connection")').waitFor();
  assert.equal(await warning.textContent(), 'Poor connection');
  assert.equal(await phone.locator('#call-panel').getAttribute('data-state'), 'connected', 'the call is still shown as connected');

  // The call ends: the warning with it.
  from = await tab.count();
  await tab.send({ type: 'hangUp' });
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from });
  await warning.waitFor({ state: 'detached' });
  const samples = (await tab.messages()).filter((m) => m.type === 'callQuality');
  assert.equal(samples.length, 4, 'every sample reached the host, once');
  await ctx.close();
});
