//! Registration with a trunk (RFC 3261 §10): a REGISTER for our contact,
//! answered challenges, a refresh before the binding expires, and a
//! backoff after a failure. The user agent sends and routes the messages;
//! this is the state and the rules of one registration.

use crate::message::{param, Message};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Longest expiry asked for or accepted, seconds (a day).
pub const MAX_EXPIRES: u32 = 86_400;
/// The wait after consecutive failures doubles up to this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub(crate) struct Registration {
    pub peer: SocketAddr,
    /// `sip:user@domain`: the address of record.
    pub aor: String,
    /// The registrar's URI (the Request-URI): `sip:domain`.
    pub registrar: String,
    /// Seconds asked for.
    pub expires: u32,
    pub call_id: String,
    pub tag: String,
    pub cseq: u32,
    /// The REGISTER in flight (its branch and the message, for a challenge).
    pub in_flight: Option<(String, Message)>,
    /// Challenges answered in a row.
    pub tries: u8,
    /// When the next REGISTER goes (a refresh or a retry).
    pub next_at: Option<Instant>,
    /// Failures in a row, for the backoff.
    pub failures: u32,
    pub registered: bool,
}

/// What a final answer to a REGISTER means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Registered for this many seconds.
    Bound(u32),
    /// Send again at once with this expiry (423 Interval Too Brief).
    Longer(u32),
    Failed,
}

impl Registration {
    /// Reads a final answer (not a challenge: the UA answers those).
    pub fn outcome(&self, resp: &Message, contact_user: &str) -> Outcome {
        let code = resp.code().unwrap_or(0);
        if (200..300).contains(&code) {
            // The registrar's grant: our Contact's `expires`, else the
            // Expires header, else what we asked.
            let ours = resp
                .headers_named("Contact")
                .flat_map(|v| v.split(','))
                .find(|c| c.contains(&format!("sip:{contact_user}@")))
                .and_then(|c| param(c, "expires").and_then(|e| e.trim().parse().ok()));
            let header = resp.header("Expires").and_then(|e| e.trim().parse().ok());
            let granted: u32 = ours.or(header).unwrap_or(self.expires);
            if granted == 0 {
                return Outcome::Failed;
            }
            return Outcome::Bound(granted.min(MAX_EXPIRES));
        }
        if code == 423 {
            if let Some(min) = resp
                .header("Min-Expires")
                .and_then(|e| e.trim().parse::<u32>().ok())
                .filter(|m| *m > self.expires && *m <= MAX_EXPIRES)
            {
                return Outcome::Longer(min);
            }
        }
        Outcome::Failed
    }

    /// When to refresh a binding granted for `secs`: well before it
    /// expires (at four fifths of it, at least a second later).
    pub fn refresh_in(secs: u32) -> Duration {
        Duration::from_millis(u64::from(secs) * 800).max(Duration::from_secs(1))
    }

    /// The wait before trying again after `failures` failures in a row:
    /// 2 s, 4 s, 8 s ... up to [`MAX_BACKOFF`].
    pub fn backoff(failures: u32) -> Duration {
        Duration::from_secs(1u64 << failures.clamp(1, 9)).min(MAX_BACKOFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> Registration {
        Registration {
            peer: "127.0.0.1:5080".parse().unwrap(),
            aor: "sip:trunk1@carrier.test".into(),
            registrar: "sip:carrier.test".into(),
            expires: 600,
            call_id: "c".into(),
            tag: "t".into(),
            cseq: 1,
            in_flight: None,
            tries: 0,
            next_at: None,
            failures: 0,
            registered: false,
        }
    }

    fn ok(headers: &[(&str, &str)]) -> Message {
        let mut m = Message::response(200, "OK");
        for (n, v) in headers {
            m.push(n, *v);
        }
        m
    }

    #[test]
    fn the_grant_is_our_contact_s_expires_then_the_header_then_ours() {
        let r = reg();
        let both = ok(&[
            (
                "Contact",
                "<sip:other@10.0.0.1>;expires=50, <sip:trunk1@127.0.0.1:5060>;expires=120",
            ),
            ("Expires", "300"),
        ]);
        assert_eq!(r.outcome(&both, "trunk1"), Outcome::Bound(120));
        assert_eq!(
            r.outcome(&ok(&[("Expires", "300")]), "trunk1"),
            Outcome::Bound(300)
        );
        assert_eq!(r.outcome(&ok(&[]), "trunk1"), Outcome::Bound(600));
        assert_eq!(
            r.outcome(&ok(&[("Expires", "999999")]), "trunk1"),
            Outcome::Bound(MAX_EXPIRES)
        );
        assert_eq!(
            r.outcome(&ok(&[("Expires", "0")]), "trunk1"),
            Outcome::Failed
        );
    }

    #[test]
    fn interval_too_brief_asks_for_a_longer_one_within_bounds() {
        let r = reg();
        let mut m = Message::response(423, "Interval Too Brief");
        m.push("Min-Expires", "1800");
        assert_eq!(r.outcome(&m, "trunk1"), Outcome::Longer(1800));
        let mut absurd = Message::response(423, "Interval Too Brief");
        absurd.push("Min-Expires", "99999999");
        assert_eq!(r.outcome(&absurd, "trunk1"), Outcome::Failed);
        assert_eq!(
            r.outcome(&Message::response(403, "Forbidden"), "trunk1"),
            Outcome::Failed
        );
    }

    #[test]
    fn refresh_comes_before_expiry_and_backoff_doubles_to_a_cap() {
        assert_eq!(Registration::refresh_in(3600), Duration::from_secs(2880));
        assert_eq!(Registration::refresh_in(1), Duration::from_secs(1));
        let waits: Vec<u64> = (1..=10)
            .map(|f| Registration::backoff(f).as_secs())
            .collect();
        assert_eq!(waits, vec![2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }
}
