//! What the tests against real peers (SIPp, the binary) share: ports,
//! scenarios, and reading a tab's WebSocket.

#![allow(dead_code)] // each test file uses its own part

use futures_util::StreamExt;
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use std::time::Instant;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/sipp")
        .join(name)
}

/// Ports handed to another process (SIPp, baresip, Kamailio) come from
/// below the kernel's ephemeral range (32768-60999 on Linux), where no
/// socket bound to port 0 ever lands: a port picked by binding port 0 and
/// letting go could be taken again by the server under test (its RTP
/// pairs and media sockets bind port 0) before the peer binds it, and
/// then the peer fails to start. Each pick is a block of four (SIPp's
/// media takes the port and the ones after it), free when picked, and a
/// process never picks one block twice.
fn free_block(free: impl Fn(u16) -> bool) -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    const LOW: u16 = 20_000;
    const BLOCKS: u16 = (32_000 - LOW) / 4;
    static NEXT: AtomicU16 = AtomicU16::new(u16::MAX);
    // Start each process somewhere else, so that test binaries run one
    // after another do not all begin with the same block.
    let start = (std::process::id() % u32::from(BLOCKS)) as u16;
    let _ = NEXT.compare_exchange(u16::MAX, start, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..BLOCKS {
        let block = NEXT.fetch_add(1, Ordering::SeqCst) % BLOCKS;
        let port = LOW + block * 4;
        if (port..port + 4).all(&free) {
            return port;
        }
    }
    panic!("no free block of four ports below the ephemeral range");
}

pub fn free_udp_port() -> u16 {
    free_block(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok())
}

pub fn free_tcp_port() -> u16 {
    free_block(|p| {
        std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok()
    })
}

/// The tab's next event; `{"ev":"closed"}` when the socket ended.
pub async fn next(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("an event in time")
        {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(_)) => continue,
            other => return json!({"ev": "closed", "why": format!("{other:?}")}),
        }
    }
}

/// The content of the tab's next `dialStatus` (null if the socket ended).
pub async fn dial(ws: &mut Ws) -> Value {
    loop {
        let ev = next(ws).await;
        if ev["ev"] == "dial" || ev["ev"] == "closed" {
            return ev["content"].clone();
        }
    }
}

/// The demo tenant's latest call records, through the admin API at `base`.
pub async fn admin_calls(base: &str) -> Vec<Value> {
    let token = sign_in(base, "admin@demo.local").await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r: Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/admin/calls?limit=500"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["calls"].as_array().unwrap().clone()
}

/// Picks the agent status `code` in the tab and waits until it is shown.
pub async fn set_status(ws: &mut Ws, code: i64) {
    use futures_util::SinkExt;
    ws.send(Message::text(
        json!({"op": "setStatus", "code": code}).to_string(),
    ))
    .await
    .unwrap();
    loop {
        let ev = next(ws).await;
        assert_ne!(ev["ev"], "closed");
        if ev["ev"] == "agent" && ev["agent"]["status"] == code {
            return;
        }
    }
}

/// SIPp ran its scenario to the end (it fails on any unexpected message).
pub async fn finished(mut child: Child, within: Duration) {
    let status = tokio::time::timeout(within, child.wait())
        .await
        .expect("sipp finished in time")
        .unwrap();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ = e.read_to_string(&mut err).await;
    }
    assert!(status.success(), "sipp failed ({status}): {err}");
}

pub fn call_out(callee: &str) -> Message {
    Message::text(
        json!({"op": "callOut", "caller": "", "callee": callee, "countryCode": "1"}).to_string(),
    )
}

/// SIPp as the carrier on `port`, naming `media` in its SDP, one call.
pub fn sipp_carrier(name: &str, port: u16, media: u16) -> Child {
    sipp(&[
        "-sf",
        scenario(name).to_str().unwrap(),
        "-p",
        &port.to_string(),
        "-mp",
        &media.to_string(),
    ])
}

