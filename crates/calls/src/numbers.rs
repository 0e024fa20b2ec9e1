//! How a trunk wants its numbers: the called number with a prefix stripped
//! and another added (e.g. E.164 `14155550123` as `0014155550123`, or a
//! national `4155550123`), and the caller ID as E.164 digits, with a `+`,
//! or in the national format of its country. Records keep E.164; only what
//! goes on the wire changes. Inbound, the number a carrier calls is made
//! a DID as stored (E.164 digits) the same way: a prefix stripped, another
//! added (e.g. a national `2025550171` as `12025550171`).

/// How the caller ID is written toward a trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallerFormat {
    /// E.164 digits: `12025550170`.
    #[default]
    E164,
    /// E.164 with a plus: `+12025550170`.
    Plus,
    /// The national number: `2025550170`.
    National,
}

/// A trunk's number rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NumberRules {
    /// Stripped from the start of the called number when it is there.
    pub strip: String,
    /// Then put in front of it.
    pub prefix: String,
    pub caller: CallerFormat,
    /// Inbound: stripped from the start of the number the carrier calls
    /// (after a leading `+`) when it is there.
    pub did_strip: String,
    /// Inbound: then put in front of it.
    pub did_prefix: String,
}

/// The national significant number of an E.164 number in digits, when a
/// phone-number library knows its country.
pub fn national(e164: &str) -> Option<String> {
    let n = phonenumber::parse(None, format!("+{e164}")).ok()?;
    Some(n.national().value().to_string())
}

impl NumberRules {
    /// The called number as the trunk wants it.
    pub fn callee(&self, e164: &str) -> String {
        let rest = if self.strip.is_empty() {
            e164
        } else {
            e164.strip_prefix(self.strip.as_str()).unwrap_or(e164)
        };
        format!("{}{rest}", self.prefix)
    }

    /// The DID (E.164 digits) the number `called` that a carrier sent on
    /// this trunk stands for; `None` when it is not digits (after a
    /// leading `+`), or more than `max` once rewritten.
    pub fn did(&self, called: &str, max: usize) -> Option<String> {
        let n = called.strip_prefix('+').unwrap_or(called);
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let rest = if self.did_strip.is_empty() {
            n
        } else {
            n.strip_prefix(self.did_strip.as_str()).unwrap_or(n)
        };
        let did = format!("{}{rest}", self.did_prefix);
        (!did.is_empty() && did.len() <= max).then_some(did)
    }

    /// The caller ID as the trunk wants it (E.164 when the national form
    /// is asked for but the number's country is unknown).
    pub fn caller(&self, e164: &str) -> String {
        match self.caller {
            CallerFormat::E164 => e164.to_string(),
            CallerFormat::Plus => format!("+{e164}"),
            CallerFormat::National => national(e164).unwrap_or_else(|| e164.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_called_number_is_stripped_then_prefixed() {
        let none = NumberRules::default();
        assert_eq!(none.callee("14155550123"), "14155550123");
        let intl = NumberRules {
            prefix: "00".into(),
            ..Default::default()
        };
        assert_eq!(intl.callee("85221234567"), "0085221234567");
        let national = NumberRules {
            strip: "1".into(),
            ..Default::default()
        };
        assert_eq!(national.callee("14155550123"), "4155550123");
        assert_eq!(
            national.callee("85221234567"),
            "85221234567",
            "no 1: unchanged"
        );
        let both = NumberRules {
            strip: "44".into(),
            prefix: "0".into(),
            ..Default::default()
        };
        assert_eq!(both.callee("442071838750"), "02071838750");
    }

    #[test]
    fn the_number_a_carrier_calls_becomes_the_did_as_stored() {
        let none = NumberRules::default();
        assert_eq!(none.did("+12025550171", 32).as_deref(), Some("12025550171"));
        assert_eq!(none.did("12025550171", 32).as_deref(), Some("12025550171"));
        let us = NumberRules {
            did_prefix: "1".into(),
            ..Default::default()
        };
        assert_eq!(us.did("2025550171", 32).as_deref(), Some("12025550171"));
        let uk = NumberRules {
            did_strip: "0".into(),
            did_prefix: "44".into(),
            ..Default::default()
        };
        assert_eq!(uk.did("02079460000", 32).as_deref(), Some("442079460000"));
        assert_eq!(
            uk.did("2079460000", 32).as_deref(),
            Some("442079460000"),
            "no 0: only the prefix"
        );
        for bad in ["", "+", "call-me", "12 34", "++1202"] {
            assert_eq!(uk.did(bad, 32), None, "{bad:?}");
        }
        assert_eq!(us.did(&"9".repeat(32), 32), None, "too long once prefixed");
    }

    #[test]
    fn the_caller_id_takes_the_trunk_s_format() {
        let mut r = NumberRules::default();
        assert_eq!(r.caller("12025550170"), "12025550170");
        r.caller = CallerFormat::Plus;
        assert_eq!(r.caller("12025550170"), "+12025550170");
        r.caller = CallerFormat::National;
        assert_eq!(r.caller("12025550170"), "2025550170");
        assert_eq!(r.caller("85221234567"), "21234567");
        assert_eq!(r.caller("999"), "999", "unknown country: as it was");
    }
}
