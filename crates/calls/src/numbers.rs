//! How a trunk wants its numbers: the called number with a prefix stripped
//! and another added (e.g. E.164 `14155550123` as `0014155550123`, or a
//! national `4155550123`), and the caller ID as E.164 digits, with a `+`,
//! or in the national format of its country. Records keep E.164; only what
//! goes on the wire changes.

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
