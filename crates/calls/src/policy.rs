//! May this `callOut` be placed, and from which number?

use seatline_protocol::HangupReason;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOut {
    pub caller: String,
    pub callee: String,
    pub country_code: String,
    pub order_id: String,
    pub params: String,
}

/// What the store knows that the tenant's policy needs for one call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyFacts {
    pub balance_cents: i64,
    /// Calling codes allowed; empty: all.
    pub allowed_countries: Vec<String>,
    pub trial: bool,
    pub trial_calls_per_day: i64,
    pub calls_today: i64,
    /// 0: no limit.
    pub max_calls_per_callee_per_day: i64,
    pub callee_calls_today: i64,
    /// Calls one agent may place to one number in a minute (every attempt
    /// counts); 0: no limit. Counted by the switchboard, which sees them all.
    pub max_calls_per_callee_per_minute: i64,
    pub blacklisted: bool,
}

/// The tenant's policy for a call to a number of calling code `cc`.
pub fn check_policy(cc: &str, f: &PolicyFacts) -> Result<(), HangupReason> {
    if f.balance_cents <= 0 {
        return Err(HangupReason::Arrears);
    }
    if f.trial && f.calls_today >= f.trial_calls_per_day {
        return Err(HangupReason::TrialAllowanceUsed);
    }
    if !f.allowed_countries.is_empty() && !f.allowed_countries.iter().any(|c| c == cc) {
        return Err(HangupReason::CountryNotAllowed);
    }
    if f.blacklisted {
        return Err(HangupReason::Blacklisted);
    }
    if f.max_calls_per_callee_per_day > 0 && f.callee_calls_today >= f.max_calls_per_callee_per_day
    {
        return Err(HangupReason::FrequencyLimit);
    }
    Ok(())
}

/// The calling code of an E.164 number in digits ("85221234567" -> "852").
pub fn calling_code(e164: &str) -> String {
    phonenumber::parse(None, format!("+{e164}"))
        .map(|n| n.code().value().to_string())
        .unwrap_or_default()
}

/// The callee in E.164 digits (no `+`), or why it cannot be dialed (812).
/// Loads the phone-number metadata and builds its patterns for common
/// regions now, so the first `callOut` does not pay for it (about 100 ms).
pub fn warm_up() {
    for n in [
        "12025550100",
        "442079460000",
        "8613800138000",
        "918041234567",
        "5511987654321",
    ] {
        let _ = check_callee(n, "");
    }
}

pub fn check_callee(callee: &str, country_code: &str) -> Result<String, HangupReason> {
    let digits: String = callee.trim().trim_start_matches('+').to_string();
    if digits.is_empty() || digits.len() > 32 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HangupReason::NumberInvalid);
    }
    let parsed =
        phonenumber::parse(None, format!("+{digits}")).map_err(|_| HangupReason::NumberInvalid)?;
    if !phonenumber::is_valid(&parsed) {
        return Err(HangupReason::NumberInvalid);
    }
    let cc = country_code.trim().trim_start_matches('+');
    if !cc.is_empty() && parsed.code().value().to_string() != cc {
        return Err(HangupReason::NumberInvalid);
    }
    Ok(digits)
}

/// The caller number: the one asked for, if the tenant owns it (else 816);
/// or one of the tenant's pool, taking turns by `turn`.
pub fn pick_caller(
    asked: &str,
    owned: &[String],
    pool: &[String],
    turn: usize,
) -> Result<String, HangupReason> {
    let asked = asked.trim().trim_start_matches('+');
    if asked.is_empty() {
        if pool.is_empty() {
            return Err(HangupReason::CallerNumberUnusable);
        }
        return Ok(pool[turn % pool.len()].clone());
    }
    if asked.len() > 32 || !owned.iter().any(|n| n == asked) {
        return Err(HangupReason::CallerNumberUnusable);
    }
    Ok(asked.to_string())
}

/// Fields longer than the protocol allows are refused, not cut.
pub fn check_lengths(c: &CallOut) -> Result<(), HangupReason> {
    if c.order_id.chars().count() > 32
        || c.caller.chars().count() > 32
        || c.callee.chars().count() > 32
    {
        return Err(HangupReason::NumberInvalid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callees_must_be_valid_e164_numbers_of_their_country() {
        assert_eq!(check_callee("12025550100", "1"), Ok("12025550100".into()));
        assert_eq!(check_callee("+12025550186", ""), Ok("12025550186".into()));
        assert_eq!(check_callee("85221234567", "852"), Ok("85221234567".into()));
        for bad in [
            "",
            "abc",
            "123",
            "1202555010",
            "12025550100999999999999999999999999",
        ] {
            assert_eq!(
                check_callee(bad, "1"),
                Err(HangupReason::NumberInvalid),
                "{bad}"
            );
        }
        assert_eq!(
            check_callee("12025550100", "44"),
            Err(HangupReason::NumberInvalid)
        );
    }

    #[test]
    fn policy_checks_in_order() {
        let ok = PolicyFacts {
            balance_cents: 1,
            trial_calls_per_day: 10,
            ..Default::default()
        };
        assert_eq!(check_policy("1", &ok), Ok(()));
        assert_eq!(
            check_policy(
                "1",
                &PolicyFacts {
                    balance_cents: 0,
                    ..ok.clone()
                }
            ),
            Err(HangupReason::Arrears)
        );
        assert_eq!(
            check_policy(
                "1",
                &PolicyFacts {
                    trial: true,
                    calls_today: 10,
                    ..ok.clone()
                }
            ),
            Err(HangupReason::TrialAllowanceUsed)
        );
        assert_eq!(
            check_policy(
                "1",
                &PolicyFacts {
                    trial: true,
                    calls_today: 9,
                    ..ok.clone()
                }
            ),
            Ok(())
        );
        let us_only = PolicyFacts {
            allowed_countries: vec!["1".into()],
            ..ok.clone()
        };
        assert_eq!(
            check_policy("852", &us_only),
            Err(HangupReason::CountryNotAllowed)
        );
        assert_eq!(check_policy("1", &us_only), Ok(()));
        assert_eq!(
            check_policy(
                "1",
                &PolicyFacts {
                    blacklisted: true,
                    ..ok.clone()
                }
            ),
            Err(HangupReason::Blacklisted)
        );
        let limited = PolicyFacts {
            max_calls_per_callee_per_day: 2,
            callee_calls_today: 2,
            ..ok.clone()
        };
        assert_eq!(
            check_policy("1", &limited),
            Err(HangupReason::FrequencyLimit)
        );
        assert_eq!(
            check_policy(
                "1",
                &PolicyFacts {
                    callee_calls_today: 1,
                    ..limited
                }
            ),
            Ok(())
        );
        assert_eq!(calling_code("85221234567"), "852");
        assert_eq!(calling_code("12025550100"), "1");
    }

    #[test]
    fn callers_come_from_the_pool_or_must_be_owned() {
        let owned: Vec<String> = ["12025550170", "12025550179"].map(String::from).to_vec();
        let pool: Vec<String> = vec!["12025550170".into()];
        assert_eq!(pick_caller("", &owned, &pool, 3), Ok("12025550170".into()));
        assert_eq!(
            pick_caller("12025550179", &owned, &pool, 0),
            Ok("12025550179".into())
        );
        assert_eq!(
            pick_caller("19995550100", &owned, &pool, 0),
            Err(HangupReason::CallerNumberUnusable)
        );
        assert_eq!(
            pick_caller("", &owned, &[], 0),
            Err(HangupReason::CallerNumberUnusable)
        );
    }
}
