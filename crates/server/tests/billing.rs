//! Billing end to end: an admin's rates and balance, a call that takes a
//! block a second and is cut with 810 when the balance is spent, the record
//! with its billed seconds and cost, and the balance stored.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::SinkExt;
use serde_json::{json, Value};
use support::*;

#[tokio::test]
async fn a_call_is_billed_by_its_increment_and_cut_with_810_when_the_balance_runs_out() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let admin = sign_in(&base, "admin@demo.local").await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let put = |path: &'static str, body: Value| {
        http.put(format!("{base}{path}"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    for bad in [
        json!({"rates": [{"prefix": "+1", "centsPerMinute": 1, "firstSecs": 60, "nextSecs": 60}]}),
        json!({"rates": [{"prefix": "1", "centsPerMinute": -1, "firstSecs": 60, "nextSecs": 60}]}),
        json!({"rates": [{"prefix": "1", "centsPerMinute": 1, "firstSecs": 0, "nextSecs": 60}]}),
    ] {
        let r = put("/api/v1/admin/rates", bad.clone()).await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    // One cent a second, per started second; three cents of credit.
    let rates =
        json!({"rates": [{"prefix": "1", "centsPerMinute": 60, "firstSecs": 1, "nextSecs": 1}]});
    assert_eq!(
        put("/api/v1/admin/rates", rates.clone())
            .await
            .unwrap()
            .status(),
        204
    );
    let policy = json!({"balanceCents": 3, "allowedCountries": [], "trial": false,
                        "trialCallsPerDay": 10, "maxCallsPerCalleePerDay": 0});
    assert_eq!(
        put("/api/v1/admin/policy", policy).await.unwrap().status(),
        204
    );
    let got: Value = http
        .get(format!("{base}/api/v1/admin/rates"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["rates"][0]["centsPerMinute"].as_f64(), Some(60.0));
    assert_eq!(got["rates"][0]["prefix"], "1");
    assert_eq!(got["rates"].as_array().unwrap().len(), 1, "replaced");

    let mut ws = tab_of(&running, "agent1@demo.local").await;
    ws.send(call_out("12025550101")).await.unwrap();
    let mut codes = Vec::new();
    let end = loop {
        let d = dial(&mut ws).await;
        codes.push(d["code"].as_i64().unwrap());
        if d["code"] == 5 {
            break d;
        }
    };
    assert_eq!(
        codes,
        vec![0, 2, 810, 5],
        "cut when the third second is spent"
    );
    assert_eq!(end["hangupCode"], 810);
    running.app.hub.flush_writes().await;
    let row = running
        .app
        .store
        .call(end["callId"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.billed_secs, row.cost_millicents),
        (Some(3), Some(3_000))
    );
    assert_eq!(row.hung_up_by.as_deref(), Some("system"));
    assert_eq!(
        running.app.store.policy(1).await.unwrap().balance_cents,
        0,
        "stored"
    );
    // A new call is refused before it is dialed.
    ws.send(call_out("12025550101")).await.unwrap();
    assert_eq!(dial(&mut ws).await["code"], 810);
    assert_eq!(dial(&mut ws).await["code"], 5);
}
