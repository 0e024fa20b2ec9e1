//! `seatline-loadtest tabs`: connects N simulated agent tabs (WebSocket
//! clients) to one seatline server and measures
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
use seatline_loadtest::{percentile, raise_fd_limit, rss_kib, seed_agents, start_server};
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

    // Seed agents with one session each, straight into a new data dir.
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let t_seed = Instant::now();
    let tokens = seed_agents(&data, agents).await?;
    eprintln!(
        "seeded {agents} agents in {:.1}s",
        t_seed.elapsed().as_secs_f64()
    );
    let cfg = format!(
        "listen = \"127.0.0.1:{}\"\ndata_dir = \"{}\"\n[sip]\nlisten = \"127.0.0.1:0\"\n[sandbox]\nlisten = \"127.0.0.1:0\"\n",
        args.port,
        data.display()
    );
    let mut server = start_server(
        &args.seatline,
        &dir.path().join("seatline.toml"),
        &cfg,
        args.port,
        deadline,
    )
    .await?;
    let pid = server.id().context("server pid")?;
    let url = format!("ws://127.0.0.1:{}/ws", args.port);
    let rss_before = rss_kib(pid)?;

    // Connect every tab; each reports the agent events it receives.
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<Seen>();
    let mut senders: Vec<mpsc::UnboundedSender<String>> = Vec::with_capacity(agents);
    let t_connect = Instant::now();
    let gate = Arc::new(Semaphore::new(200));
    let mut ready = Vec::new();
    for (a, token) in tokens.iter().enumerate() {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel::<String>();
        senders.push(cmd_tx);
        let mut cmd_rx = Some(cmd_rx);
        for t in 0..args.tabs_per_agent {
            let url = url.clone();
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
    }
    drop(seen_tx);
    let mut connected = 0;
    for r in ready {
        if tokio::time::timeout_at(deadline.into(), r)
            .await
            .is_ok_and(|r| r.is_ok())
        {
            connected += 1;
        }
    }
    let connect_secs = t_connect.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = rss_kib(pid)?;
    eprintln!(
        "connected {connected}/{} tabs in {connect_secs:.1}s",
        args.tabs
    );
    if connected < args.tabs {
        bail!("only {connected} of {} tabs connected", args.tabs);
    }

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
    latencies.sort();
    let per_tab = (rss_after.saturating_sub(rss_before)) as f64 / args.tabs as f64;
    println!(
        "tabs={} agents={} tabs_per_agent={}",
        args.tabs, agents, args.tabs_per_agent
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
    server.kill().await.ok();
    if lost > 0 {
        bail!("{lost} status changes never reached every tab");
    }
    Ok(())
}
