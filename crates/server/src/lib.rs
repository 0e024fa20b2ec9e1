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
pub mod http;
pub mod hub;
pub mod media;
pub mod sandbox;
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
    raise_fd_limit();
    let store = Store::open_dir(&cfg.data_dir).await?;
    if cfg.demo.seed && store.seed_demo().await? {
        tracing::info!("seeded the demo tenant");
    }
    let (persist_tx, mut persist_rx) = mpsc::unbounded_channel();
    let hub = Hub::new(Duration::from_secs(cfg.sessions.idle_timeout_secs), persist_tx);
    let listener = TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    let (trunk, sandbox) = match cfg.sip.trunk {
        Some(t) => (t, None),
        None => {
            let sb = sandbox::start(cfg.sandbox.listen).await?;
            tracing::info!("sandbox carrier on {}", sb.addr);
            (sb.addr, Some(sb))
        }
    };
    let (media, mut notes) = media::start(cfg.media.listen, cfg.media.public_ip).await?;
    let cell = Arc::new(tokio::sync::OnceCell::new());
    let calls = calls::Calls::start(cell.clone(), cfg.sip.listen, trunk, media.clone()).await?;
    let app: App = Arc::new(AppState { store, hub, cfg, calls, media, sandbox });
    tokio::spawn(async move {
        while let Some(note) = notes.recv().await {
            tracing::debug!("media: {note:?}");
        }
    });
    let _ = cell.set(app.clone());

    // One writer keeps status writes in order.
    let writer = app.clone();
    tokio::spawn(async move {
        while let Some(msg) = persist_rx.recv().await {
            match msg {
                hub::Persist::Status(seat, code) => {
                    if let Err(e) = writer.store.save_agent_status(seat, code).await {
                        tracing::warn!(seat, "cannot save agent status: {e}");
                    }
                }
                hub::Persist::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    });

    // Idle sessions end on time, also for tabs that are open but unused.
    let sweeper = app.clone();
    tokio::spawn(async move {
        let period = match sweeper.cfg.sessions.sweep_interval_ms {
            Some(ms) => Duration::from_millis(ms.max(10)),
            None => Duration::from_millis(250).max(sweeper.hub.idle_timeout() / 200).min(Duration::from_secs(5)),
        };
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            sweeper.hub.tick_agents(Instant::now());
            for id in sweeper.hub.expire_idle(Instant::now()) {
                if let Err(e) = sweeper.store.revoke_session(&id).await {
                    tracing::warn!("cannot revoke an expired session: {e}");
                }
            }
        }
    });

    let router = http::router(app.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await
    });
    Ok(Running { addr, app, task })
}

/// Each tab holds a socket: lift the soft descriptor limit to the hard one.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
