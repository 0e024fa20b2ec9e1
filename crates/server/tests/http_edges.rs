//! The HTTP server's edges, over real sockets on loopback: sign-in under
//! load (memory, 503), sign-in throttling (429), body limits (413/415/400),
//! JSON errors everywhere, security headers and the SDK route.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

use reqwest::header::HeaderMap;
use seatline_server::config::Config;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The memory test measures the whole process: it runs alone, the others
/// together.
static EXCLUSIVE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

struct Server {
    addr: SocketAddr,
    base: String,
    _dir: tempfile::TempDir,
}

async fn start(tune: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    cfg.demo.seed = true;
    cfg.sip.listen = "127.0.0.1:0".parse().unwrap();
    cfg.sandbox.listen = "127.0.0.1:0".parse().unwrap();
    tune(&mut cfg);
    let running = seatline_server::start(cfg).await.unwrap();
    Server {
        addr: running.addr,
        base: format!("http://{}", running.addr),
        _dir: dir,
    }
}

async fn sign_in(s: &Server, email: &str, password: &str) -> (u16, HeaderMap, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/sessions", s.base))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let (code, headers) = (r.status().as_u16(), r.headers().clone());
    (code, headers, r.json().await.unwrap())
}

/// The shape of a 429: JSON `{error, message, retryAfterSecs}` and a
/// matching `Retry-After`; returns the seconds.
fn assert_throttled(code: u16, headers: &HeaderMap, body: &Value) -> u64 {
    assert_eq!(code, 429, "{body}");
    assert_eq!(body["error"], "tooManyAttempts");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["error", "message", "retryAfterSecs"]);
    let secs = body["retryAfterSecs"].as_u64().unwrap();
    assert_eq!(headers["retry-after"].to_str().unwrap(), secs.to_string());
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    secs
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

const MB: u64 = 1024 * 1024;

/// 200 wrong sign-ins at once, twice: answers are 401, or 503 `busy` at
/// once for those beyond the waiting bound, and memory stays flat. (Measured
/// with this test on 2 cores: argon2 unbounded on the blocking pool, +2.5 GB
/// and never given back; one at a time per core but allocating its 19 MiB
/// each time, +520 MB kept by glibc; with kept buffers, +9 MB.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_wrong_sign_ins_twice_keep_memory_flat() {
    let _alone = EXCLUSIVE.write().await;
    // Limits out of the way: every attempt reaches the password check.
    let s = start(|c| {
        c.signin.max_failures_per_account = 1_000_000;
        c.signin.max_failures_per_address = 1_000_000;
    })
    .await;
    let client = reqwest::Client::new();
    // Warm up: the decoy hash, a kept argon2 buffer, the connection code.
    for _ in 0..3 {
        assert_eq!(sign_in(&s, "agent1@demo.local", "wrong").await.0, 401);
    }
    let before = rss_bytes();
    let peak = Arc::new(AtomicU64::new(before));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut codes = BTreeMap::new();
    for round in 0..2 {
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let (c, url) = (client.clone(), format!("{}/api/v1/sessions", s.base));
                // Unknown accounts (the decoy hash), then one known account.
                let email = if round == 0 {
                    format!("nobody{i}@demo.local")
                } else {
                    "agent2@demo.local".into()
                };
                tokio::spawn(async move {
                    let r = c
                        .post(url)
                        .json(&json!({"email": email, "password": "wrong"}))
                        .send()
                        .await
                        .unwrap();
                    let (code, retry) =
                        (r.status().as_u16(), r.headers().get("retry-after").cloned());
                    let body: Value = r.json().await.unwrap();
                    (code, retry, body)
                })
            })
            .collect();
        for t in tasks {
            let (code, retry, body) = t.await.unwrap();
            assert!(matches!(code, 401 | 429 | 503), "{code} {body}");
            if code == 503 {
                assert_eq!(body["error"], "busy");
                assert!(body["message"].is_string());
                assert_eq!(retry.unwrap(), "1");
            }
            *codes.entry(code).or_insert(0) += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let (peak, after) = (peak.load(Ordering::Relaxed), rss_bytes());
    eprintln!(
        "answers {codes:?}; RSS before {} MB, peak {} MB, after {} MB",
        before / MB,
        peak / MB,
        after / MB
    );
    assert!(
        codes.get(&401).is_some_and(|n| *n > 0),
        "some were checked: {codes:?}"
    );
    assert!(
        codes.get(&503).is_some_and(|n| *n > 0),
        "the rest were refused at once: {codes:?}"
    );
    // argon2 keeps one 19 MiB buffer per core; the rest is connections.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u64);
    let bound = 60 * MB + cores * 20 * MB;
    assert!(
        peak < before + bound,
        "peak RSS grew by {} MB",
        (peak - before) / MB
    );
    assert!(
        after < before + bound,
        "RSS grew by {} MB for good",
        after.saturating_sub(before) / MB
    );
    // Still serving.
    assert_eq!(sign_in(&s, "agent1@demo.local", "demo1234").await.0, 200);
}

