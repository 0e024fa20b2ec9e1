//! Trunk host names resolved through a real DNS server: dnsmasq on
//! loopback serving a carrier's SRV and A records, Seatline pointed at it
//! with `sip.dns_servers`, and SIPp answering on the port the SRV record
//! names.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::SinkExt;
use seatline_server::config::TrunkConfig;
use seatline_server::dns::{Dns, Service};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use support::*;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

/// dnsmasq on 127.0.0.1, answering only from `records` (its own flags),
/// NXDOMAIN for any other name under carrier.test; and its address.
async fn dnsmasq(records: &[String]) -> (Child, SocketAddr) {
    dnsmasq_on(free_udp_port(), records).await
}

/// The same on `port`.
async fn dnsmasq_on(port: u16, records: &[String]) -> (Child, SocketAddr) {
    let child = Command::new("dnsmasq")
        .args([
            "--no-daemon",
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
        ])
        .arg(format!("--port={port}"))
        .args(["--listen-address=127.0.0.1", "--bind-interfaces"])
        .arg("--local=/carrier.test/")
        .args(records)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("dnsmasq is installed (Debian package dnsmasq-base)");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // dnsmasq listens on TCP too: up when a connection is taken.
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return (child, addr);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("dnsmasq did not come up on {addr}");
}

/// The carrier's zone: `_sip._udp.carrier.test` names sip1 on `best` at
/// priority 10 and sip2 on `worse` at priority 20; `carrier.test` itself
/// and `plain.carrier.test` have only A records.
fn zone(best: u16, worse: u16) -> Vec<String> {
    vec![
        format!("--srv-host=_sip._udp.carrier.test,sip1.carrier.test,{best},10,1"),
        format!("--srv-host=_sip._udp.carrier.test,sip2.carrier.test,{worse},20,1"),
        "--host-record=sip1.carrier.test,127.0.0.1".into(),
        "--host-record=sip2.carrier.test,127.0.0.4".into(),
        "--host-record=carrier.test,127.0.0.3".into(),
        "--host-record=plain.carrier.test,127.0.0.2".into(),
    ]
}

