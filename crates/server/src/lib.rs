//! The `seatline` server: one binary that serves the softphone, the demo CRM
//! page, the REST API and the softphone's WebSocket, on top of the store and
//! the agent state machine.
//!
//! Owns: sockets, timers and tasks (the thin async shell around the sans-IO
//! cores), and the HTTP surface.
//!
//! Must never: put a password or token in a log line, or answer bad input
//! with a panic.

mod admin;
pub mod calls;
pub mod config;
pub mod errors;
pub mod http;
pub mod hub;
pub mod media;
mod memory;
pub mod metrics;
pub mod sandbox;
mod signin;
pub mod sip_stream;
mod ws;

use config::Config;
use hub::Hub;
use seatline_store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub struct AppState {
    pub store: Store,
    pub hub: Hub,
    pub cfg: Config,
    pub calls: calls::Calls,
    pub media: media::MediaHandle,
    /// The sandbox carrier, when no real trunk is configured.
    pub sandbox: Option<sandbox::Sandbox>,
    /// SIP connections (TCP and TLS trunks, carriers connected to us).
    pub streams: Arc<sip_stream::Streams>,
}

pub type App = Arc<AppState>;

/// A started server: its address and the task serving it.
pub struct Running {
    pub addr: SocketAddr,
    pub app: App,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Opens the store, seeds the demo when asked, binds, and serves in the background.
pub async fn start(cfg: Config) -> anyhow::Result<Running> {
    cfg.validate()?;
    raise_fd_limit();
    let store = Store::open_dir(&cfg.data_dir).await?;
    if cfg.demo.seed && store.seed_demo().await? {
        tracing::info!("seeded the demo tenant");
    }
    let listener = TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    let (trunks, sandbox) = if cfg.trunks.is_empty() {
        let sb = sandbox::start(cfg.sandbox.listen).await?;
        tracing::info!("sandbox carrier on {}", sb.addr);
        let trunk = ResolvedTrunk {
            trunk: seatline_switchboard::Trunk {
                name: "sandbox".into(),
                peer: sb.addr,
                keepalive: None,
                register: false,
                numbers: Default::default(),
            },
            trusted: vec![seatline_sip::TrustedSource::Addr(sb.addr)],
            credentials: None,
            register: None,
            dial: None,
        };
        (vec![trunk], Some(sb))
    } else {
        let mut list = Vec::new();
        for t in &cfg.trunks {
            list.push(resolve_trunk(t).await?);
        }
        (list, None)
    };
    let (media, mut notes) =
        media::start(cfg.media.listen, cfg.media.public_ip, cfg.media.workers).await?;
    let sip = calls::bind_sip(cfg.sip.listen).await?;
    tracing::info!("SIP on udp {}", sip.addr);

    // The switchboard: SIP that trusts only the trunks, and the rules' numbers.
    let seed: u64 = rand::random();
    let mut ua =
        seatline_sip::UserAgent::with_seed(sip.addr, seatline_sip::Timers::default(), seed);
    // Only the trunks (or the sandbox carrier) may send us requests.
    ua.set_trusted(trunks.iter().flat_map(|t| t.trusted.clone()).collect());
    let mut dial = std::collections::HashMap::new();
    for t in &trunks {
        if let Some(d) = &t.dial {
            dial.insert(t.trunk.peer, d.clone());
        }
    }
    let streams = Arc::new(sip_stream::Streams::new(dial));
    for (peer, transport) in streams.trunk_transports() {
        ua.set_transport(peer, transport);
    }
    for t in &trunks {
        tracing::info!(trunk = %t.trunk.name, peer = %t.trunk.peer, digest = t.credentials.is_some(), register = t.trunk.register, "trunk");
        if let Some(c) = &t.credentials {
            ua.set_credentials(t.trunk.peer, c.clone());
        }
        if let (Some((domain, expires)), Some(c)) = (&t.register, &t.credentials) {
            ua.register(t.trunk.peer, &c.username, domain, *expires, Instant::now());
        }
    }
    let mut settings =
        seatline_switchboard::Settings::with_trunks(trunks.into_iter().map(|t| t.trunk).collect());
    settings.no_tab_grace = Duration::from_secs(cfg.calls.no_tab_grace_secs);
    settings.rtp_timeout = Duration::from_secs(cfg.calls.rtp_timeout_secs.max(1));
    settings.ring_timeout = Duration::from_secs(cfg.calls.ring_timeout_secs.max(1));
    settings.refusals_per_minute = cfg.calls.refusals_per_minute;
    let sb = seatline_switchboard::Switchboard::new(
        settings,
        ua,
        Instant::now(),
        seatline_store::now_ms(),
        seed.rotate_left(17),
    );

    let (persist_tx, mut persist_rx) = mpsc::unbounded_channel();
    let (sip_tx, sip_rx) = mpsc::unbounded_channel();
    let (routes_tx, routes_rx) = mpsc::unbounded_channel();
    let io = hub::HubIo {
        persist: persist_tx,
        sip: sip_tx,
        media: media.clone(),
        routes: routes_tx,
    };
    let hub = Hub::new(Duration::from_secs(cfg.sessions.idle_timeout_secs), sb, io);
    let calls = calls::Calls { sip_addr: sip.addr };
    let open = store.open_calls().await?;
    let app: App = Arc::new(AppState {
        store,
        hub,
        cfg,
        calls,
        media,
        sandbox,
        streams: streams.clone(),
    });

    // One writer keeps the store's writes in the order they were made: the
    // last write of a call record is its final state.
    let writer = app.clone();
    tokio::spawn(async move {
        // What is queued when the writer wakes goes in one transaction:
        // a burst of calls costs one commit, not one per record.
        const BATCH: usize = 512;
        let mut writes = Vec::with_capacity(BATCH);
        let mut flushes = Vec::new();
        while let Some(first) = persist_rx.recv().await {
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    hub::Persist::Status(seat_id, code) => {
                        writes.push(seatline_store::Write::Status { seat_id, code })
                    }
                    hub::Persist::Call(row) => writes.push(seatline_store::Write::Call(row)),
                    // Answered once everything before it is stored.
                    hub::Persist::Flush(done) => flushes.push(done),
                }
                if writes.len() < BATCH {
                    next = persist_rx.try_recv().ok();
                }
            }
            if !writes.is_empty() {
                if let Err(e) = writer.store.save_all(&writes).await {
                    tracing::error!("cannot store a call record or an agent status: {e}");
                }
                writes.clear();
            }
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
        }
    });
    // The phone-number metadata loads before the first call, not during it.
    tokio::task::spawn_blocking(seatline_calls::policy::warm_up).await?;
    // Carriers may connect over TCP to the SIP address too.
    streams
        .clone()
        .listen(app.clone(), app.calls.sip_addr)
        .await
        .map_err(|e| anyhow::anyhow!("SIP over TCP on {}: {e}", app.calls.sip_addr))?;
    calls::start(app.clone(), sip, sip_rx, routes_rx);
    let media_notes = app.clone();
    tokio::spawn(async move {
        while let Some(note) = notes.recv().await {
            match note {
                media::MediaNote::RelayAlive { ids } => {
                    media_notes.hub.relay_alive(&ids, Instant::now())
                }
                media::MediaNote::RtpAlive { seats } => {
                    media_notes.hub.rtp_alive(&seats, Instant::now())
                }
                media::MediaNote::AudioLost { seat_id } => {
                    media_notes.hub.audio_lost(seat_id, Instant::now())
                }
                media::MediaNote::LegConnected { seat_id, .. } => media_notes.hub.audio_up(seat_id),
                media::MediaNote::Quality { seat_id, sample } => {
                    media_notes.hub.quality(seat_id, sample, Instant::now())
                }
                note => tracing::debug!("media: {note:?}"),
            }
        }
    });

    // Calls a crashed process left open: closed, and their carrier legs ended.
    if !open.is_empty() {
        tracing::warn!(
            calls = open.len(),
            "closing calls left open by the previous run"
        );
        let open = open
            .into_iter()
            .map(|row| seatline_switchboard::OpenCall {
                tenant_id: row.tenant_id,
                seat: row.seat_id,
                record: record_of(&row),
                dialog: row.dialog.clone(),
            })
            .collect();
        app.hub.recover(open, Instant::now());
    }

    // Idle sessions end on time, also for tabs that are open but unused.
    let sweeper = app.clone();
    tokio::spawn(async move {
        let period = match sweeper.cfg.sessions.sweep_interval_ms {
            Some(ms) => Duration::from_millis(ms.max(10)),
            None => Duration::from_millis(250)
                .max(sweeper.hub.idle_timeout() / 200)
                .min(Duration::from_secs(5)),
        };
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            for id in sweeper.hub.expire_idle(Instant::now()) {
                if let Err(e) = sweeper.store.revoke_session(&id).await {
                    tracing::warn!("cannot revoke an expired session: {e}");
                }
            }
        }
    });

    let router = http::router(app.clone());
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    Ok(Running { addr, app, task })
}

