// The operator console's administration forms and call records in the
// browser: the demo tenant's admin creates a group and sets its strategy,
// routes a DID to it, adds and deletes a trunk, blacklists a number, creates
// an API key (its secret shown once), sets the allowed origins, and sets
// recording for every call — each change checked afterwards through the JSON
// API, not only on the page. Bad input (caught in the page, or refused by the
// server) shows its error next to the form and changes nothing. The records
// tab lists a sandbox call, plays its recording and exports the CSV. Takes
// docs/screenshots/console-forms.png.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setup, SCREENSHOTS } from './harness.mjs';

let env;
let base;
let admin;

before(async () => {
  env = await setup();
  base = `http://127.0.0.1:${env.seatline.port}`;
  const r = await fetch(`${base}/api/v1/sessions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'admin@demo.local', password: 'demo1234' }),
  });
  admin = (await r.json()).token;
});
after(async () => { await env.teardown(); });

/** The JSON API as the admin (its own session, not the page's). */
async function api(path, token = admin) {
  const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: r.status, body: await r.json().catch(() => null) };
}

async function openConsole() {
  return env.openConsole('admin@demo.local', { downloads: true });
}

/** The error shown under form `id`, once shown. */
async function errorOf(page, id) {
  const e = page.locator(`#${id}-error:not([hidden])`);
  await e.waitFor({ timeout: 3000 });
  return e.textContent();
}

test('the admin sets the call center up from the console; bad input changes nothing', async () => {
  const page = await openConsole();

  // Groups: a bad number is caught in the page, nothing is sent.
  await page.locator('#tab-groups').click();
  await page.locator('#groups tr[data-group="G001"]').waitFor();
  const posts = [];
  page.on('request', (r) => { if (r.method() !== 'GET') posts.push(`${r.method()} ${new URL(r.url()).pathname}`); });
  await page.locator('#group-no').fill('G 2');
  await page.locator('#group-name').fill('Sales');
  await page.locator('#group-form-submit').click();
  assert.match(await errorOf(page, 'group-form'), /Group number: 1 to 32 letters, digits, - or _\./);
  assert.deepEqual(posts, [], 'nothing sent');
  // Made, then its strategy set.
  await page.locator('#group-no').fill('G002');
  await page.locator('#group-acw').fill('15');
  await page.locator('#group-form-submit').click();
  await page.locator('#groups tr[data-group="G002"]').waitFor();
  // Taken already: the server's 409, in clear words.
  await page.locator('#group-no').fill('G002');
  await page.locator('#group-name').fill('Again');
  await page.locator('#group-form-submit').click();
  assert.match(await errorOf(page, 'group-form'), /^It exists already\. \(.*G002.*\)$/);
  await page.locator('#routing-group').selectOption('G002');
  await page.locator('#routing-missed').fill('101');
  await page.locator('#routing-form-submit').click();
  assert.match(await errorOf(page, 'routing-form'), /from 0 to 100/);
  await page.locator('#routing-missed').fill('2');
  await page.locator('#routing-ring').fill('301');
  await page.locator('#routing-form-submit').click();
  assert.match(await errorOf(page, 'routing-form'), /from 0 to 300/);
  await page.locator('#routing-strategy').selectOption('roundRobin');
  await page.locator('#routing-ring').fill('12');
  await page.locator('#routing-announce').selectOption('es-MX');
  await page.locator('#routing-form-submit').click();
  await page.locator('#groups tr[data-group="G002"][data-strategy="roundRobin"]').waitFor();
  let g = (await api('/api/v1/admin/groups')).body.groups.find((x) => x.group === 'G002');
  assert.deepEqual([g.name, g.acwSecs, g.strategy, g.maxMissed, g.ringTimeoutSecs, g.announceLang], ['Sales', 15, 'roundRobin', 2, 12, 'es-MX']);
  // Its name and wrap-up changed in place: picking it fills the form; a
  // wrap-up out of range is caught in the page.
  await page.locator('#edit-group').selectOption('G002');
  assert.equal(await page.locator('#edit-group-name').inputValue(), 'Sales');
  assert.equal(await page.locator('#edit-group-acw').inputValue(), '15');
  await page.locator('#edit-group-acw').fill('3601');
  await page.locator('#edit-group-form-submit').click();
  assert.match(await errorOf(page, 'edit-group-form'), /from 0 to 3600/);
  await page.locator('#edit-group-name').fill('Sales East');
  await page.locator('#edit-group-acw').fill('40');
  await page.locator('#edit-group-form-submit').click();
  await page.locator('#groups tr[data-group="G002"]', { hasText: 'Sales East' }).waitFor();
  g = (await api('/api/v1/admin/groups')).body.groups.find((x) => x.group === 'G002');
  assert.deepEqual([g.name, g.acwSecs, g.strategy], ['Sales East', 40, 'roundRobin'], 'the routing stays');

  // Numbers: a DID to the new group; a bad forward number (the page's
  // check) and a forward to itself (the server's) change nothing.
  await page.locator('#tab-numbers').click();
  await page.locator('#dids tr[data-number="12025550171"]').waitFor();
  await page.locator('#did-number').selectOption('12025550171');
  await page.locator('#did-kind').selectOption('group');
  await page.locator('#did-group').selectOption('G002');
  await page.locator('#did-form-submit').click();
  await page.locator('#dids tr[data-number="12025550171"] td.route', { hasText: 'Group G002' }).waitFor();
  const routeOf = async (n) => (await api('/api/v1/admin/dids')).body.dids.find((d) => d.number === n).route;
  assert.deepEqual(await routeOf('12025550171'), { group: 'G002' });
  await page.locator('#did-kind').selectOption('forwardTo');
  await page.locator('#did-forward').fill('12ab');
  await page.locator('#did-form-submit').click();
  assert.match(await errorOf(page, 'did-form'), /Forward to: a phone number in E\.164 digits/);
  await page.locator('#did-forward').fill('+12025550171');
  await page.locator('#did-form-submit').click();
  assert.equal(await errorOf(page, 'did-form'), 'A number cannot be forwarded to itself. (a DID cannot be forwarded to itself)');
  assert.deepEqual(await routeOf('12025550171'), { group: 'G002' }, 'unchanged');
  // The same refusal in the other languages.
  await page.locator('#lang').selectOption('es-MX');
  await page.locator('#did-form-submit', { hasText: 'Guardar ruta' }).waitFor();
  await page.locator('#did-kind').selectOption('forwardTo');
  await page.locator('#did-forward').fill('12ab');
  await page.locator('#did-form-submit').click();
  assert.match(await errorOf(page, 'did-form'), /^Desviar a: un número telefónico en dígitos E\.164/);
  await page.locator('#lang').selectOption('zh-CN');
  await page.locator('#did-form-submit', { hasText: '保存路由' }).waitFor();
  await page.locator('#did-kind').selectOption('forwardTo');
  await page.locator('#did-forward').fill('+12025550171');
  await page.locator('#did-form-submit').click();
  assert.match(await errorOf(page, 'did-form'), /^号码不能转接到自身。/);
  await page.locator('#lang').selectOption('en-US');
  await page.locator('#did-form-submit', { hasText: 'Save route' }).waitFor();
  // The picture: a refused forward shown beside the form.
  await page.locator('#did-kind').selectOption('forwardTo');
  await page.locator('#did-forward').fill('+12025550171');
  await page.locator('#did-form-submit').click();
  await errorOf(page, 'did-form');
  await page.screenshot({ path: join(SCREENSHOTS, 'console-forms.png'), fullPage: true });

  // Trunks: added, listed, deleted.
  await page.locator('#tab-trunks').click();
  await page.locator('#trunk-form').waitFor();
  await page.locator('#trunk-name').fill('carrier-test');
  await page.locator('#trunk-uri').fill('http://nope');
  await page.locator('#trunk-form-submit').click();
  assert.match(await errorOf(page, 'trunk-form'), /sip:HOST\[:PORT\]/);
  await page.locator('#trunk-uri').fill('sip:127.0.0.1:5099');
  await page.locator('#trunk-inbound').fill('127.0.0.1');
  await page.locator('#trunk-form-submit').click();
  const trunkRow = page.locator('#trunks tr[data-trunk="carrier-test"]');
  await trunkRow.waitFor();
  const own = async () => (await api('/api/v1/admin/trunks')).body.trunks.filter((x) => !x.shared).map((x) => [x.name, x.uri]);
  assert.deepEqual(await own(), [['carrier-test', 'sip:127.0.0.1:5099']]);
  await trunkRow.locator('button.delete-trunk').click();
  await trunkRow.waitFor({ state: 'detached' });
  assert.deepEqual(await own(), []);

  // Policy: a number blacklisted; a bad one refused in the page.
  await page.locator('#tab-policy').click();
  await page.locator('#blacklist tr[data-number="12025550166"]').waitFor();
  await page.locator('#blacklist-number').fill('555-0100');
  await page.locator('#blacklist-form-submit').click();
  assert.match(await errorOf(page, 'blacklist-form'), /Number: a phone number in E\.164 digits/);
  await page.locator('#blacklist-number').fill('+14155550123');
  await page.locator('#blacklist-form-submit').click();
  await page.locator('#blacklist tr[data-number="14155550123"]').waitFor();
  assert.deepEqual((await api('/api/v1/admin/blacklist')).body.numbers, ['12025550166', '14155550123']);
  // The policy form keeps what it loaded; a bad country code is caught.
  await page.locator('#policy-countries').fill('1, 44, abc');
  await page.locator('#policy-form-submit').click();
  assert.match(await errorOf(page, 'policy-form'), /calling codes of 1 to 3 digits/);
  const policyBefore = (await api('/api/v1/admin/policy')).body;
  await page.locator('#policy-countries').fill('1, 44, 52');
  await page.locator('#policy-form-submit').click();
  await page.locator('#notice', { hasText: 'Policy saved.' }).waitFor();
  const policyAfter = (await api('/api/v1/admin/policy')).body;
  assert.deepEqual(policyAfter.allowedCountries, ['1', '44', '52']);
  assert.equal(policyAfter.maxCallsPerCalleePerMinute, policyBefore.maxCallsPerCalleePerMinute);

  // API keys: no scope ticked is refused; made, its secret shown once and working.
  await page.locator('#tab-keys').click();
  await page.locator('#key-form').waitFor();
  await page.locator('#key-name').fill('crm-test');
  await page.locator('#key-form-submit').click();
  assert.match(await errorOf(page, 'key-form'), /Tick at least one scope/);
  await page.locator('#key-scope-records-read').check();
  await page.locator('#key-form-submit').click();
  const secret = await page.locator('#key-secret').textContent();
  assert.match(secret, /^slk_/);
  assert.equal((await api('/api/v1/calls?limit=1', secret)).status, 200, 'the key shown works');
  const listed = (await api('/api/v1/admin/api-keys')).body.keys;
  assert.ok(listed.some((k) => k.name === 'crm-test' && k.scopes.join() === 'records:read'));
  assert.ok(!JSON.stringify(listed).includes(secret), 'the list never holds the key');
  await page.locator('#keys tr[data-name="crm-test"]').waitFor();
  await page.locator('#tab-policy').click();
  await page.locator('#tab-keys').click();
  await page.locator('#keys tr[data-name="crm-test"]').waitFor();
  assert.equal(await page.locator('#key-secret').count(), 0, 'shown once only');

  // Webhook: a URL that is no URL is refused; nothing is set.
  await page.locator('#tab-webhook').click();
  await page.locator('#webhook-form').waitFor();
  await page.locator('#webhook-url').fill('not a url');
  await page.locator('#webhook-secret').fill('0123456789abcdef0123');
  await page.locator('#webhook-form-submit').click();
  assert.match(await errorOf(page, 'webhook-form'), /URL: an http:\/\/ or https:\/\/ address/);
  assert.equal((await api('/api/v1/admin/webhook')).status, 404, 'still no webhook');

  // Embed: the origins set; one the page lets through but the server
  // refuses (a default port) shows the server's reason and changes nothing.
  await page.locator('#tab-embed').click();
  await page.locator('#embed-form').waitFor();
  await page.locator('#embed-origins').fill('https://crm.example.com\nhttp://127.0.0.1:8080');
  await page.locator('#embed-form-submit').click();
  await page.locator('#origins li', { hasText: 'http://127.0.0.1:8080' }).waitFor();
  const want = { allowedOrigins: ['https://crm.example.com', 'http://127.0.0.1:8080'] };
  assert.deepEqual((await api('/api/v1/admin/embed')).body, want);
  await page.locator('#embed-origins').fill('https://crm.example.com/path');
  await page.locator('#embed-form-submit').click();
  assert.match(await errorOf(page, 'embed-form'), /is not an origin/);
  await page.locator('#embed-origins').fill('https://crm.example.com:443');
  await page.locator('#embed-form-submit').click();
  assert.match(await errorOf(page, 'embed-form'), /^An origin is not valid; nothing was changed\. \(.*crm\.example\.com:443/);
  assert.deepEqual((await api('/api/v1/admin/embed')).body, want, 'unchanged');
  // Emptied again (the server's list applies): the test host's softphone
  // tabs of the next test post to the host.
  await page.locator('#embed-origins').fill('');
  await page.locator('#embed-form-submit').click();
  await page.locator('p#origins').waitFor();
  assert.deepEqual((await api('/api/v1/admin/embed')).body, { allowedOrigins: [] });
  await page.context().close();
});

test('the records tab lists a recorded sandbox call, plays it and exports the CSV', async () => {
  const page = await openConsole();
  // Every call recorded, set in the Recording tab.
  await page.locator('#tab-recording').click();
  await page.locator('#recording-form').waitFor();
  await page.locator('#recording-days').fill('0');
  await page.locator('#recording-form-submit').click();
  assert.match(await errorOf(page, 'recording-form'), /from 1 to 3650/);
  await page.locator('#recording-mode').selectOption('all');
  await page.locator('#recording-days').fill('7');
  await page.locator('#recording-form-submit').click();
  await page.locator('#notice', { hasText: 'Recording setting saved.' }).waitFor();
  const rec = (await api('/api/v1/admin/recording')).body;
  assert.deepEqual([rec.mode, rec.retentionDays], ['all', 7]);

  // A sandbox echo call, two seconds long.
  const tab = await env.open();
  const from = await tab.signIn('agent1@demo.local');
  await tab.send({ type: 'callOut', content: { caller: '', callee: '12025550100', countryCode: '1', orderId: 'forms-1' } });
  const up = await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 2, { from, timeout: 10000 });
  const callId = up.data.content.callId;
  await new Promise((r) => setTimeout(r, 2000));
  await tab.send({ type: 'hangUp' });
  await tab.waitFor((m) => m.type === 'dialStatus' && m.content.code === 5, { from });
  await tab.page.context().close();

  // Filtered to the agent's outbound answered calls: the call, recorded.
  await page.locator('#tab-records').click();
  await page.locator('#records-form').waitFor();
  await page.locator('#records-agent').fill('not-an-email');
  await page.locator('#records-form-submit').click();
  assert.match(await errorOf(page, 'records-form'), /Agent \(email\): an email address/);
  await page.locator('#records-agent').fill('agent1@demo.local');
  await page.locator('#records-direction').selectOption('outbound');
  await page.locator('#records-outcome').selectOption('answered');
  await page.locator('#records-form-submit').click();
  const row = page.locator(`#records tr[data-call-id="${callId}"]`);
  for (let i = 0; i < 50 && (await row.count()) === 0; i++) {
    // The record is written a moment after the hang-up: apply again.
    await new Promise((r) => setTimeout(r, 200));
    await page.locator('#records-form-submit').click();
  }
  await row.waitFor();
  assert.equal(await row.getAttribute('data-recorded'), 'true');
  assert.match(await row.textContent(), /12025550100.*agent1@demo\.local.*Answered/);

  // The player: the WAV fetched with the session, about two seconds long.
  await row.locator('button.play').click();
  const audio = row.locator('audio');
  await audio.waitFor();
  const secs = await audio.evaluate((a) => new Promise((resolve) => {
    if (a.readyState >= 1) resolve(a.duration);
    a.addEventListener('loadedmetadata', () => resolve(a.duration));
    a.addEventListener('error', () => resolve(-1));
  }));
  assert.ok(secs > 1 && secs < 10, `the recording lasts ${secs} s`);
  assert.match(await audio.getAttribute('src'), /^blob:/);

  // The CSV of the same filters, downloaded.
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#records-csv').click()]);
  assert.equal(download.suggestedFilename(), 'calls.csv');
  const csv = readFileSync(await download.path(), 'utf8').trim().split('\n');
  assert.match(csv[0], /^callId,direction,caller,callee/);
  assert.ok(csv.length >= 2, csv.join('\n'));
  assert.ok(csv.slice(1).every((l) => l.includes('agent1@demo.local')), 'the filters apply');
  assert.ok(csv.some((l) => l.startsWith(`${callId},1,`)), csv.join('\n'));
  await page.context().close();
});
