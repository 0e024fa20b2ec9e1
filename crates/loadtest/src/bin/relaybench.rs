//! `seatline-relaybench`: N concurrent forwarded calls through Seatline,
//! G.711 both ways, and how much of it arrives. This tool is both ends: the
//! carrier that calls a DID forwarded to a number (leg A) and the number's
//! carrier that answers (leg B, Seatline's trunk), each with our own SIP
//! user agent and one UDP socket per call leg. Every packet carries its
//! call, direction and counter, so loss is counted per direction. Reports
//! the server's CPU and memory per call beside the tool's own CPU. With
//! `--rtpengine`, the same packets go through rtpengine; with `--rustpbx
//! BIN`, the same calls go through RustPBX forwarding every INVITE to leg
//! B with its media proxy on (`scripts/bench/rustpbx.toml`).

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
    /// Relay the same load through rtpengine (Debian's rtpengine-daemon,
    /// userspace forwarding, set up over its ng protocol) instead of
    /// Seatline: the peer figure for the same run.
    #[arg(long)]
    rtpengine: bool,
    /// Place the same calls through RustPBX (this binary) instead of
    /// Seatline: it forwards every INVITE to leg B, relaying the media.
    #[arg(long)]
    rustpbx: Option<PathBuf>,
    /// RustPBX's configuration template (@SIP_PORT@, @CALLEE_PORT@,
    /// @HTTP_PORT@, @DATA_DIR@ filled in).
    #[arg(long, default_value = "scripts/bench/rustpbx.toml")]
    rustpbx_conf: PathBuf,
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
        profile: seatline_sip::sdp::Profile::Avp,
        crypto: Vec::new(),
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
    let relay = if args.rtpengine {
        rtpengine(&args, &legs_a, &legs_b, deadline).await?
    } else {
        seatline(&args, &legs_a, &legs_b, deadline).await?
    };
    let up = legs_a
        .iter()
        .zip(&legs_b)
        .filter(|(a, b)| {
            a.remote.lock().expect("not poisoned").is_some()
                && b.remote.lock().expect("not poisoned").is_some()
        })
        .count();
    if up == 0 {
        bail!("no call came up");
    }
    measure(&args, &legs_a, &legs_b, relay.pid, relay.rss_before, up).await?;
    (relay.stop)().await;
    Ok(())
}

/// The relay under test once its calls are up.
struct Relay {
    pid: u32,
    rss_before: u64,
    stop: Box<dyn FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>>,
}

