// The softphone: a small state machine between the host page (postMessage),
// the server (sign-in API + WebSocket) and the screen.
//
// The server holds the truth (agent status, sessions); this tab is a view of
// it. Host messages are handled one at a time, in order, so a `callOut` sent
// right after `init` waits for the sign-in instead of being lost.

import { AudioPath, devices } from './audio.js';
import { HostBridge } from './host.js';
import { setLang, t } from './i18n.js';
import { Link, askOtherTabs, fetchEmbedConfig, fetchSessionOrigins, fetchSsoConfigured, loadSession, onSessionChange, signIn, signInWithToken, signOut, storeSession } from './server.js';
import { render, tick } from './view.js';

/**
 * @typedef {{code: number, status: number, activity: string}} AgentView
 * @typedef {{
 *   code: number, callId?: string, direction?: number, caller?: string, callee?: string,
 *   orderId?: string, params?: string, other?: string,
 *   callStartTimestamp?: number|string, callConnectedTimestamp?: number|string, callHangUpTimestamp?: number|string,
 *   hangupCode?: number, sipCode?: number,
 *   ended?: boolean, reason?: number,
 * }} CallView a call as shown: its last dialStatus, plus `ended` and the failure `reason`
 * @typedef {{callId: string, lossPct: number, jitterMs: number, rttMs: number, mos: number}} Quality
 *   the last quality sample of the connected call, as the server measured it
 * @typedef {{
 *   phase: 'boot'|'signedOut'|'signingIn'|'signedIn',
 *   page: 'email'|'sso'|'noseat',
 *   notice: string, noticeKind: string, banner: string,
 *   call: CallView|null, quality: Quality|null, callEndedAt: number, audio: boolean, phone: string, phoneError: string,
 *   muted: boolean, held: boolean, recording: boolean, settingsOpen: boolean, mics: MediaDeviceInfo[], speakers: MediaDeviceInfo[],
 *   micId: string, speakerId: string,
 *   emailDraft: string,
 *   session: {token: string, email: string}|null,
 *   email: string, seat: {sipNum: string, groupNo: string}|null, agent: AgentView|null,
 *   linkUp: boolean, announced: boolean, lastCode: number|null,
 *   preferEmail: boolean, lastLoginMethod: number|null, menuOpen: boolean,
 *   sso: 'unknown'|'off'|'on', ssoBlocked: boolean, ssoEmail: string,
 *   dial: {cc: string, number: string},
 * }} State
 * @typedef {{
 *   signIn: (email: string, password: string) => void, signOut: () => void, ssoStart: () => void,
 *   showEmail: () => void, toggleMenu: () => void, pickStatus: (code: number) => void, dial: () => void, hangUp: () => void,
 *   answer: () => void, reject: () => void, key: (k: string) => boolean, mute: () => void, hold: () => void, settings: () => void,
 *   setMic: (id: string) => void, setSpeaker: (id: string) => void,
 * }} Actions
 */

/** @type {State} */
const state = {
  phase: 'boot',
  page: 'email',
  notice: '',
  noticeKind: 'error',
  banner: '',
  call: null,
  quality: null,
  callEndedAt: 0,
  audio: false,
  phone: 'pending',
  phoneError: '',
  muted: false,
  held: false,
  recording: false,
  settingsOpen: false,
  mics: [],
  speakers: [],
  micId: '',
  speakerId: '',
  emailDraft: '',
  session: null,
  email: '',
  seat: null,
  agent: null,
  linkUp: false,
  announced: false,
  lastCode: null,
  preferEmail: false,
  lastLoginMethod: null,
  menuOpen: false,
  sso: 'unknown',
  ssoBlocked: false,
  ssoEmail: '',
  dial: { cc: '1', number: '' },
};

/** The host origins before sign-in: the server's global list. @type {string[]} */
let globalOrigins = [];
/** @type {HostBridge} */
let bridge;
const audio = new AudioPath((op) => (link ? link.send(op) : false));

/** @type {Link|null} */
let link = null;

