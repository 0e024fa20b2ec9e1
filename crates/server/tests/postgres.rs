//! Seatline on PostgreSQL (issue 12): the call path, its records and the
//! admin API on a throw-away cluster (Debian's `postgresql`, started by
//! the test), and two servers sharing one database as two nodes would.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::SinkExt;
use serde_json::Value;
use support::*;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn a_server_on_postgres_places_calls_and_a_second_one_sees_their_records() {
    let pg = seatline_store::testing::TestPostgres::shared().unwrap();
    let url = pg.url(&pg.new_schema().await.unwrap());
    let on_pg = |c: &mut seatline_server::config::Config| c.store.url = Some(url.clone());
    let (_dir, running) = start_with(vec![], on_pg).await;
    assert_eq!(running.app.store.backend(), "postgres");
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    // Busy, unknown, answered: a record for each.
    let mut finals = Vec::new();
    for callee in ["12025550186", "12025550104", "12025550101"] {
        ws.send(call_out(callee)).await.unwrap();
        loop {
            let d = dial(&mut ws).await;
            assert!(!d.is_null(), "the tab stays connected");
            if d["code"] == 2 {
                ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
            }
            if d["code"] == 5 {
                finals.push(d);
                break;
            }
        }
    }
    let sips: Vec<Option<i64>> = finals.iter().map(|f| f["sipCode"].as_i64()).collect();
    assert_eq!(sips[..2], [Some(486), Some(404)], "{sips:?}");
    assert!(finals[2]["callConnectedTimestamp"].as_i64().is_some());
    running.app.hub.flush_writes().await;
    for f in &finals {
        let rec = running
            .app
            .store
            .call(f["callId"].as_str().unwrap())
            .await
            .unwrap()
            .expect("a record for every call");
        assert_eq!(rec.hangup_ms, f["callHangUpTimestamp"].as_i64(), "{f}");
        assert_eq!(rec.sip_code, f["sipCode"].as_i64(), "{f}");
    }

    // A second server on the same database: the same accounts (the demo is
    // not seeded twice) and the same records, through its own API.
    let (_dir2, second) = start_with(vec![], on_pg).await;
    let api = Api::of(&second);
    let token = api.token("admin@demo.local").await;
    let (status, body) = api.get("/api/v1/admin/calls?limit=50", &token).await;
    assert_eq!(status, 200, "{body}");
    let mut ids: Vec<&str> = body["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c: &Value| c["callId"].as_str())
        .collect();
    ids.sort_unstable();
    let mut want: Vec<&str> = finals
        .iter()
        .map(|f| f["callId"].as_str().unwrap())
        .collect();
    want.sort_unstable();
    assert_eq!(ids, want);
    assert_eq!(
        second.app.store.tenants().await.unwrap(),
        running.app.store.tenants().await.unwrap(),
        "the demo seeded once"
    );
}
