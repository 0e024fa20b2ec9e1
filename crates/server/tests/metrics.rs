//! Operator visibility against real peers: `GET /metrics` after calls
//! through the sandbox carrier (real SIP and RTP on loopback) and a SIPp
//! trunk's keepalive, its bearer token, and the real binary's JSON logs
//! with the call id on the lines about a call.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::SinkExt;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::*;
use tokio::io::AsyncBufReadExt;
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;

/// One sample: the metric's name and its labels, sorted.
type Series = (String, Vec<(String, String)>);

fn bad<T>(line: &str) -> T {
    panic!("not a sample line: {line:?}")
}

/// Parses the text exposition format strictly: every line is a `#`
/// comment or `name{label="value",...} number`; panics on anything else.
fn parse_metrics(text: &str) -> BTreeMap<Series, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| bad(line));
        let name = &line[..name_end];
        let name_ok = !name.is_empty()
            && name
                .chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit()));
        if !name_ok {
            bad::<()>(line);
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            let mut r = r;
            loop {
                if let Some(after) = r.strip_prefix('}') {
                    r = after;
                    break;
                }
                let eq = r.find("=\"").unwrap_or_else(|| bad(line));
                let key = r[..eq].to_string();
                if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    bad::<()>(line);
                }
                let mut value = String::new();
                let mut chars = r[eq + 2..].char_indices();
                let end = loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c @ ('\\' | '"'))) => value.push(c),
                            _ => bad(line),
                        },
                        Some((i, '"')) => break eq + 2 + i + 1,
                        Some((_, c)) => value.push(c),
                        None => bad(line),
                    }
                };
                labels.push((key, value));
                r = &r[end..];
                r = r.strip_prefix(',').unwrap_or(r);
            }
            rest = r;
        }
        let value = rest.strip_prefix(' ').unwrap_or_else(|| bad(line));
        let value: f64 = value.parse().unwrap_or_else(|_| bad(line));
        labels.sort();
        assert!(
            out.insert((name.to_string(), labels), value).is_none(),
            "a series twice: {line}"
        );
    }
    out
}

fn series(name: &str, labels: &[(&str, &str)]) -> Series {
    let mut l: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort();
    (name.to_string(), l)
}

async fn scrape(base: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(format!("{base}/metrics"));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    req.send().await.unwrap()
}

async fn metrics(base: &str) -> BTreeMap<Series, f64> {
    let resp = scrape(base, None).await;
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = resp.text().await.unwrap();
    // Every metric says what it is.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        let family = name.strip_suffix("_total").unwrap_or(name);
        assert!(
            text.contains(&format!("# HELP {name} ")) || text.contains(&format!("# HELP {family}")),
            "no HELP for {name}"
        );
        assert!(name.starts_with("seatline_"), "{name}");
    }
    parse_metrics(&text)
}

fn get(m: &BTreeMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    m.get(&series(name, labels)).copied()
}

#[test]
fn the_parser_is_strict() {
    let m = parse_metrics("# HELP x y\nx{a=\"1\\\"\",b=\"\\n\"} 2\ny 3.5\n");
    assert_eq!(m[&series("x", &[("a", "1\""), ("b", "\n")])], 2.0);
    assert_eq!(m[&series("y", &[])], 3.5);
    for bad in [
        "x{a=1} 2",
        "x 2 3",
        "x{a=\"1\"}2",
        "{a=\"1\"} 2",
        "x",
        "1x 2",
    ] {
        assert!(
            std::panic::catch_unwind(|| parse_metrics(bad)).is_err(),
            "{bad} was taken"
        );
    }
}

