//! `seatline admin ...` on the data directory of a running server: a group
//! and a user with a seat made from a script sign in through the API; bad
//! input is refused with the reason and changes nothing; no password is
//! ever printed.

// Test servers start from the defaults and change a few fields.
#![allow(clippy::field_reassign_with_default)]

mod support;

use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use support::*;

/// Runs `seatline admin PREFIX... ARGS...` with `stdin` and the token in
/// `SEATLINE_TOKEN` (none: unset); exit success, the JSON lines, standard
/// error.
fn seatline_admin(
    prefix: &[&std::ffi::OsStr],
    args: &[&str],
    token: Option<&str>,
    stdin: &str,
) -> (bool, Vec<Value>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_seatline"));
    cmd.arg("admin").args(prefix).args(args);
    cmd.env_remove("SEATLINE_TOKEN");
    if let Some(t) = token {
        cmd.env("SEATLINE_TOKEN", t);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    (
        out.status.success(),
        lines,
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `seatline admin --data-dir DIR args...`.
fn admin(dir: &Path, args: &[&str], stdin: &str) -> (bool, Vec<Value>, String) {
    seatline_admin(&["--data-dir".as_ref(), dir.as_os_str()], args, None, stdin)
}

#[tokio::test]
async fn a_script_adds_a_group_and_an_agent_who_then_signs_in() {
    let (dir, running) = start_with(vec![], |_| {}).await;
    let data = dir.path().join("data");
    let base = format!("http://{}", running.addr);
    sign_in(&base, "agent1@demo.local").await; // the server is up

    let (ok, tenants, _) = admin(&data, &["tenants"], "");
    assert!(ok);
    assert_eq!(tenants[0]["name"], "Demo");

    let (ok, made, err) = admin(
        &data,
        &[
            "groups",
            "add",
            "--tenant",
            "1",
            "--group",
            "G002",
            "--name",
            "Sales",
            "--acw-secs",
            "15",
        ],
        "",
    );
    assert!(ok, "{err}");
    assert_eq!(made[0]["group"], "G002");
    let (ok, _, err) = admin(
        &data,
        &[
            "groups", "add", "--tenant", "1", "--group", "G002", "--name", "Again",
        ],
        "",
    );
    assert!(!ok && err.contains("already"), "{err}");

    let add = |email: &str, seat: &str, group: &str| {
        vec![
            "users".to_string(),
            "add".into(),
            "--tenant".into(),
            "1".into(),
            "--email".into(),
            email.into(),
            "--seat".into(),
            seat.into(),
            "--group".into(),
            group.into(),
        ]
    };
    let args = add("sales1@demo.local", "8101", "G002");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, made, err) = admin(&data, &args, "a-long-secret\n");
    assert!(ok, "{err}");
    assert_eq!(made[0]["email"], "sales1@demo.local");
    assert!(
        !made[0].to_string().contains("a-long-secret"),
        "no password printed"
    );

    // Refused, with the reason, and nothing made.
    for (args, stdin, why) in [
        (
            add("sales2@demo.local", "8102", "G999"),
            "a-long-secret\n",
            "no group",
        ),
        (
            add("sales2@demo.local", "81x", "G002"),
            "a-long-secret\n",
            "SIP number",
        ),
        (
            add("not-an-email", "8102", "G002"),
            "a-long-secret\n",
            "email",
        ),
        (
            add("sales2@demo.local", "8102", "G002"),
            "short\n",
            "password",
        ),
        (
            add("sales1@demo.local", "8102", "G002"),
            "a-long-secret\n",
            "exists",
        ),
        (
            add("sales2@demo.local", "8001", "G002"),
            "a-long-secret\n",
            "seat 8001 already",
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, lines, err) = admin(&data, &args, stdin);
        assert!(!ok && lines.is_empty(), "{why}");
        assert!(err.contains(why), "{why}: {err}");
    }
    let (_, users, _) = admin(&data, &["users", "list", "--tenant", "1"], "");
    assert_eq!(
        users
            .iter()
            .filter(|u| u["email"].as_str().unwrap().starts_with("sales"))
            .count(),
        1
    );
    let sales = users
        .iter()
        .find(|u| u["email"] == "sales1@demo.local")
        .unwrap();
    assert_eq!(
        (sales["seat"].as_str(), sales["group"].as_str()),
        (Some("8101"), Some("G002"))
    );

    // The running server lets the new agent in, on the new group's seat.
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/sessions"))
        .json(&serde_json::json!({"email": "sales1@demo.local", "password": "a-long-secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", running.addr))
        .await
        .unwrap();
    use futures_util::SinkExt;
    let auth = serde_json::json!({"op": "auth", "token": body["token"]});
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        auth.to_string(),
    ))
    .await
    .unwrap();
    let ready = next(&mut ws).await;
    assert_eq!(ready["ev"], "ready");
    assert_eq!(
        (
            ready["seat"]["sipNum"].as_str(),
            ready["seat"]["groupNo"].as_str()
        ),
        (Some("8101"), Some("G002"))
    );

    let (ok, dids, _) = admin(&data, &["dids", "--tenant", "1"], "");
    assert!(ok && dids.len() >= 10);
    assert!(dids.iter().any(|d| d["route"]["group"] == "G001"));
}

#[tokio::test]
async fn the_admin_api_makes_groups_and_users_with_the_same_checks() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let api = Api::of(&running);
    let admin = api.token("admin@demo.local").await;
    let agent = api.token("agent1@demo.local").await;
    let post = |path: &'static str, token: String, body: Value| {
        let http = api.http.clone();
        let url = format!("{}{path}", api.base);
        async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let group = serde_json::json!({"group": "G010", "name": "Support"});
    assert_eq!(
        post("/api/v1/admin/groups", agent.clone(), group.clone())
            .await
            .0,
        403
    );
    let (code, made) = post("/api/v1/admin/groups", admin.clone(), group.clone()).await;
    assert_eq!(code, 201, "{made}");
    assert_eq!(
        post("/api/v1/admin/groups", admin.clone(), group).await.0,
        409
    );
    let (code, err) = post(
        "/api/v1/admin/groups",
        admin.clone(),
        serde_json::json!({"group": "a b", "name": "x"}),
    )
    .await;
    assert_eq!((code, err["error"].as_str()), (400, Some("badGroup")));

    // A key with users:write may; one without may not.
    let (_, writer) = api.new_key(&admin, &["users:write"]).await;
    let (_, reader) = api.new_key(&admin, &["records:read"]).await;
    let (writer, reader) = (
        writer["key"].as_str().unwrap().to_string(),
        reader["key"].as_str().unwrap().to_string(),
    );
    let user = serde_json::json!({"email": "support1@demo.local", "password": "a-long-secret",
                                  "seat": "8201", "group": "G010"});
    assert_eq!(
        post("/api/v1/admin/users", reader, user.clone()).await.0,
        403
    );
    for (bad, why) in [
        (
            serde_json::json!({"email": "x", "password": "a-long-secret"}),
            "email",
        ),
        (
            serde_json::json!({"email": "s@demo.local", "password": "short"}),
            "password",
        ),
        (
            serde_json::json!({"email": "s@demo.local", "password": "a-long-secret", "seat": "8202"}),
            "seat and group",
        ),
        (
            serde_json::json!({"email": "s@demo.local", "password": "a-long-secret", "role": "root"}),
            "role",
        ),
    ] {
        let (code, err) = post("/api/v1/admin/users", writer.clone(), bad).await;
        assert_eq!(
            (code, err["error"].as_str()),
            (400, Some("badUser")),
            "{why}"
        );
        assert!(
            err["message"].as_str().unwrap().contains(why),
            "{why}: {err}"
        );
    }
    let (code, made) = post("/api/v1/admin/users", writer.clone(), user.clone()).await;
    assert_eq!(code, 201, "{made}");
    assert!(!made.to_string().contains("a-long-secret"));
    assert_eq!(
        post("/api/v1/admin/users", writer.clone(), user).await.0,
        409
    );
    let (code, list) = api.get("/api/v1/admin/users", &writer).await;
    assert_eq!(code, 200);
    let u = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "support1@demo.local")
        .unwrap();
    assert_eq!(
        (u["seat"].as_str(), u["group"].as_str()),
        (Some("8201"), Some("G010"))
    );
    assert!(
        sign_in(&api.base, "support1@demo.local").await["token"].is_null(),
        "not the demo password"
    );
    let r = api
        .http
        .post(format!("{}/api/v1/sessions", api.base))
        .json(&serde_json::json!({"email": "support1@demo.local", "password": "a-long-secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the new agent signs in");
}

/// `seatline admin --server URL args...` with `token`.
fn remote(
    base: &str,
    token: Option<&str>,
    args: &[&str],
    stdin: &str,
) -> (bool, Vec<Value>, String) {
    seatline_admin(&["--server".as_ref(), base.as_ref()], args, token, stdin)
}

// Multi-threaded: the script runs as a blocking child process while this
// process's server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_sets_up_a_running_server_through_its_api() {
    let (_dir, running) = start_with(vec![], |_| {}).await;
    let c = Api::of(&running);
    let admin_token = c.token("admin@demo.local").await;
    let t = Some(admin_token.as_str());
    let base = c.base.as_str();

    // Without a token, with an agent's, or with a --tenant: refused, with why.
    let (ok, _, err) = remote(base, None, &["users", "list"], "");
    assert!(!ok && err.contains("SEATLINE_TOKEN"), "{err}");
    let agent = c.token("agent1@demo.local").await;
    let (ok, _, err) = remote(base, Some(&agent), &["users", "list"], "");
    assert!(!ok && err.contains("403"), "{err}");
    let (ok, _, err) = remote(base, t, &["users", "list", "--tenant", "1"], "");
    assert!(!ok && err.contains("--tenant"), "{err}");

    // A group, an agent in it with a password from standard input.
    let (ok, made, err) = remote(
        base,
        t,
        &["groups", "add", "--group", "G003", "--name", "Support"],
        "",
    );
    assert!(ok, "{err}");
    assert_eq!(made[0]["group"], "G003");
    let (ok, made, err) = remote(
        base,
        t,
        &[
            "users",
            "add",
            "--email",
            "support1@demo.local",
            "--seat",
            "8103",
            "--group",
            "G003",
        ],
        "a-long-secret\n",
    );
    assert!(ok, "{err}");
    assert!(!made[0].to_string().contains("a-long-secret"));
    let id = made[0]["id"].as_i64().expect("the new user's id");
    let (ok, users, _) = remote(base, t, &["users", "list"], "");
    assert!(ok && users.iter().any(|u| u["email"] == "support1@demo.local"));
    let (ok, dids, _) = remote(base, t, &["dids"], "");
    assert!(ok && dids.len() == 10, "{dids:?}");

    // The new group's queue and the new agent's skills, heard by the server at once.
    let (ok, shown, err) = remote(
        base,
        t,
        &[
            "routing",
            "--group",
            "G003",
            "--strategy",
            "ringAll",
            "--max-wait-secs",
            "30",
            "--overflow-group",
            "G001",
        ],
        "",
    );
    assert!(ok, "{err}");
    assert_eq!(shown[0]["routing"]["strategy"], "ringAll");
    assert_eq!(shown[0]["routing"]["overflowGroup"], "G001");
    let live = running.app.hub.group_routing(1, "G003");
    assert_eq!(
        (live.strategy.as_str(), live.max_wait_secs),
        ("ringAll", 30)
    );
    let (ok, _, err) = remote(
        base,
        t,
        &["routing", "--group", "G003", "--strategy", "everyone"],
        "",
    );
    assert!(!ok && err.contains("badRouting"), "{err}");
    assert_eq!(
        running.app.hub.group_routing(1, "G003").strategy.as_str(),
        "ringAll"
    );
    // The group renamed and its wrap-up changed; out of range refused.
    let (ok, shown, err) = remote(
        base,
        t,
        &[
            "groups",
            "set",
            "--group",
            "G003",
            "--name",
            "Support",
            "--acw-secs",
            "20",
        ],
        "",
    );
    assert!(ok, "{err}");
    assert_eq!(
        (shown[0]["name"].clone(), shown[0]["acwSecs"].clone()),
        (serde_json::json!("Support"), serde_json::json!(20))
    );
    let (ok, _, err) = remote(
        base,
        t,
        &[
            "groups",
            "set",
            "--group",
            "G003",
            "--name",
            "Support",
            "--acw-secs",
            "4000",
        ],
        "",
    );
    assert!(!ok && err.contains("badGroup"), "{err}");
    // A number instead of the group: naming it clears the group.
    let (ok, shown, err) = remote(
        base,
        t,
        &[
            "routing",
            "--group",
            "G003",
            "--overflow-number",
            "+14155550100",
        ],
        "",
    );
    assert!(ok, "{err}");
    assert_eq!(shown[0]["routing"]["overflowNumber"], "14155550100");
    assert_eq!(
        shown[0]["routing"]["overflowGroup"],
        serde_json::Value::Null
    );
    assert_eq!(
        running.app.hub.group_routing(1, "G003").overflow,
        seatline_switchboard::Overflow::Number("14155550100".into())
    );
    let (ok, shown, err) = remote(
        base,
        t,
        &["skills", "--agent", &id.to_string(), "--set", "es:5, vip:2"],
        "",
    );
    assert!(ok, "{err}");
    assert_eq!(shown[0]["skills"], serde_json::json!({"es": 5, "vip": 2}));
    let (ok, _, err) = remote(
        base,
        t,
        &["skills", "--agent", &id.to_string(), "--set", "es:11"],
        "",
    );
    assert!(!ok && err.contains("badSkill"), "{err}");
    // On a data directory these need the server: said so.
    let (ok, _, err) = admin(&_dir.path().join("data"), &["skills", "--agent", "1"], "");
    assert!(!ok && err.contains("--server"), "{err}");
}
