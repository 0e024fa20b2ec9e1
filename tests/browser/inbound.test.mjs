// Inbound calls: the sandbox carrier calls a DID of the demo tenant; the
// call rings the idle agents of the DID's group, longest idle first.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { setup, BIN, softphone, hearsAudio as heard } from './harness.mjs';

const hearsAudio = (tab, ms = 8000) => heard(tab, ms, false);

let env;
before(async () => { env = await setup(); });
after(async () => { await env.teardown(); });

const sandboxCall = (to, from, other) => env.sandboxCall(to, from, other);

test('an inbound call rings the agent (dialStatus 1 with other), is answered in the page, and is heard', async () => {
  const tab = await env.open();
  await tab.signIn();
  const from = await tab.count();
  await sandboxCall('12025550170', '14155550111', '{"ticket":42}');
  const ringing = (await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 1, { from })).data.content;
  assert.equal(ringing.direction, 0);
  assert.equal(ringing.caller, '14155550111');
  assert.equal(ringing.callee, '12025550170');
  assert.equal(ringing.other, '{"ticket":42}');
  assert.equal(ringing.callConnectedTimestamp, '');
  await tab.waitFor((m) => m.type === 'agentStatus' && m.content.code === 2, { from });
  await softphone(tab).locator('#call-panel[data-state="incoming"]').waitFor();
  // The ring, from the server, is heard before answering.
  await hearsAudio(tab);
  await softphone(tab).locator('#answer').click();
  const connected = (await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 2, { from })).data.content;
  assert.equal(connected.callId, ringing.callId);
  await hearsAudio(tab);
  await tab.send({ type: 'hangUp' });
  const end = (await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from })).data.content;
  assert.equal(end.callId, ringing.callId);
  await tab.waitFor((m) => m.type === 'agentStatus' && m.content.code === 1, { from: from + 3 });
  await tab.send({ type: 'loginOut' });
  await tab.waitFor((m) => m.type === 'logout', { from });
  await tab.page.context().close();
});

test('answered from the host; an agent on a break is not rung; a rejected call goes to the next agent', async () => {
  const a = await env.open();
  await a.signIn('agent1@demo.local');
  const b = await env.open();
  await b.signIn('agent2@demo.local');
  // agent2 on a break: only agent1 can be rung.
  await b.send({ type: 'setAgentStatus', content: { code: 4 } });
  await b.waitFor((m) => m.type === 'agentStatus' && m.content.code === 4);
  let fromA = await a.count();
  const fromB = await b.count();
  await sandboxCall('12025550171', '14155550112', '');
  await a.waitFor((m) => m.type === 'dialStatus' && m.content.code === 1, { from: fromA });
  await a.send({ type: 'answer' });
  await a.waitFor((m) => m.type === 'dialStatus' && m.content.code === 2, { from: fromA });
  await a.send({ type: 'hangUp' });
  await a.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from: fromA });
  assert.ok(!(await b.messages()).slice(fromB).some((m) => m.type === 'dialStatus' && m.content.code === 1), 'the agent on a break was not rung');

  // Both idle: agent1 rejects, the call rings agent2 with the same callId.
  await b.send({ type: 'setAgentStatus', content: { code: 1 } });
  await a.waitFor((m) => m.type === 'agentStatus' && m.content.code === 1, { from: fromA });
  await new Promise((r) => setTimeout(r, 300));
  fromA = await a.count();
  const fromB2 = await b.count();
  await sandboxCall('12025550172', '14155550113', 'x');
  // agent2 has been idle longer now? Whoever rings first rejects; the other gets it.
  const first = await Promise.race([
    a.waitFor((m) => m.type === 'dialStatus' && m.content.code === 1, { from: fromA }).then((r) => ['a', r]),
    b.waitFor((m) => m.type === 'dialStatus' && m.content.code === 1, { from: fromB2 }).then((r) => ['b', r]),
  ]);
  const [who, hit] = first;
  const [rejecter, other, otherFrom] = who === 'a' ? [a, b, fromB2] : [b, a, fromA];
  await softphone(rejecter).locator('#reject').click();
  const next = await other.waitFor((m) => m.type === 'dialStatus' && m.content.code === 1, { from: otherFrom });
  assert.equal(next.data.content.callId, hit.data.content.callId);
  await other.send({ type: 'answer' });
  await other.waitFor((m) => m.type === 'dialStatus' && m.content.code === 2, { from: otherFrom });
  await other.send({ type: 'hangUp' });
  await other.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from: otherFrom });
  for (const t of [a, b]) {
    await t.send({ type: 'loginOut' });
    await t.page.context().close();
  }
});

test('seatline sandbox call places an inbound call from the command line', async () => {
  const tab = await env.open();
  await tab.signIn();
  const from = await tab.count();
  const { stdout } = await promisify(execFile)(BIN, ['sandbox', 'call', '--to', '12025550173', '--from', '14155550114', '--other', '{"a":1}', '--server', `http://127.0.0.1:${env.seatline.port}`]);
  assert.match(stdout, /calling 12025550173/);
  const ringing = await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 1, { from });
  assert.equal(ringing.data.content.other, '{"a":1}');
  await tab.send({ type: 'reject' });
  // Nobody else is idle: the call ends, and the agent hears 5.
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from });
  await tab.page.context().close();
});