/// Five failures for an account, known or not, then 429 (even with the
/// right password), alike; after the window the right password works, and
/// a success starts the count afresh.
#[tokio::test]
async fn an_account_is_throttled_after_its_failures_whether_it_exists_or_not() {
    let _shared = EXCLUSIVE.read().await;
    let s = start(|c| {
        c.signin.max_failures_per_account = 5;
        c.signin.max_failures_per_address = 1000;
        c.signin.window_secs = 2;
    })
    .await;
    let mut refusals = Vec::new();
    for email in ["agent1@demo.local", "nobody@demo.local"] {
        for _ in 0..5 {
            let (code, _, body) = sign_in(&s, email, "wrong").await;
            assert_eq!(
                (code, body["error"].as_str()),
                (401, Some("invalidCredentials"))
            );
        }
        let (code, headers, body) = sign_in(&s, email, "wrong").await;
        let secs = assert_throttled(code, &headers, &body);
        assert!((1..=2).contains(&secs), "{secs}");
        // Case and blanks do not make another account; the right password
        // is refused as well, without being checked.
        let (code, headers, body) =
            sign_in(&s, &format!(" {} ", email.to_uppercase()), "demo1234").await;
        assert_throttled(code, &headers, &body);
        refusals.push(body);
    }
    assert_eq!(
        refusals[0]["message"], refusals[1]["message"],
        "the same answer for a known and an unknown account"
    );
    assert_eq!(
        sign_in(&s, "agent2@demo.local", "wrong").await.0,
        401,
        "other accounts go on"
    );

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (code, _, body) = sign_in(&s, "agent1@demo.local", "demo1234").await;
    assert_eq!(code, 200, "{body}");

    // A success clears the account's failures.
    for _ in 0..4 {
        assert_eq!(sign_in(&s, "agent1@demo.local", "wrong").await.0, 401);
    }
    assert_eq!(sign_in(&s, "agent1@demo.local", "demo1234").await.0, 200);
    for _ in 0..5 {
        assert_eq!(sign_in(&s, "agent1@demo.local", "wrong").await.0, 401);
    }
    let (code, headers, body) = sign_in(&s, "agent1@demo.local", "wrong").await;
    assert_throttled(code, &headers, &body);
}

/// Failures from one address across many accounts, then 429 for any
/// account from it.
#[tokio::test]
async fn an_address_is_throttled_across_accounts() {
    let _shared = EXCLUSIVE.read().await;
    let s = start(|c| {
        c.signin.max_failures_per_account = 100;
        c.signin.max_failures_per_address = 4;
        c.signin.window_secs = 60;
    })
    .await;
    for email in [
        "a@demo.local",
        "b@demo.local",
        "agent1@demo.local",
        "c@demo.local",
    ] {
        assert_eq!(sign_in(&s, email, "wrong").await.0, 401);
    }
    for email in ["d@demo.local", "agent2@demo.local"] {
        let (code, headers, body) = sign_in(&s, email, "demo1234").await;
        let secs = assert_throttled(code, &headers, &body);
        assert!((1..=60).contains(&secs));
    }
}

