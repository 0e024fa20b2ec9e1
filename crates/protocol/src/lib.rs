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
#[cfg_attr(test, derive(ts_rs::TS), ts(type = "1 | 2 | 3 | 4 | 5 | 6 | 7"))]
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
#[cfg_attr(test, derive(ts_rs::TS))]
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
    /// Start or stop recording the current call (the host's
    /// `startRecording`/`stopRecording`, where the group records on demand).
    Record { on: bool },
}

/// The `content` of a `dialStatus` message: every field in every message,
/// as the vendor sends them. A timestamp not yet known is `""`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct DialStatus {
    /// A [`DialStatusCode`] or a [`HangupReason`] (810-819, 800, 801).
    pub code: i64,
    pub call_id: String,
    /// 0 inbound, 1 outbound, 2 auto-dialed.
    pub direction: u8,
    pub caller: String,
    pub callee: String,
    pub order_id: String,
    pub params: String,
    pub other: String,
    /// Milliseconds since the Unix epoch.
    pub call_start_timestamp: i64,
    #[serde(with = "timestamp")]
    #[cfg_attr(test, ts(type = "number | \"\""))]
    pub call_connected_timestamp: Option<i64>,
    #[serde(with = "timestamp")]
    #[cfg_attr(test, ts(type = "number | \"\""))]
    pub call_hang_up_timestamp: Option<i64>,
    /// On code 5 only: why the call failed, where it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hangup_code: Option<u16>,
    /// On code 5 only: the carrier's final SIP status, where one came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_code: Option<u16>,
}

/// A timestamp in milliseconds, or `""` while unknown (the vendor's way).
mod timestamp {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(ms) => s.serialize_i64(*ms),
            None => s.serialize_str(""),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Wire {
        Ms(i64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Wire::deserialize(d)? {
            Wire::Ms(ms) => Ok(Some(ms)),
            Wire::Text(t) if t.is_empty() => Ok(None),
            Wire::Text(_) => Err(serde::de::Error::custom(
                "a timestamp is milliseconds or an empty string",
            )),
        }
    }
}

/// The `content` of a `callQuality` message: how the agent's current call
/// sounds, as the server's media plane measured it over the last few
/// seconds. A Seatline extension of the vendor's protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct CallQuality {
    pub call_id: String,
    /// Packets lost, percent (0-100).
    pub loss_pct: f64,
    /// Interarrival jitter, milliseconds.
    pub jitter_ms: f64,
    /// Round-trip time, milliseconds.
    pub rtt_ms: f64,
    /// Mean opinion score estimate, 1 (bad) to 5 (excellent).
    pub mos: f64,
}

/// A seat as the host sees it in the `login` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct SeatInfo {
    pub sip_num: String,
    pub group_no: String,
}

