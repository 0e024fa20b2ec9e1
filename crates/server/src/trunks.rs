//! The trunks at run time. The configuration file's trunks (or the sandbox
//! carrier) are shared by every tenant; a tenant admin adds the tenant's own
//! through the API (`/api/v1/admin/trunks/{name}`), stored in the database.
//! Any change resolves every stored trunk again and hands the whole list to
//! the switchboard, which keeps what did not change (calls, health,
//! registrations) and tells the user agent the rest.

use crate::config::{self, TrunkConfig};
use crate::{sip_stream, App};
use seatline_store::StoredTrunk;
use seatline_switchboard::{Trunk, TrunkSetup};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A tenant's own trunks at most.
pub const MAX_PER_TENANT: usize = 16;

/// A carrier's addresses tried after its best one (SRV targets, or more
/// A/AAAA records), at most.
const MAX_MORE: usize = 3;

/// A trunk ready for the switchboard, and how to connect to it.
#[derive(Clone)]
pub struct Resolved {
    pub setup: TrunkSetup,
    /// TCP or TLS: how to connect.
    pub dial: Option<sip_stream::Dial>,
    /// The carrier's next addresses, best first (the setup's peer is its
    /// best): a call that fails on one for a carrier-side reason is tried
    /// on the next, as on the next trunk.
    pub more: Vec<SocketAddr>,
}

impl Resolved {
    /// One setup per address, best first: the switchboard fails a call
    /// over from each to the next (a registering trunk has one address).
    pub fn setups(&self) -> Vec<TrunkSetup> {
        let mut out = vec![self.setup.clone()];
        for peer in &self.more {
            let mut s = self.setup.clone();
            s.trunk.peer = *peer;
            out.push(s);
        }
        out
    }
}

/// Resolves a trunk's host (RFC 3263 without NAPTR: SRV for a name with no
/// port, see [`crate::dns`]) and reads its trust list. The best address is
/// the trunk's peer; by default every address found may send us calls.
pub async fn resolve(
    t: &TrunkConfig,
    tenant_id: Option<i64>,
    dns: &crate::dns::Dns,
) -> anyhow::Result<Resolved> {
    let uri = t.uri_parts()?;
    let host = uri.host.clone();
    let service = match t.transport {
        _ if uri.sips => crate::dns::Service::Tls,
        config::Transport::Udp => crate::dns::Service::Udp,
        config::Transport::Tcp => crate::dns::Service::Tcp,
        config::Transport::Tls => crate::dns::Service::Tls,
    };
    let found = dns
        .resolve(&host, uri.port, uri.default_port, service)
        .await
        .map_err(|e| anyhow::anyhow!("trunk {:?}: {e}", t.name))?;
    let peer = found.addrs[0];
    // A registering trunk stays with the one server its registration is
    // bound at.
    let more: Vec<SocketAddr> = found.addrs[1..]
        .iter()
        .copied()
        .filter(|a| *a != peer && !t.register)
        .take(MAX_MORE)
        .collect();
    if found.addrs.len() > 1 || found.srv {
        tracing::info!(trunk = %t.name, srv = found.srv, addresses = ?found.addrs, "trunk host resolved; calls go to the first, then the next");
    }
    let trusted = if t.inbound_from.is_empty() {
        match t.transport {
            config::Transport::Udp => found
                .addrs
                .iter()
                .map(|a| seatline_sip::TrustedSource::Addr(*a))
                .collect(),
            // A carrier's own connections to us come from any port of its IP.
            _ => found
                .addrs
                .iter()
                .map(|a| seatline_sip::TrustedSource::Ip(a.ip()))
                .collect(),
        }
    } else {
        t.inbound_from
            .iter()
            .map(|s| seatline_sip::TrustedSource::parse(s))
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("trunk {:?}: inbound_from: {e}", t.name))?
    };
    let credentials = match (&t.username, &t.password) {
        (Some(u), Some(p)) => Some(seatline_sip::Credentials {
            username: u.clone(),
            password: p.clone(),
        }),
        _ => None,
    };
    let registration = match (&credentials, t.register) {
        (Some(c), true) => {
            let bracketed = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            };
            let domain = t.domain.clone().unwrap_or(bracketed);
            Some((c.username.clone(), domain, t.register_expires_secs))
        }
        _ => None,
    };
    let (transport, dial) = match t.transport {
        config::Transport::Udp => (seatline_sip::Transport::Udp, None),
        config::Transport::Tcp => (seatline_sip::Transport::Tcp, Some(sip_stream::Dial::Tcp)),
        config::Transport::Tls => (
            seatline_sip::Transport::Tls,
            Some(sip_stream::Dial::Tls {
                config: sip_stream::tls_client(t.tls_ca.as_deref())?,
                name: rustls_pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| anyhow::anyhow!("trunk {:?}: {host}: {e}", t.name))?,
            }),
        ),
    };
    Ok(Resolved {
        setup: TrunkSetup {
            trunk: Trunk {
                name: t.name.clone(),
                tenant_id,
                peer,
                keepalive: (t.keepalive_secs > 0).then(|| Duration::from_secs(t.keepalive_secs)),
                register: t.register,
                numbers: seatline_calls::numbers::NumberRules {
                    strip: t.strip_prefix.clone(),
                    prefix: t.add_prefix.clone(),
                    did_strip: t.did_strip_prefix.clone(),
                    did_prefix: t.did_add_prefix.clone(),
                    caller: match t.caller_format {
                        config::CallerFormat::E164 => seatline_calls::numbers::CallerFormat::E164,
                        config::CallerFormat::Plus => seatline_calls::numbers::CallerFormat::Plus,
                        config::CallerFormat::National => {
                            seatline_calls::numbers::CallerFormat::National
                        }
                    },
                },
                srtp: match t.srtp {
                    config::SrtpMode::Off => seatline_switchboard::Srtp::Off,
                    config::SrtpMode::Sdes => seatline_switchboard::Srtp::Sdes,
                },
            },
            transport,
            trusted,
            credentials,
            registration,
        },
        dial,
        more,
    })
}

