/**
 * Seatline host SDK: embed the Seatline softphone in a CRM page and drive it
 * in the NXLink protocol (plus Seatline's extensions).
 *
 * ```js
 * import { SeatlinePhone } from 'https://YOUR-SEATLINE-HOST/sdk/seatline.js';
 * const phone = new SeatlinePhone({ container: '#phone' });
 * phone.on('login', (l) => console.log('signed in as', l.email, 'seat', l.sipNum));
 * phone.on('dialStatus', (s) => { if (s.code === 2) console.log('connected', s.callId); });
 * phone.init({ email: 'agent1@example.com', password: '…', lang: 'en-US', loginMethod: 0 });
 * // or, with a sign-in token from your back end (no password in the page):
 * phone.init({ token, lang: 'en-US' });
 * phone.callOut({ callee: '12025550100', countryCode: '1', orderId: 'T-42' });
 * ```
 *
 * The SDK creates the iframe with `allow="microphone; autoplay"`, posts only
 * to the softphone's origin, accepts messages only from that origin and that
 * iframe, and keeps every message sent before the softphone's `ready`.
 *
 * Served by every Seatline server at `/sdk/seatline.js`, with these types at
 * `/sdk/seatline.d.ts`.
 */

// ---------------------------------------------------------------------------
// Messages from the host (the CRM) to the softphone
// ---------------------------------------------------------------------------

/** UI languages of the softphone; any other value shows `en-US`. */
export type Lang = 'zh-CN' | 'en-US' | 'es-MX';

/** `init`: sign in, or choose the sign-in page, and set the UI language. */
export interface InitContent {
  /** The agent's email (with `loginMethod: 0`). */
  email?: string;
  /** The agent's password (with `loginMethod: 0`). */
  password?: string;
  /**
   * A one-time sign-in token your back end got from
   * `POST /api/v1/sign-in-tokens` (Seatline's extension): signs in with it
   * instead of a password, which then never reaches the host page. A used
   * or expired token shows an error and is answered by `tokenInvalid`.
   */
  token?: string;
  /** UI language; unknown values fall back to `en-US`. */
  lang?: Lang | (string & {});
  /**
   * `0`: sign in silently with `email` and `password`.
   * `1`: single sign-on (Seatline shows that SSO is not configured).
   * Absent: show the email/password sign-in page.
   */
  loginMethod?: 0 | 1;
}

/** `callOut`: what the SDK's {@link SeatlinePhone.callOut} takes. */
export interface CallOutOptions {
  /** The number to call, with its country code, digits only, e.g. `12025550100` (at most 32 characters). */
  callee: string;
  /** The callee's country code, e.g. `1`, `852`. */
  countryCode: string;
  /** The caller ID to show (a number the tenant owns); empty or absent: one from the tenant's pool. */
  caller?: string;
  /** Your reference (at most 32 characters), echoed on every `dialStatus` of the call. */
  orderId?: string;
  /** Free data echoed on every `dialStatus` of the call; an object is sent as its JSON. */
  params?: string | Record<string, unknown>;
}

/** `callOut` as it travels: every field a string. */
export interface CallOutContent {
  caller: string;
  callee: string;
  countryCode: string;
  orderId: string;
  params: string;
}

/** Agent status codes: 1 idle; 2 busy; 3-7 breaks (meeting, meal, restroom, sleep, other). */
export type AgentStatusCode = 1 | 2 | 3 | 4 | 5 | 6 | 7;

/** Content of each message the host can send, by type (`undefined`: no content). */
export interface HostMessages {
  /** Sign in (or pick the sign-in page) and set the language. */
  init: InitContent;
  /** Signed out: show the email sign-in page. Signed in: show it after the next sign-out. */
  toEmailLogin: undefined;
  /** Place a call: `dialStatus` 0, then 2 when answered, 5 when it ends. */
  callOut: CallOutContent;
  /** Sign out every tab of this browser; answered by `logout`. (The vendor's spelling.) */
  loginOut: undefined;
  /** Extension: end the current call, or cancel it while it rings (`dialStatus` 5). */
  hangUp: undefined;
  /** Extension: answer the inbound call ringing at this agent. */
  answer: undefined;
  /** Extension: refuse the ringing inbound call; it rings the group's next agent. */
  reject: undefined;
  /** Extension: stop sending the agent's microphone. */
  mute: undefined;
  /** Extension: send the agent's microphone again. */
  unmute: undefined;
  /** Extension: put the call on hold. */
  hold: undefined;
  /** Extension: take the call off hold. */
  unhold: undefined;
  /** Extension: record the connected call (where the agent's group records on demand). */
  startRecording: undefined;
  /** Extension: stop recording it (not where the group records every call). */
  stopRecording: undefined;
  /** Extension: send DTMF digits (`0-9`, `*`, `#`) to the far end. */
  sendDtmf: { digits: string };
  /** Extension: set the agent's status; answered by `agentStatus` in every tab. An invalid code changes nothing. */
  setAgentStatus: { code: AgentStatusCode };
}