/** The tenant the iframe's URL names (`?tenant=ID`), for single sign-on. */
const TENANT = (() => {
  const v = new URLSearchParams(location.search).get('tenant') || '';
  return /^[0-9]{1,19}$/.test(v) ? v : '';
})();
/** The single sign-on popup, while one is open: its answer is the only one taken. @type {Window|null} */
let ssoPopup = null;
/** The server's single sign-on errors, as notices. @type {Record<string, string>} */
const SSO_NOTICES = {
  notConfigured: 'ssoNotConfigured',
  expired: 'ssoExpired',
  providerFailed: 'ssoProviderFailed',
  invalidToken: 'ssoInvalidToken',
  emailNotVerified: 'ssoEmailNotVerified',
  domainNotAllowed: 'ssoDomainNotAllowed',
  noAccount: 'ssoNoAccount',
  accountDisabled: 'accountDisabled',
};
/** Resolves the wait of a sign-in for the first answer on the WebSocket. */
/** @type {((ok: boolean) => void)|null} */
let settle = null;

const draw = () => render(state, actions);
/** Read through a function: the phase changes across awaits. */
const signedIn = () => state.phase === 'signedIn';

/** @type {Actions} */
const actions = {
  signIn: (email, password) => run(() => doSignIn(email, password)),
  signOut: () => run(doSignOut),
  showEmail: () => { state.page = 'email'; state.notice = ''; draw(); },
  // Runs in the click itself, not in the queue: browsers open a popup only
  // in answer to a user's gesture.
  ssoStart: () => {
    const w = window.open(`/sso/start${TENANT ? `?tenant=${TENANT}` : ''}`, 'seatline-sso', 'width=500,height=650');
    state.ssoBlocked = !w;
    state.notice = w ? 'ssoWaiting' : 'ssoPopupBlocked';
    state.noticeKind = w ? 'info' : 'error';
    ssoPopup = w;
    draw();
  },
  toggleMenu: () => { state.menuOpen = !state.menuOpen; draw(); },
  pickStatus: (code) => { state.menuOpen = false; setStatus(code); draw(); },
  dial: () => run(() => {
    const cc = state.dial.cc.replace(/\D/g, '');
    const number = state.dial.number.replace(/\D/g, '');
    callOut({ caller: '', callee: `${cc}${number}`, countryCode: cc, orderId: '', params: '' });
  }),
  hangUp: () => hangUp(),
  answer: () => { if (link) link.send({ op: 'answer' }); },
  reject: () => { if (link) link.send({ op: 'reject' }); },
  // In a connected call the keypad sends DTMF; otherwise it dials.
  key: (k) => {
    if (state.call && state.call.code === 2 && !state.call.ended) {
      link && link.send({ op: 'dtmf', digits: k });
      return true;
    }
    return false;
  },
  mute: () => { if (link) link.send({ op: 'mute', on: !state.muted }); },
  hold: () => { if (link) link.send({ op: 'hold', on: !state.held }); },
  settings: () => run(async () => {
    state.settingsOpen = !state.settingsOpen;
    if (state.settingsOpen) Object.assign(state, await devices());
  }).then(draw),
  setMic: (id) => { state.micId = id; audio.setMic(id); },
  setSpeaker: (id) => { state.speakerId = id; audio.setSpeaker(id); },
};

// Host messages and UI actions run one at a time, in arrival order.
let chain = Promise.resolve();
/** @param {() => Promise<void>|void} task */
function run(task) {
  chain = chain.then(task).catch((e) => console.error('softphone:', e));
  return chain;
}

/** The phone's dialStatus: 3 offline, -1 no audio path, else 4. */
function phoneCode() {
  if (!state.linkUp) return 3;
  if (state.audio && state.phone === 'failed') return -1;
  return 4;
}

/** This tab holds the audio: set the path up, then tell the host. */
async function startAudio() {
  state.phone = 'pending';
  const r = await audio.start();
  if (!state.audio || state.phase !== 'signedIn') return;
  state.phone = r.ok ? 'ready' : 'failed';
  state.phoneError = r.ok ? '' : `audio_${r.error}`;
  bridge.post('dialStatus', { code: phoneCode() });
  draw();
}

