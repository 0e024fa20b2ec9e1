//! Call recording through the API: the tenant's setting (validated, and
//! followed by the next call), a recorded call's WAV fetched with a key
//! that has `recordings:read` (refused without one, for another tenant's
//! call, for a call not recorded), and retention removing old recordings.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::SinkExt;
use serde_json::{json, Value};
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// Places a call, lets it be connected for `talk`, hangs up; its callId.
async fn talk(ws: &mut Ws, callee: &str, talk: std::time::Duration) -> String {
    let op = json!({"op": "callOut", "caller": "", "callee": callee, "countryCode": "1"});
    ws.send(Message::text(op.to_string())).await.unwrap();
    loop {
        let d = dial(ws).await;
        match d["code"].as_i64() {
            Some(2) => {
                tokio::time::sleep(talk).await;
                ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
            }
            Some(5) => return d["callId"].as_str().unwrap().to_string(),
            None => panic!("the tab closed"),
            _ => {}
        }
    }
}

/// Mean absolute sample of each channel of a stereo WAV.
fn levels(wav: &[u8]) -> (usize, f64, f64) {
    let mut r = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
    let spec = r.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let s: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    let frames = s.len() / 2;
    let mean = |ch: usize| {
        s.iter()
            .skip(ch)
            .step_by(2)
            .map(|v| f64::from(*v).abs())
            .sum::<f64>()
            / frames.max(1) as f64
    };
    (frames, mean(0), mean(1))
}

