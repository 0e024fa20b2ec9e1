//! Each tenant's CRM origins (`GET/PUT /api/v1/admin/embed`) against a real
//! server on loopback: set and read back by the tenant admin, bad entries
//! refused with nothing changed, agents refused, other tenants unaffected,
//! and the list reaching the softphone through sign-in and `GET /api/v1/embed`.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use serde_json::{json, Value};
use support::*;

const PATH: &str = "/api/v1/admin/embed";
const GLOBAL: &str = "https://global.example";

async fn start() -> (tempfile::TempDir, seatline_server::Running) {
    start_with(Vec::new(), |c| {
        c.embed.allowed_origins = vec![GLOBAL.to_string()];
    })
    .await
}

/// `GET /api/v1/embed`, with a session token or without.
async fn embed(api: &Api, token: Option<&str>) -> (u16, Value) {
    let mut r = api.http.get(format!("{}/api/v1/embed", api.base));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Signs in `email` with `password`; the whole answer.
async fn sign_in_as(api: &Api, email: &str, password: &str) -> Value {
    api.http
        .post(format!("{}/api/v1/sessions", api.base))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_admin_sets_and_reads_the_tenants_origins_and_agents_get_them() {
    let (_dir, running) = start().await;
    let api = Api::of(&running);
    let admin = api.token("admin@demo.local").await;

    // None of its own yet: the global list applies, before and after sign-in.
    let (status, b) = api.get(PATH, &admin).await;
    assert_eq!((status, b), (200, json!({"allowedOrigins": []})));
    let agent = sign_in_as(&api, "agent1@demo.local", "demo1234").await;
    assert_eq!(agent["allowedOrigins"], json!([GLOBAL]));

    let list = json!({"allowedOrigins": ["https://crm.example.com", "http://127.0.0.1:8080", "https://crm.example.com"]});
    let (status, b) = api.put(PATH, &admin, list).await;
    assert_eq!(status, 200, "{b}");
    let want = json!({"allowedOrigins": ["https://crm.example.com", "http://127.0.0.1:8080"]});
    assert_eq!(b, want, "kept in order, the repeat dropped");
    assert_eq!(api.get(PATH, &admin).await, (200, want.clone()));

    // Signed in, the tenant's list; not signed in, still the global one.
    let agent = sign_in_as(&api, "agent1@demo.local", "demo1234").await;
    assert_eq!(agent["allowedOrigins"], want["allowedOrigins"]);
    let token = agent["token"].as_str().unwrap();
    assert_eq!(embed(&api, Some(token)).await, (200, want.clone()));
    assert_eq!(
        embed(&api, None).await,
        (200, json!({"allowedOrigins": [GLOBAL]}))
    );
    // A token that is no session does not fall back to the global list.
    let (status, b) = embed(&api, Some("not-a-session")).await;
    assert_eq!((status, b["error"].as_str()), (401, Some("tokenInvalid")));

    // An empty list: the tenant has none of its own again.
    let (status, _) = api.put(PATH, &admin, json!({"allowedOrigins": []})).await;
    assert_eq!(status, 200);
    assert_eq!(
        embed(&api, Some(token)).await,
        (200, json!({"allowedOrigins": [GLOBAL]}))
    );
}

#[tokio::test]
async fn bad_entries_are_refused_and_change_nothing() {
    let (_dir, running) = start().await;
    let api = Api::of(&running);
    let admin = api.token("admin@demo.local").await;
    let good = json!({"allowedOrigins": ["https://crm.example.com"]});
    assert_eq!(api.put(PATH, &admin, good.clone()).await.0, 200);

    for bad in [
        "https://crm.example.com/path",
        "https://crm.example.com/",
        "https://*.example.com",
        "*",
        "crm.example.com",
        "ftp://crm.example.com",
        "https://user:pw@crm.example.com",
        "https://crm.example.com?x=1",
        "https://CRM.example.com",
        "https://crm.example.com:443",
        "null",
        "",
    ] {
        let body = json!({"allowedOrigins": ["https://ok.example", bad]});
        let (status, b) = api.put(PATH, &admin, body).await;
        assert_eq!(status, 400, "{bad:?}: {b}");
        assert_eq!(b["error"], "badOrigin", "{bad:?}: {b}");
        let message = b["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{bad:?}")),
            "{bad:?} not named: {message}"
        );
    }
    let many: Vec<String> = (0..21).map(|i| format!("https://h{i}.example")).collect();
    let (status, b) = api.put(PATH, &admin, json!({"allowedOrigins": many})).await;
    assert_eq!((status, b["error"].as_str()), (400, Some("badOrigin")));
    for shape in [
        json!({"allowedOrigins": "https://crm.example.com"}),
        json!({"allowedOrigins": [1]}),
        json!({"allowedOrigins": [], "extra": true}),
        json!({}),
        json!([]),
    ] {
        let (status, b) = api.put(PATH, &admin, shape.clone()).await;
        assert_eq!(status, 400, "{shape}: {b}");
        assert!(b["error"].is_string(), "{shape}: {b}");
    }
    assert_eq!(api.get(PATH, &admin).await, (200, good));
}

