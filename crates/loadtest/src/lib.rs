//! Shared pieces of the load tools: seeding agents with sessions, starting
//! the real server binary, and reading its memory and CPU.

use anyhow::{bail, Context};
use seatline_store::{hash_password, Store};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A tab's WebSocket, as the load tools open it: a 4 KiB read buffer, as
/// the server's. tungstenite zero-fills its whole read buffer (128 KiB by
/// default) each time the socket is read, even when nothing has come, so
/// with the default a client that polls its socket beside other work spends
/// most of its time in `memset` (38 % of `seatline-callbench`'s CPU).
pub async fn connect_tab(
    url: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::Error,
> {
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
    Ok(ws)
}

pub fn raise_fd_limit() {
    // SAFETY: plain libc calls on a struct we own.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("bad VmRSS")?
        .parse()?)
}

/// CPU time (user + system) the process has used so far.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    stat_cpu(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?)
}

/// CPU time of the threads of `pid` named `name` (zero if none).
pub fn thread_cpu_time(pid: u32, name: &str) -> anyhow::Result<Duration> {
    let mut total = Duration::ZERO;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if comm.trim() == name {
            if let Ok(stat) = std::fs::read_to_string(path.join("stat")) {
                total += stat_cpu(&stat)?;
            }
        }
    }
    Ok(total)
}

/// User plus system time from a /proc stat line.
fn stat_cpu(stat: &str) -> anyhow::Result<Duration> {
    let after = stat.rsplit_once(')').context("bad stat")?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 =
        f.get(11).context("utime")?.parse::<u64>()? + f.get(12).context("stime")?.parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_micros(ticks * 1_000_000 / hz))
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Seeds `agents` agents (one group, one session each) and a caller-ID pool
/// into a new data directory; returns their session tokens.
pub async fn seed_agents(data: &Path, agents: usize) -> anyhow::Result<Vec<String>> {
    seed_agents_in(&Store::open_dir(data).await?, agents).await
}

/// As [`seed_agents`], into an open store (PostgreSQL for several nodes).
pub async fn seed_agents_in(store: &Store, agents: usize) -> anyhow::Result<Vec<String>> {
    let tenant = store.create_tenant("load").await?;
    let group = store.create_group(tenant, "L1", "load", 0).await?;
    store
        .set_policy(
            tenant,
            &seatline_store::Policy {
                balance_cents: 1_000_000,
                ..Default::default()
            },
        )
        .await?;
    for n in 170..=178 {
        store.add_did(tenant, &format!("12025550{n}"), true).await?;
    }
    let hash = hash_password("load-test-password")?;
    let mut tokens = Vec::with_capacity(agents);
    for i in 0..agents {
        let user = store
            .create_user(tenant, &format!("load{i}@load.test"), &hash, "agent")
            .await?;
        store
            .create_seat(tenant, user, &format!("{}", 100_000 + i), group)
            .await?;
        let (token, _) = store.create_session(user, seatline_store::now_ms()).await?;
        tokens.push(token);
    }
    Ok(tokens)
}

/// Starts `seatline serve` with this config text and waits for its port.
pub async fn start_server(
    bin: &Path,
    cfg_path: &Path,
    cfg: &str,
    port: u16,
    deadline: Instant,
) -> anyhow::Result<tokio::process::Child> {
    std::fs::write(cfg_path, cfg)?;
    let child = tokio::process::Command::new(bin)
        .args(["serve", "--config"])
        .arg(cfg_path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("server did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(child)
}