#[tokio::test]
async fn an_outbound_call_reaches_the_carrier_on_the_port_its_srv_record_names() {
    let port = free_udp_port();
    let (_dns, dns_addr) = dnsmasq(&zone(port, free_udp_port())).await;
    let carrier = sipp_carrier("carrier_answer.xml", port, free_udp_port());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_dir, running) = start_with(vec![TrunkConfig::udp("carrier", "sip:carrier.test")], |c| {
        c.sip.dns_servers = vec![dns_addr.to_string()]
    })
    .await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    ws.send(call_out("14155550100")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    let up = dial(&mut ws).await;
    assert_eq!(up["code"], 2, "SIPp on the SRV port answered: {up}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 5);
    finished(carrier, Duration::from_secs(20)).await;
    let id = up["callId"].as_str().unwrap();
    let rec = running.app.store.call(id).await.unwrap().unwrap();
    assert_eq!(rec.trunk.as_deref(), Some("carrier"));
    assert_eq!(rec.hangup_code, None);
}

#[tokio::test]
async fn a_call_the_best_srv_target_refuses_with_503_is_carried_by_the_next_target() {
    let (best, next) = (free_udp_port(), free_udp_port());
    // Both targets on 127.0.0.1 (SIPp listens there), on their own ports.
    let zone = vec![
        format!("--srv-host=_sip._udp.carrier.test,sip1.carrier.test,{best},10,1"),
        format!("--srv-host=_sip._udp.carrier.test,sip2.carrier.test,{next},20,1"),
        "--host-record=sip1.carrier.test,127.0.0.1".into(),
        "--host-record=sip2.carrier.test,127.0.0.1".into(),
    ];
    let (_dns, dns_addr) = dnsmasq(&zone).await;
    let failing = sipp_carrier("carrier_unavailable.xml", best, free_udp_port());
    let working = sipp_carrier("carrier_answer.xml", next, free_udp_port());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_dir, running) = start_with(vec![TrunkConfig::udp("carrier", "sip:carrier.test")], |c| {
        c.sip.dns_servers = vec![dns_addr.to_string()]
    })
    .await;
    let peers: Vec<u16> = running
        .app
        .hub
        .trunk_peers()
        .iter()
        .map(|(name, _, a)| {
            assert_eq!(name, "carrier");
            a.port()
        })
        .collect();
    assert_eq!(peers, vec![best, next], "both targets, best first");
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    ws.send(call_out("14155550100")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    let up = dial(&mut ws).await;
    assert_eq!(
        up["code"], 2,
        "the second target answered, one call for the tab: {up}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 5);
    finished(failing, Duration::from_secs(20)).await;
    finished(working, Duration::from_secs(20)).await;
    let rec = running
        .app
        .store
        .call(up["callId"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.trunk.as_deref(), Some("carrier"));
    // The admin's list shows the trunk once.
    let api = Api::of(&running);
    let admin = api.token("admin@demo.local").await;
    let (_, list) = api.get("/api/v1/admin/trunks", &admin).await;
    assert_eq!(
        list["trunks"],
        serde_json::json!([{"name": "carrier", "shared": true, "up": true}])
    );
}

#[tokio::test]
async fn a_trunk_follows_its_srv_record_when_the_answer_expires() {
    let srv = |port: u16| {
        vec![
            format!("--srv-host=_sip._udp.carrier.test,sip1.carrier.test,{port},10,1"),
            "--host-record=sip1.carrier.test,127.0.0.1".into(),
        ]
    };
    let (first, moved) = (free_udp_port(), free_udp_port());
    let (dns, dns_addr) = dnsmasq(&srv(first)).await;
    let (_dir, running) = start_with(vec![TrunkConfig::udp("carrier", "sip:carrier.test")], |c| {
        c.sip.dns_servers = vec![dns_addr.to_string()]
    })
    .await;
    let ports = || -> Vec<u16> {
        running
            .app
            .hub
            .trunk_peers()
            .iter()
            .map(|(_, _, a)| a.port())
            .collect()
    };
    assert_eq!(ports(), vec![first]);
    // The carrier moves: its zone now names another port (dnsmasq answers
    // with a TTL of 0; the server looks again every 5 s at the most).
    drop(dns);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(dns_addr).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_dns, _) = dnsmasq_on(dns_addr.port(), &srv(moved)).await;
    let started = std::time::Instant::now();
    while ports() != vec![moved] {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "still {:?} after 15 s",
            ports()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        running.app.hub.trunks(),
        vec![("carrier".to_string(), None, true)],
        "one trunk, at its new address"
    );
}

#[tokio::test]
async fn srv_targets_come_in_priority_order_and_a_port_or_no_srv_means_a_records() {
    let (best, worse) = (free_udp_port(), free_udp_port());
    let (_dns, dns_addr) = dnsmasq(&zone(best, worse)).await;
    let dns = Dns::new(vec![dns_addr]);
    let addr = |s: &str| s.parse::<SocketAddr>().unwrap();

    let srv = dns
        .resolve("carrier.test", None, 5060, Service::Udp)
        .await
        .unwrap();
    assert!(srv.srv);
    let want = vec![
        addr(&format!("127.0.0.1:{best}")),
        addr(&format!("127.0.0.4:{worse}")),
    ];
    assert_eq!(srv.addrs, want);
    assert!(srv.valid_until.is_some());

    // A port in the uri: no SRV, the host's own address on that port.
    let ported = dns
        .resolve("carrier.test", Some(5080), 5060, Service::Udp)
        .await
        .unwrap();
    assert_eq!(
        (ported.srv, ported.addrs),
        (false, vec![addr("127.0.0.3:5080")])
    );

    // No SRV record for the transport, or for the name: A on the default port.
    let tcp = dns
        .resolve("carrier.test", None, 5060, Service::Tcp)
        .await
        .unwrap();
    assert_eq!((tcp.srv, tcp.addrs), (false, vec![addr("127.0.0.3:5060")]));
    let plain = dns
        .resolve("plain.carrier.test", None, 5060, Service::Udp)
        .await
        .unwrap();
    assert_eq!(plain.addrs, vec![addr("127.0.0.2:5060")]);
    let tls = dns
        .resolve("plain.carrier.test", None, 5061, Service::Tls)
        .await
        .unwrap();
    assert_eq!(tls.addrs, vec![addr("127.0.0.2:5061")]);

    let err = dns
        .resolve("nothere.carrier.test", None, 5060, Service::Udp)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("nothere.carrier.test"), "{err}");
}

#[tokio::test]
async fn srv_saying_no_service_or_naming_dead_targets_is_an_error() {
    let (_dns, dns_addr) = dnsmasq(&[
        // RFC 2782: target "." is "decidedly not available" (dnsmasq's
        // srv-host with no target gives it).
        "--srv-host=_sip._udp.none.carrier.test".into(),
        "--srv-host=_sip._udp.dead.carrier.test,gone.carrier.test,5060,1,1".into(),
    ])
    .await;
    let dns = Dns::new(vec![dns_addr]);
    let none = dns
        .resolve("none.carrier.test", None, 5060, Service::Udp)
        .await
        .unwrap_err()
        .to_string();
    assert!(none.contains("no SIP service"), "{none}");
    let dead = dns
        .resolve("dead.carrier.test", None, 5060, Service::Udp)
        .await
        .unwrap_err()
        .to_string();
    assert!(dead.contains("no SRV target of _sip._udp.dead"), "{dead}");
}

#[tokio::test]
async fn a_trunk_whose_name_does_not_resolve_stops_start_with_the_trunks_name() {
    let (_dns, dns_addr) = dnsmasq(&zone(5060, 5060)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = seatline_server::config::Config::default();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.data_dir = dir.path().join("data");
    cfg.sip.listen = "127.0.0.1:0".parse().unwrap();
    cfg.sip.dns_servers = vec![dns_addr.to_string()];
    cfg.trunks = vec![TrunkConfig::udp("ghost", "sip:nothere.carrier.test")];
    let err = match seatline_server::start(cfg).await {
        Ok(_) => panic!("a server started with a trunk nobody can find"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("trunk \"ghost\"") && err.contains("nothere.carrier.test"),
        "{err}"
    );
}
