//! Symmetric RTP: send media back to where the far end's media really comes
//! from (behind NAT the port is often not the negotiated one), but only
//! once a packet from the negotiated IP has shown it.

use std::net::{IpAddr, SocketAddr};

/// Where to send one stream, and which senders to believe.
#[derive(Debug, Clone)]
pub struct Latch {
    negotiated: SocketAddr,
    latched: Option<SocketAddr>,
    dropped: u64,
}

impl Latch {
    /// A latch for media negotiated to `negotiated` (from the SDP), not yet latched.
    pub fn new(negotiated: SocketAddr) -> Self {
        Self {
            negotiated,
            latched: None,
            dropped: 0,
        }
    }

    /// Whether to take a packet from `from`. Before latching, only a packet
    /// from the negotiated IP (any port) is taken, and the latch then holds
    /// that exact IP and port; after, only that address is taken. IPv4 and
    /// IPv4-mapped IPv6 forms of one address count as equal.
    pub fn accept(&mut self, from: SocketAddr) -> bool {
        let ok = match self.latched {
            Some(l) => same_ip(l.ip(), from.ip()) && l.port() == from.port(),
            None => {
                let ok = same_ip(self.negotiated.ip(), from.ip());
                if ok {
                    self.latched = Some(from);
                }
                ok
            }
        };
        if !ok {
            self.dropped += 1;
        }
        ok
    }

    /// Whether [`Latch::accept`] would take a packet from `from`, changing
    /// nothing: for a packet that must pass another check (SRTP's tag)
    /// before it may latch.
    pub fn allows(&self, from: SocketAddr) -> bool {
        match self.latched {
            Some(l) => same_ip(l.ip(), from.ip()) && l.port() == from.port(),
            None => same_ip(self.negotiated.ip(), from.ip()),
        }
    }

    /// Where to send: the latched address, else the negotiated one.
    pub fn target(&self) -> SocketAddr {
        self.latched.unwrap_or(self.negotiated)
    }

    /// Whether a packet has latched the address yet.
    pub fn is_latched(&self) -> bool {
        self.latched.is_some()
    }

    /// The media moved (a re-INVITE): use `addr` and latch afresh.
    pub fn set_negotiated(&mut self, addr: SocketAddr) {
        self.negotiated = addr;
        self.latched = None;
    }

    /// How many packets [`Latch::accept`] refused.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn latches_to_the_first_packet_from_the_negotiated_ip() {
        let mut l = Latch::new(a("203.0.113.5:4000"));
        assert_eq!(l.target(), a("203.0.113.5:4000"));
        assert!(!l.is_latched());
        // A stranger cannot latch.
        assert!(!l.accept(a("198.51.100.9:4000")));
        assert_eq!(l.target(), a("203.0.113.5:4000"));
        // The negotiated IP from another port (NAT) latches.
        assert!(l.accept(a("203.0.113.5:61000")));
        assert!(l.is_latched());
        assert_eq!(l.target(), a("203.0.113.5:61000"));
        assert!(l.accept(a("203.0.113.5:61000")));
        // Once latched, the same IP on another port is refused, even the
        // negotiated port, and so is the stranger.
        assert!(!l.accept(a("203.0.113.5:4000")));
        assert!(!l.accept(a("203.0.113.5:61001")));
        assert!(!l.accept(a("198.51.100.9:61000")));
        assert_eq!(l.target(), a("203.0.113.5:61000"));
        assert_eq!(l.dropped(), 4);
    }

    #[test]
    fn a_reinvite_unlatches() {
        let mut l = Latch::new(a("203.0.113.5:4000"));
        assert!(l.accept(a("203.0.113.5:4000")));
        l.set_negotiated(a("192.0.2.7:5000"));
        assert!(!l.is_latched());
        assert_eq!(l.target(), a("192.0.2.7:5000"));
        // The old address is no longer believed.
        assert!(!l.accept(a("203.0.113.5:4000")));
        assert!(l.accept(a("192.0.2.7:5002")));
        assert_eq!(l.target(), a("192.0.2.7:5002"));
        assert_eq!(l.dropped(), 1);
    }

    #[test]
    fn mapped_ipv6_and_ipv6_addresses() {
        let mut l = Latch::new(a("203.0.113.5:4000"));
        // A dual-stack socket reports IPv4 senders in the mapped form.
        assert!(l.accept(a("[::ffff:203.0.113.5]:4001")));
        assert_eq!(l.target(), a("[::ffff:203.0.113.5]:4001"));
        assert!(l.accept(a("203.0.113.5:4001")));
        assert!(!l.accept(a("[::ffff:203.0.113.6]:4001")));
        assert_eq!(l.dropped(), 1);
        let mut l = Latch::new(a("[2001:db8::1]:4000"));
        assert!(!l.accept(a("[2001:db8::2]:4000")));
        assert!(l.accept(a("[2001:db8::1]:4444")));
        assert_eq!(l.target(), a("[2001:db8::1]:4444"));
        assert_eq!(l.dropped(), 1);
    }

    #[test]
    fn allows_answers_like_accept_and_changes_nothing() {
        let mut l = Latch::new(a("10.0.0.1:4000"));
        assert!(l.allows(a("10.0.0.1:4002")));
        assert!(!l.allows(a("10.0.0.2:4000")));
        assert!(!l.is_latched() && l.dropped() == 0);
        assert!(l.accept(a("10.0.0.1:4002")));
        assert!(!l.allows(a("10.0.0.1:4000")));
        assert!(l.allows(a("10.0.0.1:4002")));
    }
}
