// Test harness: starts a real seatline server (its own data dir and config),
// a host page on a different origin, and headless Debian Chromium.
//
// The softphone is served from http://localhost:PORT; the host page from
// http://127.0.0.1:HOSTPORT. The host talks to the softphone only with
// postMessage, as a CRM does.

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SCREENSHOTS = join(ROOT, 'docs/screenshots');
// SEATLINE_BIN, else the debug build in CARGO_TARGET_DIR (a relative one from
// the repository's root, where cargo is run), else in the repository's target/.
export const BIN = process.env.SEATLINE_BIN || join(resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target'), 'debug/seatline');

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
];

// Every secret the suite sees (passwords it sends, tokens and keys the
// server gives), so that each server's whole log can be checked for them
// when it stops: no secret, token or password in any log line of the run.
const SECRETS = new Set(['demo1234']);
/** Remembers a secret the logs must never show (short ones are not kept). */
export function rememberSecret(s) {
  if (typeof s === 'string' && s.length >= 8) SECRETS.add(s);
}
function rememberFrom(value, depth = 0) {
  if (!value || typeof value !== 'object' || depth > 3) return;
  for (const [k, v] of Object.entries(value)) {
    if (/^(token|key|password|clientSecret|client_secret|secret)$/.test(k)) rememberSecret(v);
    else rememberFrom(v, depth + 1);
  }
}
// The tests' own requests: what they send and what they are given.
const plainFetch = globalThis.fetch;
globalThis.fetch = async (url, init) => {
  if (init && typeof init.body === 'string') {
    try { rememberFrom(JSON.parse(init.body)); } catch (_) { /* not JSON */ }
  }
  const r = await plainFetch(url, init);
  if ((r.headers.get('content-type') || '').includes('application/json')) {
    r.clone().json().then(rememberFrom, () => {});
  }
  return r;
};
/** Remembers the secrets a browser context's pages are given by the API. */
export function watchSecrets(ctx) {
  ctx.on('response', (r) => {
    if (!r.url().includes('/api/') || !(r.headers()['content-type'] || '').includes('application/json')) return;
    r.json().then(rememberFrom, () => {});
  });
  ctx.on('request', (r) => {
    const body = r.postData();
    if (body && r.url().includes('/api/')) { try { rememberFrom(JSON.parse(body)); } catch (_) { /* not JSON */ } }
  });
  return ctx;
}
// A session token or a key's body: 256 bits in base64url (43 characters).
const TOKEN_SHAPE = /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/;
/** The log lines that show a secret, or look like they hold a token. */
export function leaks(log) {
  const found = [];
  for (const line of log.split('\n')) {
    // The demo's banner tells whoever started it the demo accounts'
    // published password (README); it is no log line and no secret.
    if (/^\s*Sign in as agent1@demo\.local \/ demo1234 /.test(line)) continue;
    const hit = [...SECRETS].find((s) => line.includes(s)) || (line.match(TOKEN_SHAPE) || [])[0];
    if (hit) found.push(`${line.slice(0, 200)} (holds ${hit.slice(0, 6)}…)`);
  }
  return found;
}

async function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
    s.on('error', rej);
  });
}