#[tokio::test]
async fn agents_are_refused_and_other_tenants_are_unaffected() {
    let (_dir, running) = start().await;
    let api = Api::of(&running);
    let admin = api.token("admin@demo.local").await;
    let agent = api.token("agent1@demo.local").await;
    let body = json!({"allowedOrigins": ["https://evil.example"]});
    let (status, b) = api.put(PATH, &agent, body).await;
    assert_eq!((status, b["error"].as_str()), (403, Some("notAdmin")));
    let (status, b) = api.get(PATH, &agent).await;
    assert_eq!((status, b["error"].as_str()), (403, Some("notAdmin")));
    let (status, b) = api.get(PATH, "no-session").await;
    assert_eq!((status, b["error"].as_str()), (401, Some("tokenInvalid")));
    assert_eq!(
        api.get(PATH, &admin).await,
        (200, json!({"allowedOrigins": []}))
    );

    // Another tenant with its own admin and agent.
    let store = &running.app.store;
    let other = store.create_tenant("Other").await.unwrap();
    let hash = seatline_store::hash_password("other-pass").unwrap();
    for (email, role) in [
        ("boss@other.example", "admin"),
        ("agent@other.example", "agent"),
    ] {
        store.create_user(other, email, &hash, role).await.unwrap();
    }
    let boss = sign_in_as(&api, "boss@other.example", "other-pass").await;
    let boss = boss["token"].as_str().unwrap().to_string();
    let theirs = json!({"allowedOrigins": ["https://other-crm.example"]});
    assert_eq!(api.put(PATH, &boss, theirs.clone()).await.0, 200);

    // The demo tenant's list is its own; each tenant sees and gets its own.
    let ours = json!({"allowedOrigins": ["https://crm.example.com"]});
    assert_eq!(api.put(PATH, &admin, ours.clone()).await.0, 200);
    assert_eq!(api.get(PATH, &boss).await, (200, theirs.clone()));
    assert_eq!(api.get(PATH, &admin).await, (200, ours.clone()));
    let their_agent = sign_in_as(&api, "agent@other.example", "other-pass").await;
    assert_eq!(their_agent["allowedOrigins"], theirs["allowedOrigins"]);
    let our_agent = sign_in_as(&api, "agent1@demo.local", "demo1234").await;
    assert_eq!(our_agent["allowedOrigins"], ours["allowedOrigins"]);
}

/// The softphone page's `Content-Security-Policy`.
async fn page_csp(api: &Api, query: &str) -> String {
    let r = api
        .http
        .get(format!("{}/admin/{query}", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_page_for_a_tenant_may_be_framed_by_that_tenants_origins_only() {
    let (_dir, running) = start().await;
    let api = Api::of(&running);
    let admin = api.token("admin@demo.local").await;
    let global = format!("frame-ancestors 'self' {GLOBAL}");
    // Before the tenant has its own list, the global one everywhere.
    assert!(page_csp(&api, "?tenant=1").await.contains(&global));
    let (status, _) = api
        .put(
            PATH,
            &admin,
            json!({"allowedOrigins": ["https://crm.example.com"]}),
        )
        .await;
    assert_eq!(status, 200);
    let own = page_csp(&api, "?tenant=1").await;
    assert!(
        own.contains("frame-ancestors 'self' https://crm.example.com"),
        "{own}"
    );
    assert!(!own.contains(GLOBAL), "{own}");
    assert_eq!(own.matches("frame-ancestors").count(), 1, "{own}");
    // No tenant, another tenant, or nonsense: the global list.
    for q in [
        "",
        "?tenant=2",
        "?tenant=abc",
        "?tenant=-1",
        "?tenant=1%3B%20script-src%20*",
    ] {
        let csp = page_csp(&api, q).await;
        assert!(csp.contains(&global), "{q}: {csp}");
        assert!(!csp.contains("crm.example.com"), "{q}: {csp}");
    }
}
