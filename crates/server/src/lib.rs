//! The `seatline` server: one binary that serves the softphone, the demo CRM
//! page, the REST API and the softphone's WebSocket, on top of the store and
//! the agent state machine.
//!
//! Owns: sockets, timers and tasks (the thin async shell around the sans-IO
//! cores), and the HTTP surface.
//!
//! Must never: put a password or token in a log line, or answer bad input
//! with a panic.

pub mod access;
mod admin;
pub mod admin_cli;
pub mod bus;
pub mod calls;
mod cluster;
pub mod config;
pub mod directory;
pub mod dns;
pub mod errors;
mod holder;
pub mod http;
mod hub;
pub mod media;
mod memory;
mod menus;
pub mod metrics;
pub(crate) mod music;
pub mod origins;
pub mod recordings;
mod records;
mod redact;
mod relay;
pub mod sandbox;
mod signin;
pub mod sip_stream;
pub mod sso;
pub mod trunks;
mod wallboard;
pub mod webhooks;
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
    /// Writes call recordings; knows where each one is.
    pub recorder: media::Recorder,
    /// The sandbox carrier, when no real trunk is configured.
    pub sandbox: Option<sandbox::Sandbox>,
    /// SIP connections (TCP and TLS trunks, carriers connected to us).
    pub streams: Arc<sip_stream::Streams>,
    /// The configuration file's trunks (or the sandbox carrier), shared
    /// by every tenant without trunks of its own; resolved again when
    /// their DNS answers expire.
    pub shared_trunks: std::sync::RwLock<Vec<trunks::Resolved>>,
    /// When the trunks' DNS answers expire, and what was installed.
    pub trunk_dns: trunks::DnsRefresh,
    /// Held while the trunks change: one change at a time.
    pub trunk_changes: tokio::sync::Mutex<()>,
    /// Resolves trunk host names (`sip.dns_servers`), at start and for trunks
    /// added later.
    pub dns: dns::Dns,
    /// The node drains ([`drain`]): it takes no new call.
    pub draining: std::sync::atomic::AtomicBool,
    /// Events to and from the other nodes (`[cluster] nats`).
    pub bus: bus::Bus,
    /// Single sign-on: the flows in progress, the providers' discovery.
    pub sso: sso::Sso,
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
    let store = Store::open(cfg.store.url.as_deref(), &cfg.data_dir)
        .await?
        .with_node(&cfg.cluster.node);
    // Several nodes share PostgreSQL: this one says it lives (again).
    let clustered = store.backend() == "postgres";
    if clustered {
        store.node_started(seatline_store::now_ms()).await?;
    }
    if cfg.demo.seed && store.seed_demo().await? {
        tracing::info!("seeded the demo tenant");
    }
    let listener = TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    let dns = dns::Dns::new(cfg.sip.dns_servers()?);
    // The shared trunks: the configuration file's, or the sandbox carrier.
    let (shared_trunks, sandbox) = if cfg.trunks.is_empty() {
        let sb = sandbox::start(cfg.sandbox.listen).await?;
        tracing::info!("sandbox carrier on {}", sb.addr);
        let trunk = trunks::Resolved {
            setup: seatline_switchboard::TrunkSetup {
                trunk: seatline_switchboard::Trunk {
                    name: "sandbox".into(),
                    tenant_id: None,
                    peer: sb.addr,
                    keepalive: None,
                    register: false,
                    numbers: Default::default(),
                    srtp: seatline_switchboard::Srtp::Off,
                },
                transport: seatline_sip::Transport::Udp,
                trusted: vec![seatline_sip::TrustedSource::Addr(sb.addr)],
                credentials: None,
                registration: None,
            },
            dial: None,
            more: Vec::new(),
            valid_until: None,
        };
        (vec![trunk], Some(sb))
    } else {
        let mut list = Vec::new();
        for t in &cfg.trunks {
            list.push(trunks::resolve(t, None, &dns).await?);
        }
        (list, None)
    };
    let recorder = media::Recorder::start(&cfg.data_dir)?;
    let (media, mut notes) = media::start(
        cfg.media.listen,
        cfg.media.public_ip,
        cfg.media.workers,
        recorder.clone(),
    )
    .await?;
    let sip = calls::bind_sip(cfg.sip.listen).await?;
    tracing::info!("SIP on udp {}", sip.addr);
    let sip_tls = match (&cfg.sip.tls_listen, &cfg.sip.tls_cert, &cfg.sip.tls_key) {
        (Some(listen), Some(cert), Some(key)) => {
            let acceptor = sip_stream::tls_server(cert, key)?;
            let listener = TcpListener::bind(listen)
                .await
                .map_err(|e| anyhow::anyhow!("sip.tls_listen {listen}: {e}"))?;
            tracing::info!("SIP on tls {}", listener.local_addr()?);
            Some((listener, acceptor))
        }
        _ => None,
    };

    // The switchboard: SIP that trusts only the trunks, and the rules' numbers.
    let seed: u64 = rand::random();
    let mut ua =
        seatline_sip::UserAgent::with_seed(sip.addr, seatline_sip::Timers::default(), seed);
    if let Some((listener, _)) = &sip_tls {
        ua.set_tls_local(listener.local_addr()?);
    }
    // Whom to trust, whose credentials, which registrations: the trunks,
    // installed below, once the hub runs.
    let streams = Arc::new(sip_stream::Streams::default());
    let mut settings = seatline_switchboard::Settings::with_trunks(Vec::new());
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
    let calls = calls::Calls {
        sip_addr: sip.addr,
        dids: Arc::default(),
    };
    let open = store.open_calls().await?;
    if clustered {
        let (ws_url, sip_uri) = node_addresses(&cfg, addr, sip.addr)?;
        store.node_addresses(&ws_url, &sip_uri).await?;
    }
    let bus = match &cfg.cluster.nats {
        Some(url) => bus::Bus::connect(url, &cfg.cluster.node).await?,
        None => bus::Bus::default(),
    };
    let app: App = Arc::new(AppState {
        store,
        hub,
        cfg,
        calls,
        media,
        recorder,
        sandbox,
        streams: streams.clone(),
        shared_trunks: std::sync::RwLock::new(shared_trunks),
        trunk_dns: trunks::DnsRefresh::default(),
        trunk_changes: tokio::sync::Mutex::new(()),
        dns,
        sso: sso::Sso::new(),
        draining: Default::default(),
        bus,
    });
    // Each tenant's rates.
    let mut by_tenant: std::collections::BTreeMap<i64, Vec<(String, i64, i64, i64)>> =
        Default::default();
    for (tenant, prefix, mc, first, next) in app.store.all_rates().await? {
        by_tenant
            .entry(tenant)
            .or_default()
            .push((prefix, mc, first, next));
    }
    for (tenant, rows) in by_tenant {
        app.hub.set_rates(tenant, admin::rates_of(&rows));
        // Its balance too: a forwarded call is billed with no agent's
        // callOut to bring it in.
        app.hub
            .know_balance(tenant, app.store.policy(tenant).await?.balance_cents);
    }
    // Each tenant's recording setting.
    for (tenant, setting) in app.store.recording_settings().await? {
        app.hub
            .set_recording(tenant, recordings::policy_of(&setting));
    }
    // Each tenant's own waiting music.
    for (tenant, samples) in app.store.tenant_musics().await? {
        app.hub.set_tenant_music(tenant, Some(samples.into()));
    }
    // Each DID's menu prompt.
    for (tenant, did, samples) in app.store.did_prompts().await? {
        app.hub.set_did_prompt(tenant, &did, Some(samples.into()));
    }
    // Each group's queue settings (the schema only holds valid ones).
    for g in app.store.group_routings().await? {
        if let Some(routing) = admin::group_routing_of(&g) {
            app.hub.set_group_routing(g.tenant_id, &g.group_no, routing);
        }
    }
    // The trunks: the shared ones, then the tenants' own.
    trunks::install(&app, trunks::resolve_stored(&app).await?);
    trunks::spawn_refresh(app.clone());

    // One writer keeps the store's writes in the order they were made: the
    // last write of a call record is its final state.
    let mut writer = app.store.writer();
    tokio::spawn(async move {
        // What is queued when the writer wakes goes in one transaction:
        // a burst of calls costs one commit, not one per record.
        const BATCH: usize = 512;
        // Busy (the last commit ended less than this ago), the writer
        // gathers for up to this long after it: under load, commits are
        // at most 500 a second, each of a burst. Otherwise a write goes
        // at once, as it comes.
        const GATHER: Duration = Duration::from_millis(2);
        let mut writes = Vec::with_capacity(BATCH);
        let mut flushes = Vec::new();
        let mut last_commit: Option<tokio::time::Instant> = None;
        while let Some(first) = persist_rx.recv().await {
            if let Some(at) = last_commit {
                let flush = matches!(first, hub::Persist::Flush(_));
                if !flush && at.elapsed() < GATHER {
                    tokio::time::sleep_until(at + GATHER).await;
                }
            }
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    hub::Persist::Status(seat_id, code) => {
                        writes.push(seatline_store::Write::Status { seat_id, code })
                    }
                    hub::Persist::Call(row) => writes.push(seatline_store::Write::Call(row)),
                    hub::Persist::Balance(tenant_id, change) => writes.push(match change {
                        seatline_switchboard::BalanceChange::Set(cents) => {
                            seatline_store::Write::Balance { tenant_id, cents }
                        }
                        seatline_switchboard::BalanceChange::Add(cents) => {
                            seatline_store::Write::BalanceAdd { tenant_id, cents }
                        }
                    }),
                    // Answered once everything before it is stored.
                    hub::Persist::Flush(done) => flushes.push(done),
                }
                if writes.len() < BATCH {
                    next = persist_rx.try_recv().ok();
                }
            }
            if !writes.is_empty() {
                if let Err(e) = writer.save_all(&writes).await {
                    tracing::error!("cannot store a call record or an agent status: {e}");
                }
                writes.clear();
                last_commit = Some(tokio::time::Instant::now());
            }
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
        }
    });
    // The phone-number metadata loads before the first call, not during it.
    tokio::task::spawn_blocking(seatline_calls::policy::warm_up).await?;
    // Carriers may connect over TCP to the SIP address too, and over TLS
    // to its own address when one is set.
    let mut sip = sip;
    if let Some(tcp) = sip.tcp.take() {
        streams.clone().listen(app.clone(), tcp, None);
    }
    if let Some((listener, acceptor)) = sip_tls {
        streams
            .clone()
            .listen(app.clone(), listener, Some(acceptor));
    }
    calls::start(app.clone(), sip, sip_rx, routes_rx);
    webhooks::start(app.clone());
    recordings::spawn_retention(app.clone());
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
                media::MediaNote::Digit { seat_id, digit } => {
                    // Only a menu reads them; the log says each came.
                    tracing::debug!("media: carrier digit: {digit:?}");
                    media_notes
                        .hub
                        .carrier_digit(seat_id, digit, Instant::now())
                }
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
        let open = open.iter().map(open_call_of).collect();
        app.hub.recover(open, Instant::now());
    }
    if clustered {
        cluster::spawn(app.clone());
    }
    cluster::listen(app.clone()).await?;

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
    // Small WebSocket messages go out at once (no Nagle wait for an ACK).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
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
    r.hung_up_by = row
        .hung_up_by
        .as_deref()
        .and_then(seatline_calls::record::HungUpBy::parse);
    r
}

