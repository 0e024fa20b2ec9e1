//! Where a trunk's carrier is: RFC 3263's steps for a SIP URI, without
//! NAPTR. A host name with no port is looked up with SRV first
//! (`_sip._udp`, `_sip._tcp` or `_sips._tcp` by the trunk's transport), the
//! targets put in RFC 2782 order and each resolved to its addresses; with no
//! SRV record, the host's own A/AAAA on the default port. A port in the URI
//! or an IP literal skips SRV: the operator said where to send.
//!
//! Owns: the resolver (hickory, built once per server and only when a name
//! needs it, so a server whose trunks are all IP literals never reads
//! `/etc/resolv.conf`), and the SRV ordering, a pure function tested
//! without a network.
//!
//! Must never: trust what a DNS server sends beyond the bounds below (it is
//! input from the network like any other).

use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use rand::Rng;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// SRV records looked at for one name: a carrier has a handful; a zone
/// that lists hundreds must not make start-up resolve them all.
const MAX_SRV_RECORDS: usize = 16;
/// Addresses kept for one trunk, over all its targets.
const MAX_ADDRESSES: usize = 16;

/// Why a carrier's address could not be found.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// Neither `/etc/resolv.conf` nor `sip.dns_servers` gave a server.
    #[error("no DNS resolver: {0}")]
    Resolver(String),
    /// The lookup failed: no such name, no answer, a server that failed.
    #[error("cannot resolve {name}: {reason}")]
    Lookup { name: String, reason: String },
    /// The domain's SRV records say it offers no SIP service (target ".").
    #[error("{0} has SRV records that say it offers no SIP service here")]
    NoService(String),
    /// A name with no address.
    #[error("{0} has no address")]
    NoAddress(String),
    /// SRV records whose targets all failed to resolve.
    #[error("no SRV target of {0} has an address")]
    NoTarget(String),
}

/// The SRV service of a trunk's transport (RFC 3263 4.1: `sips:` is TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Udp,
    Tcp,
    Tls,
}

impl Service {
    fn prefix(self) -> &'static str {
        match self {
            Service::Udp => "_sip._udp",
            Service::Tcp => "_sip._tcp",
            Service::Tls => "_sips._tcp",
        }
    }
}

/// One SRV record, as the ordering needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// Where a carrier is: its addresses, best first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Best first: SRV order, then each target's addresses in the order
    /// the resolver gave them (IPv4 before IPv6). Never empty.
    pub addrs: Vec<SocketAddr>,
    /// Found through SRV records (else an IP literal or the host's A/AAAA).
    pub srv: bool,
    /// When the shortest TTL of the answers ends; `None` for an IP literal.
    pub valid_until: Option<Instant>,
}

/// What to look up for `host` with `port` (the URI's, if it gave one):
/// the RFC 3263 decision, without the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// An IP literal: no DNS.
    Literal(SocketAddr),
    /// A name with a port: its A/AAAA, on that port.
    Host { name: String, port: u16 },
    /// A name without a port: SRV at `srv`, else the host's A/AAAA on
    /// `default_port`.
    Srv {
        srv: String,
        name: String,
        default_port: u16,
    },
}

/// Decides what `host` (without brackets) needs.
pub fn plan(host: &str, port: Option<u16>, default_port: u16, service: Service) -> Plan {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Plan::Literal(SocketAddr::new(ip, port.unwrap_or(default_port)));
    }
    match port {
        Some(port) => Plan::Host {
            name: host.to_string(),
            port,
        },
        None => Plan::Srv {
            srv: format!("{}.{}", service.prefix(), host.trim_end_matches('.')),
            name: host.to_string(),
            default_port,
        },
    }
}

/// Puts SRV records in the order to try them (RFC 2782): lowest priority
/// first; within a priority, each next one drawn at random with a chance
/// proportional to its weight (weight 0 only rarely first, when others
/// weigh more).
pub fn order_srv(mut records: Vec<SrvRecord>, rng: &mut impl Rng) -> Vec<SrvRecord> {
    records.sort_by_key(|r| r.priority);
    let mut out = Vec::with_capacity(records.len());
    let mut rest = records.as_slice();
    while let Some(first) = rest.first() {
        let same = rest.iter().take_while(|r| r.priority == first.priority);
        let mut group: Vec<SrvRecord> = same.cloned().collect();
        rest = &rest[group.len()..];
        // RFC 2782: the weight-0 ones at the start, then running sums; the
        // first whose running sum reaches a number drawn in 0..=total.
        group.sort_by_key(|r| r.weight != 0);
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            let pick = rng.gen_range(0..=total);
            let mut sum = 0;
            let i = group
                .iter()
                .position(|r| {
                    sum += u32::from(r.weight);
                    sum >= pick
                })
                .unwrap_or(0);
            out.push(group.remove(i));
        }
    }
    out
}