/// Sends a raw HTTP/1.1 request (the head, then body pieces, ignoring a
/// server that stops reading), and returns the status, head and body.
async fn raw(addr: SocketAddr, head: &str, body: &[&[u8]]) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    for piece in body {
        if s.write_all(piece).await.is_err() {
            break;
        }
    }
    let mut resp = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut resp)).await;
    let resp = String::from_utf8_lossy(&resp).to_string();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_lowercase(), body.to_string())
}

async fn post_raw(s: &Server, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", s.base))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    (code, r.json().await.unwrap())
}

#[tokio::test]
async fn bodies_too_large_mistyped_or_malformed_get_413_415_400_as_json() {
    let _shared = EXCLUSIVE.read().await;
    let s = start(|_| {}).await;
    let big = format!(
        "{{\"email\":\"a@b\",\"password\":\"{}\"}}",
        "x".repeat(3 * 1024 * 1024)
    )
    .into_bytes();
    for path in [
        "/api/v1/sessions",
        "/api/v1/sandbox/calls",
        "/api/v1/admin/policy",
    ] {
        let (code, body) = post_raw(&s, path, "application/json", big.clone()).await;
        assert_eq!(
            (code, body["error"].as_str()),
            (413, Some("payloadTooLarge")),
            "{path}: {body}"
        );
        assert!(body["message"].is_string());
    }
    // Chunked, so no length is declared: cut at the limit.
    let head = "POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
    let mut pieces: Vec<&[u8]> = vec![b"4\r\n{\"a\"\r\n"];
    pieces.extend(vec![chunk.as_bytes(); 8]);
    pieces.push(b"0\r\n\r\n");
    let (code, head, body) = raw(s.addr, head, &pieces).await;
    assert_eq!(code, 413, "{head}{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"],
        "payloadTooLarge"
    );

    let creds = br#"{"email":"agent1@demo.local","password":"demo1234"}"#.to_vec();
    let (code, body) = post_raw(&s, "/api/v1/sessions", "text/plain", creds.clone()).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (415, Some("unsupportedMediaType"))
    );
    let (code, body) = post_raw(&s, "/api/v1/sandbox/calls", "text/plain", b"{}".to_vec()).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (415, Some("unsupportedMediaType"))
    );
    let (code, body) = post_raw(
        &s,
        "/api/v1/sessions",
        "application/json",
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!((code, body["error"].as_str()), (400, Some("badRequest")));
    let (code, body) = post_raw(
        &s,
        "/api/v1/sessions",
        "application/json",
        br#"{"email":1}"#.to_vec(),
    )
    .await;
    assert_eq!((code, body["error"].as_str()), (400, Some("badRequest")));
    // A body within the limit is taken.
    let (code, _) = post_raw(&s, "/api/v1/sessions", "application/json", creds).await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn admin_query_and_path_errors_and_other_refusals_are_json() {
    let _shared = EXCLUSIVE.read().await;
    let s = start(|_| {}).await;
    let (code, _, body) = sign_in(&s, "admin@demo.local", "demo1234").await;
    assert_eq!(code, 200);
    let token = body["token"].as_str().unwrap().to_string();
    let client = reqwest::Client::new();
    let json_of = |r: reqwest::Response| async move {
        let code = r.status().as_u16();
        let headers = r.headers().clone();
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{headers:?}"
        );
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{body}"
        );
        (code, headers, body)
    };

    let r = client
        .get(format!("{}/api/v1/admin/calls?limit=abc", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (code, _, body) = json_of(r).await;
    assert_eq!((code, body["error"].as_str()), (400, Some("badQuery")));
    let r = client
        .get(format!("{}/api/v1/admin/calls?limit=3", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Without a token, the token is what is wrong.
    let r = client
        .get(format!("{}/api/v1/admin/calls?limit=abc", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await.0, 401);

    // A path that is not UTF-8.
    let r = client
        .put(format!("{}/api/v1/admin/blacklist/%FF%FE", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (code, _, body) = json_of(r).await;
    assert_eq!((code, body["error"].as_str()), (400, Some("badPath")));
    let r = client
        .get(format!("{}/admin/%FF.js", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await.0, 400);

    // Method not allowed keeps its Allow header; a plain GET of the socket.
    let r = client
        .post(format!("{}/api/v1/admin/calls", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (code, headers, body) = json_of(r).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (405, Some("methodNotAllowed"))
    );
    assert!(headers.contains_key("allow"));
    let r = client.get(format!("{}/ws", s.base)).send().await.unwrap();
    assert!(json_of(r).await.0 >= 400);
}

fn assert_common_headers(what: &str, h: &HeaderMap) {
    assert_eq!(
        h.get("x-content-type-options").map(|v| v.to_str().unwrap()),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        h.get("referrer-policy").map(|v| v.to_str().unwrap()),
        Some("strict-origin-when-cross-origin"),
        "{what}"
    );
}

fn assert_not_frameable(what: &str, h: &HeaderMap) {
    assert_common_headers(what, h);
    assert_eq!(
        h.get("x-frame-options").map(|v| v.to_str().unwrap()),
        Some("DENY"),
        "{what}"
    );
    assert_eq!(
        h.get("content-security-policy")
            .map(|v| v.to_str().unwrap()),
        Some("frame-ancestors 'none'"),
        "{what}"
    );
}

#[tokio::test]
async fn every_response_has_the_security_headers_and_only_the_softphone_may_be_framed() {
    let _shared = EXCLUSIVE.read().await;
    let s = start(|_| {}).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in [
        "/demo",
        "/demo/demo.js",
        "/healthz",
        "/",
        "/api/v1/embed",
        "/api/v1/nothing",
        "/no/such/page",
    ] {
        let r = client
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_not_frameable(path, r.headers());
    }
    let (code, headers, _) = sign_in(&s, "agent1@demo.local", "wrong").await;
    assert_eq!(code, 401);
    assert_not_frameable("a sign-in error", &headers);
    assert_eq!(headers["cache-control"], "no-store");
    let r = client
        .post(format!("{}/api/v1/sessions", s.base))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert_not_frameable("a rejection", r.headers());

    // The softphone: framed by any origin unless origins are configured.
    for path in ["/admin/", "/admin/js/app.js"] {
        let r = client
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        assert_common_headers(path, r.headers());
        assert_eq!(
            r.headers()["content-security-policy"],
            "frame-ancestors *",
            "{path}"
        );
        assert!(!r.headers().contains_key("x-frame-options"), "{path}");
    }
    let s = start(|c| c.embed.allowed_origins = vec!["https://crm.example.com".into()]).await;
    let r = client
        .get(format!("{}/admin/", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-security-policy"],
        "frame-ancestors 'self' https://crm.example.com"
    );
    assert!(!r.headers().contains_key("x-frame-options"));
    // The demo page (which frames the softphone, a cross-origin frame in real use) is served as before.
    let r = client.get(format!("{}/demo", s.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
}

#[tokio::test]
async fn the_sdk_is_served_to_any_origin() {
    let _shared = EXCLUSIVE.read().await;
    let s = start(|_| {}).await;
    let r = reqwest::get(format!("{}/sdk/no-such-file.js", s.base))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_common_headers("sdk 404", r.headers());
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "notFound");

    // The SDK files, once they are in web/sdk/ (debug builds read web/ from disk).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/sdk");
    for (file, mime) in [
        ("seatline.js", "text/javascript; charset=utf-8"),
        ("seatline.d.ts", "application/typescript; charset=utf-8"),
    ] {
        if !dir.join(file).exists() {
            eprintln!("web/sdk/{file} is not there yet: not checked");
            continue;
        }
        let r = reqwest::get(format!("{}/sdk/{file}", s.base))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{file}");
        assert_eq!(r.headers()["content-type"], mime, "{file}");
        assert_eq!(r.headers()["access-control-allow-origin"], "*", "{file}");
        assert!(!r.headers().contains_key("x-frame-options"), "{file}");
        assert_common_headers(file, r.headers());
        assert_eq!(
            r.bytes().await.unwrap(),
            std::fs::read(dir.join(file)).unwrap(),
            "{file}"
        );
    }
}
