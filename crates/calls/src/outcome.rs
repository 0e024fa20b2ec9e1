//! What a carrier's final SIP answer to our INVITE means for the agent.

use seatline_protocol::HangupReason;

/// The reason code to report for a failed outbound call, if any. Busy,
/// decline, no answer and cancel are ordinary ends: code 5 with `sipCode`
/// only. The rest map onto the protocol's reason codes.
pub fn reason_for_sip(code: u16) -> Option<HangupReason> {
    match code {
        // The carrier will not carry our DID as the caller number.
        401 | 403 | 407 => Some(HangupReason::DidCallFailed),
        // The number does not exist or is incomplete.
        404 | 410 | 484 | 604 => Some(HangupReason::NumberInvalid),
        // No answer from the carrier at all, or it failed.
        408 | 500..=599 => Some(HangupReason::NetworkCarrier),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_rows_map_as_documented() {
        assert_eq!(reason_for_sip(403), Some(HangupReason::DidCallFailed));
        assert_eq!(reason_for_sip(404), Some(HangupReason::NumberInvalid));
        assert_eq!(reason_for_sip(503), Some(HangupReason::NetworkCarrier));
        assert_eq!(reason_for_sip(408), Some(HangupReason::NetworkCarrier));
        assert_eq!(reason_for_sip(486), None);
        assert_eq!(reason_for_sip(603), None);
        assert_eq!(reason_for_sip(487), None);
    }
}
