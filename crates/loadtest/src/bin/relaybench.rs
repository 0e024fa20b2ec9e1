//! `seatline-relaybench`: N concurrent forwarded calls through Seatline,
//! G.711 both ways, and how much of it arrives. This tool is both ends: the
//! carrier that calls a DID forwarded to a number (leg A) and the number's
//! carrier that answers (leg B, Seatline's trunk), each with our own SIP
//! user agent and one UDP socket per call leg. Every packet carries its
//! call, direction and counter, so loss is counted per direction. Reports
//! the server's CPU and memory per call beside the tool's own CPU.

use anyhow::{bail, Context};
use clap::Parser;
use seatline_loadtest::{cpu_time, raise_fd_limit, rss_kib, start_server};
use seatline_sip::sdp::{AudioSdp, Codec, Direction};
use seatline_sip::{Timers, UaEvent, UserAgent};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

#[derive(Parser, Debug)]
struct Args {
    /// Concurrent forwarded calls.
    #[arg(long, default_value_t = 100)]
    calls: usize,
    /// Seconds of two-way audio measured once every call is up.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// New calls per second while setting up.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    #[arg(long, default_value = "target/release/seatline")]
    seatline: PathBuf,
    #[arg(long, default_value_t = 18590)]
    port: u16,
    #[arg(long, default_value_t = 240)]
    deadline_secs: u64,
}

const DID: &str = "12025550171";
const NUMBER: &str = "14155550123";

fn sdp(port: u16) -> Vec<u8> {
    AudioSdp {
        addr: "127.0.0.1".parse().expect("an IP"),
        port,
        codecs: vec![Codec::Pcmu],
        dtmf_pt: None,
        direction: Direction::SendRecv,
    }
    .to_string(1, 1)
    .into_bytes()
}

fn remote_of(body: &[u8]) -> Option<SocketAddr> {
    let s = AudioSdp::parse(&String::from_utf8_lossy(body)).ok()?;
    Some(SocketAddr::new(s.addr, s.port))
}

/// One side's signalling: a user agent and its socket.
struct Side {
    ua: Mutex<UserAgent>,
    sock: Arc<UdpSocket>,
}

impl Side {
    async fn flush(&self) {
        let out: Vec<_> = {
            let mut ua = self.ua.lock().expect("not poisoned");
            std::iter::from_fn(|| ua.poll_transmit()).collect()
        };
        for t in out {
            let _ = self.sock.send_to(&t.bytes, t.to).await;
        }
    }
}

/// Reads the side's socket and fires its timers, forwarding its events.
fn drive(side: Arc<Side>, events: tokio::sync::mpsc::UnboundedSender<UaEvent>) {
    let reader = side.clone();
    let ev = events.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        while let Ok((n, from)) = reader.sock.recv_from(&mut buf).await {
            let evs: Vec<UaEvent> = {
                let mut ua = reader.ua.lock().expect("not poisoned");
                ua.handle_datagram(&buf[..n], from, Instant::now());
                std::iter::from_fn(|| ua.poll_event()).collect()
            };
            for e in evs {
                let _ = ev.send(e);
            }
            reader.flush().await;
        }
    });
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let evs: Vec<UaEvent> = {
                let mut ua = side.ua.lock().expect("not poisoned");
                ua.handle_timeout(Instant::now());
                std::iter::from_fn(|| ua.poll_event()).collect()
            };
            for e in evs {
                let _ = events.send(e);
            }
            side.flush().await;
        }
    });
}

/// One call's media on one side: its socket, where it sends, what arrived.
struct Leg {
    sock: Arc<UdpSocket>,
    remote: Mutex<Option<SocketAddr>>,
    received: AtomicU64,
}

fn packet(call: u32, dir: u8, seq: u16) -> Vec<u8> {
    let mut p = Vec::with_capacity(172);
    p.extend_from_slice(&[0x80, 0]);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&(call * 2 + u32::from(dir)).to_be_bytes());
    p.extend_from_slice(&[0xff; 160]);
    p
}

