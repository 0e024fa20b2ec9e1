// A queued caller from the console's settings: the admin creates group
// G002 with an agent of its own, and gives G001 a 5 s maximum wait that
// overflows to G002. With nobody of G001 signed in, an inbound sandbox
// call to G001's DID is answered to wait: the sandbox's caller hears the
// waiting music (its audio level, measured at the sandbox side), the
// wallboard shows the call queued, and after the maximum wait the call
// overflows to G002, whose agent it rings and who answers it. Then the
// admin uploads the tenant's own music in the console; the next waiting
// caller hears that instead, at its level. Last, the admin sets G001 to
// overflow to a number (a sandbox number that echoes): the waiting caller
// hears the music, then the number, on one call and one record.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, sineWav, until } from './harness.mjs';

let env;
let base;
before(async () => {
  env = await setup();
  base = `http://127.0.0.1:${env.seatline.port}`;
});
after(async () => { await env.teardown(); });

const sandboxCalls = () => env.sandboxCalls();

test('a queued caller hears music at the sandbox side and overflows to another group after the maximum wait', async () => {
  const page = await env.openConsole('admin@demo.local');

  // Group G002, and an agent of its own.
  await page.locator('#tab-groups').click();
  await page.locator('#groups tr[data-group="G001"]').waitFor();
  await page.locator('#group-no').fill('G002');
  await page.locator('#group-name').fill('Overflow');
  await page.locator('#group-form-submit').click();
  await page.locator('#groups tr[data-group="G002"]').waitFor();
  // G001: callers wait 5 s (room for the checks below on a loaded machine), then go to G002.
  await page.locator('#routing-group').selectOption('G001');
  await page.locator('#routing-wait').fill('5');
  await page.locator('#routing-overflow').selectOption('G002');
  await page.locator('#routing-form-submit').click();
  const admin = await fetch(`${base}/api/v1/sessions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'admin@demo.local', password: 'demo1234' }),
  }).then((r) => r.json());
  const routing = await until('the routing is saved', 3000, async () => {
    const g = await fetch(`${base}/api/v1/admin/groups/G001/routing`, {
      headers: { authorization: `Bearer ${admin.token}` },
    }).then((r) => r.json());
    return g.maxWaitSecs === 5 ? g : null;
  });
  assert.equal(routing.overflowGroup, 'G002');
  await page.locator('#tab-users').click();
  await page.locator('#users tr[data-email="agent1@demo.local"]').waitFor();
  await page.locator('#new-email').fill('overflow@demo.local');
  await page.locator('#new-password').fill('secret-pass-8');
  await page.locator('#new-seat').fill('8108');
  await page.locator('#new-group').fill('G002');
  await page.locator('#add-user-button').click();
  await page.locator('#users tr[data-email="overflow@demo.local"]').waitFor();
  await page.locator('#tab-wallboard').click();

  // Only the G002 agent is signed in: nobody of G001 can take the call.
  const tab = await env.open();
  await tab.signIn('overflow@demo.local', 'secret-pass-8');
  const from = await tab.count();
  const before = (await sandboxCalls()).length;
  const placedAt = Date.now();
  await env.sandboxCall('12025550170', '14155550177');

  // Answered to wait: the caller hears the music (not silence).
  const heard = await until('the caller hears music', 3000, async () => {
    const c = (await sandboxCalls())[before];
    return c && c.state === 'answered' && c.heardPackets >= 50 && c.heardPeakDbfs > -40 ? c : null;
  });
  assert.equal(heard.from, '14155550177');
  assert.ok(heard.heardPeakDbfs < -6, `soft music, not a full-scale tone: ${heard.heardPeakDbfs} dBFS`);
  await page.locator('#calls tr[data-state="queued"]').first().waitFor({ timeout: 2000 });
  assert.equal(await tab.count() > from && (await tab.messages()).slice(from).some((m) => m.type === 'dialStatus'), false,
    'the G002 agent is not rung while the caller waits in G001');

  // After the 5 s wait: overflow to G002, whose agent rings and answers.
  const ring = (await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 1, { from, timeout: 9000 })).data.content;
  const waited = Date.now() - placedAt;
  assert.ok(waited >= 4900, `not before the maximum wait: ${waited} ms`);
  assert.equal(ring.caller, '14155550177');
  await tab.send({ type: 'answer' });
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 2, { from });
  const calls = await sandboxCalls();
  assert.equal(calls[before].state, 'answered', 'one call all along, answered once');
  await tab.send({ type: 'hangUp' });
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from });
  const ended = await until('the sandbox sees the BYE', 3000, async () => {
    const c = (await sandboxCalls())[before];
    return c.state === 'ended' ? c : null;
  });
  assert.equal(ended.endedBy, 'seatline');

  // The tenant's own music, uploaded in the console (Recording tab): the
  // next waiting caller hears it, at its level (a half-scale sine: about
  // -9 dBFS, where the built-in tune is about -25).
  await page.locator('#tab-recording').click();
  await page.locator('#music-status[data-own="false"]').waitFor();
  await page.locator('#music-upload').click();
  assert.match(await page.locator('#music-error').textContent(), /Choose a WAV file first/);
  await page.locator('#music-file').setInputFiles({ name: 'bad.wav', mimeType: 'audio/wav', buffer: Buffer.from('RIFF but not a wav') });
  await page.locator('#music-upload').click();
  await page.locator('#music-error:not([hidden])', { hasText: 'cannot be used as music' }).waitFor();
  await page.locator('#music-file').setInputFiles({ name: 'hold.wav', mimeType: 'audio/wav', buffer: sineWav(16000, 3) });
  await page.locator('#music-upload').click();
  await page.locator('#music-status[data-own="true"]', { hasText: '3 s' }).waitFor();
  const from2 = await tab.count();
  await env.sandboxCall('12025550170', '14155550178');
  const loud = await until('the caller hears the tenant music', 3000, async () => {
    const c = (await sandboxCalls())[before + 1];
    return c && c.heardPackets >= 50 ? c : null;
  });
  assert.ok(loud.heardPeakDbfs > -12 && loud.heardPeakDbfs < -6, `the tenant's music: ${loud.heardPeakDbfs} dBFS`);
  // It overflows to G002 as before; answered there and hung up.
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 1, { from: from2, timeout: 9000 });
  await tab.send({ type: 'answer' });
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 2, { from: from2 });
  await tab.send({ type: 'hangUp' });
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from: from2 });
  await tab.page.context().close();
  await page.context().close();
});

