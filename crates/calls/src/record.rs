//! The call record and the `dialStatus` messages made from it, with every
//! field of the protocol in every message.

pub use seatline_protocol::DialStatus;
#[cfg(test)]
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Inbound = 0,
    Outbound = 1,
    AutoDialed = 2,
}

/// Who ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HungUpBy {
    /// The agent hung up, cancelled or rejected it.
    Agent,
    /// The far end: the customer hung up, or refused the call (busy,
    /// declined, not found).
    Customer,
    /// The carrier's network failed it (no answer at all, 408, any 5xx).
    Carrier,
    /// Seatline: a rule refused or cut it (810-819), the carrier leg went
    /// silent, the agent's side was lost, nobody could take it, or the
    /// server stopped.
    System,
}

impl HungUpBy {
    pub fn as_str(self) -> &'static str {
        match self {
            HungUpBy::Agent => "agent",
            HungUpBy::Customer => "customer",
            HungUpBy::Carrier => "carrier",
            HungUpBy::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "agent" => HungUpBy::Agent,
            "customer" => HungUpBy::Customer,
            "carrier" => HungUpBy::Carrier,
            "system" => HungUpBy::System,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    pub call_id: String,
    pub direction: Direction,
    pub caller: String,
    pub callee: String,
    pub order_id: String,
    pub params: String,
    pub other: String,
    pub start_ms: i64,
    pub connected_ms: Option<i64>,
    pub hangup_ms: Option<i64>,
    /// Our reason code (810-819, 800, 801) when the call failed.
    pub hangup_code: Option<u16>,
    /// The carrier's final SIP status, where one came.
    pub sip_code: Option<u16>,
    // How the call sounded, as the media plane measured it while it was
    // connected (the switchboard fills these); each `None` when never measured.
    /// Packet loss of the last sample, percent (0-100).
    pub loss_pct: Option<f64>,
    /// Jitter of the last sample, milliseconds.
    pub jitter_ms: Option<f64>,
    /// Round-trip time of the last sample, milliseconds.
    pub rtt_ms: Option<f64>,
    /// The call's MOS estimate: the mean of all its samples (1-5).
    pub mos: Option<f64>,
    /// The worst (lowest) MOS of any one sample of the call.
    pub mos_min: Option<f64>,
    /// The trunk that carried it (outbound: the last one tried).
    pub trunk: Option<String>,
    /// An inbound call forwarded to a number (routed by its DID): the number.
    pub forwarded_to: Option<String>,
    /// Who ended it, once it ended.
    pub hung_up_by: Option<HungUpBy>,
    /// An answered call to a destination with a rate: the seconds billed
    /// (whole billing blocks) and their price, in thousandths of a cent.
    pub billed_secs: Option<u32>,
    pub cost_millicents: Option<i64>,
    /// Some of it was recorded.
    pub recorded: bool,
}

impl CallRecord {
    pub fn new(
        call_id: String,
        direction: Direction,
        caller: String,
        callee: String,
        start_ms: i64,
    ) -> Self {
        Self {
            call_id,
            direction,
            caller,
            callee,
            order_id: String::new(),
            params: String::new(),
            other: String::new(),
            start_ms,
            connected_ms: None,
            hangup_ms: None,
            hangup_code: None,
            sip_code: None,
            loss_pct: None,
            jitter_ms: None,
            rtt_ms: None,
            mos: None,
            mos_min: None,
            trunk: None,
            forwarded_to: None,
            hung_up_by: None,
            recorded: false,
            billed_secs: None,
            cost_millicents: None,
        }
    }

    /// Notes who ended the call, unless that is known already (an agent's
    /// hang-up is followed by the carrier leg's end).
    pub fn ended_by(&mut self, who: HungUpBy) {
        self.hung_up_by.get_or_insert(who);
    }

    /// The `content` of a `dialStatus` message with `code` for this call;
    /// `hangupCode` and `sipCode` travel on code 5 only.
    pub fn dial_status(&self, code: i64) -> DialStatus {
        let end = code == 5;
        DialStatus {
            code,
            call_id: self.call_id.clone(),
            direction: self.direction as u8,
            caller: self.caller.clone(),
            callee: self.callee.clone(),
            order_id: self.order_id.clone(),
            params: self.params.clone(),
            other: self.other.clone(),
            call_start_timestamp: self.start_ms,
            call_connected_timestamp: self.connected_ms,
            call_hang_up_timestamp: self.hangup_ms,
            hangup_code: self.hangup_code.filter(|_| end),
            sip_code: self.sip_code.filter(|_| end),
        }
    }

    /// The messages of a call that failed with `reason`: the reason code
    /// itself, then code 5 with `hangupCode` (both readings of the source).
    pub fn failure_messages(&mut self, reason: u16, now_ms: i64) -> [DialStatus; 2] {
        self.hangup_code = Some(reason);
        self.hangup_ms = Some(now_ms);
        self.ended_by(HungUpBy::System);
        [self.dial_status(reason as i64), self.dial_status(5)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_present_and_unknown_timestamps_are_empty_strings() {
        let mut r = CallRecord::new(
            "c1".into(),
            Direction::Outbound,
            "12025550170".into(),
            "12025550100".into(),
            1000,
        );
        r.order_id = "o-1".into();
        r.params = "{\"a\":1}".into();
        let v: Value = serde_json::to_value(r.dial_status(0)).unwrap();
        for k in [
            "code",
            "callId",
            "direction",
            "caller",
            "callee",
            "orderId",
            "params",
            "other",
            "callStartTimestamp",
            "callConnectedTimestamp",
            "callHangUpTimestamp",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert_eq!(v["direction"], 1);
        assert_eq!(v["callConnectedTimestamp"], "");
        assert!(v.get("hangupCode").is_none());
        r.connected_ms = Some(2000);
        r.hangup_ms = Some(3000);
        r.sip_code = Some(200);
        let v: Value = serde_json::to_value(r.dial_status(5)).unwrap();
        assert_eq!(
            (
                v["callConnectedTimestamp"].as_i64(),
                v["callHangUpTimestamp"].as_i64()
            ),
            (Some(2000), Some(3000))
        );
        assert_eq!(v["sipCode"], 200);
        assert!(
            v.get("hangupCode").is_none(),
            "a normal end has no hangupCode"
        );
    }

    #[test]
    fn a_failure_is_its_code_then_5_with_hangup_code() {
        let mut r = CallRecord::new("c2".into(), Direction::Outbound, "".into(), "123".into(), 1);
        let [a, b] = r
            .failure_messages(812, 5)
            .map(|d| serde_json::to_value(d).unwrap());
        assert_eq!(
            (
                a["code"].as_i64(),
                b["code"].as_i64(),
                b["hangupCode"].as_i64()
            ),
            (Some(812), Some(5), Some(812))
        );
        assert_eq!(a["callId"], b["callId"]);
        assert_eq!(b["callHangUpTimestamp"], 5);
    }
}