/// Ends every call (BYE to the carrier, code 5 to the tabs), then waits
/// until the BYEs are sent and every record and status is in the store.
/// Drains the node (SIGUSR1): no new call is taken (inbound INVITEs get
/// 503, `/healthz` and new WebSockets 503, so the dispatcher and the proxy
/// send them to other nodes), the tabs of agents without a call are closed
/// (they reconnect elsewhere with their session), and the calls in progress
/// run to their end; then the node stops. Returns once it has.
pub async fn drain(app: &App) {
    app.draining
        .store(true, std::sync::atomic::Ordering::SeqCst);
    app.hub.drain();
    tracing::info!("draining: no new calls; waiting for the calls in progress to end");
    let clustered = app.store.backend() == "postgres";
    loop {
        // Another node holds these agents from their next tab on (no call
        // can start here any more, so none of them gets one).
        if clustered {
            release_seats(app, Some(&app.hub.seats_without_call())).await;
        }
        app.hub.close_tabs_without_call();
        if app.hub.is_idle() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The last tabs, closed after their calls.
    if clustered {
        release_seats(app, None).await;
    }
    app.hub.close_tabs_without_call();
    if clustered {
        let _ = app.store.node_beat(seatline_store::now_ms(), true).await;
    }
    tracing::info!("drained: no call left");
    stop(app).await;
}

async fn release_seats(app: &App, seats: Option<&[i64]>) {
    if seats.is_some_and(|s| s.is_empty()) {
        return;
    }
    if let Err(e) = app.store.release_seats(seats).await {
        tracing::error!("draining: cannot let go of agents: {e}");
    }
}

pub async fn stop(app: &App) {
    app.hub.shutdown(Instant::now());
    let _ = tokio::time::timeout(Duration::from_secs(2), app.hub.flush_sip()).await;
    let _ = tokio::time::timeout(Duration::from_secs(3), app.hub.flush_writes()).await;
}

/// Where the other nodes reach this one: its WebSocket URL and SIP URI,
/// at `cluster.advertise` or else at the addresses it listens on.
fn node_addresses(
    cfg: &Config,
    http: SocketAddr,
    sip: SocketAddr,
) -> anyhow::Result<(String, String)> {
    let host = |addr: SocketAddr| -> anyhow::Result<String> {
        if let Some(h) = &cfg.cluster.advertise {
            return Ok(h.clone());
        }
        anyhow::ensure!(
            !addr.ip().is_unspecified(),
            "with several nodes, set cluster.advertise: the address the other nodes reach this one at"
        );
        Ok(match addr.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        })
    };
    Ok((
        format!("ws://{}:{}/ws", host(http)?, http.port()),
        format!("sip:{}:{}", host(sip)?, sip.port()),
    ))
}

/// A call a process left open, as the switchboard closes it.
pub(crate) fn open_call_of(row: &seatline_store::CallRow) -> seatline_switchboard::OpenCall {
    seatline_switchboard::OpenCall {
        tenant_id: row.tenant_id,
        seat: row.seat_id,
        record: record_of(row),
        dialog: row.dialog.clone(),
    }
}