/// The resolver of one server: `sip.dns_servers`, or the system's.
#[derive(Clone)]
pub struct Dns {
    servers: Vec<SocketAddr>,
    resolver: Arc<OnceLock<Result<TokioResolver, String>>>,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns")
            .field("servers", &self.servers)
            .finish()
    }
}

impl Dns {
    /// A resolver asking `servers` (UDP, then TCP for a truncated answer);
    /// none: the ones in `/etc/resolv.conf`.
    pub fn new(servers: Vec<SocketAddr>) -> Self {
        Self {
            servers,
            resolver: Arc::default(),
        }
    }

    fn resolver(&self) -> Result<&TokioResolver, DnsError> {
        let built = self.resolver.get_or_init(|| {
            let mut builder = if self.servers.is_empty() {
                TokioResolver::builder_tokio()
                    .map_err(|e| format!("cannot read /etc/resolv.conf: {e}"))?
            } else {
                let servers = self.servers.iter().map(|s| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = s.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = s.port();
                    NameServerConfig::new(s.ip(), true, vec![udp, tcp])
                });
                let mut builder = TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(servers.collect()),
                    TokioRuntimeProvider::default(),
                );
                *builder.options_mut() = ResolverOpts::default();
                builder
            };
            // Our SIP socket is most often IPv4: its addresses first.
            builder.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
            builder.build().map_err(|e| e.to_string())
        });
        built.as_ref().map_err(|e| DnsError::Resolver(e.clone()))
    }

    /// The carrier's addresses for `host` (no brackets) and the URI's
    /// `port`, if it gave one.
    pub async fn resolve(
        &self,
        host: &str,
        port: Option<u16>,
        default_port: u16,
        service: Service,
    ) -> Result<Resolved, DnsError> {
        let (srv, name, default_port) = match plan(host, port, default_port, service) {
            Plan::Literal(addr) => {
                return Ok(Resolved {
                    addrs: vec![addr],
                    srv: false,
                    valid_until: None,
                })
            }
            Plan::Host { name, port } => {
                let (addrs, until) = self.addresses(&name, port).await?;
                return Ok(Resolved {
                    addrs,
                    srv: false,
                    valid_until: Some(until),
                });
            }
            Plan::Srv {
                srv,
                name,
                default_port,
            } => (srv, name, default_port),
        };
        let resolver = self.resolver()?;
        let lookup = match resolver.srv_lookup(srv.as_str()).await {
            Ok(lookup) => lookup,
            // No SRV record (or no such name): the host itself (RFC 3263 4.2).
            Err(e) if e.is_no_records_found() => {
                let (addrs, until) = self.addresses(&name, default_port).await?;
                return Ok(Resolved {
                    addrs,
                    srv: false,
                    valid_until: Some(until),
                });
            }
            Err(e) => {
                return Err(DnsError::Lookup {
                    name: srv,
                    reason: e.to_string(),
                })
            }
        };
        let mut valid_until = lookup.valid_until();
        let records: Vec<SrvRecord> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(s) => Some(SrvRecord {
                    priority: s.priority,
                    weight: s.weight,
                    port: s.port,
                    target: s.target.to_ascii(),
                }),
                _ => None,
            })
            .take(MAX_SRV_RECORDS)
            .collect();
        // RFC 2782: a lone target "." means the service is decidedly absent.
        if let [only] = records.as_slice() {
            if only.target == "." {
                return Err(DnsError::NoService(name));
            }
        }
        let ordered = order_srv(records, &mut rand::thread_rng());
        let mut addrs = Vec::new();
        for r in ordered {
            if r.port == 0 || r.target == "." || addrs.len() >= MAX_ADDRESSES {
                continue;
            }
            // A target that does not resolve is skipped; the others remain.
            match self.addresses(&r.target, r.port).await {
                Ok((found, until)) => {
                    valid_until = valid_until.min(until);
                    for a in found {
                        if addrs.len() < MAX_ADDRESSES && !addrs.contains(&a) {
                            addrs.push(a);
                        }
                    }
                }
                Err(e) => tracing::warn!("SRV target of {srv} skipped: {e}"),
            }
        }
        if addrs.is_empty() {
            return Err(DnsError::NoTarget(srv));
        }
        Ok(Resolved {
            addrs,
            srv: true,
            valid_until: Some(valid_until),
        })
    }

    /// The A/AAAA addresses of `name`, on `port`.
    async fn addresses(
        &self,
        name: &str,
        port: u16,
    ) -> Result<(Vec<SocketAddr>, Instant), DnsError> {
        let lookup = self
            .resolver()?
            .lookup_ip(name)
            .await
            .map_err(|e| DnsError::Lookup {
                name: name.to_string(),
                reason: e.to_string(),
            })?;
        let addrs: Vec<SocketAddr> = lookup
            .iter()
            .take(MAX_ADDRESSES)
            .map(|ip| SocketAddr::new(ip, port))
            .collect();
        if addrs.is_empty() {
            return Err(DnsError::NoAddress(name.to_string()));
        }
        Ok((addrs, lookup.valid_until()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn srv(priority: u16, weight: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port: 5060,
            target: target.into(),
        }
    }

    fn targets(records: &[SrvRecord]) -> Vec<&str> {
        records.iter().map(|r| r.target.as_str()).collect()
    }

    #[test]
    fn a_name_without_a_port_is_looked_up_with_srv_of_its_transport() {
        assert_eq!(
            plan("carrier.test", None, 5060, Service::Udp),
            Plan::Srv {
                srv: "_sip._udp.carrier.test".into(),
                name: "carrier.test".into(),
                default_port: 5060
            }
        );
        let tcp = plan("carrier.test.", None, 5060, Service::Tcp);
        assert!(matches!(tcp, Plan::Srv { srv, .. } if srv == "_sip._tcp.carrier.test"));
        let tls = plan("carrier.test", None, 5061, Service::Tls);
        assert!(matches!(tls, Plan::Srv { srv, .. } if srv == "_sips._tcp.carrier.test"));
    }

    #[test]
    fn a_port_or_an_ip_literal_means_no_srv() {
        assert_eq!(
            plan("carrier.test", Some(5080), 5060, Service::Udp),
            Plan::Host {
                name: "carrier.test".into(),
                port: 5080
            }
        );
        assert_eq!(
            plan("203.0.113.7", None, 5060, Service::Udp),
            Plan::Literal("203.0.113.7:5060".parse().unwrap())
        );
        assert_eq!(
            plan("::1", Some(5070), 5061, Service::Tls),
            Plan::Literal("[::1]:5070".parse().unwrap())
        );
    }

    #[test]
    fn lower_priority_goes_first_whatever_the_weights() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..200 {
            let got = order_srv(
                vec![
                    srv(20, 65535, "c"),
                    srv(10, 0, "a"),
                    srv(30, 1, "d"),
                    srv(10, 0, "b"),
                ],
                &mut rng,
            );
            let got = targets(&got);
            assert!(got[..2] == ["a", "b"] || got[..2] == ["b", "a"], "{got:?}");
            assert_eq!(got[2..], ["c", "d"]);
        }
    }

    #[test]
    fn within_a_priority_weights_share_the_first_place() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut heavy_first = 0;
        let runs = 10_000;
        for _ in 0..runs {
            let got = order_srv(vec![srv(1, 100, "light"), srv(1, 300, "heavy")], &mut rng);
            assert_eq!(got.len(), 2, "every record kept once");
            if got[0].target == "heavy" {
                heavy_first += 1;
            }
        }
        // 3 : 1: 300 of the 401 numbers RFC 2782 draws from (0 to the sum,
        // both included).
        let share = f64::from(heavy_first) / f64::from(runs);
        assert!((0.72..0.78).contains(&share), "heavy first {share}");
    }

    #[test]
    fn weight_zero_is_rarely_first_beside_weighted_records() {
        let mut rng = StdRng::seed_from_u64(3);
        let zero_first = (0..10_000)
            .filter(|_| {
                order_srv(vec![srv(1, 100, "w"), srv(1, 0, "z")], &mut rng)[0].target == "z"
            })
            .count();
        // Only a draw of exactly 0 picks it: about 1 in 101.
        assert!((30..200).contains(&zero_first), "{zero_first}");
    }

    #[test]
    fn no_records_give_no_order() {
        assert!(order_srv(Vec::new(), &mut StdRng::seed_from_u64(0)).is_empty());
    }
}