#[tokio::test]
async fn metrics_count_calls_through_the_sandbox_carrier_by_trunk_and_code() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let base = format!("http://{}", running.addr);
    let m = metrics(&base).await;
    assert_eq!(
        get(&m, "seatline_calls_total", &[("direction", "outbound")]),
        Some(0.0)
    );
    assert_eq!(
        get(
            &m,
            "seatline_trunk_up",
            &[("trunk", "sandbox"), ("tenant", "shared")]
        ),
        Some(1.0)
    );
    assert_eq!(
        get(
            &m,
            "seatline_trunk_registered",
            &[("trunk", "sandbox"), ("tenant", "shared")]
        ),
        None,
        "only for trunks that register"
    );

    let mut ws = tab_of(&running, "agent1@demo.local").await;
    let m = metrics(&base).await;
    assert_eq!(get(&m, "seatline_agents", &[("status", "idle")]), Some(1.0));
    assert_eq!(get(&m, "seatline_tabs", &[]), Some(1.0));

    // The sandbox refuses this number with 503.
    ws.send(call_out("12025550150")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    loop {
        if dial(&mut ws).await["code"] == 5 {
            break;
        }
    }
    // This one it answers at once, with a 1 kHz tone.
    ws.send(call_out("12025550101")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    assert_eq!(dial(&mut ws).await["code"], 2);
    let m = metrics(&base).await;
    assert_eq!(
        get(
            &m,
            "seatline_calls_in_progress",
            &[("direction", "outbound")]
        ),
        Some(1.0)
    );
    assert_eq!(get(&m, "seatline_agents", &[("status", "busy")]), Some(1.0));
    tokio::time::sleep(Duration::from_millis(600)).await;
    ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 5);

    // The media worker adds the call's packets when its media goes.
    let t0 = Instant::now();
    let m = loop {
        let m = metrics(&base).await;
        let rtp_in = get(&m, "seatline_rtp_packets_total", &[("direction", "in")]).unwrap();
        if rtp_in > 0.0 || t0.elapsed() > Duration::from_secs(5) {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let rtp_in = get(&m, "seatline_rtp_packets_total", &[("direction", "in")]).unwrap();
    assert!(
        rtp_in >= 10.0,
        "about 50 tone packets a second came in: {rtp_in}"
    );
    assert!(get(&m, "seatline_rtp_packets_total", &[("direction", "out")]).is_some());
    assert_eq!(get(&m, "seatline_rtp_packets_lost_total", &[]), Some(0.0));
    assert_eq!(
        get(&m, "seatline_calls_total", &[("direction", "outbound")]),
        Some(2.0)
    );
    for d in ["outbound", "inbound", "forwarded"] {
        assert_eq!(
            get(&m, "seatline_calls_in_progress", &[("direction", d)]),
            Some(0.0),
            "{d}"
        );
    }
    assert_eq!(
        get(
            &m,
            "seatline_sip_responses_total",
            &[("trunk", "sandbox"), ("code", "503")]
        ),
        Some(1.0)
    );
    assert_eq!(
        get(
            &m,
            "seatline_sip_responses_total",
            &[("trunk", "sandbox"), ("code", "200")]
        ),
        Some(1.0)
    );
    assert_eq!(get(&m, "seatline_agents", &[("status", "idle")]), Some(1.0));
}

#[tokio::test]
async fn a_sipp_trunk_s_keepalive_flips_its_up_gauge() {
    let port = free_udp_port();
    let pings = Command::new("sipp")
        .args(["-sf", scenario("carrier_options.xml").to_str().unwrap()])
        .args(["-p", &port.to_string(), "-mp", &free_udp_port().to_string()])
        .args(["-i", "127.0.0.1", "-m", "1000", "-nostdin"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("sipp is installed (Debian package sip-tester)");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut t =
        seatline_server::config::TrunkConfig::udp("carrier", &format!("sip:127.0.0.1:{port}"));
    t.keepalive_secs = 1;
    let (_dir, running) = start_with(vec![t], |_| {}).await;
    let base = format!("http://{}", running.addr);
    let up_becomes = |want: f64| {
        let base = base.clone();
        async move {
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
                let m = metrics(&base).await;
                if get(
                    &m,
                    "seatline_trunk_up",
                    &[("trunk", "carrier"), ("tenant", "shared")],
                ) == Some(want)
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("seatline_trunk_up never became {want}");
        }
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    up_becomes(1.0).await;
    drop(pings);
    up_becomes(0.0).await;
}

#[tokio::test]
async fn with_a_bearer_token_metrics_want_it_and_refuse_anything_else() {
    const TOKEN: &str = "metrics-token-0123456789";
    let (_dir, running) = start_with(vec![], |c| {
        c.metrics.bearer_token = Some(TOKEN.into());
    })
    .await;
    let base = format!("http://{}", running.addr);
    for token in [
        None,
        Some("wrong"),
        Some(&TOKEN[..TOKEN.len() - 1]),
        Some(""),
    ] {
        let resp = scrape(&base, token).await;
        assert_eq!(resp.status(), 401, "{token:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
    }
    // Another scheme, the token twice, or bytes that are no text: refused
    // the same way.
    for value in [
        format!("Basic {TOKEN}"),
        format!("Bearer {TOKEN} {TOKEN}"),
        format!("Bearer  {TOKEN}"),
    ] {
        let resp = reqwest::Client::new()
            .get(format!("{base}/metrics"))
            .header("Authorization", value.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{value}");
    }
    let resp = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .header(
            "Authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .header("Authorization", format!("bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the scheme's case does not matter");
    let resp = scrape(&base, Some(TOKEN)).await;
    assert_eq!(resp.status(), 200);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("# HELP seatline_calls_total"));
}

/// Collects a child's output lines until it closes.
fn lines_of(
    pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(pipe).lines();
        let mut out = Vec::new();
        while let Ok(Some(l)) = lines.next_line().await {
            out.push(l);
        }
        out
    })
}

#[tokio::test]
async fn the_binary_s_json_logs_carry_the_call_id_on_every_line_of_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let http = free_tcp_port();
    let cfg = dir.path().join("seatline.toml");
    // The config says text; the flag wins.
    std::fs::write(
        &cfg,
        "[log]\nformat = \"text\"\n\n[sip]\nlisten = \"127.0.0.1:0\"\n\n[sandbox]\nlisten = \"127.0.0.1:0\"\n\n[media]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_seatline"))
        .args(["demo", "--listen", &format!("127.0.0.1:{http}")])
        .args(["--data-dir", dir.path().join("data").to_str().unwrap()])
        .args(["--config", cfg.to_str().unwrap()])
        .args(["--log-format", "json"])
        .env("RUST_LOG", "info,seatline_server=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = lines_of(server.stdout.take().unwrap());
    let stderr = lines_of(server.stderr.take().unwrap());

    let base = format!("http://127.0.0.1:{http}");
    let session = sign_in(&base, "agent1@demo.local").await;
    let token = session["token"].as_str().unwrap().to_string();
    let mut ws = tab_at(
        &base,
        &format!("ws://127.0.0.1:{http}/ws"),
        "agent1@demo.local",
    )
    .await;
    ws.send(call_out("12025550101")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    let up = dial(&mut ws).await;
    assert_eq!(up["code"], 2);
    let call_id = up["callId"].as_str().unwrap().to_string();
    ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 5);

    let pid = server.id().unwrap() as i32;
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let mut lines = stdout.await.unwrap();
    lines.extend(stderr.await.unwrap());

    let mut logs = Vec::new();
    for line in &lines {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        assert!(v["message"].is_string(), "{line}");
        logs.push(v);
    }
    assert!(
        logs.iter()
            .any(|v| v["message"].as_str().unwrap().contains("demo is running")),
        "the banner is a log line too"
    );
    let of_call: Vec<&Value> = logs
        .iter()
        .filter(|v| v["call_id"] == call_id.as_str())
        .collect();
    let messages: Vec<&str> = of_call
        .iter()
        .map(|v| v["message"].as_str().unwrap())
        .collect();
    for want in ["call placed", "call connected", "call ended", "dialStatus"] {
        assert!(messages.contains(&want), "no {want:?} line: {messages:?}");
    }
    let ended = of_call
        .iter()
        .find(|v| v["message"] == "call ended")
        .unwrap();
    assert_eq!(ended["direction"], "outbound");
    assert_eq!(ended["trunk"], "sandbox");
    // Every line about a call (the lifecycle and the tabs' dialStatus)
    // names it; none names another.
    for v in &logs {
        let m = v["message"].as_str().unwrap();
        if m.starts_with("call ") || m == "dialStatus" {
            assert_eq!(v["call_id"], call_id.as_str(), "{v}");
        }
    }
    // No secret in any line: the demo password, the session token.
    for line in &lines {
        assert!(!line.contains("demo1234"), "{line}");
        assert!(!line.contains(&token), "{line}");
    }
}
