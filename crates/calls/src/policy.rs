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

/// The callee in E.164 digits (no `+`), or why it cannot be dialed (812).
pub fn check_callee(callee: &str, country_code: &str) -> Result<String, HangupReason> {
    let digits: String = callee.trim().trim_start_matches('+').to_string();
    if digits.is_empty() || digits.len() > 32 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HangupReason::NumberInvalid);
    }
    let parsed = phonenumber::parse(None, format!("+{digits}")).map_err(|_| HangupReason::NumberInvalid)?;
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
pub fn pick_caller(asked: &str, owned: &[String], pool: &[String], turn: usize) -> Result<String, HangupReason> {
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
    if c.order_id.chars().count() > 32 || c.caller.chars().count() > 32 || c.callee.chars().count() > 32 {
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
        for bad in ["", "abc", "123", "1202555010", "12025550100999999999999999999999999"] {
            assert_eq!(check_callee(bad, "1"), Err(HangupReason::NumberInvalid), "{bad}");
        }
        assert_eq!(check_callee("12025550100", "44"), Err(HangupReason::NumberInvalid));
    }

    #[test]
    fn callers_come_from_the_pool_or_must_be_owned() {
        let owned: Vec<String> = ["12025550170", "12025550179"].map(String::from).to_vec();
        let pool: Vec<String> = vec!["12025550170".into()];
        assert_eq!(pick_caller("", &owned, &pool, 3), Ok("12025550170".into()));
        assert_eq!(pick_caller("12025550179", &owned, &pool, 0), Ok("12025550179".into()));
        assert_eq!(pick_caller("19995550100", &owned, &pool, 0), Err(HangupReason::CallerNumberUnusable));
        assert_eq!(pick_caller("", &owned, &[], 0), Err(HangupReason::CallerNumberUnusable));
    }
}
