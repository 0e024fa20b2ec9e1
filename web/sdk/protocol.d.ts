// Generated from the Rust types of crates/protocol; do not edit.
// Rewrite with: SEATLINE_WRITE_TS=1 cargo test -p seatline-protocol typescript

export type AgentStatusCode = 1 | 2 | 3 | 4 | 5 | 6 | 7;

export type DialStatus = { 
/**
 * A [`DialStatusCode`] or a [`HangupReason`] (810-819, 800, 801).
 */
code: number, callId: string, 
/**
 * 0 inbound, 1 outbound, 2 auto-dialed.
 */
direction: number, caller: string, callee: string, orderId: string, params: string, other: string, 
/**
 * Milliseconds since the Unix epoch.
 */
callStartTimestamp: number, callConnectedTimestamp: number | "", callHangUpTimestamp: number | "", 
/**
 * On code 5 only: why the call failed, where it did.
 */
hangupCode?: number | null, 
/**
 * On code 5 only: the carrier's final SIP status, where one came.
 */
sipCode?: number | null, };

export type CallQuality = { callId: string, 
/**
 * Packets lost, percent (0-100).
 */
lossPct: number, 
/**
 * Interarrival jitter, milliseconds.
 */
jitterMs: number, 
/**
 * Round-trip time, milliseconds.
 */
rttMs: number, 
/**
 * Mean opinion score estimate, 1 (bad) to 5 (excellent).
 */
mos: number, };

export type SeatInfo = { sipNum: string, groupNo: string, };

export type AgentView = { 
/**
 * What the host is told in `agentStatus`.
 */
code: AgentStatusCode, 
/**
 * The status the agent chose (what a call returns to).
 */
status: AgentStatusCode, 
/**
 * `none`, `ringing`, `inCall` or `wrapUp`.
 */
activity: string, };

export type ClientOp = { "op": "auth", token: string, } | { "op": "setStatus", code: number, } | { "op": "ping" } | { "op": "callOut", caller: string, callee: string, countryCode: string, orderId: string, params: string, } | { "op": "hangUp" } | { "op": "answer" } | { "op": "reject" } | { "op": "rtcOffer", sdp: string, } | { "op": "dtmf", digits: string, } | { "op": "mute", on: boolean, } | { "op": "hold", on: boolean, } | { "op": "record", on: boolean, };

export type ServerEvent = { "ev": "ready", email: string, seat: SeatInfo, agent: AgentView, 
/**
 * Idle expiry of the session, seconds.
 */
idle_timeout_secs: number, 
/**
 * The agent's call in progress, as its last `dialStatus` content.
 */
call: DialStatus | null, 
/**
 * Whether this tab holds the agent's audio.
 */
audio: boolean, 
/**
 * The call in progress is being recorded.
 */
recording: boolean, } | { "ev": "audio", hold: boolean, } | { "ev": "rtcAnswer", sdp: string, } | { "ev": "callControl", muted: boolean, held: boolean, } | { "ev": "recording", callId: string, on: boolean, } | { "ev": "dial", content: DialStatus, } | { "ev": "agent", agent: AgentView, } | { "ev": "quality", content: CallQuality, } | { "ev": "loggedOut" } | { "ev": "tokenInvalid" } | { "ev": "pong" } | { "ev": "error", code: string, message: string, };

export type ApiError = { error: string, message: string, };