/// A stored trunk's settings back as a trunk.
pub fn parse_stored(t: &StoredTrunk) -> anyhow::Result<TrunkConfig> {
    let c: TrunkConfig = serde_json::from_str(&t.settings)
        .map_err(|e| anyhow::anyhow!("trunk {:?}: stored settings unreadable: {e}", t.name))?;
    c.validate()?;
    Ok(c)
}

/// Every tenant's stored trunks, resolved; one that cannot be read or
/// resolved is left out and logged (the others still carry calls).
pub async fn resolve_stored(app: &App) -> anyhow::Result<Vec<Resolved>> {
    let mut out = Vec::new();
    for t in app.store.all_trunks().await? {
        let resolved = match parse_stored(&t) {
            Ok(c) => resolve(&c, Some(t.tenant_id), &app.dns).await,
            Err(e) => Err(e),
        };
        match resolved {
            Ok(r) => out.push(r),
            Err(e) => tracing::error!(tenant = t.tenant_id, "trunk left out: {e}"),
        }
    }
    Ok(out)
}

/// Gives the switchboard and the connections the shared trunks and the
/// tenants' `own` ones.
pub fn install(app: &App, own: Vec<Resolved>) {
    let all: Vec<&Resolved> = app.shared_trunks.iter().chain(&own).collect();
    let dials: HashMap<SocketAddr, sip_stream::Dial> = all
        .iter()
        .filter_map(|r| r.dial.clone().map(|d| (r, d)))
        .flat_map(|(r, d)| {
            std::iter::once(r.setup.trunk.peer)
                .chain(r.more.iter().copied())
                .map(move |peer| (peer, d.clone()))
        })
        .collect();
    app.streams.set_dials(dials);
    for r in &all {
        let t = &r.setup.trunk;
        tracing::info!(
            trunk = %t.name,
            tenant = ?t.tenant_id,
            peer = %t.peer,
            digest = r.setup.credentials.is_some(),
            register = t.register,
            more = ?r.more,
            "trunk"
        );
    }
    app.hub.set_trunks(
        all.into_iter().flat_map(Resolved::setups).collect(),
        Instant::now(),
    );
}