/// Starts RustPBX from its template in `dir`: SIP on `sip`, every INVITE
/// forwarded to `callee`, HTTP on the tool's port; ready once its health
/// check answers.
async fn start_rustpbx(
    args: &Args,
    bin: &std::path::Path,
    dir: &std::path::Path,
    sip: SocketAddr,
    callee: SocketAddr,
    deadline: Instant,
) -> anyhow::Result<tokio::process::Child> {
    let template = std::fs::read_to_string(&args.rustpbx_conf)
        .with_context(|| format!("reading {}", args.rustpbx_conf.display()))?;
    let conf = template
        .replace("@SIP_PORT@", &sip.port().to_string())
        .replace("@CALLEE_PORT@", &callee.port().to_string())
        .replace("@HTTP_PORT@", &args.port.to_string())
        .replace("@DATA_DIR@", &dir.display().to_string());
    let path = dir.join("rustpbx.toml");
    std::fs::write(&path, conf)?;
    let child = tokio::process::Command::new(bin)
        .arg("--conf")
        .arg(&path)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", args.port))
            .await
            .is_ok()
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("rustpbx did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(child)
}

/// Starts Seatline (or RustPBX) with a DID forwarded to a number, and
/// places the calls through it; each leg learns where to send.
async fn seatline(
    args: &Args,
    legs_a: &[Arc<Leg>],
    legs_b: &[Arc<Leg>],
    deadline: Instant,
) -> anyhow::Result<Relay> {
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
    let mut server = match &args.rustpbx {
        Some(bin) => start_rustpbx(args, bin, dir.path(), server_sip, b_addr, deadline).await?,
        None => {
            start_server(
                &args.seatline,
                &dir.path().join("seatline.toml"),
                &cfg,
                args.port,
                deadline,
            )
            .await?
        }
    };
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

    // B answers every INVITE with the next free media socket of its side.
    let b_answer = b.clone();
    let b_legs: Vec<Arc<Leg>> = legs_b.to_vec();
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
    for leg in legs_a {
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

    let stop: Relay = Relay {
        pid,
        rss_before,
        stop: Box::new(move || {
            Box::pin(async move {
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
                drop(dir);
            })
        }),
    };
    Ok(stop)
}

/// Two-way audio on every call for the run's seconds; prints the figures.
async fn measure(
    args: &Args,
    legs_a: &[Arc<Leg>],
    legs_b: &[Arc<Leg>],
    pid: u32,
    rss_before: u64,
    up: usize,
) -> anyhow::Result<()> {
    // Two-way audio: every 20 ms a packet on every leg.
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let (legs_a, legs_b, sent) = (legs_a.to_vec(), legs_b.to_vec(), sent.clone());
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
        .chain(legs_b.iter())
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

    Ok(())
}

/// A bencoded dictionary of strings (rtpengine's ng protocol).
fn bencode(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = b"d".to_vec();
    for (k, v) in pairs {
        out.extend_from_slice(format!("{}:{k}{}:", k.len(), v.len()).as_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out.push(b'e');
    out
}

/// The string value of `key` in a bencoded reply (enough for `result` and `sdp`).
fn bdecode_str(reply: &[u8], key: &str) -> Option<String> {
    let needle = format!("{}:{key}", key.len());
    let at = reply
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())?
        + needle.len();
    let rest = &reply[at..];
    let colon = rest.iter().position(|b| *b == b':')?;
    let len: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
    let value = rest.get(colon + 1..colon + 1 + len)?;
    Some(String::from_utf8_lossy(value).into_owned())
}

/// One ng command and its reply's SDP.
async fn ng(
    sock: &UdpSocket,
    to: SocketAddr,
    cookie: usize,
    pairs: &[(&str, &str)],
) -> anyhow::Result<String> {
    let mut msg = format!("{cookie} ").into_bytes();
    msg.extend_from_slice(&bencode(pairs));
    sock.send_to(&msg, to).await?;
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .context("rtpengine did not answer")??;
        let reply = &buf[..n];
        if !reply.starts_with(format!("{cookie} ").as_bytes()) {
            continue;
        }
        if bdecode_str(reply, "result").as_deref() != Some("ok") {
            bail!("rtpengine refused: {}", String::from_utf8_lossy(reply));
        }
        return bdecode_str(reply, "sdp").context("no SDP in rtpengine's reply");
    }
}

/// Starts rtpengine (userspace forwarding, no kernel table) and sets up
/// every call with an offer (A's SDP) and an answer (B's).
async fn rtpengine(
    args: &Args,
    legs_a: &[Arc<Leg>],
    legs_b: &[Arc<Leg>],
    deadline: Instant,
) -> anyhow::Result<Relay> {
    let ng_port = args.port + 2;
    let ng_addr: SocketAddr = format!("127.0.0.1:{ng_port}").parse()?;
    let mut child = tokio::process::Command::new("rtpengine")
        .args([
            "--foreground",
            "--log-stderr",
            "--table=-1",
            "--interface=127.0.0.1",
        ])
        .arg(format!("--listen-ng=127.0.0.1:{ng_port}"))
        .args(["--port-min=30000", "--port-max=60000", "--log-level=3"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("rtpengine is installed (Debian package rtpengine-daemon)")?;
    let pid = child.id().context("rtpengine pid")?;
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    // Wait for its control port: a ping answers once it is up.
    loop {
        let mut msg = b"0 ".to_vec();
        msg.extend_from_slice(&bencode(&[("command", "ping")]));
        sock.send_to(&msg, ng_addr).await?;
        let mut buf = [0u8; 512];
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(200), sock.recv_from(&mut buf)).await
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("rtpengine did not start");
        }
    }
    let rss_before = rss_kib(pid)?;
    let t0 = Instant::now();
    for (i, (a, b)) in legs_a.iter().zip(legs_b).enumerate() {
        let call_id = format!("relaybench-{i}");
        let a_port = a.sock.local_addr()?.port();
        let b_port = b.sock.local_addr()?.port();
        let a_sdp = String::from_utf8_lossy(&sdp(a_port)).into_owned();
        let b_sdp = String::from_utf8_lossy(&sdp(b_port)).into_owned();
        let to_b = ng(
            &sock,
            ng_addr,
            2 * i + 1,
            &[
                ("command", "offer"),
                ("call-id", &call_id),
                ("from-tag", "a"),
                ("sdp", &a_sdp),
            ],
        )
        .await?;
        let to_a = ng(
            &sock,
            ng_addr,
            2 * i + 2,
            &[
                ("command", "answer"),
                ("call-id", &call_id),
                ("from-tag", "a"),
                ("to-tag", "b"),
                ("sdp", &b_sdp),
            ],
        )
        .await?;
        *b.remote.lock().expect("not poisoned") = remote_of(to_b.as_bytes());
        *a.remote.lock().expect("not poisoned") = remote_of(to_a.as_bytes());
    }
    println!(
        "calls: {} set up through rtpengine in {:.1} s",
        legs_a.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok(Relay {
        pid,
        rss_before,
        stop: Box::new(move || {
            Box::pin(async move {
                let _ = child.kill().await;
            })
        }),
    })
}
