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
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A tenant's own trunks at most.
pub const MAX_PER_TENANT: usize = 16;

/// A carrier's addresses tried after its best one (SRV targets, or more
/// A/AAAA records), at most.
const MAX_MORE: usize = 3;

/// Trunk host names are looked up again when their DNS answers expire,
/// but not more often than this (a zone may answer with a TTL of 0).
const MIN_REFRESH: Duration = Duration::from_secs(5);

/// A name that does not resolve when its answer expired keeps its last
/// addresses and is tried again after this.
const RETRY_REFRESH: Duration = Duration::from_secs(30);

/// When the installed trunks' DNS answers expire, and what was installed
/// (a look-up that changes nothing installs nothing).
#[derive(Default)]
pub struct DnsRefresh {
    due: Mutex<Option<Instant>>,
    installed: Mutex<Vec<TrunkSetup>>,
    /// The tenants' own trunks as last installed (kept for a name that
    /// does not resolve on a refresh).
    own: Mutex<Vec<Resolved>>,
    wake: tokio::sync::Notify,
}

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
    /// When its DNS answer expires (`None`: an IP literal, no DNS).
    pub valid_until: Option<Instant>,
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
        valid_until: found.valid_until,
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
    let shared = app
        .shared_trunks
        .read()
        .map(|s| s.clone())
        .unwrap_or_default();
    let all: Vec<&Resolved> = shared.iter().chain(&own).collect();
    let setups: Vec<TrunkSetup> = all.iter().flat_map(|r| r.setups()).collect();
    let now = Instant::now();
    remember(app, &all, &own, now);
    if let Ok(mut i) = app.trunk_dns.installed.lock() {
        i.clone_from(&setups);
    }
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
    app.hub.set_trunks(setups, now);
}

/// Notes when the next DNS answer of `all` expires (not sooner than
/// [`MIN_REFRESH`]) and the tenants' `own` trunks, and wakes the refresh
/// task to look.
fn remember(app: &App, all: &[&Resolved], own: &[Resolved], now: Instant) {
    let due = all
        .iter()
        .filter_map(|r| r.valid_until)
        .min()
        .map(|t| t.max(now + MIN_REFRESH));
    if let Ok(mut d) = app.trunk_dns.due.lock() {
        *d = due;
    }
    if let Ok(mut o) = app.trunk_dns.own.lock() {
        o.clear();
        o.extend(own.iter().cloned());
    }
    app.trunk_dns.wake.notify_one();
}

/// Looks every trunk's host up again (the configuration's and the
/// tenants'), keeping the last addresses of a name that does not resolve
/// now, and installs the result if it changed.
pub async fn refresh(app: &App) {
    let _one = app.trunk_changes.lock().await;
    let retry = Instant::now() + RETRY_REFRESH;
    let keep = |mut old: Resolved| {
        old.valid_until = Some(retry);
        old
    };
    if !app.cfg.trunks.is_empty() {
        let old = app
            .shared_trunks
            .read()
            .map(|s| s.clone())
            .unwrap_or_default();
        let mut fresh = Vec::with_capacity(old.len());
        for (t, old) in app.cfg.trunks.iter().zip(old) {
            match resolve(t, None, &app.dns).await {
                Ok(r) => fresh.push(r),
                Err(e) => {
                    tracing::warn!("{e}; its last addresses stay");
                    fresh.push(keep(old));
                }
            }
        }
        if let Ok(mut s) = app.shared_trunks.write() {
            *s = fresh;
        }
    }
    let old_own = app
        .trunk_dns
        .own
        .lock()
        .map(|o| o.clone())
        .unwrap_or_default();
    let stored = match app.store.all_trunks().await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot read the tenants' trunks: {e}");
            if let Ok(mut d) = app.trunk_dns.due.lock() {
                *d = Some(retry);
            }
            return;
        }
    };
    let mut own = Vec::with_capacity(stored.len());
    for t in stored {
        let resolved = match parse_stored(&t) {
            Ok(c) => resolve(&c, Some(t.tenant_id), &app.dns).await,
            Err(e) => Err(e),
        };
        match resolved {
            Ok(r) => own.push(r),
            Err(e) => {
                let last = old_own.iter().find(|r| {
                    r.setup.trunk.tenant_id == Some(t.tenant_id) && r.setup.trunk.name == t.name
                });
                match last {
                    Some(r) => {
                        tracing::warn!(tenant = t.tenant_id, "{e}; its last addresses stay");
                        own.push(keep(r.clone()));
                    }
                    None => tracing::error!(tenant = t.tenant_id, "trunk left out: {e}"),
                }
            }
        }
    }
    // The same addresses as installed: nothing to tell anyone.
    let shared = app
        .shared_trunks
        .read()
        .map(|s| s.clone())
        .unwrap_or_default();
    let all: Vec<&Resolved> = shared.iter().chain(&own).collect();
    let setups: Vec<TrunkSetup> = all.iter().flat_map(|r| r.setups()).collect();
    let same = app
        .trunk_dns
        .installed
        .lock()
        .map(|i| *i == setups)
        .unwrap_or(false);
    if same {
        remember(app, &all, &own, Instant::now());
        return;
    }
    tracing::info!("a trunk's DNS answer changed: the trunks are installed again");
    install(app, own);
}

/// Looks the trunks' host names up again each time their DNS answers
/// expire (not more often than every 5 s); trunks given as IP addresses
/// are never looked up.
pub fn spawn_refresh(app: App) {
    tokio::spawn(async move {
        loop {
            let due = app.trunk_dns.due.lock().ok().and_then(|d| *d);
            match due {
                Some(t) if t <= Instant::now() => refresh(&app).await,
                Some(t) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(t.into()) => {}
                        _ = app.trunk_dns.wake.notified() => {}
                    }
                }
                None => app.trunk_dns.wake.notified().await,
            }
        }
    });
}