async function waitHealthy(url, proc, ms = 20000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (proc.exitCode !== null) throw new Error(`seatline exited with ${proc.exitCode}`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch (_) { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`seatline did not become healthy at ${url}`);
}

/**
 * Starts `seatline demo` on a free port with its own data dir.
 * @param {{idleTimeoutSecs?: number, sweepIntervalMs?: number, allowedOrigins?: string[], sso?: Record<string, string|string[]>}} opts
 *   sweepIntervalMs: how often expired sessions are closed (a long one keeps
 *   an expired session's tab open, as in the moment before a sweep).
 *   sso: the config's `[sso]` table (issuer, client_id, client_secret, ...).
 */
export async function startSeatline(opts = {}) {
  if (!existsSync(BIN)) throw new Error(`build seatline first: ${BIN} is missing`);
  const dir = mkdtempSync(join(tmpdir(), 'seatline-test-'));
  const port = await freePort();
  const cfg = join(dir, 'seatline.toml');
  const lines = [];
  lines.push('[sessions]', `idle_timeout_secs = ${opts.idleTimeoutSecs ?? 3600}`);
  if (opts.sweepIntervalMs !== undefined) lines.push(`sweep_interval_ms = ${opts.sweepIntervalMs}`);
  // Free ports for SIP: tests run beside each other and beside a demo.
  lines.push('[sip]', 'listen = "127.0.0.1:0"', '[sandbox]', 'listen = "127.0.0.1:0"');
  if (opts.allowedOrigins) lines.push('[embed]', `allowed_origins = ${JSON.stringify(opts.allowedOrigins)}`);
  // More tables as they are (a node of several: [store] and [cluster]).
  if (opts.extraConfig) lines.push(...opts.extraConfig);
  if (opts.sso) {
    lines.push('[sso]');
    for (const [k, v] of Object.entries(opts.sso)) lines.push(`${k} = ${JSON.stringify(v)}`);
  }
  writeFileSync(cfg, lines.join('\n') + '\n');
  let output = '';
  const launch = async () => {
    const p = spawn(BIN, ['demo', '--listen', `127.0.0.1:${port}`, '--data-dir', join(dir, 'data'), '--config', cfg], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // info: every line a call or a sign-in writes is in what leaks() reads.
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' },
    });
    p.stdout.on('data', (d) => { output += d; });
    p.stderr.on('data', (d) => { output += d; });
    await waitHealthy(`http://127.0.0.1:${port}/healthz`, p);
    return p;
  };
  const kill = async (p) => {
    p.kill('SIGTERM');
    await new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)));
  };
  let proc = await launch();
  return {
    port,
    origin: `http://localhost:${port}`,
    softphoneUrl: `http://localhost:${port}/admin/#/nxcc`,
    output: () => output,
    /** Stops the server, waits `downMs`, and starts it again on the same data. */
    async restart(downMs = 500) {
      await kill(proc);
      await new Promise((r) => setTimeout(r, downMs));
      proc = await launch();
    },
    /** Stops the server; throws if its log showed a secret. */
    async stop() {
      await kill(proc);
      rmSync(dir, { recursive: true, force: true });
      const found = leaks(output);
      if (found.length) throw new Error(`secrets in the server's log:\n${found.join('\n')}`);
    },
  };
}

/**
 * A throw-away PostgreSQL cluster (Debian's `postgresql`): initdb in a
 * temporary directory, run as the `postgres` user when we are root, on a
 * free loopback port. Returns its URL and stop().
 */
