//! Several Seatline nodes on one PostgreSQL database (issue 12), as real
//! processes: the `seatline` binary twice, a throw-away PostgreSQL cluster
//! (Debian's `postgresql`), and SIPp (Debian's `sip-tester`) as the carrier.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::SinkExt;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use support::*;
use tokio::process::{Child, Command};

/// A node named `node` on the database at `url`, with its own ports and
/// data directory, calling out through the carrier at `trunk`.
fn spawn_node(dir: &Path, node: &str, url: &str, http: u16, trunk: u16) -> Child {
    spawn_node_with(dir, node, url, http, trunk, "").0
}

/// As [`spawn_node`], with more lines in its `[cluster]` table; and its
/// SIP port.
fn spawn_node_with(
    dir: &Path,
    node: &str,
    url: &str,
    http: u16,
    trunk: u16,
    cluster: &str,
) -> (Child, u16) {
    let data = dir.join(node);
    std::fs::create_dir_all(&data).unwrap();
    let cfg = data.join("seatline.toml");
    let sip = free_udp_port();
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:{http}\"\ndata_dir = \"{}\"\n\n\
             [store]\nurl = \"{url}\"\n\n\
             [cluster]\nnode = \"{node}\"\n{cluster}\n\n\
             [demo]\nseed = true\n\n\
             [sip]\nlisten = \"127.0.0.1:{sip}\"\n\n\
             [media]\nlisten = \"127.0.0.1:0\"\n\n\
             [[trunk]]\nname = \"carrier\"\nuri = \"sip:127.0.0.1:{trunk}\"\n",
            data.join("data").display()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_seatline"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    (child, sip)
}

async fn record(base: &str, call_id: &str) -> Option<Value> {
    admin_calls(base)
        .await
        .into_iter()
        .find(|c| c["callId"] == call_id)
}

