// Every reason code, end to end in the browser from the demo data: the demo
// page (served from 127.0.0.1, the softphone from localhost) has a row per
// code whose button places the call that breaks a rule of the demo data; the
// page must receive the code's dialStatus, then dialStatus 5 with hangupCode.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './harness.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env.teardown(); });

/**
 * The messages the demo page received from the softphone, oldest first, read
 * from its log (which shows each one as it came, newest on top).
 * @param {import('playwright-core').Page} page
 */
async function received(page) {
  const texts = await page.locator('#log li.in code').allTextContents();
  return texts.reverse().map((t) => JSON.parse(t));
}

/** Opens the demo page of `seatline` in a browser with a normal profile. */
async function openDemo(e) {
  const ctx = await e.newBrowser();
  const page = await ctx.newPage();
  page.on('pageerror', (err) => console.error('page error:', err.message));
  await page.goto(`http://127.0.0.1:${e.seatline.port}/demo`);
  // The host page and the softphone are of different origins.
  const src = await page.locator('#iframe').getAttribute('src');
  assert.equal(new URL(src).origin, e.seatline.origin);
  assert.notEqual(new URL(page.url()).origin, e.seatline.origin);
  await page.frameLocator('#iframe').locator('#email').waitFor();
  return page;
}

/** Clicks `button` (an init) and waits for the softphone signed in as `email` and ready. */
async function signIn(page, button, email) {
  const from = (await received(page)).length;
  await page.locator(button).click();
  await page.locator('#sum-login').filter({ hasText: email }).waitFor();
  await waitFor(page, from, (m) => m.type === 'dialStatus' && m.content.code === 4);
}

/** Waits for a message (after the first `from`) matching pred; returns those after `from`. */
async function waitFor(page, from, pred, timeout = 20000) {
  const until = Date.now() + timeout;
  for (;;) {
    const msgs = (await received(page)).slice(from);
    if (msgs.some(pred)) return msgs;
    if (Date.now() > until) throw new Error(`no matching message within ${timeout} ms; got ${JSON.stringify(msgs)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Clicks the row's button of `code` and waits for a call to end with that
 * code; returns the dialStatus of the calls the click placed.
 */
async function produce(page, code) {
  const from = (await received(page)).length;
  const ended = (m) => m.type === 'dialStatus' && m.content.code === 5 && m.content.hangupCode === code;
  await page.locator(`#code-${code}`).click();
  const msgs = await waitFor(page, from, ended);
  const calls = msgs.filter((m) => m.type === 'dialStatus' && m.content.callId !== undefined).map((m) => m.content);
  // The reason code, then 5 with it, for the same outbound call.
  const [reason, end] = calls.slice(-2);
  assert.deepEqual([reason.code, end.code, end.hangupCode], [code, 5, code], JSON.stringify(calls));
  assert.equal(reason.callId, end.callId);
  assert.equal(end.direction, 1);
  return calls.map((c) => c.code);
}

test('each reason code of the demo page comes from its row, on a host page of another origin', async () => {
  const page = await openDemo(env);
  const rows = await page.locator('#reason-codes tr').count();
  assert.equal(rows, 9, 'a row per code: 810-817 and 819');
  await signIn(page, '#send-init', 'agent1@demo.local');

  // Refused before any ringing.
  for (const code of [811, 812, 814, 816]) {
    assert.deepEqual(await produce(page, code), [code, 5], `${code}`);
  }
  // The carrier refuses the caller ID: it rang first.
  assert.deepEqual(await produce(page, 819), [0, 819, 5]);
  // Five declined calls to one number in a minute; one click places them
  // until the sixth is refused.
  assert.deepEqual(await produce(page, 815), [0, 5, 0, 5, 0, 5, 0, 5, 0, 5, 815, 5]);

  // Rows that need another user sign in as that user first.
  await signIn(page, '#as-810', 'broke@demo.local');
  assert.deepEqual(await produce(page, 810), [810, 5]);
  await signIn(page, '#as-817', 'trial@demo.local');
  // Two calls today (answered, then hung up by the page), the third refused.
  assert.deepEqual(await produce(page, 817), [0, 2, 5, 0, 2, 5, 817, 5]);
  await page.context().close();
});

test('813: a call on a session gone idle past its timeout, before the server signs the tab out', async () => {
  // Sessions end after 2 s idle; the sweep that signs expired sessions' tabs
  // out runs only every minute, so the call comes in between.
  const short = await setup({ idleTimeoutSecs: 2, sweepIntervalMs: 60000 });
  try {
    const page = await openDemo(short);
    await signIn(page, '#send-init', 'agent1@demo.local');
    await new Promise((r) => setTimeout(r, 3000));
    assert.deepEqual(await produce(page, 813), [813, 5]);
    assert.ok(!(await received(page)).some((m) => m.type === 'tokenInvalid'), 'not swept yet');
    await page.context().close();
  } finally {
    await short.teardown();
  }
});