/// The agent's state as every tab shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
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
#[cfg_attr(test, derive(ts_rs::TS))]
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
        call: Option<Box<DialStatus>>,
        /// Whether this tab holds the agent's audio.
        audio: bool,
        /// The call in progress is being recorded.
        recording: bool,
    },
    /// This tab now holds (or no longer holds) the agent's audio.
    Audio { hold: bool },
    /// The server's answer to `rtcOffer`.
    RtcAnswer { sdp: String },
    /// Mute and hold state of the current call, for every tab.
    CallControl { muted: bool, held: bool },
    /// The call began (or stopped) being recorded; passed to the host as
    /// `{type:'recording', content:{callId, on}}`.
    #[serde(rename_all = "camelCase")]
    Recording { call_id: String, on: bool },
    /// A `dialStatus` for the host, with its whole `content` (boxed: the
    /// other events are small, and events are moved around a lot).
    Dial { content: Box<DialStatus> },
    /// The agent's state changed (from any tab, any browser, or the system).
    Agent { agent: AgentView },
    /// A quality sample of the agent's connected call (every few seconds),
    /// passed to the host as `callQuality`.
    Quality { content: CallQuality },
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
#[cfg_attr(test, derive(ts_rs::TS))]
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
        assert_eq!(
            AgentStatusCode::from_code(3),
            Some(AgentStatusCode::Meeting)
        );
        assert_eq!(
            serde_json::to_string(&DialStatusCode::RegistrationFailed).unwrap(),
            "-1"
        );
        assert_eq!(
            serde_json::to_string(&HangupReason::SessionExpired).unwrap(),
            "813"
        );
    }

    #[test]
    fn dial_status_has_every_field_and_empty_unknown_timestamps() {
        let d = DialStatus {
            code: 0,
            call_id: "c".into(),
            direction: 1,
            caller: "1".into(),
            callee: "2".into(),
            order_id: String::new(),
            params: String::new(),
            other: String::new(),
            call_start_timestamp: 5,
            call_connected_timestamp: None,
            call_hang_up_timestamp: Some(9),
            hangup_code: None,
            sip_code: None,
        };
        let text = serde_json::to_string(&d).unwrap();
        let want = concat!(
            r#"{"code":0,"callId":"c","direction":1,"caller":"1","callee":"2","orderId":"","params":"","#,
            r#""other":"","callStartTimestamp":5,"callConnectedTimestamp":"","callHangUpTimestamp":9}"#
        );
        assert_eq!(text, want);
        assert_eq!(serde_json::from_str::<DialStatus>(&text).unwrap(), d);
        let bad = text.replace(
            r#""callConnectedTimestamp":"""#,
            r#""callConnectedTimestamp":"x""#,
        );
        assert!(serde_json::from_str::<DialStatus>(&bad).is_err());
    }

    #[test]
    fn wire_messages_have_their_documented_shape() {
        let op: ClientOp = serde_json::from_str(r#"{"op":"setStatus","code":3}"#).unwrap();
        assert_eq!(op, ClientOp::SetStatus { code: 3 });
        let op: ClientOp = serde_json::from_str(r#"{"op":"auth","token":"t"}"#).unwrap();
        assert_eq!(op, ClientOp::Auth { token: "t".into() });
        assert!(serde_json::from_str::<ClientOp>(r#"{"op":"nope"}"#).is_err());
        let ev = ServerEvent::Agent {
            agent: AgentView {
                code: AgentStatusCode::Busy,
                status: AgentStatusCode::Idle,
                activity: "inCall".into(),
            },
        };
        assert_eq!(
            serde_json::to_string(&ev).unwrap(),
            r#"{"ev":"agent","agent":{"code":2,"status":1,"activity":"inCall"}}"#
        );
        let ev = ServerEvent::Quality {
            content: CallQuality {
                call_id: "c".into(),
                loss_pct: 4.5,
                jitter_ms: 12.0,
                rtt_ms: 80.25,
                mos: 3.5,
            },
        };
        let text = serde_json::to_string(&ev).unwrap();
        assert_eq!(
            text,
            r#"{"ev":"quality","content":{"callId":"c","lossPct":4.5,"jitterMs":12.0,"rttMs":80.25,"mos":3.5}}"#
        );
        assert_eq!(serde_json::from_str::<ServerEvent>(&text).unwrap(), ev);
    }
}

/// The TypeScript declarations of the wire types, for the host SDK and the
/// softphone: generated from the types above, never written by hand.
#[cfg(test)]
mod typescript {
    use super::*;
    use ts_rs::{Config, TS};

    const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/sdk/protocol.d.ts");

    fn declarations() -> String {
        let cfg = Config::new().with_large_int("number");
        let mut out = String::from(
            "// Generated from the Rust types of crates/protocol; do not edit.\n\
             // Rewrite with: SEATLINE_WRITE_TS=1 cargo test -p seatline-protocol typescript\n",
        );
        for decl in [
            AgentStatusCode::decl(&cfg),
            DialStatus::decl(&cfg),
            CallQuality::decl(&cfg),
            SeatInfo::decl(&cfg),
            AgentView::decl(&cfg),
            ClientOp::decl(&cfg),
            ServerEvent::decl(&cfg),
            ApiError::decl(&cfg),
        ] {
            out.push('\n');
            if !decl.starts_with("export ") {
                out.push_str("export ");
            }
            out.push_str(&decl);
            out.push('\n');
        }
        out
    }

    #[test]
    fn the_typescript_declarations_are_current() {
        let want = declarations();
        if std::env::var_os("SEATLINE_WRITE_TS").is_some() {
            std::fs::write(FILE, &want).unwrap();
        }
        let have = std::fs::read_to_string(FILE).unwrap_or_default();
        assert!(have == want, "web/sdk/protocol.d.ts is stale: run SEATLINE_WRITE_TS=1 cargo test -p seatline-protocol typescript");
    }
}
