//! The sandbox carrier's behaviour (`spec/sandbox-carrier.md`): what a call
//! to each number of the US fictional range does.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// Send the caller's audio back.
    Echo,
    /// A steady 1 kHz tone.
    Tone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Ring for `ring`, answer with `media`, hang up after `hangup_after` if set.
    Answer {
        ring: Duration,
        media: Media,
        hangup_after: Option<Duration>,
    },
    /// Ring forever.
    RingForever,
    /// Refuse with this SIP status.
    Refuse(u16),
}

/// The DID the sandbox will not carry as a caller number.
pub const REJECTED_CALLER: &str = "12025550179";

/// The demo tenant's DIDs: 12025550170 to 12025550179.
pub fn demo_dids() -> Vec<String> {
    (170..=179).map(|n| format!("12025550{n}")).collect()
}

pub fn behaviour(caller: &str, callee: &str) -> Behaviour {
    if caller.trim_start_matches('+') == REJECTED_CALLER {
        return Behaviour::Refuse(403);
    }
    let s = Duration::from_secs;
    match callee.trim_start_matches('+') {
        "12025550100" => Behaviour::Answer {
            ring: s(1),
            media: Media::Echo,
            hangup_after: None,
        },
        "12025550101" => Behaviour::Answer {
            ring: Duration::ZERO,
            media: Media::Tone,
            hangup_after: None,
        },
        "12025550103" => Behaviour::Refuse(603),
        "12025550104" => Behaviour::Refuse(404),
        "12025550108" => Behaviour::RingForever,
        "12025550120" => Behaviour::Answer {
            ring: s(1),
            media: Media::Echo,
            hangup_after: Some(s(3)),
        },
        "12025550150" => Behaviour::Refuse(503),
        "12025550186" => Behaviour::Refuse(486),
        _ => Behaviour::Answer {
            ring: s(2),
            media: Media::Echo,
            hangup_after: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_of_the_spec() {
        assert!(matches!(
            behaviour("", "12025550100"),
            Behaviour::Answer {
                media: Media::Echo,
                hangup_after: None,
                ..
            }
        ));
        assert!(
            matches!(behaviour("", "12025550101"), Behaviour::Answer { media: Media::Tone, ring, .. } if ring.is_zero())
        );
        assert_eq!(behaviour("", "12025550103"), Behaviour::Refuse(603));
        assert_eq!(behaviour("", "12025550104"), Behaviour::Refuse(404));
        assert_eq!(behaviour("", "12025550108"), Behaviour::RingForever);
        assert!(
            matches!(behaviour("", "12025550120"), Behaviour::Answer { hangup_after: Some(d), .. } if d.as_secs() == 3)
        );
        assert_eq!(behaviour("", "12025550150"), Behaviour::Refuse(503));
        assert_eq!(behaviour("", "12025550186"), Behaviour::Refuse(486));
        assert!(
            matches!(behaviour("", "85221234567"), Behaviour::Answer { ring, .. } if ring.as_secs() == 2)
        );
        assert_eq!(
            behaviour("12025550179", "12025550100"),
            Behaviour::Refuse(403)
        );
        assert_eq!(demo_dids().len(), 10);
    }
}