// ---------------------------------------------------------------------------
// Messages from the softphone to the host
// ---------------------------------------------------------------------------

/**
 * `dialStatus` codes: 0 outbound ringing, 1 inbound ringing, 2 connected,
 * 3 phone disconnected, 4 phone registered, 5 hung up, 6 not signed in,
 * -1 registration failed; 800-819 why a call failed (see {@link HangupCode}).
 */
export type DialStatusCode = -1 | 0 | 1 | 2 | 3 | 4 | 5 | 6 | HangupCode;

/**
 * Why a call failed: 810 arrears, 811 country not allowed, 812 invalid
 * number, 813 session expired, 814 blacklisted, 815 call limit reached,
 * 816 caller number not usable, 817 trial calls used up, 819 calling from
 * the DID failed, 800 network failure toward the carrier, 801 toward the agent.
 */
export type HangupCode = 800 | 801 | 810 | 811 | 812 | 813 | 814 | 815 | 816 | 817 | 819;

/** A timestamp in ms since the epoch, or `""` while not yet known. */
export type Timestamp = number | '';

import type { DialStatus as CallStatus, CallQuality } from './protocol.js';

export type { CallQuality };

/**
 * The `dialStatus` of a call (codes 0, 1, 2, 5 and the failure codes): every
 * field, in every message. Generated from the server's Rust type
 * (`web/sdk/protocol.d.ts`, checked current in CI), narrowed here to the
 * protocol's codes. `hangupCode` and `sipCode` come on code 5 only.
 */
export type CallDialStatus = Omit<CallStatus, 'code' | 'direction' | 'hangupCode'> & {
  code: 0 | 1 | 2 | 5 | HangupCode;
  /** 0 inbound, 1 outbound, 2 auto-dialed and transferred to the agent. */
  direction: 0 | 1 | 2;
  /** On code 5 of a failed call: the failure code sent just before it. */
  hangupCode?: HangupCode | null;
};

/** The phone's own states (3 disconnected, 4 registered, 6 not signed in, -1 registration failed): `code` only. */
export interface PhoneDialStatus {
  code: -1 | 3 | 4 | 6;
}

/** Content of `dialStatus`. */
export type DialStatus = CallDialStatus | PhoneDialStatus;

/** Content of `agentExists`: 1 the account has an agent seat; 2 no seat, or it is disabled. */
export interface AgentExists {
  code: 1 | 2;
}

/** Content of `login`, sent after a sign-in with a seat. */
export interface Login {
  email: string;
  /** The seat's phone number (extension). */
  sipNum: string;
  /** The seat's agent group. */
  groupNo: string;
}

/** Content of `agentStatus`, sent after sign-in and on every change from any tab. */
export interface AgentStatus {
  code: AgentStatusCode;
}

/** Content of each message the softphone sends, by type (`undefined`: no content). */
export interface SoftphoneMessages {
  /** Extension: the softphone is loaded and accepts messages (once per page load). */
  ready: undefined;
  /** After every successful sign-in. */
  agentExists: AgentExists;
  /** After sign-in, only with a seat. */
  login: Login;
  /** After sign-in, and on every status change in any tab or browser. */
  agentStatus: AgentStatus;
  /** Phone connection changes and every call state change. */
  dialStatus: DialStatus;
  /**
   * Extension: how the connected call sounds, every few seconds while it is
   * connected, as the server measures it: packet loss (percent), jitter and
   * round trip (ms), and a MOS estimate (1-5). `callId` is the call's, as in
   * its `dialStatus`.
   */
  callQuality: CallQuality;
  /**
   * Extension: the connected call began (`on: true`) or stopped being
   * recorded; with `refused` (`recordingOff`, `recordingRequired`,
   * `notConnected`) when a `startRecording`/`stopRecording` changed nothing.
   */
  recording: { callId: string; on: boolean; refused?: string };
  /** After any sign-out (the host's `loginOut`, the page's button, an admin). */
  logout: undefined;
  /** The session was rejected (expired, revoked); the softphone shows its sign-in page. */
  tokenInvalid: undefined;
}

/** A message as it travels, `{type, content?}`. */
export type Message<M = SoftphoneMessages & HostMessages> = {
  [K in keyof M]: M[K] extends undefined ? { type: K; content?: undefined } : { type: K; content: M[K] };
}[keyof M];

/** Any message the softphone sends. */
export type SoftphoneMessage = Message<SoftphoneMessages>;

/** Any message the host sends. */
export type HostMessage = Message<HostMessages>;

/** A listener of one message type: its content, then the whole message. */
export type Listener<K extends keyof SoftphoneMessages> = (
  content: SoftphoneMessages[K],
  message: Message<Pick<SoftphoneMessages, K>>,
) => void;

// ---------------------------------------------------------------------------
// The SDK
// ---------------------------------------------------------------------------