test('a queued caller overflows to a number after the maximum wait, hears it, and keeps one record', async () => {
  const admin = await fetch(`${base}/api/v1/sessions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'admin@demo.local', password: 'demo1234' }),
  }).then((r) => r.json());
  const auth = { authorization: `Bearer ${admin.token}` };
  // The built-in tune again (about -25 dBFS): the number's audio is louder.
  assert.equal((await fetch(`${base}/api/v1/admin/music`, { method: 'DELETE', headers: auth })).status, 204);

  // G001's callers wait 3 s, then go to the sandbox number that answers
  // after 1 s, echoes, and hangs up after 3 s.
  const page = await env.openConsole('admin@demo.local');
  await page.locator('#tab-groups').click();
  await page.locator('#routing-group').selectOption('G001');
  await page.locator('label[data-field="routing-overflow-number"][hidden]').waitFor({ state: 'attached' });
  await page.locator('#routing-wait').fill('3');
  await page.locator('#routing-overflow').selectOption('#number');
  await page.locator('#routing-overflow-number').fill('call me');
  await page.locator('#routing-form-submit').click();
  assert.match(await page.locator('#routing-form-error').textContent(), /E\.164/);
  await page.locator('#routing-overflow-number').fill('+12025550120');
  await page.locator('#routing-form-submit').click();
  const routing = await until('the routing is saved', 3000, async () => {
    const g = await fetch(`${base}/api/v1/admin/groups/G001/routing`, { headers: auth }).then((r) => r.json());
    return g.overflowNumber ? g : null;
  });
  assert.equal(routing.overflowNumber, '12025550120');
  assert.equal(routing.overflowGroup, null);
  assert.equal(routing.maxWaitSecs, 3);
  // The form shows it back (G001 is the first group: the form opens on it).
  await page.reload();
  await page.locator('#tab-groups').click();
  assert.equal(await page.locator('#routing-group').inputValue(), 'G001');
  assert.equal(await page.locator('#routing-overflow').inputValue(), '#number');
  assert.equal(await page.locator('#routing-overflow-number').inputValue(), '12025550120');

  const before = (await sandboxCalls()).length;
  const placedAt = Date.now();
  await env.sandboxCall('12025550170', '14155550176');
  const music = await until('the caller hears music', 3000, async () => {
    const c = (await sandboxCalls())[before];
    return c && c.state === 'answered' && c.heardPackets >= 50 ? c : null;
  });
  assert.ok(music.heardPeakDbfs > -40 && music.heardPeakDbfs < -18, `the waiting music: ${music.heardPeakDbfs} dBFS`);
  // The wallboard shows it going to the number, with no agent.
  await page.locator('#tab-wallboard').click();
  await page.locator('#calls tr[data-state="queued"]').first().waitFor({ timeout: 2000 });
  await page.locator('#calls tr', { hasText: '→ 12025550120' }).first().waitFor({ timeout: 9000 });
  // Counted for the day apart from answered and abandoned.
  await page.locator('#overflowed .value', { hasText: /^[1-9]/ }).waitFor({ timeout: 2000 });
  // After the wait and the number's ring, the caller hears its own tone
  // (about -12 dBFS) come back from the number's echo.
  const echoed = await until('the caller hears the number', 9000, async () => {
    const c = (await sandboxCalls())[before];
    return c.heardPeakDbfs > -16 ? c : null;
  });
  const waited = Date.now() - placedAt;
  assert.ok(waited >= 3900, `the number answered after the wait and its ring, not ${waited} ms`);
  assert.equal(echoed.state, 'answered', 'one call all along');
  // The number hangs up after 3 s: the caller gets a BYE from us.
  const ended = await until('the caller is hung up', 8000, async () => {
    const c = (await sandboxCalls())[before];
    return c.state === 'ended' ? c : null;
  });
  assert.equal(ended.endedBy, 'seatline');
  const calls = await fetch(`${base}/api/v1/admin/calls`, { headers: auth }).then((r) => r.json());
  const mine = calls.calls.filter((c) => c.caller === '14155550176');
  assert.equal(mine.length, 1, 'one record for the caller');
  assert.equal(mine[0].forwardedTo, '12025550120');
  assert.equal(typeof mine[0].callConnectedTimestamp, 'number');
  assert.equal(typeof mine[0].callHangUpTimestamp, 'number');
  await page.context().close();
});
