//! `seatline-loadtest tabs`: connects N simulated agent tabs (WebSocket
//! clients) to one seatline server (or to `--nodes` servers on one
//! throw-away PostgreSQL database, each agent with a tab on each node, so
//! every status change crosses nodes) and measures
//! - the time from a status change in one tab to its arrival in all the
//!   other tabs of that agent (median, 99th percentile), and
//! - the server's memory per connected tab (resident set growth / N).
//!
//! It seeds agents and sessions straight into a fresh data directory, starts
//! the real `seatline serve` binary on loopback, and stops it at the end.
//! Bounded: N tabs, a fixed number of samples, and a deadline.

use anyhow::{bail, Context};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use seatline_loadtest::{
    percentile, raise_fd_limit, rss_kib, seed_agents, seed_agents_in, start_server,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
#[command(about = "Simulated softphone tabs against one seatline server")]
struct Args {
    /// Number of tabs (WebSocket clients).
    #[arg(long, default_value_t = 1000)]
    tabs: usize,
    /// Tabs per agent; the agents are tabs / tabs_per_agent.
    #[arg(long, default_value_t = 2)]
    tabs_per_agent: usize,
    /// Status changes to time.
    #[arg(long, default_value_t = 2000)]
    samples: usize,
    /// Status changes in flight at once (on different agents).
    #[arg(long, default_value_t = 20)]
    concurrency: usize,
    /// The seatline binary to start.
    #[arg(long, default_value = "target/release/seatline")]
    seatline: PathBuf,
    /// Port for the server on 127.0.0.1.
    #[arg(long, default_value_t = 18480)]
    port: u16,
    /// Seatline nodes to start; more than one share a throw-away
    /// PostgreSQL cluster, and tab t of agent a connects to node (a + t)
    /// mod nodes (tab 0, which changes the status, first: its node holds
    /// the agent; so the agents are spread over the nodes).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// With one node: the store on a throw-away PostgreSQL cluster
    /// instead of SQLite.
    #[arg(long)]
    postgres: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    deadline_secs: u64,
}

/// An `agent` event seen by one tab: (agent index, tab index, code, when).
type Seen = (usize, usize, i64, Instant);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    raise_fd_limit();
    let agents = args.tabs / args.tabs_per_agent;
    if agents == 0 || args.tabs_per_agent < 2 {
        bail!("need at least one agent with two tabs");
    }
    let deadline = Instant::now() + Duration::from_secs(args.deadline_secs);

    // Seed agents with one session each, straight into a new store.
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let t_seed = Instant::now();
    let nodes = args.nodes.max(1);
    let postgres = if nodes > 1 || args.postgres {
        let pg = seatline_store::testing::TestPostgres::shared()?;
        let url = pg.url(&pg.new_schema().await?);
        Some((pg, url))
    } else {
        None
    };
    let tokens = match &postgres {
        Some((_, url)) => {
            seed_agents_in(&seatline_store::Store::open_postgres(url).await?, agents).await?
        }
        None => seed_agents(&data, agents).await?,
    };
    eprintln!(
        "seeded {agents} agents in {:.1}s",
        t_seed.elapsed().as_secs_f64()
    );
    let mut servers = Vec::new();
    let mut pids = Vec::new();
    for n in 0..nodes {
        let port = args.port + n as u16;
        let mut cfg = format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n[sip]\nlisten = \"127.0.0.1:0\"\n[sandbox]\nlisten = \"127.0.0.1:0\"\n",
            // SQLite: the seeded data directory; PostgreSQL: each its own.
            if postgres.is_some() { data.join(format!("n{n}")) } else { data.clone() }.display()
        );
        if let Some((_, url)) = &postgres {
            cfg.push_str(&format!(
                "[store]\nurl = \"{url}\"\n[cluster]\nnode = \"n{n}\"\n"
            ));
        }
        let server = start_server(
            &args.seatline,
            &dir.path().join(format!("seatline-n{n}.toml")),
            &cfg,
            port,
            deadline,
        )
        .await?;
        pids.push(server.id().context("server pid")?);
        servers.push(server);
    }
    let urls: Vec<String> = (0..nodes)
        .map(|n| format!("ws://127.0.0.1:{}/ws", args.port + n as u16))
        .collect();
    let rss = |pids: &[u32]| -> anyhow::Result<u64> { pids.iter().map(|p| rss_kib(*p)).sum() };
    let rss_before = rss(&pids)?;

    // Connect every tab; each reports the agent events it receives.
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<Seen>();
    let mut senders: Vec<mpsc::UnboundedSender<String>> = Vec::with_capacity(agents);
    let mut cmd_rxs = Vec::with_capacity(agents);
    for _ in 0..agents {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel::<String>();
        senders.push(cmd_tx);
        cmd_rxs.push(Some(cmd_rx));
    }
    let t_connect = Instant::now();
    let gate = Arc::new(Semaphore::new(200));
    let mut connected = 0;
    // Every agent's tab 0 first: with several nodes, the node it reaches
    // holds the agent, and the other tabs are relayed there.
    for t in 0..args.tabs_per_agent {
        let mut ready = Vec::new();
        for (a, token) in tokens.iter().enumerate() {
            let cmd_rx = &mut cmd_rxs[a];
            let url = urls[(a + t) % nodes].clone();
            let token = token.clone();
            let seen = seen_tx.clone();
            let gate = gate.clone();
            // Tab 0 of each agent is the one that changes the status.
            let mut cmds = if t == 0 { cmd_rx.take() } else { None };
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
            ready.push(ready_rx);
            tokio::spawn(async move {
                let permit = gate.acquire_owned().await;
                let Ok(ws) = seatline_loadtest::connect_tab(&url).await else {
                    return;
                };
                let (mut sink, mut stream) = ws.split();
                let auth = serde_json::json!({"op": "auth", "token": token}).to_string();
                if sink.send(Message::text(auth)).await.is_err() {
                    return;
                }
                let mut ready_tx = Some(ready_tx);
                let mut permit = Some(permit);
                loop {
                    tokio::select! {
                        msg = stream.next() => {
                            let Some(Ok(Message::Text(text))) = msg else {
                                if matches!(msg, Some(Ok(_))) { continue; }
                                return;
                            };
                            let now = Instant::now();
                            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
                            match v["ev"].as_str() {
                                Some("ready") => {
                                    permit.take();
                                    if let Some(r) = ready_tx.take() { let _ = r.send(()); }
                                }
                                Some("agent") => {
                                    let code = v["agent"]["code"].as_i64().unwrap_or(0);
                                    let _ = seen.send((a, t, code, now));
                                }
                                _ => {}
                            }
                        }
                        cmd = async { match cmds.as_mut() { Some(c) => c.recv().await, None => std::future::pending().await } } => {
                            let Some(cmd) = cmd else { return };
                            if sink.send(Message::text(cmd)).await.is_err() { return; }
                        }
                    }
                }
            });
        }
        for r in ready {
            if tokio::time::timeout_at(deadline.into(), r)
                .await
                .is_ok_and(|r| r.is_ok())
            {
                connected += 1;
            }
        }
    }
    drop(seen_tx);
    let connect_secs = t_connect.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = rss(&pids)?;
    eprintln!(
        "connected {connected}/{} tabs in {connect_secs:.1}s",
        args.tabs
    );
    if connected < args.tabs {
        bail!("only {connected} of {} tabs connected", args.tabs);
    }

    // CPU from here to the last sample: the nodes, PostgreSQL (the rest
    // of this process's children) and this load generator, apart.
    let me = std::process::id();
    let cpu_before = (cpu_ticks(&pids), tree_ticks(me), cpu_ticks(&[me]));
    // Time status changes: tab 0 of an agent sets a status; done when all
    // the agent's other tabs have it.
    let others = args.tabs_per_agent - 1;
    let mut latencies = Vec::with_capacity(args.samples);
    let mut in_flight: std::collections::HashMap<usize, (i64, Instant, usize)> = Default::default();
    let mut next_sample = 0usize;
    let mut codes = vec![1i64; agents];
    let mut lost = 0usize;
    while latencies.len() + lost < args.samples {
        while in_flight.len() < args.concurrency && next_sample < args.samples {
            let agent = (next_sample * 7919) % agents;
            if in_flight.contains_key(&agent) {
                break;
            }
            codes[agent] = if codes[agent] == 3 { 4 } else { 3 };
            let cmd = serde_json::json!({"op": "setStatus", "code": codes[agent]}).to_string();
            in_flight.insert(agent, (codes[agent], Instant::now(), 0));
            let _ = senders[agent].send(cmd);
            next_sample += 1;
        }
        match tokio::time::timeout(Duration::from_secs(5), seen_rx.recv()).await {
            Ok(Some((agent, tab, code, at))) => {
                if tab == 0 {
                    continue;
                }
                if let Some(entry) = in_flight.get_mut(&agent) {
                    if entry.0 == code {
                        entry.2 += 1;
                        if entry.2 == others {
                            latencies.push(at.duration_since(entry.1));
                            in_flight.remove(&agent);
                        }
                    }
                }
            }
            _ => {
                lost += in_flight.len();
                in_flight.clear();
            }
        }
        if Instant::now() > deadline {
            bail!("deadline passed with {} samples", latencies.len());
        }
    }
    let cpu_after = (cpu_ticks(&pids), tree_ticks(me), cpu_ticks(&[me]));
    let hz = clock_ticks();
    let changes = latencies.len().max(1) as f64;
    let per_change = |ticks: u64| ticks as f64 / hz * 1e3 / changes;
    let nodes_cpu = cpu_after.0 - cpu_before.0;
    let own_cpu = cpu_after.2 - cpu_before.2;
    let pg_cpu = (cpu_after.1 - cpu_before.1).saturating_sub(nodes_cpu + own_cpu);
    latencies.sort();
    let per_tab = (rss_after.saturating_sub(rss_before)) as f64 / args.tabs as f64;
    println!(
        "tabs={} agents={} tabs_per_agent={} nodes={nodes} store={}",
        args.tabs,
        agents,
        args.tabs_per_agent,
        if postgres.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    );
    println!("connect_all_s={connect_secs:.2}");
    println!(
        "status_to_all_tabs_ms median={:.3} p99={:.3} max={:.3} samples={} lost={}",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        latencies.len(),
        lost
    );
    println!("server_rss_kib before={rss_before} after={rss_after} per_tab_kib={per_tab:.1}");
    println!(
        "cpu_ms_per_status_change nodes={:.3} postgres={:.3} load_generator={:.3}",
        per_change(nodes_cpu),
        per_change(pg_cpu),
        per_change(own_cpu)
    );
    for mut server in servers {
        server.kill().await.ok();
    }
    if lost > 0 {
        bail!("{lost} status changes never reached every tab");
    }
    Ok(())
}

/// utime+stime, in clock ticks, of these processes (all their threads).
fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .filter_map(|stat| {
            // Fields after the name, which may hold spaces: state is field 3.
            let rest = stat.rsplit_once(") ")?.1;
            let f: Vec<&str> = rest.split(' ').collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

/// The CPU ticks of `pid` and every process under it.
fn tree_ticks(pid: u32) -> u64 {
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let ppid = std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(") ")?
                        .1
                        .split(' ')
                        .nth(1)?
                        .parse::<u32>()
                        .ok()
                });
            if let Some(ppid) = ppid {
                parent_of.push((p, ppid));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    cpu_ticks(&tree)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}
