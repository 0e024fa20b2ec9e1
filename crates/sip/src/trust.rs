//! Which source addresses may send us SIP requests: the carrier trunks.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// One trusted source: an IP (any port), an IP:port, or a CIDR network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustedSource {
    Ip(IpAddr),
    Addr(SocketAddr),
    Net { net: IpAddr, prefix: u8 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an IP, IP:port or CIDR network: {0:?}")]
pub struct TrustParseError(pub String);

/// `::ffff:1.2.3.4` is 1.2.3.4: a dual-stack socket reports IPv4 peers so.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix.min(32)))
            };
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix.min(128)))
            };
            IpAddr::V6((bits & mask).into())
        }
    }
}

impl TrustedSource {
    /// `203.0.113.5`, `203.0.113.5:5060`, `[2001:db8::1]:5060`, `203.0.113.0/24`, `2001:db8::/32`.
    pub fn parse(s: &str) -> Result<TrustedSource, TrustParseError> {
        let s = s.trim();
        let err = || TrustParseError(s.to_string());
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(TrustedSource::Addr(SocketAddr::new(
                canonical(a.ip()),
                a.port(),
            )));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(TrustedSource::Ip(canonical(ip)));
        }
        let (ip, prefix) = s.split_once('/').ok_or_else(err)?;
        let ip: IpAddr = ip.parse().map_err(|_| err())?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let prefix: u8 = prefix.parse().map_err(|_| err())?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(err());
        }
        Ok(TrustedSource::Net {
            net: masked(ip, prefix),
            prefix,
        })
    }

    pub fn matches(&self, addr: SocketAddr) -> bool {
        let ip = canonical(addr.ip());
        match *self {
            TrustedSource::Ip(t) => canonical(t) == ip,
            TrustedSource::Addr(t) => canonical(t.ip()) == ip && t.port() == addr.port(),
            TrustedSource::Net { net, prefix } => {
                net.is_ipv4() == ip.is_ipv4() && masked(ip, prefix) == masked(net, prefix)
            }
        }
    }
}

impl fmt::Display for TrustedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustedSource::Ip(ip) => write!(f, "{ip}"),
            TrustedSource::Addr(a) => write!(f, "{a}"),
            TrustedSource::Net { net, prefix } => write!(f, "{net}/{prefix}"),
        }
    }
}

impl std::str::FromStr for TrustedSource {
    type Err = TrustParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TrustedSource::parse(s)
    }
}

/// Two socket addresses are the same peer (IPv4-mapped IPv6 counts as IPv4).
pub(crate) fn same_addr(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && canonical(a.ip()) == canonical(b.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_ips_addresses_and_networks() {
        let ip = TrustedSource::parse("203.0.113.5").unwrap();
        assert!(ip.matches(sa("203.0.113.5:5060")) && ip.matches(sa("203.0.113.5:1")));
        assert!(
            ip.matches(sa("[::ffff:203.0.113.5]:5060")),
            "IPv4-mapped IPv6 is the same host"
        );
        assert!(!ip.matches(sa("203.0.113.6:5060")));

        let a = TrustedSource::parse("203.0.113.5:5060").unwrap();
        assert!(a.matches(sa("203.0.113.5:5060")) && !a.matches(sa("203.0.113.5:5061")));

        let n = TrustedSource::parse("198.51.100.77/24").unwrap();
        assert_eq!(n.to_string(), "198.51.100.0/24");
        assert!(n.matches(sa("198.51.100.1:5060")) && n.matches(sa("198.51.100.255:9")));
        assert!(!n.matches(sa("198.51.101.1:5060")) && !n.matches(sa("[2001:db8::1]:5060")));

        let v6 = TrustedSource::parse("2001:db8::/32").unwrap();
        assert!(v6.matches(sa("[2001:db8:1::5]:5060")) && !v6.matches(sa("[2001:db9::5]:5060")));
        let v6a = TrustedSource::parse("[2001:db8::1]:5060").unwrap();
        assert!(v6a.matches(sa("[2001:db8::1]:5060")));
        assert!(TrustedSource::parse("0.0.0.0/0")
            .unwrap()
            .matches(sa("8.8.8.8:53")));

        for bad in [
            "",
            "host.example",
            "1.2.3.4/33",
            "1.2.3.4/",
            "1.2.3.4/+1",
            "::1/129",
            "1.2.3/8",
            "1.2.3.4:99999",
        ] {
            assert!(TrustedSource::parse(bad).is_err(), "{bad:?}");
        }
    }
}