/// kill -9 of a node in the middle of a call: within 5 s the other node
/// closes the call's record and sends the carrier its BYE.
#[tokio::test]
async fn a_node_killed_mid_call_has_its_call_closed_by_the_survivor_within_5_s() {
    let pg = seatline_store::testing::TestPostgres::shared().unwrap();
    let url = pg.url(&pg.new_schema().await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let carrier = free_udp_port();
    let sipp = sipp_carrier("carrier_answer.xml", carrier, free_udp_port());
    let (http_a, http_b) = (free_tcp_port(), free_tcp_port());
    let mut a = spawn_node(dir.path(), "a", &url, http_a, carrier);
    let base_a = format!("http://127.0.0.1:{http_a}");
    // The first node seeds the demo; the second starts once it has.
    sign_in(&base_a, "agent1@demo.local").await;
    let _b = spawn_node(dir.path(), "b", &url, http_b, carrier);
    let base_b = format!("http://127.0.0.1:{http_b}");
    sign_in(&base_b, "agent1@demo.local").await;

    let mut ws = tab_at(
        &base_a,
        &format!("ws://127.0.0.1:{http_a}/ws"),
        "agent1@demo.local",
    )
    .await;
    ws.send(call_out("12025550100")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    let up = dial(&mut ws).await;
    assert_eq!(up["code"], 2, "{up}");
    let call_id = up["callId"].as_str().unwrap().to_string();
    // The connected call and its dialog are in the database.
    let mut stored = false;
    for _ in 0..50 {
        if let Some(r) = record(&base_b, &call_id).await {
            stored = r["callConnectedTimestamp"].as_i64().is_some();
            if stored {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stored, "node b sees node a's connected call");

    a.start_kill().unwrap();
    a.wait().await.unwrap();
    let killed_ms = seatline_store::now_ms();
    // The carrier gets its BYE (from the survivor) and the record is closed.
    finished(sipp, Duration::from_secs(15)).await;
    let rec = record(&base_b, &call_id).await.expect("the record");
    assert_eq!(rec["hangupCode"], 800, "{rec}");
    let ended = rec["callHangUpTimestamp"].as_i64().expect("closed");
    assert!(
        ended - killed_ms <= 5_000,
        "closed {} ms after the kill",
        ended - killed_ms
    );
}

/// The next ringing offer on either tab: which one rang (0 or 1).
async fn rings(tabs: &mut [Ws; 2]) -> usize {
    let [a, b] = tabs;
    let (which, d) = tokio::select! {
        d = dial(a) => (0, d),
        d = dial(b) => (1, d),
    };
    assert_eq!(d["code"], 1, "{d}");
    which
}

/// SIPp as a carrier calling the demo DID through Kamailio at `kamailio`.
fn caller_through(kamailio: u16) -> Child {
    let port = free_udp_port().to_string();
    let media = free_udp_port().to_string();
    sipp(&[
        &format!("127.0.0.1:{kamailio}"),
        "-sf",
        scenario("caller_via_proxy.xml").to_str().unwrap(),
        "-s",
        "12025550170",
        "-p",
        &port,
        "-mp",
        &media,
    ])
}

/// The agent of `tab` answers the call ringing there; the caller hangs up.
async fn answer_until_the_end(tab: &mut Ws, caller: Child) {
    tab.send(tokio_tungstenite::tungstenite::Message::text(
        r#"{"op":"answer"}"#,
    ))
    .await
    .unwrap();
    assert_eq!(dial(tab).await["code"], 2);
    assert_eq!(dial(tab).await["code"], 5);
    finished(caller, Duration::from_secs(20)).await;
}

/// A carrier's call to the demo DID through Kamailio (`port`), answered by
/// the agent whose tab rings; which tab that was.
async fn call_through(kamailio: u16, tabs: &mut [Ws; 2]) -> usize {
    let caller = caller_through(kamailio);
    let which = rings(tabs).await;
    answer_until_the_end(&mut tabs[which], caller).await;
    which
}

/// A node named `name` in this process on the database at `url`, its one
/// trunk Kamailio at `kport`.
async fn node_behind(
    url: &str,
    name: &str,
    kport: u16,
) -> (tempfile::TempDir, seatline_server::Running) {
    let trunk = vec![seatline_server::config::TrunkConfig::udp(
        "kamailio",
        &format!("sip:127.0.0.1:{kport}"),
    )];
    start_with(trunk, |c| {
        c.store.url = Some(url.to_string());
        c.cluster.node = name.into();
    })
    .await
}

/// Kamailio on `kport` running `deploy/kamailio/kamailio.cfg` as shipped, in
/// front of the nodes at the SIP addresses `nodes` (host:port).
async fn kamailio_in_front(dir: &Path, kport: u16, nodes: &[String]) -> Kamailio {
    let list = dir.join("dispatcher.list");
    let entries: String = nodes.iter().map(|n| format!("1 sip:{n}\n")).collect();
    std::fs::write(&list, entries).unwrap();
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kamailio/kamailio.cfg");
    Kamailio::start(
        dir,
        &cfg,
        &[
            format!("LISTEN=udp:127.0.0.1:{kport}"),
            format!("DISPATCHER_LIST=\"{}\"", list.display()),
            "CARRIER=\"sip:127.0.0.1:9\"".into(),
        ],
        kport,
    )
    .await
}

/// Two nodes, a and b, in this process on a fresh database, behind
/// Kamailio on `kport`.
struct Behind {
    a: seatline_server::Running,
    b: seatline_server::Running,
    kamailio: Kamailio,
    kport: u16,
    _dirs: [tempfile::TempDir; 3],
}

async fn two_nodes_behind_kamailio() -> Behind {
    let pg = seatline_store::testing::TestPostgres::shared().unwrap();
    let url = pg.url(&pg.new_schema().await.unwrap());
    let kport = free_udp_port();
    let (da, a) = node_behind(&url, "a", kport).await;
    let (db, b) = node_behind(&url, "b", kport).await;
    let dir = tempfile::tempdir().unwrap();
    let sips = [a.app.calls.sip_addr, b.app.calls.sip_addr].map(|s| s.to_string());
    let kamailio = kamailio_in_front(dir.path(), kport, &sips).await;
    Behind {
        a,
        b,
        kamailio,
        kport,
        _dirs: [da, db, dir],
    }
}

/// Kamailio's dispatcher, as `deploy/kamailio/kamailio.cfg` sets it up, in
/// front of two nodes on one database: carriers' calls reach the agents of
/// both nodes, and once a node drains they all go to the other one.
#[tokio::test]
async fn kamailio_s_dispatcher_spreads_calls_over_the_nodes_and_passes_a_draining_one() {
    let Behind {
        a,
        b,
        kamailio,
        kport,
        _dirs,
    } = two_nodes_behind_kamailio().await;
    // One agent on each node, both in the DID's group.
    let mut tabs = [
        tab_of(&a, "agent1@demo.local").await,
        tab_of(&b, "agent2@demo.local").await,
    ];
    let mut rang = [0; 2];
    for _ in 0..2 {
        rang[call_through(kport, &mut tabs).await] += 1;
    }
    assert_eq!(rang, [1, 1], "round robin: one call to each node's agent");

    // Node a drains (it has no call): its tab is closed, and the next
    // calls all reach node b, whichever node Kamailio tries first.
    let draining = a.app.clone();
    let drained = tokio::spawn(async move { seatline_server::drain(&draining).await });
    while dial(&mut tabs[0]).await != Value::Null {}
    tokio::time::timeout(Duration::from_secs(5), drained)
        .await
        .expect("node a stops once idle")
        .unwrap();
    let [_, tab_b] = &mut tabs;
    for _ in 0..2 {
        let caller = caller_through(kport);
        assert_eq!(dial(tab_b).await["code"], 1);
        answer_until_the_end(tab_b, caller).await;
    }
    // Round robin sent one of them to node a first: its 503 moved it on.
    assert!(
        kamailio.log_text().contains("to the next node"),
        "{}",
        kamailio.log_text()
    );
}

/// HAProxy (Debian's `haproxy`) in the foreground on `port`, in front of
/// the nodes at `backends`, checking each one's /healthz as
/// `deploy/haproxy/haproxy.cfg` does (faster here); stopped when dropped.
struct HaProxy(#[allow(dead_code)] Child);

impl HaProxy {
    fn start(dir: &Path, port: u16, backends: &[u16]) -> HaProxy {
        let mut cfg = format!(
            "global\n    maxconn 1000\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 60s\n\
             \x20   timeout server 60s\n    timeout tunnel 1h\n    retries 3\n    option redispatch\n\
             frontend seatline\n    bind 127.0.0.1:{port}\n    default_backend nodes\n\
             backend nodes\n    balance leastconn\n    option httpchk GET /healthz\n\
             \x20   http-check expect status 200\n    default-server inter 300ms fall 2 rise 1\n"
        );
        for (i, b) in backends.iter().enumerate() {
            cfg.push_str(&format!("    server n{i} 127.0.0.1:{b} check\n"));
        }
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap();
        let child = Command::new("haproxy")
            .args(["-db", "-f", path.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("haproxy is installed (Debian package haproxy)");
        HaProxy(child)
    }
}

/// kill -9 of the node an agent's tab is on: the tab reconnects through
/// the proxy to the other node within seconds, with its session and the
/// status it had picked.
#[tokio::test]
async fn after_kill_9_a_tab_is_back_through_the_proxy_on_another_node_with_its_status() {
    let pg = seatline_store::testing::TestPostgres::shared().unwrap();
    let url = pg.url(&pg.new_schema().await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let (http_a, http_b, proxy) = (free_tcp_port(), free_tcp_port(), free_tcp_port());
    let carrier = free_udp_port();
    let mut a = spawn_node(dir.path(), "a", &url, http_a, carrier);
    sign_in(&format!("http://127.0.0.1:{http_a}"), "agent1@demo.local").await;
    let _haproxy = HaProxy::start(dir.path(), proxy, &[http_a, http_b]);
    let base = format!("http://127.0.0.1:{proxy}");
    let ws_url = format!("ws://127.0.0.1:{proxy}/ws");
    // Node b is not up yet: the tab is on node a.
    let token = sign_in(&base, "agent1@demo.local").await["token"].clone();
    let (mut ws, _) = tab_with(&ws_url, &token).await.expect("a tab on node a");
    set_status(&mut ws, 3).await;
    let _b = spawn_node(dir.path(), "b", &url, http_b, carrier);
    // (Not a sign-in: a fresh sign-in starts from the group's first status.)
    let health = format!("http://127.0.0.1:{http_b}/healthz");
    while !reqwest::get(&health)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The proxy's check sees node b (every 300 ms).
    tokio::time::sleep(Duration::from_millis(1_000)).await;

    a.start_kill().unwrap();
    a.wait().await.unwrap();
    let killed = std::time::Instant::now();
    assert_eq!(next(&mut ws).await["ev"], "closed");
    // As the softphone does: connect again, with the same token.
    let ready = loop {
        if let Some((_, ready)) = tab_with(&ws_url, &token).await {
            break ready;
        }
        assert!(killed.elapsed() < Duration::from_secs(10), "back in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let back = killed.elapsed();
    assert_eq!(
        ready["agent"]["status"], 3,
        "the status picked on node a: {ready}"
    );
    assert!(back < Duration::from_secs(5), "back after {back:?}");
}

/// Debian's `nats-server` on a free loopback port, up; stopped when dropped.
async fn nats_server() -> (Child, String) {
    let port = free_tcp_port();
    let child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("nats-server is installed (Debian package nats-server)");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, format!("nats://127.0.0.1:{port}"))
}

/// What an admin changes on one node holds on the other at once, told over
/// NATS: a DID's new route (the other node had the old one in memory), a
/// group's queue settings, and the end of an agent's sessions (its tab on
/// the other node closes).
#[tokio::test]
async fn a_change_made_on_one_node_holds_on_the_other_told_over_nats() {
    let pg = seatline_store::testing::TestPostgres::shared().unwrap();
    let url = pg.url(&pg.new_schema().await.unwrap());
    let (_nats, nats) = nats_server().await;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let carrier = sock.local_addr().unwrap().port();
    let trunk = || {
        vec![seatline_server::config::TrunkConfig::udp(
            "carrier",
            &format!("sip:127.0.0.1:{carrier}"),
        )]
    };
    let node = |name: &'static str| {
        let (url, nats) = (url.clone(), nats.clone());
        move |c: &mut seatline_server::config::Config| {
            c.store.url = Some(url);
            c.cluster.node = name.into();
            c.cluster.nats = Some(nats);
        }
    };
    let (_da, a) = start_with(trunk(), node("a")).await;
    let (_db, b) = start_with(trunk(), node("b")).await;
    let api = Api::of(&a);
    let admin = api.token("admin@demo.local").await;
    assert_eq!(api.reject_did(&admin, "12025550171", 486).await, 204);
    let at_b = b.app.calls.sip_addr;
    assert_eq!(final_status(&sock, at_b, "12025550171").await, 486);
    // Changed on node a; node b read the old route already.
    assert_eq!(api.reject_did(&admin, "12025550171", 603).await, 204);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(final_status(&sock, at_b, "12025550171").await, 603);

    // A group's queue settings changed on node a: node b reads them again.
    let (status, _) = api
        .put(
            "/api/v1/admin/groups/G001/routing",
            &admin,
            json!({"strategy": "roundRobin", "maxMissed": 7}),
        )
        .await;
    assert_eq!(status, 204);
    let mut seen = 0;
    for _ in 0..40 {
        seen = b.app.hub.group_routing(1, "G001").max_missed;
        if seen == 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(seen, 7, "node b has node a's new setting");

    // A DID's menu prompt put and removed on node a: node b has it, then
    // has it no more.
    let prompt = "/api/v1/admin/dids/12025550172/prompt";
    let (status, _) = send(&api, reqwest::Method::PUT, prompt, &admin, prompt_wav()).await;
    assert_eq!(status, 200);
    let mut had = false;
    for _ in 0..40 {
        had = b.app.hub.did_prompt(1, "12025550172").is_some();
        if had {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(had, "node b has the prompt put on node a");
    let (status, _) = send(&api, reqwest::Method::DELETE, prompt, &admin, Vec::new()).await;
    assert_eq!(status, 204);
    for _ in 0..40 {
        had = b.app.hub.did_prompt(1, "12025550172").is_some();
        if !had {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(!had, "and not once it was removed there");

    // Signed out on node a: the agent's tab on node b closes.
    let mut tab = tab_of(&b, "agent1@demo.local").await;
    let agent = user_id(&a, "agent1@demo.local").await;
    let ended = api
        .http
        .delete(format!("{}/api/v1/admin/users/{agent}/sessions", api.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success(), "{}", ended.status());
    let mut told = Vec::new();
    loop {
        let ev = next(&mut tab).await;
        let kind = ev["ev"].as_str().unwrap_or_default().to_string();
        told.push(kind.clone());
        if kind == "closed" {
            break;
        }
    }
    assert!(told.contains(&"tokenInvalid".to_string()), "{told:?}");
}

/// The first event of `kind` on the tab, and how long it took to come.
async fn within(tab: &mut Ws, kind: &str, since: std::time::Instant) -> (Value, Duration) {
    loop {
        let ev = next(tab).await;
        assert_ne!(ev["ev"], "closed", "waiting for {kind}");
        if ev["ev"] == kind {
            return (ev, since.elapsed());
        }
    }
}

/// One agent's tabs on two nodes (the proxy may send each tab anywhere):
/// the node the first tab opened on holds the agent, the other relays its
/// tab there. A status picked in either tab, a call placed from the tab
/// on the other node, and a sign-out there show in both tabs at once.
#[tokio::test]
async fn one_agent_s_tabs_on_two_nodes_stay_in_step() {
    let pg = seatline_store::testing::TestPostgres::shared().unwrap();
    let url = pg.url(&pg.new_schema().await.unwrap());
    let (_nats, nats) = nats_server().await;
    let node = |name: &'static str| {
        let (url, nats) = (url.clone(), nats.clone());
        move |c: &mut seatline_server::config::Config| {
            c.store.url = Some(url);
            c.cluster.node = name.into();
            c.cluster.nats = Some(nats);
        }
    };
    let (_da, a) = start_with(vec![], node("a")).await;
    let (_db, b) = start_with(vec![], node("b")).await;
    let (base_a, base_b) = (format!("http://{}", a.addr), format!("http://{}", b.addr));
    let token = sign_in(&base_a, "agent1@demo.local").await["token"].clone();
    let ws = |addr: std::net::SocketAddr| format!("ws://{addr}/ws");
    let (mut on_a, _) = tab_with(&ws(a.addr), &token).await.expect("tab on a");
    set_status(&mut on_a, 4).await;
    // The second tab, on node b, shows what node a holds.
    let (mut on_b, ready) = tab_with(&ws(b.addr), &token).await.expect("tab on b");
    assert_eq!(ready["agent"]["status"], 4, "{ready}");
    assert_eq!(b.app.hub.tab_count(), 0, "node b only relays the tab");
    assert_eq!(a.app.hub.tab_count(), 2);

    // A status picked on node b's tab.
    let t = std::time::Instant::now();
    on_b.send(tokio_tungstenite::tungstenite::Message::text(
        r#"{"op":"setStatus","code":3}"#,
    ))
    .await
    .unwrap();
    let (ev, took) = within(&mut on_a, "agent", t).await;
    assert_eq!(ev["agent"]["status"], 3, "{ev}");
    println!("status from node b's tab to node a's tab: {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(within(&mut on_b, "agent", t).await.0["agent"]["status"], 3);

    // A call placed from node b's tab: node a places it, both tabs see it.
    let t = std::time::Instant::now();
    on_b.send(call_out("12025550100")).await.unwrap();
    let on_b_dial = dial(&mut on_b).await;
    let on_a_dial = dial(&mut on_a).await;
    assert_eq!(
        (on_a_dial["code"].clone(), on_b_dial["code"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(on_a_dial["callId"], on_b_dial["callId"]);
    println!(
        "callOut on node b to dialStatus 0 on node a's tab: {:?}",
        t.elapsed()
    );
    assert_eq!(dial(&mut on_a).await["code"], 2);
    assert_eq!(dial(&mut on_b).await["code"], 2);
    assert_eq!(
        b.app.hub.stats().started,
        Default::default(),
        "node b places no call"
    );
    on_a.send(tokio_tungstenite::tungstenite::Message::text(
        r#"{"op":"hangUp"}"#,
    ))
    .await
    .unwrap();
    assert_eq!(dial(&mut on_b).await["code"], 5);
    assert_eq!(dial(&mut on_a).await["code"], 5);
    let call_id = on_a_dial["callId"].as_str().unwrap().to_string();
    let mut ended = None;
    for _ in 0..40 {
        ended = record(&base_b, &call_id)
            .await
            .filter(|r| r["callHangUpTimestamp"].is_i64());
        if ended.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ended.is_some(), "the record, ended, read on node b");

    // A supervisor on node b sets the agent's status: node a, which holds
    // the agent, decides it, and both tabs show it.
    let api = Api::of(&b);
    let admin = api.token("admin@demo.local").await;
    let agent = user_id(&a, "agent1@demo.local").await;
    let forced = api
        .http
        .post(format!("{base_b}/api/v1/admin/agents/{agent}/status"))
        .bearer_auth(&admin)
        .json(&json!({"status": 6}))
        .send()
        .await
        .unwrap();
    assert_eq!(forced.status(), 200);
    let t = std::time::Instant::now();
    for tab in [&mut on_a, &mut on_b] {
        // (After the agent events the call's end brought.)
        while within(tab, "agent", t).await.0["agent"]["status"] != 6 {}
    }

    // Signed out through node b: both tabs are told.
    let t = std::time::Instant::now();
    let out = reqwest::Client::new()
        .delete(format!("{base_b}/api/v1/sessions/current"))
        .bearer_auth(token.as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let (_, took) = within(&mut on_a, "loggedOut", t).await;
    println!("sign-out on node b to node a's tab: {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    within(&mut on_b, "loggedOut", t).await;
}

/// Two carriers' calls at once through Kamailio, one to each node, for a
/// group whose only agent is held by node a (its tabs on both nodes): node
/// b, with no agent free, sends its call to node a (302, through
/// Kamailio), so node a alone decides for the agent. The agent is offered
/// one call at a time: the other waits in node a's queue.
#[tokio::test]
async fn two_calls_at_once_on_two_nodes_are_never_offered_to_the_same_agent() {
    let Behind {
        a,
        b,
        kamailio,
        kport,
        _dirs,
    } = two_nodes_behind_kamailio().await;
    // agent1's tabs: the first on node a (which so holds the agent), the
    // second on node b.
    let token = sign_in(&format!("http://{}", a.addr), "agent1@demo.local").await["token"].clone();
    let (mut on_a, _) = tab_with(&format!("ws://{}/ws", a.addr), &token)
        .await
        .expect("tab on a");
    let (mut on_b, _) = tab_with(&format!("ws://{}/ws", b.addr), &token)
        .await
        .expect("tab on b");
    // Calls wait for the group's agents (the demo group does not queue).
    let api = Api::of(&a);
    let admin = api.token("admin@demo.local").await;
    let (status, _) = api
        .put(
            "/api/v1/admin/groups/G001/routing",
            &admin,
            json!({"strategy": "longestIdle", "maxMissed": 3, "maxWaitSecs": 30}),
        )
        .await;
    assert_eq!(status, 204);

    let (first, second) = (caller_through(kport), caller_through(kport));
    let ring = dial(&mut on_a).await;
    assert_eq!(ring["code"], 1, "{ring}");
    assert_eq!(dial(&mut on_b).await["callId"], ring["callId"]);
    // The other call waits (answered with music); its caller leaves after
    // 1 s. Meanwhile the agent is offered nothing else.
    let waited = tokio::time::timeout(Duration::from_millis(2_500), dial(&mut on_a)).await;
    assert!(waited.is_err(), "a second offer: {waited:?}");
    // Answered from the tab on node b.
    on_b.send(tokio_tungstenite::tungstenite::Message::text(
        r#"{"op":"answer"}"#,
    ))
    .await
    .unwrap();
    assert_eq!(dial(&mut on_a).await["code"], 2);
    assert_eq!(dial(&mut on_a).await["code"], 5);
    finished(first, Duration::from_secs(20)).await;
    finished(second, Duration::from_secs(20)).await;

    use seatline_switchboard::CallDirection::Inbound;
    assert_eq!(b.app.hub.moved_calls(), 1, "node b sent its call on");
    assert_eq!(
        b.app.hub.stats().started.get(Inbound),
        0,
        "node b took none"
    );
    assert_eq!(
        a.app.hub.stats().started.get(Inbound),
        2,
        "node a took both"
    );
    assert!(
        kamailio
            .log_text()
            .contains("moved to the node with idle agents"),
        "{}",
        kamailio.log_text()
    );
}

/// An agent's tab on `ws_url` signed in with `token`, once `ready` (then
/// returned with it); none if refused.
async fn tab_with(ws_url: &str, token: &Value) -> Option<(Ws, Value)> {
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.ok()?;
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        json!({"op": "auth", "token": token}).to_string(),
    ))
    .await
    .ok()?;
    let ready = next(&mut ws).await;
    (ready["ev"] == "ready").then_some((ws, ready))
}

/// The whole set-up of issue 12 as an operator runs it: three nodes on one
/// PostgreSQL, NATS between them, Kamailio's dispatcher in front for SIP
/// and HAProxy for HTTP. An agent's tabs on two nodes stay in step; a
/// carrier's call through Kamailio reaches the agent wherever it landed;
/// the node holding the agent is killed (kill -9) mid-call: a survivor
/// ends the call (800, BYE to the carrier) within 5 s, the tab comes back
/// through the proxy on another node, and the next call reaches it there.
#[tokio::test]
async fn three_nodes_lose_one_mid_call_and_its_agent_is_back_on_another() {
    let pg = seatline_store::testing::TestPostgres::shared().unwrap();
    let url = pg.url(&pg.new_schema().await.unwrap());
    let (_nats, nats) = nats_server().await;
    let dir = tempfile::tempdir().unwrap();
    let kport = free_udp_port();
    let https = [free_tcp_port(), free_tcp_port(), free_tcp_port()];
    let cluster = format!("nats = \"{nats}\"");
    let mut nodes = Vec::new();
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        nodes.push(spawn_node_with(
            dir.path(),
            name,
            &url,
            https[i],
            kport,
            &cluster,
        ));
        // The first node seeds the demo; the next start once it has.
        sign_in(
            &format!("http://127.0.0.1:{}", https[i]),
            "agent1@demo.local",
        )
        .await;
    }
    let sips: Vec<String> = nodes
        .iter()
        .map(|(_, sip)| format!("127.0.0.1:{sip}"))
        .collect();
    let kamailio = kamailio_in_front(dir.path(), kport, &sips).await;
    let proxy = free_tcp_port();
    let _haproxy = HaProxy::start(dir.path(), proxy, &https);
    tokio::time::sleep(Duration::from_millis(1_000)).await;

    // The agent signs in; its first tab is on node a (which so holds the
    // agent), its second on node b.
    let base_a = format!("http://127.0.0.1:{}", https[0]);
    let token = sign_in(&base_a, "agent1@demo.local").await["token"].clone();
    let ws = |port: u16| format!("ws://127.0.0.1:{port}/ws");
    let (mut on_a, _) = tab_with(&ws(https[0]), &token).await.expect("tab on a");
    let (mut on_b, _) = tab_with(&ws(https[1]), &token).await.expect("tab on b");
    for code in [3, 1] {
        on_b.send(tokio_tungstenite::tungstenite::Message::text(
            json!({"op": "setStatus", "code": code}).to_string(),
        ))
        .await
        .unwrap();
        let (ev, _) = within(&mut on_a, "agent", std::time::Instant::now()).await;
        assert_eq!(ev["agent"]["status"], code, "in step: {ev}");
    }

    // A carrier's call through Kamailio rings both tabs, wherever it
    // landed; answered in node b's tab.
    let port = free_udp_port().to_string();
    let media = free_udp_port().to_string();
    let caller = sipp(&[
        &format!("127.0.0.1:{kport}"),
        "-sf",
        scenario("caller_via_proxy_until_bye.xml").to_str().unwrap(),
        "-s",
        "12025550170",
        "-p",
        &port,
        "-mp",
        &media,
    ]);
    let ring = dial(&mut on_b).await;
    assert_eq!(ring["code"], 1, "{ring}");
    assert_eq!(dial(&mut on_a).await["code"], 1);
    on_b.send(tokio_tungstenite::tungstenite::Message::text(
        r#"{"op":"answer"}"#,
    ))
    .await
    .unwrap();
    assert_eq!(dial(&mut on_b).await["code"], 2);
    let call_id = ring["callId"].as_str().unwrap().to_string();
    let base_c = format!("http://127.0.0.1:{}", https[2]);
    let mut stored = false;
    for _ in 0..50 {
        stored = record(&base_c, &call_id)
            .await
            .is_some_and(|r| r["callConnectedTimestamp"].is_i64());
        if stored {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stored, "node c sees the connected call");

    // Node a, holding the agent and carrying the call, is killed.
    let (mut a, _) = nodes.remove(0);
    a.start_kill().unwrap();
    a.wait().await.unwrap();
    let killed = std::time::Instant::now();
    let killed_ms = seatline_store::now_ms();
    finished(caller, Duration::from_secs(15)).await;
    let rec = record(&base_c, &call_id).await.expect("the record");
    assert_eq!(rec["hangupCode"], 800, "{rec}");
    let ended = rec["callHangUpTimestamp"].as_i64().expect("closed");
    assert!(
        ended - killed_ms <= 5_000,
        "closed {} ms after the kill",
        ended - killed_ms
    );

    // Node b's tab was relayed to node a: it closes, and comes back
    // through the proxy, with its session, on a node that now holds it.
    while next(&mut on_b).await["ev"] != "closed" {}
    let proxied = ws(proxy);
    let (mut back, ready) = loop {
        if let Some(tab) = tab_with(&proxied, &token).await {
            break tab;
        }
        assert!(killed.elapsed() < Duration::from_secs(15), "back in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("the tab was back {:?} after the kill", killed.elapsed());
    assert_eq!(ready["agent"]["status"], 1, "{ready}");

    // The next call through Kamailio reaches the agent on its new node.
    let caller = caller_through(kport);
    loop {
        // (The node that closed the call tells the tab it ended, if the
        // proxy sent the tab there.)
        let d = dial(&mut back).await;
        if d["code"] == 1 {
            break;
        }
        assert!(d["code"] == 800 || d["code"] == 5, "{d}");
    }
    answer_until_the_end(&mut back, caller).await;
    assert!(
        kamailio.log_text().contains("12025550170"),
        "{}",
        kamailio.log_text()
    );
}

/// A tenant's balance billed on two nodes: what one node's calls took (a
/// difference in the store) shows in the other node's figure within a
/// heartbeat or two, so neither goes on spending from a stale balance.
#[tokio::test]
async fn a_balance_spent_on_one_node_is_seen_by_the_other_within_heartbeats() {
    let pg = seatline_store::testing::TestPostgres::shared().unwrap();
    let url = pg.url(&pg.new_schema().await.unwrap());
    let node = |name: &'static str| {
        let url = url.clone();
        move |c: &mut seatline_server::config::Config| {
            c.store.url = Some(url);
            c.cluster.node = name.into();
            c.cluster.heartbeat_ms = 200;
            c.cluster.dead_after_ms = 1_000;
        }
    };
    let (_da, a) = start_with(vec![], node("a")).await;
    let (_db, b) = start_with(vec![], node("b")).await;
    b.app.hub.set_balance(1, 500);
    b.app.hub.flush_writes().await;
    // Node a's calls took 1.20 (as its writer stores them: a difference).
    let mut writer = a.app.store.writer();
    writer
        .save_all(&[seatline_store::Write::BalanceAdd {
            tenant_id: 1,
            cents: -120,
        }])
        .await
        .unwrap();
    let mut seen = None;
    for _ in 0..40 {
        seen = b.app.hub.balance_cents(1);
        if seen == Some(380) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, Some(380), "node b holds what node a left");
}
