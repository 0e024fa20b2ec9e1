//! The back end's API: keys made and revoked by an admin, refused when
//! missing, wrong, revoked or under-scoped; call records found by orderId
//! and every other filter, paged by cursor, as JSON and CSV; and the
//! OpenAPI document checked against the routes in the code.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use futures_util::SinkExt;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// Places a call from the tab with `order_id`; returns its end (code 5).
async fn call(ws: &mut Ws, callee: &str, order_id: &str, hang_up_when_answered: bool) -> Value {
    let op = json!({"op": "callOut", "caller": "", "callee": callee, "countryCode": "1",
                    "orderId": order_id});
    ws.send(Message::text(op.to_string())).await.unwrap();
    loop {
        let d = dial(ws).await;
        match d["code"].as_i64() {
            Some(2) if hang_up_when_answered => {
                ws.send(Message::text(r#"{"op":"hangUp"}"#)).await.unwrap();
            }
            Some(5) => return d,
            None => panic!("the tab closed"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_back_end_finds_every_call_by_its_filters_with_a_key_of_the_right_scope() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let c = Api::of(&running);
    let admin = c.token("admin@demo.local").await;
    let agent = c.token("agent1@demo.local").await;

    // Keys: made by an admin only, with known scopes only.
    assert_eq!(c.new_key(&agent, &["records:read"]).await.0, 403);
    let (code, bad) = c.new_key(&admin, &["records:write"]).await;
    assert_eq!(
        (code, bad["error"].clone()),
        (400, json!("badKey")),
        "{bad}"
    );
    assert_eq!(c.new_key(&admin, &[]).await.0, 400);
    let (code, made) = c.new_key(&admin, &["records:read"]).await;
    assert_eq!(code, 201, "{made}");
    let key = made["key"].as_str().unwrap().to_string();
    let (_, narrow) = c.new_key(&admin, &["users:write"]).await;
    let narrow = narrow["key"].as_str().unwrap().to_string();
    let (_, listed) = c.get("/api/v1/admin/api-keys", &admin).await;
    assert_eq!(listed["keys"].as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains(&key), "the key is shown once");

    // Three calls: answered and hung up by the agent, busy, refused by a rule.
    let mut ws = tab_of(&running, "agent1@demo.local").await;
    let answered = call(&mut ws, "12025550101", "order-1", true).await;
    let busy = call(&mut ws, "12025550186", "order-2", false).await;
    let refused = call(&mut ws, "999", "order-3", false).await;
    assert!(refused["hangupCode"].as_i64().is_some(), "{refused}");
    running.app.hub.flush_writes().await;

    // Refused: no key, a wrong one, an agent's session, a key without the scope.
    let r = c
        .http
        .get(format!("{}/api/v1/calls", c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "keyInvalid");
    for wrong in ["slk_nope", "not-a-session", &key[..key.len() - 1]] {
        assert_eq!(c.get("/api/v1/calls", wrong).await.0, 401, "{wrong}");
    }
    let (code, body) = c.get("/api/v1/calls", &agent).await;
    assert_eq!((code, body["error"].clone()), (403, json!("notAdmin")));
    // The operator console's admin session reads the same records as a key.
    let (code, by_session) = c.get("/api/v1/calls?orderId=order-1", &admin).await;
    assert_eq!(code, 200, "{by_session}");
    assert_eq!(by_session["calls"][0]["callId"], answered["callId"]);
    let (code, body) = c.get("/api/v1/calls", &narrow).await;
    assert_eq!((code, body["error"].clone()), (403, json!("scopeMissing")));

    // By orderId: the one call, every field.
    let (code, page) = c.get("/api/v1/calls?orderId=order-1", &key).await;
    assert_eq!(code, 200, "{page}");
    let calls = page["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{page}");
    let r = &calls[0];
    assert_eq!(r["callId"], answered["callId"]);
    assert_eq!(r["agent"], "agent1@demo.local");
    assert_eq!(r["group"], "G001");
    assert_eq!(r["trunk"], "sandbox");
    assert_eq!(r["hungUpBy"], "agent");
    assert_eq!(r["direction"], 1);
    assert!(
        r["talkSeconds"].is_number() && r["callConnectedTimestamp"].is_number(),
        "{r}"
    );
    assert_eq!(page["nextCursor"], Value::Null);

    let ids = |page: &Value| -> Vec<String> {
        page["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["callId"].as_str().unwrap().to_string())
            .collect()
    };
    let one = |v: &Value| vec![v["callId"].as_str().unwrap().to_string()];
    let (_, p) = c.get("/api/v1/calls?outcome=answered", &key).await;
    assert_eq!(ids(&p), one(&answered));
    let (_, p) = c.get("/api/v1/calls?outcome=unanswered", &key).await;
    assert_eq!(ids(&p), one(&busy));
    assert_eq!(p["calls"][0]["sipCode"], 486);
    assert_eq!(p["calls"][0]["hungUpBy"], "customer");
    let (_, p) = c.get("/api/v1/calls?outcome=failed", &key).await;
    assert_eq!(ids(&p), one(&refused));
    assert_eq!(p["calls"][0]["hungUpBy"], "system");
    let (_, p) = c
        .get(
            &format!("/api/v1/calls?callId={}", busy["callId"].as_str().unwrap()),
            &key,
        )
        .await;
    assert_eq!(ids(&p), one(&busy));
    let (_, p) = c.get("/api/v1/calls?direction=inbound", &key).await;
    assert_eq!(ids(&p), Vec::<String>::new());
    let (_, p) = c.get("/api/v1/calls?agent=agent2%40demo.local", &key).await;
    assert_eq!(ids(&p), Vec::<String>::new());
    let (_, p) = c
        .get(
            "/api/v1/calls?agent=agent1%40demo.local&direction=outbound",
            &key,
        )
        .await;
    assert_eq!(ids(&p).len(), 3);
    let start = busy["callStartTimestamp"].as_i64().unwrap();
    let (_, p) = c
        .get(
            &format!("/api/v1/calls?from={start}&to={}", start + 1),
            &key,
        )
        .await;
    assert_eq!(ids(&p), one(&busy));

    // Pages of one, newest first, each record once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (code, p) = c.get(&format!("/api/v1/calls?limit=1{cursor}"), &key).await;
        assert_eq!(code, 200, "{p}");
        seen.extend(ids(&p));
        match p["nextCursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
        assert!(seen.len() <= 3, "{seen:?}");
    }
    let newest_first: Vec<String> = [&refused, &busy, &answered]
        .iter()
        .flat_map(|v| one(v))
        .collect();
    assert_eq!(seen, newest_first);

    // Bad queries: 400 with a JSON body, in our terms.
    for q in [
        "cursor=!!",
        "direction=sideways",
        "outcome=won",
        "limit=0",
        "limit=5000",
        "colour=red",
        "from=yesterday",
    ] {
        let (code, body) = c.get(&format!("/api/v1/calls?{q}"), &key).await;
        assert_eq!(code, 400, "{q}: {body}");
        assert!(body["message"].is_string(), "{q}: {body}");
    }

    // CSV: the same records, a header row, the next page's cursor.
    let r = c
        .http
        .get(format!("{}/api/v1/calls.csv?limit=2", c.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let next = r.headers()["seatline-next-cursor"]
        .to_str()
        .unwrap()
        .to_string();
    let text = r.text().await.unwrap();
    let mut rd = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header[0], "callId");
    assert!(header.contains(&"orderId".to_string()) && header.contains(&"hungUpBy".to_string()));
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[0][0], refused["callId"].as_str().unwrap());
    let order_col = header.iter().position(|h| h == "orderId").unwrap();
    assert_eq!(&rows[1][order_col], "order-2");
    let r = c
        .http
        .get(format!("{}/api/v1/calls.csv?cursor={next}", c.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert_eq!(
        text.lines().count(),
        2,
        "header and the last record: {text}"
    );

    // Revoked: refused from then on.
    let id = made["id"].as_i64().unwrap();
    let del = |id: i64| {
        c.http
            .delete(format!("{}/api/v1/admin/api-keys/{id}", c.base))
            .bearer_auth(&admin)
            .send()
    };
    assert_eq!(del(id).await.unwrap().status(), 204);
    assert_eq!(del(id).await.unwrap().status(), 404);
    assert_eq!(c.get("/api/v1/calls", &key).await.0, 401);
}

/// Every `.route("/api...", ...)` in the server's code, with its methods.
fn routes_in_code() -> BTreeMap<String, BTreeSet<String>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        for (at, _) in src.match_indices(".route(") {
            // The call's text, to its closing parenthesis.
            let mut depth = 0;
            let mut end = at;
            for (i, ch) in src[at..].char_indices() {
                match ch {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = at + i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let call = &src[at..end];
            let Some(p) = call.split('"').nth(1) else {
                continue;
            };
            if !p.starts_with("/api") {
                continue;
            }
            let rest = &call[call.find(p).unwrap() + p.len()..];
            let methods = ["get", "post", "put", "delete", "patch"]
                .into_iter()
                .filter(|m| {
                    rest.match_indices(&format!("{m}(")).any(|(i, _)| {
                        i == 0
                            || !rest.as_bytes()[i - 1].is_ascii_alphanumeric()
                                && rest.as_bytes()[i - 1] != b'_'
                    })
                })
                .map(str::to_string)
                .collect();
            out.insert(p.to_string(), methods);
        }
    }
    out
}

#[tokio::test]
async fn the_openapi_document_names_every_api_route_and_only_those() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let doc: Value = http
        .get(format!("{base}/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let methods: BTreeSet<String> = item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "parameters")
            .cloned()
            .collect();
        documented.insert(path.clone(), methods);
    }
    let code = routes_in_code();
    assert!(code.len() >= 15, "the scan found the routes: {code:?}");
    assert_eq!(documented, code, "the document and the routes differ");

    // And each documented route is served (not the fallback's 404, not 405).
    for (path, methods) in &documented {
        let url = format!(
            "{base}{}",
            path.replace("{number}", "12025550100")
                .replace("{name}", "nosuch")
                .replace("{id}", "999999")
        );
        for m in methods {
            let method = reqwest::Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
            let r = http.request(method, &url).send().await.unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            assert_ne!(status, 405, "{m} {path}");
            assert!(
                !(status == 404 && body.contains("no such page")),
                "{m} {path}: {body}"
            );
        }
    }
}