fn spawn_receiver(leg: Arc<Leg>) {
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = leg.sock.recv_from(&mut buf).await {
            if n == 172 {
                leg.received.fetch_add(1, Relaxed);
            }
        }
    });
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    raise_fd_limit();
    let deadline = Instant::now() + Duration::from_secs(args.deadline_secs);
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    {
        let store = seatline_store::Store::open_dir(&data).await?;
        store.seed_demo().await?;
        let route = seatline_store::DidRouteSet::Forward(NUMBER.into());
        if !store.set_did_route(1, DID, &route).await? {
            bail!("cannot route the demo DID {DID}");
        }
    }
    let a_sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
    let b_sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
    let (a_addr, b_addr) = (a_sock.local_addr()?, b_sock.local_addr()?);
    let sip_port = args.port + 1;
    let server_sip: SocketAddr = format!("127.0.0.1:{sip_port}").parse()?;
    let cfg = format!(
        "listen = \"127.0.0.1:{}\"\ndata_dir = \"{}\"\n[sip]\nlisten = \"{server_sip}\"\n[calls]\nrtp_timeout_secs = 30\n[[trunk]]\nname = \"number\"\nuri = \"sip:{b_addr}\"\ninbound_from = [\"127.0.0.1\"]\n",
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

    let a = Arc::new(Side {
        ua: Mutex::new(UserAgent::new(a_addr, Timers::default())),
        sock: a_sock,
    });
    let b = Arc::new(Side {
        ua: Mutex::new(UserAgent::new(b_addr, Timers::default())),
        sock: b_sock,
    });
    let (a_tx, mut a_rx) = tokio::sync::mpsc::unbounded_channel();
    let (b_tx, mut b_rx) = tokio::sync::mpsc::unbounded_channel();
    drive(a.clone(), a_tx);
    drive(b.clone(), b_tx);

    // Media sockets: per call, A's and B's.
    let mut legs_a = Vec::with_capacity(args.calls);
    let mut legs_b = Vec::with_capacity(args.calls);
    for _ in 0..args.calls {
        for legs in [&mut legs_a, &mut legs_b] {
            let leg = Arc::new(Leg {
                sock: Arc::new(UdpSocket::bind("127.0.0.1:0").await?),
                remote: Mutex::new(None),
                received: AtomicU64::new(0),
            });
            spawn_receiver(leg.clone());
            legs.push(leg);
        }
    }

    // B answers every INVITE with the next free media socket of its side.
    let b_answer = b.clone();
    let b_legs = legs_b.clone();
    let b_task = tokio::spawn(async move {
        let mut next = 0usize;
        while let Some(ev) = b_rx.recv().await {
            if let UaEvent::Incoming {
                call, sdp: offer, ..
            } = ev
            {
                let Some(leg) = b_legs.get(next) else {
                    b_answer.ua.lock().expect("not poisoned").respond(
                        call,
                        503,
                        None,
                        Instant::now(),
                    );
                    continue;
                };
                next += 1;
                *leg.remote.lock().expect("not poisoned") = remote_of(&offer);
                let port = leg.sock.local_addr().map(|a| a.port()).unwrap_or(0);
                b_answer.ua.lock().expect("not poisoned").respond(
                    call,
                    200,
                    Some(&sdp(port)),
                    Instant::now(),
                );
                b_answer.flush().await;
            }
        }
    });

    // A places the calls at the given rate.
    let rss_before = rss_kib(pid)?;
    let t0 = Instant::now();
    let mut refs = Vec::with_capacity(args.calls);
    let gap = Duration::from_micros(1_000_000 / args.rate.max(1));
    for leg in &legs_a {
        let port = leg.sock.local_addr()?.port();
        let call = a.ua.lock().expect("not poisoned").invite(
            "14155550177",
            DID,
            server_sip,
            &sdp(port),
            &[],
            Instant::now(),
        );
        refs.push(call);
        a.flush().await;
        tokio::time::sleep(gap).await;
    }
    let mut up = 0usize;
    let mut failed = 0usize;
    while up + failed < args.calls && Instant::now() < deadline {
        let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(40), a_rx.recv()).await else {
            break;
        };
        match ev {
            UaEvent::Answered { call, sdp: answer } => {
                if let Some(i) = refs.iter().position(|r| *r == call) {
                    *legs_a[i].remote.lock().expect("not poisoned") = remote_of(&answer);
                    up += 1;
                }
            }
            UaEvent::Failed { .. } => failed += 1,
            _ => {}
        }
    }
    let setup = t0.elapsed();
    println!(
        "calls: {} up, {failed} failed, set up in {:.1} s at {}/s",
        up,
        setup.as_secs_f64(),
        args.rate
    );
    if up == 0 {
        bail!("no call came up");
    }

    // Two-way audio: every 20 ms a packet on every leg.
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let (legs_a, legs_b, sent) = (legs_a.clone(), legs_b.clone(), sent.clone());
        let seconds = args.seconds;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let frames = seconds * 50;
            for seq in 0..frames {
                tick.tick().await;
                for (i, (la, lb)) in legs_a.iter().zip(&legs_b).enumerate() {
                    for (dir, leg) in [(0u8, la), (1u8, lb)] {
                        let Some(to) = *leg.remote.lock().expect("not poisoned") else {
                            continue;
                        };
                        if leg
                            .sock
                            .try_send_to(&packet(i as u32, dir, seq as u16), to)
                            .is_ok()
                        {
                            sent.fetch_add(1, Relaxed);
                        }
                    }
                }
            }
        })
    };
    let cpu0 = cpu_time(pid)?;
    let me0 = cpu_time(std::process::id())?;
    let w0 = Instant::now();
    sender.await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let wall = w0.elapsed();
    let server_cpu = cpu_time(pid)?.saturating_sub(cpu0);
    let gen_cpu = cpu_time(std::process::id())?.saturating_sub(me0);
    let rss_after = rss_kib(pid)?;
    let sent = sent.load(Relaxed);
    let got: u64 = legs_a
        .iter()
        .chain(&legs_b)
        .map(|l| l.received.load(Relaxed))
        .sum();
    let lost = sent.saturating_sub(got);
    let loss = 100.0 * lost as f64 / sent.max(1) as f64;
    let cores = server_cpu.as_secs_f64() / wall.as_secs_f64();
    println!(
        "audio: {sent} packets sent, {got} relayed back, loss {loss:.3} % over {:.1} s",
        wall.as_secs_f64()
    );
    println!(
        "server: {:.3} cores, {:.3} % of a core per call, RSS {} -> {} KiB ({:.1} KiB per call)",
        cores,
        100.0 * cores / up as f64,
        rss_before,
        rss_after,
        rss_after.saturating_sub(rss_before) as f64 / up as f64
    );
    println!(
        "load generator: {:.3} cores",
        gen_cpu.as_secs_f64() / wall.as_secs_f64()
    );

    // Hang up every call.
    {
        let mut ua = a.ua.lock().expect("not poisoned");
        for call in &refs {
            ua.hang_up(*call, Instant::now());
        }
    }
    a.flush().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    b_task.abort();
    let _ = server.kill().await;
    Ok(())
}