#[tokio::test]
async fn a_recorded_call_is_fetched_as_stereo_wav_by_a_key_with_the_scope_only() {
    let (dir, running) = start_with(vec![], |_| {}).await;
    let api = Api::of(&running);
    let admin = api.token("admin@demo.local").await;
    let agent = api.token("agent1@demo.local").await;

    // The demo tenant records on demand, 30 days.
    let (code, v) = api.get("/api/v1/admin/recording", &admin).await;
    assert_eq!(code, 200);
    assert_eq!(
        v,
        json!({"mode": "onDemand", "retentionDays": 30, "groups": {}})
    );

    // Bad settings are refused and change nothing.
    for (body, why) in [
        (json!({"mode": "sometimes", "retentionDays": 30}), "mode"),
        (json!({"mode": "all", "retentionDays": 0}), "retentionDays"),
        (
            json!({"mode": "all", "retentionDays": 30, "groups": {"G999": "all"}}),
            "group",
        ),
        (
            json!({"mode": "all", "retentionDays": 30, "groups": {"G001": "loud"}}),
            "group mode",
        ),
        (json!({"mode": "all"}), "missing"),
        (
            json!({"mode": "all", "retentionDays": 30, "extra": 1}),
            "unknown field",
        ),
    ] {
        let (code, err) = api.put("/api/v1/admin/recording", &admin, body).await;
        assert_eq!(code, 400, "{why}: {err}");
        assert!(err["error"].is_string(), "{why}: a JSON error");
    }
    let (code, _) = api
        .put(
            "/api/v1/admin/recording",
            &agent,
            json!({"mode": "all", "retentionDays": 5}),
        )
        .await;
    assert_eq!(code, 403, "an agent is not an admin");

    // Group G001 records every call: the tone number's call is recorded
    // from its answer, with no startRecording.
    let (code, _) = api
        .put(
            "/api/v1/admin/recording",
            &admin,
            json!({"mode": "off", "retentionDays": 7, "groups": {"G001": "all"}}),
        )
        .await;
    assert_eq!(code, 204);
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    let tone_call = talk(&mut ws, "12025550101", std::time::Duration::from_secs(2)).await;
    // Off again for every group: the next call is not recorded.
    let (code, _) = api
        .put(
            "/api/v1/admin/recording",
            &admin,
            json!({"mode": "off", "retentionDays": 7}),
        )
        .await;
    assert_eq!(code, 204);
    let plain_call = talk(
        &mut ws,
        "12025550101",
        std::time::Duration::from_millis(500),
    )
    .await;

    let path = |id: &str| format!("/api/v1/calls/{id}/recording");
    let reader = api.new_key(&admin, &["recordings:read"]).await.1["key"]
        .as_str()
        .unwrap()
        .to_string();
    let records_only = api.new_key(&admin, &["records:read"]).await.1["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(api.get_bytes(&path(&tone_call), "").await.0, 401);
    assert_eq!(
        api.get_bytes(&path(&tone_call), "slk_not-a-key").await.0,
        401
    );
    let (code, body) = api.get_bytes(&path(&tone_call), &records_only).await;
    assert_eq!(code, 403, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        api.get_bytes(&path(&plain_call), &reader).await.0,
        404,
        "not recorded"
    );
    assert_eq!(api.get_bytes(&path("no-such-call"), &reader).await.0, 404);
    assert_eq!(
        api.get_bytes(&path("..%2F..%2Fseatline.db"), &reader)
            .await
            .0,
        404
    );

    let (code, wav) = api.get_bytes(&path(&tone_call), &reader).await;
    assert_eq!(code, 200);
    // The operator console's player: the admin's session gets the same file,
    // an agent's session nothing.
    assert_eq!(
        api.get_bytes(&path(&tone_call), &admin).await,
        (200, wav.clone())
    );
    let agent = api.token("agent2@demo.local").await;
    assert_eq!(api.get_bytes(&path(&tone_call), &agent).await.0, 403);
    let (frames, agent_level, customer_level) = levels(&wav);
    assert!(
        (12_000..=24_000).contains(&frames),
        "about 2 s of call: {frames} frames"
    );
    assert!(
        customer_level > 500.0,
        "the customer's channel carries the tone: {customer_level}"
    );
    assert!(
        agent_level < 1.0,
        "no agent audio (no WebRTC leg in this test): {agent_level}"
    );

    // The record links it; the other call's does not.
    let records = api.new_key(&admin, &["records:read"]).await.1["key"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, v) = api
        .get(&format!("/api/v1/calls?callId={tone_call}"), &records)
        .await;
    assert_eq!(v["calls"][0]["recording"], json!(path(&tone_call)));
    let (_, v) = api
        .get(&format!("/api/v1/calls?callId={plain_call}"), &records)
        .await;
    assert_eq!(v["calls"][0]["recording"], Value::Null);

    // Another tenant's key cannot fetch it.
    let broke_admin_key = {
        // The broke tenant has only an agent; its own key comes from the store.
        let store = &running.app.store;
        let user = store
            .authenticate("broke@demo.local", "demo1234")
            .await
            .unwrap()
            .unwrap();
        store
            .create_api_key(user.tenant_id, "other", &["recordings:read".to_string()])
            .await
            .unwrap()
            .0
    };
    assert_eq!(
        api.get_bytes(&path(&tone_call), &broke_admin_key).await.0,
        404
    );
    assert!(dir.path().join("data/recordings").exists());
}

#[tokio::test]
async fn on_demand_the_host_starts_and_stops_and_where_it_is_off_it_is_refused() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    // No call: refused, with the reason.
    ws.send(Message::text(r#"{"op":"record","on":true}"#))
        .await
        .unwrap();
    let e = next(&mut ws).await;
    assert_eq!(
        (e["ev"].as_str(), e["code"].as_str()),
        (Some("error"), Some("notConnected"))
    );
    let op = json!({"op": "callOut", "caller": "", "callee": "12025550101", "countryCode": "1"});
    ws.send(Message::text(op.to_string())).await.unwrap();
    loop {
        if dial(&mut ws).await["code"] == 2 {
            break;
        }
    }
    ws.send(Message::text(r#"{"op":"record","on":true}"#))
        .await
        .unwrap();
    let mut seen = Vec::new();
    loop {
        let e = next(&mut ws).await;
        if e["ev"] == "recording" {
            seen.push(e["on"].as_bool().unwrap());
            if seen.len() == 1 {
                ws.send(Message::text(r#"{"op":"record","on":false}"#))
                    .await
                    .unwrap();
            } else {
                break;
            }
        }
    }
    assert_eq!(seen, vec![true, false]);
    ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
    loop {
        if dial(&mut ws).await["code"] == 5 {
            break;
        }
    }
    // The trial tenant has no recording setting: off.
    let mut trial = tab_of(&running, "trial@demo.local").await;
    trial.send(Message::text(op.to_string())).await.unwrap();
    loop {
        if dial(&mut trial).await["code"] == 2 {
            break;
        }
    }
    trial
        .send(Message::text(r#"{"op":"record","on":true}"#))
        .await
        .unwrap();
    loop {
        let e = next(&mut trial).await;
        assert_ne!(e["ev"], "recording");
        if e["ev"] == "error" {
            assert_eq!(e["code"], "recordingOff");
            break;
        }
    }
}

#[tokio::test]
async fn retention_removes_recordings_older_than_the_tenant_keeps_them() {
    let (dir, running) = start_with(vec![], |_| {}).await;
    let api = Api::of(&running);
    let admin = api.token("admin@demo.local").await;
    let (code, _) = api
        .put(
            "/api/v1/admin/recording",
            &admin,
            json!({"mode": "all", "retentionDays": 1}),
        )
        .await;
    assert_eq!(code, 204);
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    let call = talk(
        &mut ws,
        "12025550101",
        std::time::Duration::from_millis(600),
    )
    .await;
    let file = dir.path().join(format!("data/recordings/1/{call}.wav"));
    let reader = api.new_key(&admin, &["recordings:read"]).await.1["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        api.get_bytes(&format!("/api/v1/calls/{call}/recording"), &reader)
            .await
            .0,
        200
    );
    assert!(file.exists());
    // A fresh recording stays.
    assert_eq!(seatline_server::recordings::sweep(&running.app).await, 0);
    assert!(file.exists());
    // Two days later (the record's end moved back) it goes. The call's
    // last record write is stored first, so that this one comes after it.
    running.app.hub.flush_writes().await;
    let store = &running.app.store;
    let mut row = store.call(&call).await.unwrap().unwrap();
    row.hangup_ms = row.hangup_ms.map(|t| t - 2 * 86_400_000);
    store.save_call(&row).await.unwrap();
    assert_eq!(seatline_server::recordings::sweep(&running.app).await, 1);
    assert!(!file.exists());
    assert_eq!(
        api.get_bytes(&format!("/api/v1/calls/{call}/recording"), &reader)
            .await
            .0,
        404
    );
}