/** @param {any} c callOut content from the host or the dial pad */
function callOut(c) {
  const op = {
    op: 'callOut',
    caller: String(c.caller ?? ''),
    callee: String(c.callee ?? ''),
    countryCode: String(c.countryCode ?? ''),
    orderId: String(c.orderId ?? ''),
    params: typeof c.params === 'string' ? c.params : (c.params === undefined ? '' : JSON.stringify(c.params)),
  };
  // Not connected: the phone cannot place it (801: network toward the agent).
  if (!link || !link.send(op)) bridge.post('dialStatus', { code: 801 });
}

function hangUp() {
  if (link) link.send({ op: 'hangUp' });
}

/** @param {any} content a dialStatus from the server: shown, and passed to the host as it is */
function onDial(content) {
  // (The ring of an inbound call comes from the server, over the audio
  // tab's WebRTC leg: it plays where the call will, with no autoplay issue.)
  bridge.post('dialStatus', content);
  // A sample belongs to one connected call: another call, or its end, drops it.
  if (content.code !== 2 || (state.quality && state.quality.callId !== content.callId)) state.quality = null;
  if (content.code === 5) {
    state.call = { ...(state.call || {}), ...content, ended: true, reason: (state.call && state.call.reason) || content.hangupCode };
    state.muted = false;
    state.held = false;
    state.recording = false;
    const at = Date.now();
    state.callEndedAt = at;
    setTimeout(() => { if (state.callEndedAt === at) { state.call = null; draw(); } }, 2500);
  } else if (content.code >= 800) {
    state.call = { ...content, code: state.call ? state.call.code : 0, reason: content.code };
  } else {
    state.call = { ...content };
  }
}

/** @param {any} c a quality sample of the connected call, from the server */
function onQuality(c) {
  if (!c || typeof c.callId !== 'string') return;
  /** @type {Quality} */
  const q = { callId: c.callId, lossPct: Number(c.lossPct), jitterMs: Number(c.jitterMs), rttMs: Number(c.rttMs), mos: Number(c.mos) };
  bridge.post('callQuality', q);
  // Shown only for the call on screen, while it is connected.
  const call = state.call;
  state.quality = call && !call.ended && call.code === 2 && call.callId === q.callId ? q : null;
}

/** @param {number} code */
function setStatus(code) {
  if (!link || !link.send({ op: 'setStatus', code })) flash('statusRefused');
}

/** @param {string} key */
function flash(key) {
  state.banner = key;
  draw();
  setTimeout(() => { if (state.banner === key) { state.banner = ''; draw(); } }, 3000);
}

function announce() {
  if (!state.seat || !state.agent) return;
  bridge.post('agentExists', { code: 1 });
  bridge.post('login', { email: state.email, sipNum: state.seat.sipNum, groupNo: state.seat.groupNo });
  bridge.post('agentStatus', { code: state.agent.code });
  if (!state.audio || state.phone !== 'pending') bridge.post('dialStatus', { code: phoneCode() });
  state.announced = true;
  state.lastCode = state.agent.code;
}

