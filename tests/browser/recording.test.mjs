// Call recording seen from the browser: the demo tenant records on demand,
// so the host starts it (startRecording), the agent sees REC, the host is
// told (`recording`), and after the echo call the back end fetches the
// recording with an API key: a stereo WAV whose left channel (the agent's
// fake microphone) and right channel (the sandbox's echo of it) both carry
// the call's audio, the echo following the microphone.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './harness.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env.teardown(); });

const base = () => `http://127.0.0.1:${env.seatline.port}`;

async function adminToken() {
  const r = await fetch(`${base()}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'admin@demo.local', password: 'demo1234' }) });
  return (await r.json()).token;
}

async function apiKey(token, scopes) {
  const r = await fetch(`${base()}/api/v1/admin/api-keys`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ name: 'recordings test', scopes }) });
  assert.equal(r.status, 201);
  return (await r.json()).key;
}

/** A WAV's 16-bit samples, per channel. @param {ArrayBuffer} buf */
function decodeWav(buf) {
  const v = new DataView(buf);
  const tag = (o) => String.fromCharCode(v.getUint8(o), v.getUint8(o + 1), v.getUint8(o + 2), v.getUint8(o + 3));
  assert.equal(tag(0), 'RIFF');
  assert.equal(tag(8), 'WAVE');
  let off = 12;
  let fmt = null;
  for (;;) {
    const id = tag(off);
    const size = v.getUint32(off + 4, true);
    if (id === 'fmt ') fmt = { channels: v.getUint16(off + 10, true), rate: v.getUint32(off + 12, true), bits: v.getUint16(off + 22, true) };
    if (id === 'data') {
      const frames = Math.floor(size / 4);
      const ch = [new Int16Array(frames), new Int16Array(frames)];
      for (let i = 0; i < frames; i++) {
        ch[0][i] = v.getInt16(off + 8 + i * 4, true);
        ch[1][i] = v.getInt16(off + 8 + i * 4 + 2, true);
      }
      return { fmt, ch };
    }
    off += 8 + size + (size % 2);
  }
}

/** Mean absolute level of each 100 ms window. @param {Int16Array} s */
function envelope(s) {
  const out = [];
  for (let i = 0; i + 800 <= s.length; i += 800) {
    let sum = 0;
    for (let j = i; j < i + 800; j++) sum += Math.abs(s[j]);
    out.push(sum / 800);
  }
  return out;
}

/** The lag (windows, 0-10) at which b best follows a, and their correlation there. */
function follows(a, b) {
  let best = { lag: -1, r: -1 };
  for (let lag = 0; lag <= 10; lag++) {
    const x = a.slice(0, a.length - lag);
    const y = b.slice(lag, lag + x.length);
    const mean = (z) => z.reduce((p, q) => p + q, 0) / z.length;
    const mx = mean(x);
    const my = mean(y);
    let sxy = 0; let sxx = 0; let syy = 0;
    for (let i = 0; i < x.length; i++) {
      sxy += (x[i] - mx) * (y[i] - my);
      sxx += (x[i] - mx) ** 2;
      syy += (y[i] - my) ** 2;
    }
    const r = sxy / Math.sqrt(sxx * syy || 1);
    if (r > best.r) best = { lag, r };
  }
  return best;
}

test('the host starts recording an echo call; the agent sees REC; the recording carries both directions', async () => {
  const tab = await env.open();
  await tab.signIn();
  const frame = tab.page.frames().find((f) => f.url().includes('/admin/'));
  let from = await tab.count();
  // No call yet: refused, and the host is told why.
  await tab.send({ type: 'startRecording' });
  const refused = await tab.waitFor((m) => m.type === 'recording', { from });
  assert.deepEqual(refused.data.content, { callId: '', on: false, refused: 'notConnected' });

  from = await tab.count();
  await tab.send({ type: 'callOut', content: { caller: '', callee: '12025550100', countryCode: '1', orderId: 'rec-1' } });
  const up = await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 2, { from, timeout: 10000 });
  const callId = up.data.content.callId;
  assert.equal(await frame.locator('#recording').count(), 0, 'not recorded before it is asked');
  await tab.send({ type: 'startRecording' });
  const on = await tab.waitFor((m) => m.type === 'recording' && m.content.on === true, { from });
  assert.equal(on.data.content.callId, callId);
  await frame.locator('#recording').waitFor();
  assert.equal(await frame.locator('#recording').textContent(), 'REC');
  await new Promise((r) => setTimeout(r, 5000));
  await tab.send({ type: 'hangUp' });
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from });
  assert.equal(await frame.locator('#recording').count(), 0, 'REC goes with the call');

  const token = await adminToken();
  const key = await apiKey(token, ['recordings:read', 'records:read']);
  const rec = await (await fetch(`${base()}/api/v1/calls?orderId=rec-1`, { headers: { authorization: `Bearer ${key}` } })).json();
  assert.equal(rec.calls[0].recording, `/api/v1/calls/${callId}/recording`);
  const r = await fetch(`${base()}${rec.calls[0].recording}`, { headers: { authorization: `Bearer ${key}` } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'audio/wav');
  const { fmt, ch } = decodeWav(await r.arrayBuffer());
  assert.deepEqual(fmt, { channels: 2, rate: 8000, bits: 16 });
  const secs = ch[0].length / 8000;
  assert.ok(secs > 4 && secs < 7, `about 5 s recorded: ${secs}`);
  const [agent, customer] = ch.map(envelope);
  const loud = (e) => e.filter((x) => x > 200).length;
  console.log(`recording: ${secs.toFixed(2)} s; loud 100 ms windows: agent ${loud(agent)}, customer ${loud(customer)}`);
  assert.ok(loud(agent) >= 3, `the agent's microphone is in the left channel: ${agent.map(Math.round)}`);
  assert.ok(loud(customer) >= 3, `the echo is in the right channel: ${customer.map(Math.round)}`);
  const f = follows(agent, customer);
  console.log(`the echo follows the microphone by ${f.lag * 100} ms (r = ${f.r.toFixed(2)})`);
  assert.ok(f.r > 0.6, `the right channel is the echo of the left: ${JSON.stringify(f)}`);
  await tab.page.context().close();
});
