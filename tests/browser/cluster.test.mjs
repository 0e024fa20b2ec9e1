// Two Seatline nodes on one PostgreSQL database (issue 12): an agent's
// tabs on different nodes. The node where the agent signed in first holds
// it; a tab opened on the other node is relayed there, so a call placed
// from one node's tab is heard in the audio tab on the other node (its
// WebRTC goes straight to the node that holds the agent).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, startSeatline, startPostgres, softphone, hearsAudio } from './harness.mjs';

let pg;
let env;
let nodeB;
const node = (name) => ['[store]', `url = "${pg.url}"`, '[cluster]', `node = "${name}"`];

before(async () => {
  pg = await startPostgres();
  env = await setup({ extraConfig: node('a') });
  nodeB = await startSeatline({ extraConfig: node('b') });
});
after(async () => {
  await env.teardown();
  await nodeB.stop();
  await pg.stop();
});

test('a call placed from a tab on node a is heard in the audio tab on node b', async () => {
  // Signed in on node a first: node a holds the agent.
  const signIn = await fetch(`http://127.0.0.1:${env.seatline.port}/api/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'agent1@demo.local', password: 'demo1234' }),
  });
  assert.equal(signIn.status, 200);

  // The agent's first tab (so the audio tab) is on node b.
  const onB = await env.open(undefined, undefined, nodeB.softphoneUrl);
  await onB.signIn('agent1@demo.local');
  assert.equal(await softphone(onB).locator('#audio-where').textContent(), 'Audio in this tab');
  const onA = await env.open();
  await onA.signIn('agent1@demo.local');
  assert.notEqual(await softphone(onA).locator('#audio-where').textContent(), 'Audio in this tab');

  // The call is placed from node a's tab; both tabs follow it.
  const fromA = await onA.count();
  const fromB = await onB.count();
  await onA.send({ type: 'callOut', content: { caller: '', callee: '12025550100', countryCode: '1', orderId: 'c-1', params: '' } });
  const upA = await onA.waitFor((m) => m.type === 'dialStatus' && m.content.code === 2, { from: fromA, timeout: 10000 });
  const upB = await onB.waitFor((m) => m.type === 'dialStatus' && m.content.code === 2, { from: fromB, timeout: 10000 });
  assert.equal(upA.data.content.callId, upB.data.content.callId);
  // The echo of node b's tab's microphone, heard in node b's tab.
  const stats = await hearsAudio(onB);
  assert.ok(stats.packetsReceived > 25, JSON.stringify(stats));

  await onB.send({ type: 'hangUp' });
  await onA.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from: fromA });
  await onB.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from: fromB });
  // Node b relayed: the call is on node a, whose record names it.
  const calls = await fetch(`http://127.0.0.1:${nodeB.port}/api/v1/admin/calls?limit=5`, {
    headers: { authorization: `Bearer ${await adminToken(nodeB.port)}` },
  }).then((r) => r.json());
  assert.ok(calls.calls.some((c) => c.callId === upA.data.content.callId), JSON.stringify(calls));
  await onA.page.context().close();
  await onB.page.context().close();
});

async function adminToken(port) {
  const r = await fetch(`http://127.0.0.1:${port}/api/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'admin@demo.local', password: 'demo1234' }),
  });
  return (await r.json()).token;
}