/** @param {any} ev */
function onEvent(ev) {
  switch (ev.ev) {
    case 'ready': {
      const wasUp = state.announced;
      state.phase = 'signedIn';
      state.email = ev.email;
      state.seat = ev.seat;
      state.agent = ev.agent;
      state.linkUp = true;
      state.banner = '';
      state.audio = !!ev.audio;
      state.recording = !!ev.recording && !!ev.call;
      if (state.audio) state.phone = 'pending';
      if (!wasUp) {
        announce();
        // A call in progress (a reload, another tab): the host learns it too.
        if (ev.call) onDial(ev.call);
      } else {
        if (state.lastCode !== ev.agent.code) bridge.post('agentStatus', { code: ev.agent.code });
        state.lastCode = ev.agent.code;
        if (!state.audio) bridge.post('dialStatus', { code: 4 });
      }
      if (state.audio) startAudio();
      else audio.stop();
      if (settle) settle(true);
      break;
    }
    case 'audio':
      // Another tab holding the audio went away: this one takes over.
      state.audio = !!ev.hold;
      if (state.audio) startAudio();
      else audio.stop();
      break;
    case 'rtcAnswer':
      audio.answer(ev.sdp);
      break;
    case 'callControl':
      state.muted = !!ev.muted;
      state.held = !!ev.held;
      break;
    case 'agent':
      state.agent = ev.agent;
      if (state.lastCode !== ev.agent.code) {
        state.lastCode = ev.agent.code;
        bridge.post('agentStatus', { code: ev.agent.code });
      }
      break;
    case 'dial':
      onDial(ev.content);
      break;
    case 'quality':
      onQuality(ev.content);
      break;
    case 'recording':
      // Shown in the call panel; the host learns it as our extension `recording`.
      state.recording = !!ev.on;
      bridge.post('recording', { callId: String(ev.callId), on: !!ev.on });
      break;
    case 'loggedOut':
      endSession('logout', 'signedOut', 'info');
      break;
    case 'tokenInvalid':
      endSession('tokenInvalid', 'sessionExpired', 'error');
      break;
    case 'error':
      if (ev.code === 'invalidStatus' || ev.code === 'busyWithCall' || ev.code === 'notSignedIn') flash('statusRefused');
      if (ev.code === 'rtcFailed' || ev.code === 'notAudioTab') audio.failed();
      // Offers rang out here in a row: the server set the agent Busy.
      if (ev.code === 'missedOffers') flash('missedOffers');
      if (ev.code === 'recordingOff' || ev.code === 'recordingRequired' || ev.code === 'notConnected') {
        // The host asked to start or stop recording, and nothing changed: say why.
        bridge.post('recording', { callId: state.call ? state.call.callId : '', on: state.recording, refused: ev.code });
        flash('recordingRefused');
      }
      break;
    default:
      break;
  }
  draw();
}

function onDown() {
  if (state.phase === 'signedIn' && state.linkUp) {
    state.linkUp = false;
    state.banner = 'reconnecting';
    bridge.post('dialStatus', { code: 3 });
    draw();
  }
}

/**
 * Opens the WebSocket of a session and waits for its first answer. The
 * tenant's host origins apply from here: given by the sign-in answer, else
 * (a session of another tab, or from before a reload) asked of the server.
 * @param {{token: string, email: string}} session
 * @param {string[]} [origins]
 */
async function connect(session, origins) {
  state.session = session;
  if (link) link.close();
  link = null;
  const list = Array.isArray(origins) ? origins : await fetchSessionOrigins(session.token);
  if (state.session !== session) return false; // signed out meanwhile
  if (list) bridge.setAllowed(list);
  return new Promise((resolve) => {
    const timer = setTimeout(() => { settle = null; resolve(false); }, 5000);
    settle = (ok) => { clearTimeout(timer); settle = null; resolve(ok); };
    link = new Link(session.token, { onEvent, onDown });
  });
}

/**
 * Leaves the signed-in state and tells the host.
 * @param {'logout'|'tokenInvalid'} message @param {string} notice @param {string} kind
 */
function endSession(message, notice, kind) {
  const had = state.session;
  if (link) { link.close(); link = null; }
  audio.stop();
  state.audio = false;
  state.phone = 'pending';
  if (had) {
    const stored = loadSession();
    if (stored && stored.token === had.token) storeSession(null);
  }
  const wasSignedIn = state.phase === 'signedIn' || had !== null;
  state.session = null;
  bridge.setAllowed(globalOrigins);
  state.phase = 'signedOut';
  state.page = state.lastLoginMethod === 1 && !state.preferEmail ? 'sso' : 'email';
  state.agent = null;
  state.seat = null;
  state.linkUp = false;
  state.announced = false;
  state.lastCode = null;
  state.menuOpen = false;
  state.banner = '';
  state.call = null;
  state.quality = null;
  state.notice = notice;
  state.noticeKind = kind;
  if (settle) settle(false);
  if (wasSignedIn || message === 'logout') bridge.post(message);
  draw();
}