export async function startPostgres() {
  const { readdirSync, chownSync } = await import('node:fs');
  const { execFileSync } = await import('node:child_process');
  const versions = readdirSync('/usr/lib/postgresql').filter((v) => existsSync(`/usr/lib/postgresql/${v}/bin/initdb`));
  if (!versions.length) throw new Error('no initdb under /usr/lib/postgresql (apt-get install postgresql)');
  const bin = `/usr/lib/postgresql/${versions.sort((a, b) => Number(b) - Number(a))[0]}/bin`;
  const dir = mkdtempSync(join(tmpdir(), 'seatline-pg-browser-'));
  const root = process.getuid() === 0;
  const owner = root ? [Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString())] : null;
  if (owner) chownSync(dir, owner[0], owner[1]);
  const as = (prog, args) => (owner ? ['setpriv', [`--reuid=${owner[0]}`, `--regid=${owner[1]}`, '--clear-groups', '--', prog, ...args]] : [prog, args]);
  execFileSync(...as(`${bin}/initdb`, ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync']), { stdio: 'ignore' });
  const port = await freePort();
  const [prog, args] = as(`${bin}/postgres`, ['-D', join(dir, 'data'), '-p', String(port), '-k', dir,
    '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off']);
  const p = spawn(prog, args, { stdio: 'ignore' });
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  for (let i = 0; ; i++) {
    try {
      execFileSync(`${bin}/pg_isready`, ['-q', '-h', '127.0.0.1', '-p', String(port)]);
      break;
    } catch (e) {
      if (i > 100) throw new Error('PostgreSQL did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    async stop() {
      p.kill('SIGINT');
      await new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// The host page: a minimal CRM. It records every message from the iframe
// (with its origin) and exposes hostSend() for the test.
const HOST_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>test host</title></head>
<body style="margin:0">
<iframe id="iframe" allow="camera *; microphone *; autoplay *; hid *" width="256" height="460" style="border:0"></iframe>
<script>
  const params = new URLSearchParams(location.search);
  const SOFTPHONE = params.get('softphone');
  const ORIGIN = new URL(SOFTPHONE).origin;
  window.received = [];
  window.addEventListener('message', (e) => {
    if (e.source !== document.getElementById('iframe').contentWindow) return;
    window.received.push({ at: Date.now(), origin: e.origin, data: e.data });
  });
  window.hostSend = (msg, target) => document.getElementById('iframe').contentWindow.postMessage(msg, target || '*');
  const iframe = document.getElementById('iframe');
  if (params.get('noallow')) iframe.removeAttribute('allow');
  const onload = params.get('onload');
  if (onload) {
    // As in the vendor's document: init from the iframe's onload.
    iframe.onload = () => iframe.contentWindow.postMessage(JSON.parse(onload), '*');
  }
  iframe.src = SOFTPHONE;
</script></body></html>`;

// A CRM page that uses the host SDK instead of postMessage: it imports the
// SDK from the Seatline server (?sdk=URL), lets it create the iframe, and
// records every event the SDK gives (window.events). ?origin= is passed to the
// SDK when given (default: where the SDK came from). With ?init=JSON it calls
// phone.init() at once, before the softphone can be ready.
const SDK_HOST_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>test host (SDK)</title></head>
<body style="margin:0">
<div id="phone"></div>
<script type="module">
  const params = new URLSearchParams(location.search);
  window.events = [];
  try {
    const { SeatlinePhone } = await import(params.get('sdk'));
    const phone = new SeatlinePhone({ container: '#phone', origin: params.get('origin') || undefined });
    phone.iframe.id = 'iframe';
    for (const type of ['ready', 'agentExists', 'login', 'agentStatus', 'dialStatus', 'callQuality', 'logout', 'tokenInvalid']) {
      phone.on(type, (content) => window.events.push({ at: Date.now(), type, content }));
    }
    window.phone = phone;
    if (params.get('init')) {
      window.readyAtInit = phone.isReady;
      phone.init(JSON.parse(params.get('init')));
    }
  } catch (e) {
    window.sdkError = String((e && e.message) || e);
  }
</script></body></html>`;

export async function startHost() {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(req.url.startsWith('/sdk-host') ? SDK_HOST_PAGE : HOST_PAGE);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return {
    origin: `http://127.0.0.1:${port}`,
    /** @param {string} softphoneUrl @param {any} [onloadInit] */
    url(softphoneUrl, onloadInit) {
      const q = new URLSearchParams({ softphone: softphoneUrl });
      if (onloadInit) q.set('onload', JSON.stringify(onloadInit));
      return `http://127.0.0.1:${port}/host?${q}`;
    },
    /** The SDK host page. @param {string} sdkUrl @param {any} [init] content of an init sent at once */
    sdkUrl(sdkUrl, init) {
      const q = new URLSearchParams({ sdk: sdkUrl });
      if (init) q.set('init', JSON.stringify(init));
      return `http://127.0.0.1:${port}/sdk-host?${q}`;
    },
    stop: () => new Promise((r) => server.close(r)),
  };
}

// Playwright turns off third-party storage partitioning, which leaves a
// cross-site iframe with no storage at all. Agents' browsers have it on, so
// our tests do too: Chromium keeps the last --disable-features it is given,
// and this one is Playwright's list without ThirdPartyStoragePartitioning.
const DISABLED_FEATURES = [
  'AvoidUnnecessaryBeforeUnloadCheckSync', 'DestroyProfileOnBrowserClose', 'DialMediaRouteProvider',
  'GlobalMediaControls', 'HttpsUpgrades', 'LensOverlay', 'MediaRouter', 'PaintHolding', 'Translate',
  'OptimizationHints', 'NetworkTimeServiceQuerying', 'AimEnabled',
];
const LAUNCH = () => ({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [...CHROMIUM_ARGS, `--disable-features=${DISABLED_FEATURES.join(',')}`],
  headless: true,
});

/**
 * @param {{denyFrameStorage?: boolean}} [opts] denyFrameStorage: keep
 *   Playwright's own flags, under which a cross-site frame gets no storage
 *   (as with blocked third-party cookies).
 */
export async function launchBrowser(opts = {}) {
  if (opts.denyFrameStorage) return chromium.launch({ ...LAUNCH(), args: CHROMIUM_ARGS });
  return chromium.launch(LAUNCH());
}

/**
 * A browser as an agent has it: a normal (not incognito) profile of its own.
 * Incognito contexts block third-party storage; see the test that uses one.
 */
export async function launchProfile(viewport) {
  const dir = mkdtempSync(join(tmpdir(), 'seatline-profile-'));
  const ctx = watchSecrets(await chromium.launchPersistentContext(dir, { ...LAUNCH(), viewport: viewport || { width: 1100, height: 700 } }));
  ctx.on('close', () => { try { rmSync(dir, { recursive: true, force: true, maxRetries: 5 }); } catch (_) { /* Chromium still writing: left in tmp */ } });
  return ctx;
}

/** Everything a test needs: server, host, browser. */
export async function setup(opts = {}) {
  const host = await startHost();
  // '__HOST__' in allowedOrigins stands for the test host's origin.
  const allowedOrigins = opts.allowedOrigins && opts.allowedOrigins.map((o) => (o === '__HOST__' ? host.origin : o));
  const seatline = await startSeatline({ ...opts, allowedOrigins });
  const browser = await launchBrowser();
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (o) => watchSecrets(await newContext(o));
  const profiles = [];
  return {
    seatline,
    host,
    browser,
    /** A separate browser with a normal profile. */
    async newBrowser() {
      const ctx = await launchProfile();
      profiles.push(ctx);
      return ctx;
    },
    /**
     * The operator console in a new context, signed in as `email` (demo
     * password) and showing the wallboard; `signedIn: false` stops after
     * clicking sign in (for refusals).
     */
    async openConsole(email = 'admin@demo.local', { viewport = { width: 1200, height: 860 }, signedIn = true, downloads = false } = {}) {
      const ctx = await browser.newContext({ viewport, acceptDownloads: downloads });
      const page = await ctx.newPage();
      page.on('pageerror', (e) => console.error('console page error:', e.message));
      page.on('dialog', (d) => d.accept());
      await page.goto(`${seatline.origin}/console/`);
      await page.locator('#email').fill(email);
      await page.locator('#password').fill('demo1234');
      await page.locator('#signin-button').click();
      if (signedIn) await page.locator('#agents').waitFor();
      return page;
    },
    /**
     * The sandbox carrier calls DID `to` from `from` (202, or it throws);
     * once answered, its caller presses `keys` (1.5 s after, 0.3 s apart).
     */
    async sandboxCall(to, from, other = '', keys = '') {
      const r = await fetch(`http://127.0.0.1:${seatline.port}/api/v1/sandbox/calls`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ to, from, other, keys }),
      });
      if (r.status !== 202) throw new Error(`sandbox call to ${to}: HTTP ${r.status}`);
    },
    /** The inbound calls the sandbox placed, as their callers lived them. */
    async sandboxCalls() {
      const r = await fetch(`http://127.0.0.1:${seatline.port}/api/v1/sandbox/calls`);
      if (r.status !== 200) throw new Error(`sandbox calls: HTTP ${r.status}`);
      return (await r.json()).calls;
    },
    /**
     * Opens a tab with the host page, in the given browser (default: a new
     * one), its softphone from `softphoneUrl` (default: the server's).
     */
    async open(context, onloadInit, softphoneUrl = seatline.softphoneUrl) {
      const ctx = context || (await this.newBrowser());
      const page = await ctx.newPage();
      page.on('pageerror', (e) => console.error('page error:', e.message));
      await page.goto(host.url(softphoneUrl, onloadInit));
      const tab = new Tab(page);
      await tab.frameReady();
      return tab;
    },
    async teardown() {
      for (const p of profiles) await p.close().catch(() => {});
      await browser.close();
      await host.stop();
      await seatline.stop();
    },
  };
}

/** The softphone's frame in a host tab. */
export const softphone = (tab) => tab.page.frames().find((f) => f.url().includes('/admin/'));

/**
 * Waits until the page has received audio with a level above zero (and,
 * with `energy`, some energy in total); its inbound RTP figures.
 */
export async function hearsAudio(tab, ms = 10000, energy = true) {
  const until = Date.now() + ms;
  let last = null;
  while (Date.now() < until) {
    last = await softphone(tab).evaluate(() => window.seatline.audio.inbound());
    if (last && last.packetsReceived > 25 && (!energy || last.totalAudioEnergy > 0) && last.audioLevel > 0) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no audio heard: ${JSON.stringify(last)}`);
}

/** A host tab: sends messages to the softphone and reads what it posted. */
export class Tab {
  constructor(page) {
    this.page = page;
    this.frame = page.frameLocator('#iframe');
  }

  async frameReady() {
    await this.waitFor((m) => m.type === 'ready');
  }

  send(msg) {
    return this.page.evaluate((m) => window.hostSend(m), msg);
  }

  /** Messages posted to the host so far: [{at, origin, data}]. */
  received() {
    return this.page.evaluate(() => window.received);
  }

  async messages() {
    return (await this.received()).map((r) => r.data);
  }

  async types() {
    return (await this.messages()).map((m) => m.type);
  }

  /** Waits for the first message (after `from`) matching pred; returns it. */
  async waitFor(pred, { from = 0, timeout = 8000 } = {}) {
    const until = Date.now() + timeout;
    for (;;) {
      const all = await this.received();
      const hit = all.slice(from).find((r) => pred(r.data));
      if (hit) return hit;
      if (Date.now() > until) {
        throw new Error(`no matching message within ${timeout} ms; got ${JSON.stringify(all.map((r) => r.data))}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async count() {
    return (await this.received()).length;
  }

  async signIn(email = 'agent1@demo.local', password = 'demo1234', lang = 'en-US') {
    const from = await this.count();
    await this.send({ type: 'init', content: { email, password, lang, loginMethod: 0 } });
    await this.waitFor((m) => m.type === 'dialStatus' && m.content.code === 4, { from });
    return from;
  }
}

/** `check()`'s first truthy answer, asked every 100 ms for `ms`; else it throws, naming `what`. */
export async function until(what, ms, check) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const got = await check();
    if (got) return got;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not within ${ms} ms: ${what}`);
}

/** A WAV file: `secs` of a 440 Hz sine at half scale, 16-bit mono at `rate`. */
export function sineWav(rate, secs) {
  const n = rate * secs;
  const b = Buffer.alloc(44 + n * 2);
  b.write('RIFF', 0); b.writeUInt32LE(36 + n * 2, 4); b.write('WAVE', 8);
  b.write('fmt ', 12); b.writeUInt32LE(16, 16); b.writeUInt16LE(1, 20); b.writeUInt16LE(1, 22);
  b.writeUInt32LE(rate, 24); b.writeUInt32LE(rate * 2, 28); b.writeUInt16LE(2, 32); b.writeUInt16LE(16, 34);
  b.write('data', 36); b.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(16383 * Math.sin(2 * Math.PI * 440 * i / rate)), 44 + i * 2);
  return b;
}