/// Each tab holds a socket: lift the soft descriptor limit to the hard one.
/// A trunk ready for the switchboard: its address resolved, the sources
/// trusted for it, its credentials.
struct ResolvedTrunk {
    trunk: seatline_switchboard::Trunk,
    trusted: Vec<seatline_sip::TrustedSource>,
    credentials: Option<seatline_sip::Credentials>,
    /// Registration: the domain and the seconds asked for.
    register: Option<(String, u32)>,
    /// How to connect, for a TCP or TLS trunk.
    dial: Option<sip_stream::Dial>,
}

/// Resolves a trunk's host (the first address the resolver gives; SRV
/// records are not looked up) and reads its trust list.
async fn resolve_trunk(t: &config::TrunkConfig) -> anyhow::Result<ResolvedTrunk> {
    let (host, port) = t.host_port()?;
    let peer = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| anyhow::anyhow!("trunk {:?}: cannot resolve {host}: {e}", t.name))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("trunk {:?}: {host} has no address", t.name))?;
    let trusted = if t.inbound_from.is_empty() {
        match t.transport {
            config::Transport::Udp => vec![seatline_sip::TrustedSource::Addr(peer)],
            // A carrier's own connections to us come from any port of its IP.
            _ => vec![seatline_sip::TrustedSource::Ip(peer.ip())],
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
    Ok(ResolvedTrunk {
        trunk: seatline_switchboard::Trunk {
            name: t.name.clone(),
            peer,
            keepalive: (t.keepalive_secs > 0).then(|| Duration::from_secs(t.keepalive_secs)),
            register: t.register,
            numbers: seatline_calls::numbers::NumberRules {
                strip: t.strip_prefix.clone(),
                prefix: t.add_prefix.clone(),
                caller: match t.caller_format {
                    config::CallerFormat::E164 => seatline_calls::numbers::CallerFormat::E164,
                    config::CallerFormat::Plus => seatline_calls::numbers::CallerFormat::Plus,
                    config::CallerFormat::National => {
                        seatline_calls::numbers::CallerFormat::National
                    }
                },
            },
        },
        trusted,
        credentials,
        dial: match t.transport {
            config::Transport::Udp => None,
            config::Transport::Tcp => Some(sip_stream::Dial::Tcp),
            config::Transport::Tls => Some(sip_stream::Dial::Tls {
                config: sip_stream::tls_client(t.tls_ca.as_deref())?,
                name: rustls_pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| anyhow::anyhow!("trunk {:?}: {host}: {e}", t.name))?,
            }),
        },
        register: t.register.then(|| {
            let bracketed = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            let domain = t.domain.clone().unwrap_or(bracketed);
            (domain, t.register_expires_secs)
        }),
    })
}

fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// A stored call record back as the switchboard's.
fn record_of(row: &seatline_store::CallRow) -> seatline_calls::record::CallRecord {
    use seatline_calls::record::{CallRecord, Direction};
    let direction = match row.direction {
        0 => Direction::Inbound,
        2 => Direction::AutoDialed,
        _ => Direction::Outbound,
    };
    let mut r = CallRecord::new(
        row.id.clone(),
        direction,
        row.caller.clone(),
        row.callee.clone(),
        row.start_ms,
    );
    r.order_id = row.order_id.clone();
    r.params = row.params.clone();
    r.other = row.other.clone();
    r.connected_ms = row.connected_ms;
    r.hangup_ms = row.hangup_ms;
    r.hangup_code = row.hangup_code.and_then(|c| u16::try_from(c).ok());
    r.sip_code = row.sip_code.and_then(|c| u16::try_from(c).ok());
    r
}

/// Ends every call (BYE to the carrier, code 5 to the tabs), then waits
/// until the BYEs are sent and every record and status is in the store.
pub async fn stop(app: &App) {
    app.hub.shutdown(Instant::now());
    let _ = tokio::time::timeout(Duration::from_secs(2), app.hub.flush_sip()).await;
    let _ = tokio::time::timeout(Duration::from_secs(3), app.hub.flush_writes()).await;
}