/** @param {string} email @param {string} password */
async function doSignIn(email, password) {
  state.emailDraft = email || '';
  if (!email || !password) {
    state.phase = 'signedOut';
    state.page = 'email';
    state.notice = 'missingCredentials';
    draw();
    return;
  }
  state.phase = 'signingIn';
  state.notice = '';
  draw();
  const r = await signIn(email, password);
  if (r.ok === false) {
    state.phase = 'signedOut';
    state.page = 'email';
    state.notice = r.error;
    state.noticeKind = 'error';
    draw();
    return;
  }
  await adopt(r.body);
}

/** Asks the server whether single sign-on is configured for this iframe. */
async function checkSso() {
  state.sso = (await fetchSsoConfigured(TENANT)) ? 'on' : 'off';
}

/**
 * The single sign-on popup's answer: the sign-in answer (then on exactly
 * as after a password), or `{error}`, shown on the SSO page.
 * @param {any} body
 */
async function onSso(body) {
  if (state.phase === 'signedIn') return;
  if (typeof body.error === 'string' || body.agentExists === undefined) {
    state.phase = 'signedOut';
    state.page = 'sso';
    state.ssoBlocked = false;
    state.notice = SSO_NOTICES[body.error] || 'ssoProviderFailed';
    state.noticeKind = 'error';
    state.ssoEmail = typeof body.email === 'string' ? body.email.slice(0, 254) : '';
    draw();
    return;
  }
  state.phase = 'signingIn';
  state.notice = '';
  state.emailDraft = typeof body.email === 'string' ? body.email : '';
  draw();
  await adopt(body);
}

/**
 * Signs in with a one-time token from the host's back end (`init`
 * `{token, lang}`, our extension). A used, expired or unknown token: the
 * page says so and the host gets `tokenInvalid`. Already signed in: the
 * same agent keeps the session it has; another agent takes over.
 * @param {string} token
 */
async function doTokenSignIn(token) {
  const wasIn = state.phase === 'signedIn';
  if (!wasIn) {
    state.phase = 'signingIn';
    state.notice = '';
    draw();
  }
  const r = await signInWithToken(token);
  if (r.ok === false) {
    if (r.error === 'signInTokenInvalid') bridge.post('tokenInvalid');
    if (wasIn && state.phase === 'signedIn') {
      flash(r.error);
      return;
    }
    state.phase = 'signedOut';
    state.page = 'email';
    state.notice = r.error;
    state.noticeKind = 'error';
    draw();
    return;
  }
  if (wasIn && state.phase === 'signedIn' && state.email && sameEmail(r.body.email || '', state.email)) {
    // The same agent: the session we have serves; the new one is dropped.
    if (r.body.token) await signOut(r.body.token);
    announce();
    return;
  }
  if (wasIn) await doSignOut();
  state.emailDraft = r.body.email || '';
  await adopt(r.body);
}

/**
 * Takes the answer of a successful sign-in: no seat, the page says so;
 * a seat, the session is kept and its WebSocket opened.
 * @param {any} body
 */
async function adopt(body) {
  if (body.agentExists !== 1) {
    bridge.post('agentExists', { code: 2 });
    state.phase = 'signedOut';
    state.page = 'noseat';
    draw();
    return;
  }
  const session = { token: body.token, email: body.email };
  storeSession(session);
  const ok = await connect(session, body.allowedOrigins);
  if (!ok && !signedIn() && state.session) {
    state.phase = 'signedOut';
    state.notice = 'serverUnreachable';
    draw();
  }
}

async function doSignOut() {
  const session = state.session;
  if (!session) {
    bridge.post('logout');
    return;
  }
  await signOut(session.token);
  if (state.session === session) endSession('logout', 'signedOut', 'info');
}

/** @param {string} a @param {string} b */
const sameEmail = (a, b) => a.trim().toLowerCase() === b.trim().toLowerCase();

