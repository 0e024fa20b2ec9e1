//! RFC 4733 telephone events (DTMF digits in RTP).

/// The event code of a DTMF digit.
pub fn event_of(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(12 + (digit as u8 - b'A')),
        _ => None,
    }
}

pub fn digit_of(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

/// One telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub event: u8,
    pub end: bool,
    pub volume: u8,
    pub duration: u16,
}

impl Event {
    pub fn parse(p: &[u8]) -> Option<Event> {
        if p.len() < 4 {
            return None;
        }
        Some(Event {
            event: p[0],
            end: p[1] & 0x80 != 0,
            volume: p[1] & 0x3f,
            duration: u16::from_be_bytes([p[2], p[3]]),
        })
    }

    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            ((self.end as u8) << 7) | (self.volume & 0x3f),
            d[0],
            d[1],
        ]
    }
}

/// The packets that send one digit: (marker, payload, rtp timestamp offset
/// is the same for all). 100 ms of tone in 20 ms steps, then the end packet
/// three times, as RFC 4733 §2.5.1.4 recommends.
pub fn digit_packets(digit: char) -> Vec<(bool, [u8; 4])> {
    let Some(event) = event_of(digit) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for i in 1..=5u16 {
        out.push((
            i == 1,
            Event {
                event,
                end: false,
                volume: 10,
                duration: 160 * i,
            }
            .to_bytes(),
        ));
    }
    for _ in 0..3 {
        out.push((
            false,
            Event {
                event,
                end: true,
                volume: 10,
                duration: 800,
            }
            .to_bytes(),
        ));
    }
    out
}

/// Turns received events into digits, once each: end packets come three
/// times and an event is known by its RTP timestamp.
#[derive(Debug, Default)]
pub struct DigitReceiver {
    last_end_ts: Option<u32>,
}

impl DigitReceiver {
    pub fn handle(&mut self, timestamp: u32, payload: &[u8]) -> Option<char> {
        let e = Event::parse(payload)?;
        if !e.end || self.last_end_ts == Some(timestamp) {
            return None;
        }
        self.last_end_ts = Some(timestamp);
        digit_of(e.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_survive_a_send_and_receive_once_each() {
        let mut rx = DigitReceiver::default();
        let mut got = String::new();
        for (i, d) in "159*#0".chars().enumerate() {
            for (_, p) in digit_packets(d) {
                if let Some(c) = rx.handle(1000 + i as u32 * 2000, &p) {
                    got.push(c);
                }
            }
        }
        assert_eq!(got, "159*#0");
        assert!(digit_packets('x').is_empty());
        assert_eq!(digit_of(16), None);
    }
}
