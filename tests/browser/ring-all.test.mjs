// Ring-all and skills from the console: the demo tenant's admin sets group
// G001's strategy to ring-all in the console; one inbound sandbox call then
// rings both signed-in agents at once, the second agent answers, and the
// call stops ringing at the first (dialStatus 5 with the same callId, back
// to Idle), whose late answer changes nothing. Then the admin gives agent2
// Spanish and makes a DID require it: its call rings agent2 only.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './harness.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env.teardown(); });

const sandboxCall = (to, from) => env.sandboxCall(to, from);

/** agent1 and agent2 signed in, each in a tab: the tabs and where their new messages start. */
async function twoAgents() {
  const a = await env.open();
  await a.signIn('agent1@demo.local');
  const b = await env.open();
  await b.signIn('agent2@demo.local');
  return { a, b, fromA: await a.count(), fromB: await b.count() };
}

test('a group set to ring-all in the console rings two agents for one inbound call; the first to answer takes it', async () => {
  const page = await env.openConsole('admin@demo.local');
  await page.locator('#tab-groups').click();
  await page.locator('#groups tr[data-group="G001"]').waitFor();
  await page.locator('#routing-group').selectOption('G001');
  await page.locator('#routing-strategy').selectOption('ringAll');
  await page.locator('#routing-form-submit').click();
  await page.locator('#groups tr[data-group="G001"][data-strategy="ringAll"]').waitFor();
  await page.context().close();

  const { a, b, fromA, fromB } = await twoAgents();
  await sandboxCall('12025550170', '14155550123');
  const ringA = (await a.waitFor((m) => m.type === 'dialStatus' && m.content.code === 1, { from: fromA })).data.content;
  const ringB = (await b.waitFor((m) => m.type === 'dialStatus' && m.content.code === 1, { from: fromB })).data.content;
  assert.equal(ringA.callId, ringB.callId, 'one call rings both agents');
  assert.equal(ringA.caller, '14155550123');
  await b.send({ type: 'answer' });
  const connected = (await b.waitFor((m) => m.type === 'dialStatus' && m.content.code === 2, { from: fromB })).data.content;
  assert.equal(connected.callId, ringB.callId);
  const gone = (await a.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from: fromA })).data.content;
  assert.equal(gone.callId, ringA.callId, 'the call stops ringing at agent1');
  // Ringing showed agent1 busy (2); it is back to Idle (1).
  const busyAt = (await a.messages()).findIndex((m, i) => i >= fromA && m.type === 'agentStatus' && m.content.code === 2);
  assert.ok(busyAt >= fromA, 'agent1 showed busy while it rang');
  await a.waitFor((m) => m.type === 'agentStatus' && m.content.code === 1, { from: busyAt + 1 });
  // agent1's late answer changes nothing: agent2 keeps the call.
  await a.send({ type: 'answer' });
  await new Promise((r) => setTimeout(r, 500));
  const afterA = (await a.messages()).slice(fromA).filter((m) => m.type === 'dialStatus').map((m) => m.content.code);
  assert.deepEqual(afterA, [1, 5]);
  await b.send({ type: 'hangUp' });
  await b.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from: fromB });
  await a.page.context().close();
  await b.page.context().close();
});

test('skills set in the console: a DID that requires a skill rings only the agent who has it, even ringing all', async () => {
  const page = await env.openConsole('admin@demo.local', { viewport: { width: 1200, height: 1000 } });

  // agent2 speaks Spanish; a bad entry is caught in the page first.
  await page.locator('#tab-users').click();
  await page.locator('#users tr[data-email="agent2@demo.local"]').waitFor();
  await page.locator('#skills-user').selectOption({ label: 'agent2@demo.local' });
  const agent2 = await page.locator('#skills-user option', { hasText: 'agent2@demo.local' }).getAttribute('value');
  // Its skills (none yet) are loaded before anything is typed.
  await page.locator(`#skills-value[data-agent="${agent2}"]`).waitFor({ state: 'attached' });
  await page.locator('#skills-value').fill('es:11');
  await page.locator('#skills-form-submit').click();
  await page.locator('#skills-form-error:not([hidden])').waitFor();
  assert.match(await page.locator('#skills-form-error').textContent(), /levels 1 to 10/);
  await page.locator('#skills-value').fill('es:5, vip:2');
  await page.locator('#skills-form-submit').click();
  await page.locator('#skills-form-error[hidden]').waitFor({ state: 'attached' });
  await page.locator('#notice:not([hidden])').waitFor();

  // The DID 12025550172 requires Spanish.
  await page.locator('#tab-numbers').click();
  await page.locator('#dids tr[data-number="12025550172"]').waitFor();
  await page.locator('#did-number').selectOption('12025550172');
  await page.locator('#did-kind').selectOption('group');
  await page.locator('#did-group').selectOption('G001');
  await page.locator('#did-skill').fill('es');
  await page.locator('#did-form-submit').click();
  await page.locator('#dids tr[data-number="12025550172"] td.route', { hasText: 'Group G001 · skill es' }).waitFor();

  // Back on the Users tab, agent2's skills show as saved.
  await page.locator('#tab-users').click();
  await page.locator('#skills-user').selectOption({ label: 'agent2@demo.local' });
  await page.waitForFunction(() => /** @type {HTMLInputElement} */ (document.getElementById('skills-value')).value === 'es:5, vip:2');
  await page.context().close();

  const { a, b, fromA, fromB } = await twoAgents();
  await sandboxCall('12025550172', '14155550124');
  const ring = (await b.waitFor((m) => m.type === 'dialStatus' && m.content.code === 1, { from: fromB })).data.content;
  assert.equal(ring.callee, '12025550172');
  await b.send({ type: 'answer' });
  await b.waitFor((m) => m.type === 'dialStatus' && m.content.code === 2, { from: fromB });
  assert.ok(!(await a.messages()).slice(fromA).some((m) => m.type === 'dialStatus'), 'agent1 (no Spanish) never rang');
  await b.send({ type: 'hangUp' });
  await b.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from: fromB });
  await a.page.context().close();
  await b.page.context().close();
});
