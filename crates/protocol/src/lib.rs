//! The protocol's vocabulary, defined once.
//!
//! Owns: the codes of the NXLink-compatible embed protocol (`agentStatus`,
//! `dialStatus`, hang-up reasons) and the JSON messages that travel on the
//! softphone's WebSocket between a tab and the server.
//!
//! Must never: do I/O, know about storage, or change a code's number. The
//! numbers are the vendor's contract; a CRM compares them literally.

use serde::{Deserialize, Serialize};
use serde_repr::{Deserialize_repr, Serialize_repr};

/// The agent's status as reported to the host in `agentStatus.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize_repr, Deserialize_repr)]
#[repr(u8)]
pub enum AgentStatusCode {
    /// Working, idle: may receive and dial.
    Idle = 1,
    /// Working, busy; also reported while ringing, in a call and in wrap-up.
    Busy = 2,
    Meeting = 3,
    Meal = 4,
    Restroom = 5,
    Sleep = 6,
    Other = 7,
}

impl AgentStatusCode {
    pub const ALL: [AgentStatusCode; 7] = [
        Self::Idle,
        Self::Busy,
        Self::Meeting,
        Self::Meal,
        Self::Restroom,
        Self::Sleep,
        Self::Other,
    ];

    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as i64 == code)
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

/// `dialStatus.code` values for the phone and call states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize_repr, Deserialize_repr)]
#[repr(i16)]
pub enum DialStatusCode {
    OutboundRinging = 0,
    InboundRinging = 1,
    Connected = 2,
    Disconnected = 3,
    Registered = 4,
    HungUp = 5,
    NotSignedIn = 6,
    RegistrationFailed = -1,
}

/// Why a call could not be placed or failed; sent as a `dialStatus` code and
/// as `hangupCode` on the closing code-5 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize_repr, Deserialize_repr)]
#[repr(u16)]
pub enum HangupReason {
    Arrears = 810,
    CountryNotAllowed = 811,
    NumberInvalid = 812,
    SessionExpired = 813,
    Blacklisted = 814,
    FrequencyLimit = 815,
    CallerNumberUnusable = 816,
    TrialAllowanceUsed = 817,
    DidCallFailed = 819,
    NetworkCarrier = 800,
    NetworkAgent = 801,
}

/// What a tab sends to the server on its WebSocket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum ClientOp {
    /// First message of every connection: the session token from sign-in.
    Auth { token: String },
    /// The agent (or the host, through `setAgentStatus`) picks a status.
    SetStatus { code: i64 },
    /// Keeps the session alive and proves the tab is not frozen.
    Ping,
    /// Place a call (the host's `callOut`, or the dial pad).
    #[serde(rename_all = "camelCase")]
    CallOut {
        #[serde(default)]
        caller: String,
        #[serde(default)]
        callee: String,
        #[serde(default)]
        country_code: String,
        #[serde(default)]
        order_id: String,
        #[serde(default)]
        params: String,
    },
    /// End the agent's current call (cancel it while it rings).
    HangUp,
    /// Answer the inbound call ringing at this agent.
    Answer,
    /// Refuse the inbound call ringing at this agent (it goes to the next agent).
    Reject,
    /// The audio tab's WebRTC offer for the agent's audio leg.
    RtcOffer { sdp: String },
    /// Send DTMF digits to the far end of the current call.
    Dtmf { digits: String },
    /// Mute or unmute the agent's microphone toward the call.
    Mute { on: bool },
    /// Put the current call on hold, or take it off.
    Hold { on: bool },
}

/// A seat as the host sees it in the `login` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatInfo {
    pub sip_num: String,
    pub group_no: String,
}

/// The agent's state as every tab shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentView {
    /// What the host is told in `agentStatus`.
    pub code: AgentStatusCode,
    /// The status the agent chose (what a call returns to).
    pub status: AgentStatusCode,
    /// `none`, `ringing`, `inCall` or `wrapUp`.
    pub activity: String,
}

/// What the server sends to a tab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "camelCase")]
pub enum ServerEvent {
    /// The connection is signed in; sent once after a good `auth`.
    Ready {
        email: String,
        seat: SeatInfo,
        agent: AgentView,
        /// Idle expiry of the session, seconds.
        idle_timeout_secs: u64,
        /// The agent's call in progress, as its last `dialStatus` content.
        #[serde(skip_serializing_if = "Option::is_none")]
        call: Option<serde_json::Value>,
        /// Whether this tab holds the agent's audio.
        audio: bool,
    },
    /// This tab now holds (or no longer holds) the agent's audio.
    Audio { hold: bool },
    /// The server's answer to `rtcOffer`.
    RtcAnswer { sdp: String },
    /// Mute and hold state of the current call, for every tab.
    CallControl { muted: bool, held: bool },
    /// A `dialStatus` for the host, with its whole `content`.
    Dial { content: serde_json::Value },
    /// The agent's state changed (from any tab, any browser, or the system).
    Agent { agent: AgentView },
    /// The session was signed out (by any of its tabs).
    LoggedOut,
    /// The session was rejected: expired, revoked or unknown.
    TokenInvalid,
    /// Answer to `ping`: the connection is alive.
    Pong,
    /// A command could not be carried out; the state is unchanged.
    Error { code: String, message: String },
}

/// The JSON body of every HTTP error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_the_vendors_numbers() {
        let codes: Vec<u8> = AgentStatusCode::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes, vec![1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(AgentStatusCode::from_code(0), None);
        assert_eq!(AgentStatusCode::from_code(8), None);
        assert_eq!(AgentStatusCode::from_code(3), Some(AgentStatusCode::Meeting));
        assert_eq!(serde_json::to_string(&DialStatusCode::RegistrationFailed).unwrap(), "-1");
        assert_eq!(serde_json::to_string(&HangupReason::SessionExpired).unwrap(), "813");
    }

    #[test]
    fn wire_messages_have_their_documented_shape() {
        let op: ClientOp = serde_json::from_str(r#"{"op":"setStatus","code":3}"#).unwrap();
        assert_eq!(op, ClientOp::SetStatus { code: 3 });
        let op: ClientOp = serde_json::from_str(r#"{"op":"auth","token":"t"}"#).unwrap();
        assert_eq!(op, ClientOp::Auth { token: "t".into() });
        assert!(serde_json::from_str::<ClientOp>(r#"{"op":"nope"}"#).is_err());
        let ev = ServerEvent::Agent {
            agent: AgentView { code: AgentStatusCode::Busy, status: AgentStatusCode::Idle, activity: "inCall".into() },
        };
        assert_eq!(
            serde_json::to_string(&ev).unwrap(),
            r#"{"ev":"agent","agent":{"code":2,"status":1,"activity":"inCall"}}"#
        );
    }
}
