//! Several Seatline nodes on one PostgreSQL database (issue 12), as real
//! processes: the `seatline` binary twice, a throw-away PostgreSQL cluster
//! (Debian's `postgresql`), and SIPp (Debian's `sip-tester`) as the carrier.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::SinkExt;
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use support::*;
use tokio::process::{Child, Command};

/// A node named `node` on the database at `url`, with its own ports and
/// data directory, calling out through the carrier at `trunk`.
fn spawn_node(dir: &Path, node: &str, url: &str, http: u16, trunk: u16) -> Child {
    let data = dir.join(node);
    std::fs::create_dir_all(&data).unwrap();
    let cfg = data.join("seatline.toml");
    let sip = free_udp_port();
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:{http}\"\ndata_dir = \"{}\"\n\n\
             [store]\nurl = \"{url}\"\n\n\
             [cluster]\nnode = \"{node}\"\n\n\
             [demo]\nseed = true\n\n\
             [sip]\nlisten = \"127.0.0.1:{sip}\"\n\n\
             [media]\nlisten = \"127.0.0.1:0\"\n\n\
             [[trunk]]\nname = \"carrier\"\nuri = \"sip:127.0.0.1:{trunk}\"\n",
            data.join("data").display()
        ),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_seatline"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn record(base: &str, call_id: &str) -> Option<Value> {
    let token = sign_in(base, "admin@demo.local").await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r: Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/admin/calls?limit=50"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["callId"] == call_id)
        .cloned()
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
    assert_eq!(rec["hangupCode"], 801, "{rec}");
    let ended = rec["callHangUpTimestamp"].as_i64().expect("closed");
    assert!(
        ended - killed_ms <= 5_000,
        "closed {} ms after the kill",
        ended - killed_ms
    );
}
