//! A tenant's own trunks through the admin API while Seatline runs: added,
//! used by the tenant's next call (SIPp as the carrier), shown without the
//! password, kept across a restart, removed; bad requests refused with
//! JSON errors and nothing changed.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::SinkExt;
use serde_json::{json, Value};
use std::time::Duration;
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// Places a call to `callee`, expects it answered, hangs it up; returns
/// its callId.
async fn answered_call(ws: &mut Ws, callee: &str) -> String {
    ws.send(call_out(callee)).await.unwrap();
    assert_eq!(dial(ws).await["code"], 0);
    let up = dial(ws).await;
    assert_eq!(up["code"], 2, "answered, with nothing between: {up}");
    ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
    assert_eq!(dial(ws).await["code"], 5);
    up["callId"].as_str().unwrap().to_string()
}

struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    async fn as_user(running: &seatline_server::Running, email: &str) -> Self {
        let base = format!("http://{}", running.addr);
        let token = sign_in(&base, email).await["token"]
            .as_str()
            .unwrap()
            .to_string();
        Self {
            base,
            token,
            http: reqwest::Client::new(),
        }
    }

    async fn put(&self, name: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .put(format!("{}/api/v1/admin/trunks/{name}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn delete(&self, name: &str) -> u16 {
        self.http
            .delete(format!("{}/api/v1/admin/trunks/{name}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn list(&self) -> Value {
        self.http
            .get(format!("{}/api/v1/admin/trunks", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn an_admin_adds_a_trunk_at_run_time_the_tenant_s_calls_take_it_and_it_goes_again() {
    let (port, media) = (free_udp_port(), free_udp_port());
    let carrier = sipp_carrier("carrier_answer.xml", port, media);
    let (dir, running) = start_with(vec![], |_| {}).await;
    let admin = Api::as_user(&running, "admin@demo.local").await;
    let uri = format!("sip:127.0.0.1:{port}");

    // Refused, with nothing changed.
    let agent = Api::as_user(&running, "agent1@demo.local").await;
    assert_eq!(agent.put("own", json!({"uri": uri})).await.0, 403);
    for (name, body, error) in [
        ("own", json!({"uri": "http://127.0.0.1"}), "badTrunk"),
        ("own", json!({"uri": uri, "colour": "red"}), "badRequest"),
        ("own", json!({"uri": uri, "username": "u"}), "badTrunk"),
        (
            "own",
            json!({"uri": uri, "inboundFrom": ["10.0.0.0/99"]}),
            "badTrunk",
        ),
        (
            "own",
            json!({"uri": "sip:no-such-host.invalid"}),
            "badTrunk",
        ),
        ("bad%20name", json!({"uri": uri}), "badTrunk"),
        ("own", json!({"uri": uri, "didAddPrefix": "+1"}), "badTrunk"),
    ] {
        let (code, got) = admin.put(name, body.clone()).await;
        assert_eq!(code, 400, "{body}: {got}");
        assert!(
            got["error"].is_string() && got["message"].is_string(),
            "{got}"
        );
        if error != "badRequest" {
            assert_eq!(got["error"], error, "{body}: {got}");
        }
    }
    assert_eq!(
        running.app.hub.trunks(),
        vec![("sandbox".to_string(), None, true)]
    );

    // Added: the tenant's next call goes to it.
    let body = json!({"uri": uri, "username": "trunk1", "password": "s3cret", "stripPrefix": "1", "didAddPrefix": "1"});
    let (code, view) = admin.put("own", body).await;
    assert_eq!(code, 201, "{view}");
    assert_eq!(view["hasPassword"], true);
    assert!(view.get("password").is_none(), "{view}");
    let list = admin.list().await;
    let trunks = list["trunks"].as_array().unwrap();
    assert_eq!(trunks.len(), 2, "{list}");
    assert_eq!(
        trunks[0],
        json!({"name": "sandbox", "shared": true, "up": true})
    );
    assert_eq!(trunks[1]["name"], "own");
    assert_eq!(
        (trunks[1]["shared"].clone(), trunks[1]["up"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(trunks[1]["stripPrefix"], "1");
    assert_eq!(
        (
            trunks[1]["didStripPrefix"].clone(),
            trunks[1]["didAddPrefix"].clone()
        ),
        (json!(""), json!("1"))
    );
    assert!(
        !list.to_string().contains("s3cret"),
        "no password shown: {list}"
    );

    let mut ws = tab_of(&running, "agent1@demo.local").await;
    let id = answered_call(&mut ws, "12025550101").await;
    finished(carrier, Duration::from_secs(20)).await;
    let rec = running.app.store.call(&id).await.unwrap().unwrap();
    assert_eq!(rec.trunk.as_deref(), Some("own"));

    // Changed without the password: the password stays.
    let (code, view) = admin
        .put(
            "own",
            json!({"uri": uri, "username": "trunk1", "position": 2}),
        )
        .await;
    assert_eq!(
        (code, view["hasPassword"].clone()),
        (200, json!(true)),
        "{view}"
    );
    // One trunk per address.
    let (code, got) = admin.put("other", json!({"uri": uri})).await;
    assert_eq!((code, got["error"].clone()), (409, json!("addressInUse")));

    // Kept across a restart.
    seatline_server::stop(&running.app).await;
    running.task.abort();
    drop(ws);
    let data = dir.path().join("data");
    let (_dir2, running) = start_with(vec![], |c| c.data_dir = data).await;
    assert_eq!(
        running.app.hub.trunks(),
        vec![
            ("sandbox".to_string(), None, true),
            ("own".to_string(), Some(1), true)
        ]
    );

    // Removed: the tenant's calls take the shared trunk (the sandbox) again.
    let admin = Api::as_user(&running, "admin@demo.local").await;
    assert_eq!(admin.delete("own").await, 204);
    assert_eq!(admin.delete("own").await, 404);
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    let id = answered_call(&mut ws, "12025550101").await;
    let rec = running.app.store.call(&id).await.unwrap().unwrap();
    assert_eq!(rec.trunk.as_deref(), Some("sandbox"));
}
