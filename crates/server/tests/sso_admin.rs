//! A tenant's own single sign-on provider (`GET/PUT/DELETE
//! /api/v1/admin/sso`) against a real server on loopback: set and read back
//! by the tenant admin or a `users:write` key, the client secret never shown,
//! bad settings refused with nothing changed, agents refused, other tenants
//! unaffected, and `GET /api/v1/sso` telling the softphone what applies.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use serde_json::{json, Value};
use support::*;

const PATH: &str = "/api/v1/admin/sso";
const SECRET: &str = "tenant-client-secret-93ab";

fn settings() -> Value {
    json!({
        "issuer": "https://login.example.com/tenant-1/v2.0",
        "clientId": "seatline-app",
        "clientSecret": SECRET,
        "allowedDomains": ["example.com", "demo.local", "example.com"],
    })
}

/// `GET /api/v1/sso`, with `?tenant=` or without.
async fn configured(api: &Api, tenant: Option<&str>) -> Value {
    let q = tenant.map(|t| format!("?tenant={t}")).unwrap_or_default();
    api.http
        .get(format!("{}/api/v1/sso{q}", api.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_admin_sets_the_provider_and_never_sees_the_secret_again() {
    let (_dir, running) = start_with(Vec::new(), |_| {}).await;
    let api = Api::of(&running);
    let admin = api.token("admin@demo.local").await;

    assert_eq!(
        api.get(PATH, &admin).await,
        (200, json!({"configured": false}))
    );
    // No global provider, no tenant provider: not configured anywhere.
    assert_eq!(configured(&api, None).await, json!({"configured": false}));
    assert_eq!(
        configured(&api, Some("1")).await,
        json!({"configured": false})
    );

    let want = json!({
        "configured": true,
        "issuer": "https://login.example.com/tenant-1/v2.0",
        "clientId": "seatline-app",
        "clientSecretSet": true,
        "allowedDomains": ["example.com", "demo.local"],
    });
    let (status, b) = api.put(PATH, &admin, settings()).await;
    assert_eq!((status, &b), (200, &want));
    let (status, b) = api.get(PATH, &admin).await;
    assert_eq!((status, &b), (200, &want));
    assert!(!b.to_string().contains(SECRET));

    // The tenant has SSO now; the global provider still is off.
    assert_eq!(
        configured(&api, Some("1")).await,
        json!({"configured": true})
    );
    assert_eq!(configured(&api, None).await, json!({"configured": false}));
    assert_eq!(
        configured(&api, Some("999")).await,
        json!({"configured": false})
    );
    assert_eq!(
        configured(&api, Some("x")).await,
        json!({"configured": false})
    );

    // Without clientSecret, the stored one is kept.
    let mut change = settings();
    change.as_object_mut().unwrap().remove("clientSecret");
    change["clientId"] = json!("seatline-app-2");
    let (status, b) = api.put(PATH, &admin, change).await;
    assert_eq!(
        (status, b["clientId"].as_str()),
        (200, Some("seatline-app-2"))
    );
    assert_eq!(b["clientSecretSet"], true);
    let stored = running.app.store.tenant_sso(1).await.unwrap().unwrap();
    assert_eq!(stored.client_secret.as_deref(), Some(SECRET));

    // A users:write key may do the same.
    let (status, key) = api.new_key(&admin, &["users:write"]).await;
    assert_eq!(status, 201);
    let key = key["key"].as_str().unwrap().to_string();
    let (status, b) = api.get(PATH, &key).await;
    assert_eq!(
        (status, b["clientId"].as_str()),
        (200, Some("seatline-app-2"))
    );
    let (status, key2) = api.new_key(&admin, &["records:read"]).await;
    assert_eq!(status, 201);
    let (status, b) = api.get(PATH, key2["key"].as_str().unwrap()).await;
    assert_eq!((status, b["error"].as_str()), (403, Some("scopeMissing")));

    // DELETE: the tenant has none of its own again.
    let r = api
        .http
        .delete(format!("{}{PATH}", api.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(
        api.get(PATH, &admin).await,
        (200, json!({"configured": false}))
    );
}

#[tokio::test]
async fn bad_settings_are_refused_and_change_nothing() {
    let (_dir, running) = start_with(Vec::new(), |_| {}).await;
    let api = Api::of(&running);
    let admin = api.token("admin@demo.local").await;

    // The first PUT needs a secret.
    let mut first = settings();
    first.as_object_mut().unwrap().remove("clientSecret");
    let (status, b) = api.put(PATH, &admin, first).await;
    assert_eq!((status, b["error"].as_str()), (400, Some("badSettings")));
    assert_eq!(api.get(PATH, &admin).await.1, json!({"configured": false}));

    assert_eq!(api.put(PATH, &admin, settings()).await.0, 200);
    let good = api.get(PATH, &admin).await.1;

    let with = |field: &str, value: Value| {
        let mut b = settings();
        b[field] = value;
        b
    };
    let long_domain = format!("{}.com", "a".repeat(260));
    let many: Vec<String> = (0..51).map(|i| format!("d{i}.example")).collect();
    for bad in [
        with("issuer", json!("http://login.example.com")),
        with("issuer", json!("login.example.com")),
        with("issuer", json!("ftp://login.example.com")),
        with("issuer", json!("https://login.example.com?x=1")),
        with("issuer", json!("https://user:pw@login.example.com")),
        with("issuer", json!("javascript:alert(1)")),
        with("issuer", json!(format!("https://{}.com", "a".repeat(400)))),
        with("issuer", json!("")),
        with("clientId", json!("")),
        with("clientId", json!("has space")),
        with("clientId", json!("x".repeat(301))),
        with("clientSecret", json!("")),
        with("clientSecret", json!("x".repeat(501))),
        with("clientSecret", json!("line\nbreak")),
        with("allowedDomains", json!(["Example.com"])),
        with("allowedDomains", json!(["@example.com"])),
        with("allowedDomains", json!(["localhost"])),
        with("allowedDomains", json!([long_domain])),
        with("allowedDomains", json!(many)),
    ] {
        let (status, b) = api.put(PATH, &admin, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {b}");
        assert_eq!(b["error"], "badSettings", "{bad}: {b}");
        assert!(b["message"].is_string());
    }
    for shape in [
        json!({"issuer": "https://idp.example"}),
        json!({"issuer": 1, "clientId": "x", "clientSecret": "y"}),
        json!({"issuer": "https://idp.example", "clientId": "x", "clientSecret": "y", "extra": 1}),
        json!({"issuer": "https://idp.example", "clientId": "x", "clientSecret": "y", "allowedDomains": "a.com"}),
        json!([]),
    ] {
        let (status, b) = api.put(PATH, &admin, shape.clone()).await;
        assert_eq!(status, 400, "{shape}: {b}");
        assert!(b["error"].is_string(), "{shape}: {b}");
    }
    assert_eq!(api.get(PATH, &admin).await, (200, good));
    // Loopback http is taken (test providers).
    let (status, _) = api
        .put(PATH, &admin, with("issuer", json!("http://127.0.0.1:9999")))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn agents_are_refused_and_other_tenants_are_unaffected() {
    let (_dir, running) = start_with(Vec::new(), |c| {
        c.sso.client_id = Some("global-client".into());
        c.sso.client_secret = Some("global-secret".into());
    })
    .await;
    let api = Api::of(&running);
    let admin = api.token("admin@demo.local").await;
    let agent = api.token("agent1@demo.local").await;
    let (status, b) = api.put(PATH, &agent, settings()).await;
    assert_eq!((status, b["error"].as_str()), (403, Some("notAdmin")));
    let (status, b) = api.get(PATH, &agent).await;
    assert_eq!((status, b["error"].as_str()), (403, Some("notAdmin")));
    let (status, b) = api.get(PATH, "no-session").await;
    assert_eq!((status, b["error"].as_str()), (401, Some("tokenInvalid")));

    // The global provider (Google by default) applies to every tenant.
    assert_eq!(configured(&api, None).await, json!({"configured": true}));
    assert_eq!(
        configured(&api, Some("1")).await,
        json!({"configured": true})
    );

    let store = &running.app.store;
    let other = store.create_tenant("Other").await.unwrap();
    let hash = seatline_store::hash_password("other-pass").unwrap();
    store
        .create_user(other, "boss@other.example", &hash, "admin")
        .await
        .unwrap();
    let boss: Value = api
        .http
        .post(format!("{}/api/v1/sessions", api.base))
        .json(&json!({"email": "boss@other.example", "password": "other-pass"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let boss = boss["token"].as_str().unwrap().to_string();

    assert_eq!(api.put(PATH, &admin, settings()).await.0, 200);
    assert_eq!(
        api.get(PATH, &boss).await,
        (200, json!({"configured": false})),
        "the other tenant has none of its own"
    );
    let mut theirs = settings();
    theirs["clientId"] = json!("their-app");
    assert_eq!(api.put(PATH, &boss, theirs).await.0, 200);
    assert_eq!(api.get(PATH, &admin).await.1["clientId"], "seatline-app");
    assert_eq!(api.get(PATH, &boss).await.1["clientId"], "their-app");
}

#[tokio::test]
async fn start_without_a_provider_says_so_and_the_callback_refuses_an_unknown_state() {
    let (_dir, running) = start_with(Vec::new(), |_| {}).await;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/sso/start", "/sso/start?tenant=1", "/sso/start?tenant=999"] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let html = r.text().await.unwrap();
        assert!(html.contains("not configured"), "{path}: {html}");
        assert!(
            html.contains(r#""error":"notConfigured""#),
            "{path}: {html}"
        );
    }
    for path in [
        "/sso/callback",
        "/sso/callback?code=x&state=made-up",
        "/sso/callback?state=made-up&error=access_denied",
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let html = r.text().await.unwrap();
        assert!(html.contains(r#""error":"expired""#), "{path}: {html}");
    }
}