/** @param {{type: string, content?: any}} msg */
async function onHostMessage(msg) {
  const c = msg.content || {};
  switch (msg.type) {
    case 'init': {
      if (c.lang !== undefined) setLang(c.lang);
      const method = c.loginMethod;
      state.lastLoginMethod = typeof method === 'number' ? method : null;
      if (typeof c.token === 'string' && c.token !== '') {
        // Our extension: a one-time sign-in token instead of a password.
        if (c.token.length > 256) {
          bridge.post('tokenInvalid');
          if (state.phase !== 'signedIn') {
            state.phase = 'signedOut';
            state.page = 'email';
            state.notice = 'signInTokenInvalid';
            state.noticeKind = 'error';
          }
        } else {
          await doTokenSignIn(c.token);
        }
      } else if (state.phase === 'signedIn') {
        if (method === 0 && c.email && !sameEmail(c.email, state.email)) {
          await doSignOut();
          await doSignIn(c.email, c.password);
        } else {
          // Already signed in: say so again, for a host that listens late.
          announce();
        }
      } else if (method === 0) {
        await doSignIn(c.email, c.password);
      } else if (method === 1) {
        state.page = state.preferEmail ? 'email' : 'sso';
        state.phase = 'signedOut';
        if (state.page === 'sso') await checkSso();
      } else {
        state.page = 'email';
        state.phase = 'signedOut';
      }
      break;
    }
    case 'toEmailLogin':
      state.preferEmail = true;
      if (state.phase !== 'signedIn') { state.page = 'email'; state.phase = 'signedOut'; }
      break;
    case 'loginOut':
      await doSignOut();
      break;
    case 'callOut':
      if (state.phase !== 'signedIn') bridge.post('dialStatus', { code: 6 });
      else callOut(c);
      break;
    case 'hangUp':
      if (state.phase === 'signedIn') hangUp();
      break;
    case 'answer':
    case 'reject':
      if (link) link.send({ op: msg.type });
      break;
    case 'mute':
    case 'unmute':
      if (link) link.send({ op: 'mute', on: msg.type === 'mute' });
      break;
    case 'hold':
    case 'unhold':
      if (link) link.send({ op: 'hold', on: msg.type === 'hold' });
      break;
    case 'startRecording':
    case 'stopRecording':
      if (link) link.send({ op: 'record', on: msg.type === 'startRecording' });
      break;
    case 'sendDtmf':
      if (link && typeof c.digits === 'string') link.send({ op: 'dtmf', digits: c.digits });
      break;
    case 'setAgentStatus':
      if (state.phase === 'signedIn') setStatus(Number(c.code));
      break;
    default:
      break; // unknown types are ignored, as the protocol's extensions require
  }
  draw();
}

async function boot() {
  // Language before any init: the browser's, when we have it.
  setLang(navigator.language === 'zh-CN' || navigator.language === 'es-MX' ? navigator.language : 'en-US');
  draw();
  const cfg = await fetchEmbedConfig();
  globalOrigins = Array.isArray(cfg.allowedOrigins) ? cfg.allowedOrigins : [];
  bridge = new HostBridge(globalOrigins, (msg) => { run(() => onHostMessage(msg)); });
  // Answer other tabs' questions from the start.
  onSessionChange((s) => {
    // Another tab of this browser signed in: this tab joins that session.
    run(async () => {
      if (s && state.phase !== 'signedIn' && !state.session) await connect(s);
      draw();
    });
  });
  run(async () => {
    // A session this browser already holds (another tab, or before a reload).
    const stored = await askOtherTabs();
    if (stored) {
      state.phase = 'signingIn';
      await connect(stored);
      if (!signedIn() && state.session) {
        // No answer yet: keep trying in the background; show sign-in meanwhile.
        state.phase = 'signedOut';
      }
    } else {
      state.phase = 'signedOut';
    }
    draw();
  });
  // The single sign-on popup answers from our own origin, and only the popup
  // this tab opened is listened to.
  window.addEventListener('message', (e) => {
    if (e.origin !== location.origin || !ssoPopup || e.source !== ssoPopup) return;
    const body = e.data && typeof e.data === 'object' ? e.data.seatlineSso : null;
    if (!body || typeof body !== 'object') return;
    ssoPopup = null;
    run(() => onSso(body));
  });
  bridge.start();
  bridge.post('ready');
  draw();
}

boot();

// The call timer ticks while a call is connected: its text only, nothing else.
setInterval(tick, 1000);

// For diagnostics in the browser console.
/** @type {any} */ (window).seatline = { state, t, audio, hostTarget: () => (bridge ? bridge.target : null) };