/// SIPp with `args`, on 127.0.0.1, for one call, failing after 60 s.
pub fn sipp(args: &[&str]) -> Child {
    Command::new("sipp")
        .args(args)
        .args([
            "-i",
            "127.0.0.1",
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "60s",
            "-timeout_error",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sipp is installed (Debian package sip-tester)")
}

/// Signs in with the demo password, waiting for the server to come up.
pub async fn sign_in(base: &str, email: &str) -> Value {
    for _ in 0..100 {
        if let Ok(r) = reqwest::Client::new()
            .post(format!("{base}/api/v1/sessions"))
            .json(&json!({"email": email, "password": "demo1234"}))
            .send()
            .await
        {
            return r.json().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not come up");
}

/// A server on free loopback ports, seeded with the demo tenant, calling
/// out through `trunks` (none: the sandbox carrier); `change` sets the rest.
pub async fn start_with(
    trunks: Vec<seatline_server::config::TrunkConfig>,
    change: impl FnOnce(&mut seatline_server::config::Config),
) -> (tempfile::TempDir, seatline_server::Running) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = seatline_server::config::Config::default();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.data_dir = dir.path().join("data");
    cfg.demo.seed = true;
    cfg.sip.listen = "127.0.0.1:0".parse().unwrap();
    cfg.sandbox.listen = "127.0.0.1:0".parse().unwrap();
    cfg.trunks = trunks;
    change(&mut cfg);
    let running = seatline_server::start(cfg).await.unwrap();
    (dir, running)
}

/// A tab of `email` (demo password) at `base`/`ws_url`: its WebSocket
/// authenticated, `ready` seen.
pub async fn tab_at(base: &str, ws_url: &str, email: &str) -> Ws {
    use futures_util::SinkExt;
    let body = sign_in(base, email).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    ws.send(Message::text(
        json!({"op": "auth", "token": body["token"]}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next(&mut ws).await["ev"], "ready");
    ws
}

/// A tab of `email` on a server started in this process.
pub async fn tab_of(running: &seatline_server::Running, email: &str) -> Ws {
    let base = format!("http://{}", running.addr);
    tab_at(&base, &format!("ws://{}/ws", running.addr), email).await
}

/// The HTTP API of a test server, each request with its bearer token.
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn of(running: &seatline_server::Running) -> Api {
        Api {
            base: format!("http://{}", running.addr),
            http: reqwest::Client::new(),
        }
    }

    /// A session token of `email` (demo password).
    pub async fn token(&self, email: &str) -> String {
        sign_in(&self.base, email).await["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn json_of(r: reqwest::Response) -> (u16, Value) {
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        Self::json_of(self.http.get(url).bearer_auth(token).send().await.unwrap()).await
    }

    pub async fn get_bytes(&self, path: &str, token: &str) -> (u16, Vec<u8>) {
        let url = format!("{}{path}", self.base);
        let r = self.http.get(url).bearer_auth(token).send().await.unwrap();
        (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let r = self.http.put(url).bearer_auth(token).json(&body);
        Self::json_of(r.send().await.unwrap()).await
    }

    /// Routes the DID `did` to a refusal with SIP status `code`; the HTTP
    /// status of the change.
    pub async fn reject_did(&self, token: &str, did: &str, code: u16) -> u16 {
        let path = format!("/api/v1/admin/dids/{did}/route");
        self.put(&path, token, json!({ "reject": code })).await.0
    }

    /// `POST /api/v1/admin/api-keys` as `admin`.
    pub async fn new_key(&self, admin: &str, scopes: &[&str]) -> (u16, Value) {
        let url = format!("{}/api/v1/admin/api-keys", self.base);
        let body = json!({"name": "crm", "scopes": scopes});
        Self::json_of(
            self.http
                .post(url)
                .bearer_auth(admin)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}

/// The user id of `email` (any tenant), from the store of the server
/// running in this process.
pub async fn user_id(running: &seatline_server::Running, email: &str) -> i64 {
    running
        .app
        .store
        .users(None)
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.email == email)
        .expect("a user with that email")
        .id
}

/// Kamailio in the foreground, in a process group of its own (its main
/// process forks workers), stopped with the whole group when dropped.
pub struct Kamailio {
    main: std::process::Child,
    log: PathBuf,
}

impl Kamailio {
    /// Runs the configuration `cfg` (with `defines`, each `NAME=VALUE` for
    /// `-A`) in `dir`, and waits until it answers on UDP `port`.
    pub async fn start(dir: &Path, cfg: &Path, defines: &[String], port: u16) -> Kamailio {
        let log = dir.join("kamailio.log");
        let mut cmd = std::process::Command::new("kamailio");
        cmd.arg("-f").arg(cfg);
        for d in defines {
            cmd.arg("-A").arg(d);
        }
        let child = cmd
            // Not a daemon, logs to stderr, one worker, little memory.
            .args(["-DD", "-E", "-n", "1", "-m", "32", "-M", "8"])
            .arg("-Y")
            .arg(dir)
            .arg("-P")
            .arg(dir.join("kamailio.pid"))
            .arg("-w")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .process_group(0)
            .spawn()
            .expect("kamailio is installed (Debian package kamailio)");
        let k = Kamailio { main: child, log };
        k.wait_until_up(port).await;
        k
    }

    /// Until it answers anything on its port (an OPTIONS gets 405).
    async fn wait_until_up(&self, port: u16) {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let me = sock.local_addr().unwrap();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            let probe = format!(
                "OPTIONS sip:probe@127.0.0.1:{port} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {me};branch=z9hG4bKprobe{n}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:probe@{me}>;tag=probe\r\n\
                 To: <sip:probe@127.0.0.1:{port}>\r\nCall-ID: probe{n}@test\r\n\
                 CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                n = t0.elapsed().as_millis()
            );
            sock.send_to(probe.as_bytes(), ("127.0.0.1", port))
                .await
                .unwrap();
            let mut buf = [0u8; 2048];
            let got =
                tokio::time::timeout(Duration::from_millis(200), sock.recv_from(&mut buf)).await;
            if got.is_ok() {
                return;
            }
        }
        panic!("kamailio did not come up: {}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kamailio's log:\n{}", self.log_text());
        }
        // The main process stops its workers on SIGTERM; the group's
        // SIGKILL is for when it does not in time.
        let group = -(self.main.id() as i32);
        // SAFETY: plain kill(2) to the group this test started.
        unsafe { libc::kill(group, libc::SIGTERM) };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(3) {
            if !matches!(self.main.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.main.wait();
    }
}

/// An INVITE from `sock` to `called` at Seatline; the final status it gets.
pub async fn final_status(
    sock: &tokio::net::UdpSocket,
    target: std::net::SocketAddr,
    called: &str,
) -> u16 {
    let me = sock.local_addr().unwrap();
    let mut ua = seatline_sip::UserAgent::new(me, seatline_sip::Timers::default());
    let sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    ua.invite(
        "14155550177",
        called,
        target,
        sdp,
        &[],
        std::time::Instant::now(),
    );
    let mut buf = [0u8; 4000];
    loop {
        while let Some(t) = ua.poll_transmit() {
            sock.send_to(&t.bytes, t.to).await.unwrap();
        }
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        ua.handle_datagram(&buf[..n], from, std::time::Instant::now());
        while let Some(ev) = ua.poll_event() {
            if let seatline_sip::UaEvent::Failed { code, .. } = ev {
                return code;
            }
        }
    }
}

/// 1 s of a 440 Hz sine at half scale, 16 kHz mono: about -9 dBFS RMS.
pub fn prompt_wav() -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
    for i in 0..16_000 {
        let v = 0.5 * (2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / 16_000.0).sin();
        w.write_sample((v * 32_767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
    out.into_inner()
}

/// A request with a WAV body (`audio/wav`): its status and JSON answer.
pub async fn send(
    c: &Api,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let r = c
        .http
        .request(method, format!("{}{path}", c.base))
        .bearer_auth(token)
        .header("content-type", "audio/wav")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}
