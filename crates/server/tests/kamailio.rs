//! A registering trunk behind a proxy written by no one here: Kamailio
//! (Debian's `kamailio`) as the carrier's registrar and proxy. It wants a
//! digest-authenticated REGISTER (401), a digest-authenticated INVITE
//! (407) from a user it has a binding for (403 otherwise), and relays the
//! call to SIPp as the carrier, record-routing it, so that our ACK and BYE
//! must come back through it with a Route header.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::SinkExt;
use seatline_server::config::TrunkConfig;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::*;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

const USER: &str = "trunk1";
const PASSWORD: &str = "s3cret";
const DOMAIN: &str = "carrier.test";

/// Written from the module documentation (auth, registrar, usrloc, rr,
/// tm, sl): no database, bindings in memory, one plaintext account.
const CONFIG: &str = r#"#!KAMAILIO
debug=2
log_stderror=yes
children=1
disable_tcp=yes
auto_aliases=no
listen=udp:127.0.0.1:@PORT@
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"

loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "pv.so"
loadmodule "auth.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "xlog.so"

modparam("usrloc", "db_mode", 0)

request_route {
    xlog("L_NOTICE", "$rm $ru from $si:$sp\n");
    if (!mf_process_maxfwd_header("10")) {
        sl_send_reply("483", "Too Many Hops");
        exit;
    }
    if (is_method("REGISTER")) {
        if (!pv_www_authenticate("$td", "@PASSWORD@", "0")) {
            www_challenge("$td", "1");
            exit;
        }
        if ($au != "@USER@") {
            sl_send_reply("403", "Not This Account");
            exit;
        }
        save("location");
        exit;
    }
    if (has_totag()) {
        # Only what follows our Record-Route goes on; anything else in a
        # dialog (an ACK of our own challenge, a request without Route) stops.
        if (loose_route()) {
            t_relay();
            exit;
        }
        if (is_method("ACK")) {
            t_check_trans();
            exit;
        }
        sl_send_reply("404", "Not Through Here");
        exit;
    }
    if (is_method("CANCEL")) {
        if (t_check_trans()) {
            t_relay();
        }
        exit;
    }
    if (!is_method("INVITE")) {
        sl_send_reply("405", "Method Not Allowed");
        exit;
    }
    if (!pv_proxy_authenticate("@DOMAIN@", "@PASSWORD@", "0")) {
        proxy_challenge("@DOMAIN@", "1");
        exit;
    }
    # The From user is the caller's number, not the account: the binding
    # is looked up for the user that authenticated.
    if ($au != "@USER@" || !registered("location", "sip:$au@@DOMAIN@")) {
        xlog("L_NOTICE", "no binding for $au\n");
        sl_send_reply("403", "Register First");
        exit;
    }
    consume_credentials();
    record_route();
    $du = "sip:127.0.0.1:@CARRIER@";
    t_relay();
}
"#;

/// Kamailio with the test's registrar configuration.
async fn kamailio(dir: &Path, port: u16, carrier: u16) -> Kamailio {
    let cfg = dir.join("kamailio.cfg");
    let text = CONFIG
        .replace("@PORT@", &port.to_string())
        .replace("@CARRIER@", &carrier.to_string())
        .replace("@USER@", USER)
        .replace("@PASSWORD@", PASSWORD)
        .replace("@DOMAIN@", DOMAIN);
    std::fs::write(&cfg, text).unwrap();
    Kamailio::start(dir, &cfg, &[], port).await
}

fn sipp_carrier(port: u16) -> Child {
    Command::new("sipp")
        .args([
            "-sf",
            scenario("carrier_behind_proxy.xml").to_str().unwrap(),
        ])
        .args(["-p", &port.to_string(), "-mp", &free_udp_port().to_string()])
        .args(["-i", "127.0.0.1", "-m", "1", "-nostdin"])
        .args(["-timeout", "30s", "-timeout_error"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sipp is installed (Debian package sip-tester)")
}

fn trunk(kamailio: u16, register: bool) -> TrunkConfig {
    let mut t = TrunkConfig::udp("carrier", &format!("sip:127.0.0.1:{kamailio}"));
    t.username = Some(USER.into());
    t.password = Some(PASSWORD.into());
    t.register = register;
    t.domain = Some(DOMAIN.into());
    t
}

#[tokio::test]
async fn a_call_through_kamailio_after_registering_with_digest() {
    let (port, carrier_port) = (free_udp_port(), free_udp_port());
    let dir = tempfile::tempdir().unwrap();
    let carrier = sipp_carrier(carrier_port);
    let _kamailio = kamailio(dir.path(), port, carrier_port).await;
    let (_data, running) = start_with(vec![trunk(port, true)], |_| {}).await;

    let t0 = Instant::now();
    while running.app.hub.trunk_health() != vec![("carrier".to_string(), true)] {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the trunk never registered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut ws = tab_of(&running, "agent1@demo.local").await;
    ws.send(call_out("14155550100")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    let up = dial(&mut ws).await;
    assert_eq!(up["code"], 2, "answered through the proxy: {up}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
    let end = dial(&mut ws).await;
    assert_eq!(end["code"], 5, "{end}");
    assert!(end.get("hangupCode").is_none(), "{end}");
    assert!(end.get("sipCode").is_none(), "{end}");
    // SIPp got our ACK and BYE, which the proxy relays only by its Route.
    finished(carrier, Duration::from_secs(20)).await;
    let id = up["callId"].as_str().unwrap();
    running.app.hub.flush_writes().await;
    let rec = running.app.store.call(id).await.unwrap().unwrap();
    assert_eq!(rec.trunk.as_deref(), Some("carrier"));
}

#[tokio::test]
async fn kamailio_refuses_the_calls_of_a_trunk_that_did_not_register() {
    let (port, carrier_port) = (free_udp_port(), free_udp_port());
    let dir = tempfile::tempdir().unwrap();
    let kamailio = kamailio(dir.path(), port, carrier_port).await;
    // Right credentials, but no binding: authenticated, then 403.
    let (_data, running) = start_with(vec![trunk(port, false)], |_| {}).await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    ws.send(call_out("14155550100")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 0);
    // Seatline reads a 403 to an authenticated INVITE as refused
    // credentials (819); the 403 is Kamailio's.
    assert_eq!(dial(&mut ws).await["code"], 819);
    let end = dial(&mut ws).await;
    assert_eq!(
        (end["code"].as_i64(), end["sipCode"].as_i64()),
        (Some(5), Some(403)),
        "{end}"
    );
    // Refused for want of a binding, not for the password.
    let log = kamailio.log_text();
    assert!(log.contains(&format!("no binding for {USER}")), "{log}");
}