export interface SeatlineOptions {
  /** Where to put the iframe: an element or a CSS selector. Absent: place `phone.iframe` yourself. */
  container?: Element | string | null;
  /**
   * The Seatline server's origin, e.g. `https://cc.example.com`. Default: the
   * origin this SDK file was loaded from (right when you import it from your
   * Seatline server).
   */
  origin?: string;
  /** The softphone's path on that server. Default `/admin/#/nxcc`. */
  path?: string;
  /**
   * An iframe of your own to use instead of creating one. Its `allow`
   * attribute gets `microphone` and `autoplay` added when missing; give it
   * before the iframe has loaded the softphone.
   */
  iframe?: HTMLIFrameElement;
  /** Default 256 (the softphone's designed size is 256 x 460). */
  width?: number | string;
  /** Default 460. */
  height?: number | string;
  /** The iframe's title (for screen readers). Default `Seatline softphone`. */
  title?: string;
}

/** dialStatus codes by name. */
export declare const DialCode: Readonly<{
  OUTBOUND_RINGING: 0;
  INBOUND_RINGING: 1;
  CONNECTED: 2;
  DISCONNECTED: 3;
  REGISTERED: 4;
  HUNG_UP: 5;
  NOT_SIGNED_IN: 6;
  REGISTRATION_FAILED: -1;
}>;

/** agentStatus codes by name. */
export declare const AgentCode: Readonly<{
  IDLE: 1;
  BUSY: 2;
  MEETING: 3;
  MEAL: 4;
  RESTROOM: 5;
  SLEEP: 6;
  OTHER_BREAK: 7;
}>;

/** The message types the softphone sends. */
export declare const SOFTPHONE_MESSAGES: readonly (keyof SoftphoneMessages)[];

/** One embedded softphone. */
export declare class SeatlinePhone {
  /** Creates the iframe (or adopts `options.iframe`), loads the softphone, and starts listening. */
  constructor(options?: SeatlineOptions);

  /** The softphone's origin: the only one messages are sent to and accepted from. */
  readonly origin: string;
  /** The softphone's iframe. */
  readonly iframe: HTMLIFrameElement;
  /** True once the softphone has said `ready`. Until then, messages are kept and sent in order afterwards. */
  readonly isReady: boolean;
  /** Resolves when the softphone first says `ready`. */
  readonly ready: Promise<void>;

  /**
   * Listens to one message type from the softphone.
   * @returns a function that removes the listener
   */
  on<K extends keyof SoftphoneMessages>(type: K, listener: Listener<K>): () => void;
  /** Listens to a message type this SDK does not know (a newer softphone's extension). */
  on(type: string, listener: (content: unknown, message: { type: string; content?: unknown }) => void): () => void;
  /** Removes a listener given to `on`. */
  off<K extends keyof SoftphoneMessages>(type: K, listener: Listener<K>): void;
  off(type: string, listener: (content: unknown, message: { type: string; content?: unknown }) => void): void;
  /** Like `on`, for the next message of that type only. */
  once<K extends keyof SoftphoneMessages>(type: K, listener: Listener<K>): () => void;
  once(type: string, listener: (content: unknown, message: { type: string; content?: unknown }) => void): () => void;
  /** Every message from the softphone, whatever its type (e.g. for a log). */
  onMessage(listener: (message: SoftphoneMessage) => void): () => void;
  /** Every message sent to the softphone, as it is posted (after `ready`). */
  onSend(listener: (message: HostMessage) => void): () => void;

  /** Sends any message (kept until the softphone is ready). */
  send<K extends keyof HostMessages>(
    type: K,
    ...content: HostMessages[K] extends undefined ? [] : [HostMessages[K]]
  ): void;
  send(type: string, content?: unknown): void;

  /** `init`: sign in (`loginMethod: 0`), single sign-on (`1`), or show the sign-in page (absent); sets the language. */
  init(content?: InitContent): void;
  /** `toEmailLogin`: show the email sign-in page (now, or after the next sign-out). */
  toEmailLogin(): void;
  /** `callOut`: place a call. Missing `caller`, `orderId`, `params` are sent as `""`. */
  callOut(call: CallOutOptions): void;
  /** `loginOut`: sign out; answered by `logout`. */
  loginOut(): void;

  /** Extension `hangUp`: end (or cancel) the current call. */
  hangUp(): void;
  /** Extension `answer`: answer the ringing inbound call. */
  answer(): void;
  /** Extension `reject`: refuse the ringing inbound call. */
  reject(): void;
  /** Extension `mute`. */
  mute(): void;
  /** Extension `unmute`. */
  unmute(): void;
  /** Extension `hold`. */
  hold(): void;
  /** Extension `unhold`. */
  unhold(): void;
  /** Extension `startRecording`. */
  startRecording(): void;
  /** Extension `stopRecording`. */
  stopRecording(): void;
  /** Extension `sendDtmf`: digits `0-9`, `*`, `#`. */
  sendDtmf(digits: string): void;
  /** Extension `setAgentStatus`. */
  setAgentStatus(code: AgentStatusCode): void;

  /** Stops listening, drops unsent messages, and removes the iframe if the SDK created it. */
  destroy(): void;
}
