//! A tenant's groups and users (agents and admins, and their seats): the
//! checks and writes the admin API and the `seatline admin` command line
//! share, and the admin API's routes for them.

use crate::errors::{api_error, internal, json_rejection, path_rejection};
use crate::records::admin_or_key;
use crate::App;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use seatline_store::{hash_password, GroupRow, Store, StoreError, UserRow};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/admin/users", get(list_users).post(post_user))
        .route("/api/v1/admin/groups", get(list_groups).post(post_group))
        .route(
            "/api/v1/admin/groups/{groupNo}",
            axum::routing::put(put_group),
        )
}

/// Why a group or user was not made.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Bad input: 400.
    #[error("{0}")]
    Bad(String),
    /// It exists already: 409.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn bad(msg: impl Into<String>) -> Refusal {
    Refusal::Bad(msg.into())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewGroup {
    /// The group's number, as agents' `login` shows it (e.g. G002).
    pub group: String,
    pub name: String,
    /// After-call work, seconds.
    #[serde(default)]
    pub acw_secs: i64,
}

/// A group's name and after-call work, as an admin changes them.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupChange {
    pub name: String,
    /// After-call work, seconds.
    pub acw_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    pub password: String,
    /// agent (default) or admin.
    #[serde(default = "agent")]
    pub role: String,
    /// A seat with this SIP number in `group`.
    #[serde(default)]
    pub seat: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
}

fn agent() -> String {
    "agent".into()
}

pub fn group_json(g: &GroupRow) -> Value {
    json!({"id": g.id, "tenant": g.tenant_id, "group": g.group_no, "name": g.name, "acwSecs": g.acw_seconds})
}

pub fn user_json(u: &UserRow) -> Value {
    json!({"id": u.id, "tenant": u.tenant_id, "email": u.email, "role": u.role,
           "enabled": u.enabled, "seat": u.sip_num, "group": u.group_no})
}

/// Makes the tenant's group `g`, after checking it.
pub async fn add_group(store: &Store, tenant: i64, g: NewGroup) -> Result<Value, Refusal> {
    let ok_no = |s: &str| {
        !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !ok_no(&g.group) {
        return Err(bad("a group number is 1 to 32 letters, digits, - or _"));
    }
    let name = group_fields(&g.name, g.acw_secs)?;
    if store.group_id(tenant, &g.group).await?.is_some() {
        return Err(Refusal::Conflict(format!(
            "tenant {tenant} has a group {} already",
            g.group
        )));
    }
    let id = store
        .create_group(tenant, &g.group, name, g.acw_secs)
        .await?;
    Ok(json!({"id": id, "tenant": tenant, "group": g.group, "name": name, "acwSecs": g.acw_secs}))
}

/// A group's name (trimmed) and after-call work, checked.
fn group_fields(name: &str, acw_secs: i64) -> Result<&str, Refusal> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(bad("a group name is 1 to 100 characters"));
    }
    if !(0..=3600).contains(&acw_secs) {
        return Err(bad("acwSecs is 0 to 3600"));
    }
    Ok(name)
}

/// Renames the tenant's group `group_no` and sets its after-call work,
/// after checking them; `Ok(None)` when the tenant has no such group.
pub async fn change_group(
    store: &Store,
    tenant: i64,
    group_no: &str,
    c: GroupChange,
) -> Result<Option<Value>, Refusal> {
    let name = group_fields(&c.name, c.acw_secs)?;
    if !store
        .update_group(tenant, group_no, name, c.acw_secs)
        .await?
    {
        return Ok(None);
    }
    Ok(Some(
        json!({"tenant": tenant, "group": group_no, "name": name, "acwSecs": c.acw_secs}),
    ))
}

/// Makes the tenant's user `u` (and its seat), after checking all of it:
/// nothing is made when anything is refused.
pub async fn add_user(store: &Store, tenant: i64, u: NewUser) -> Result<Value, Refusal> {
    let email = u.email.trim().to_string();
    let ok_email = email.len() <= 254
        && !email.chars().any(char::is_control)
        && email
            .split_once('@')
            .is_some_and(|(a, b)| !a.is_empty() && b.contains('.'));
    if !ok_email {
        return Err(bad("email is an email address"));
    }
    if u.role != "agent" && u.role != "admin" {
        return Err(bad("role is agent or admin"));
    }
    let group_id = match (&u.seat, &u.group) {
        (None, None) => None,
        (Some(sip), Some(g)) => {
            if !(2..=16).contains(&sip.len()) || !sip.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("seat is a SIP number of 2 to 16 digits"));
            }
            let Some(id) = store.group_id(tenant, g).await? else {
                return Err(bad(format!("tenant {tenant} has no group {g}")));
            };
            let users = store.users(Some(tenant)).await?;
            if users
                .iter()
                .any(|x| x.sip_num.as_deref() == Some(sip.as_str()))
            {
                return Err(Refusal::Conflict(format!(
                    "tenant {tenant} has a seat {sip} already"
                )));
            }
            Some(id)
        }
        _ => return Err(bad("seat and group go together")),
    };
    if !(8..=256).contains(&u.password.chars().count()) {
        return Err(bad("the password is 8 to 256 characters"));
    }
    let password = u.password;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| Refusal::Bad(format!("cannot hash the password: {e}")))??;
    let id = match store.create_user(tenant, &email, &hash, &u.role).await {
        Ok(id) => id,
        Err(StoreError::Conflict(msg)) => return Err(Refusal::Conflict(msg)),
        Err(e) => return Err(e.into()),
    };
    if let (Some(sip), Some(group_id)) = (&u.seat, group_id) {
        store.create_seat(tenant, id, sip, group_id).await?;
    }
    Ok(
        json!({"id": id, "tenant": tenant, "email": email, "role": u.role, "seat": u.seat, "group": u.group}),
    )
}

fn refused(r: Refusal, code: &str) -> Response {
    match r {
        Refusal::Bad(msg) => api_error(StatusCode::BAD_REQUEST, code, &msg),
        Refusal::Conflict(msg) => api_error(StatusCode::CONFLICT, "exists", &msg),
        Refusal::Store(e) => internal(e),
    }
}

async fn list_users(State(app): State<App>, headers: HeaderMap) -> Response {
    let tenant = match admin_or_key(&app, &headers, "users:write").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match app.store.users(Some(tenant)).await {
        Ok(users) => {
            Json(json!({"users": users.iter().map(user_json).collect::<Vec<_>>()})).into_response()
        }
        Err(e) => internal(e),
    }
}

async fn post_user(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Response {
    let tenant = match admin_or_key(&app, &headers, "users:write").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    const SEND: &str = "send {\"email\": \"a@b.example\", \"password\": \"8 or more\", \"role\": \"agent\", \"seat\": \"8101\", \"group\": \"G001\"}";
    let b = match body {
        Ok(Json(b)) => b,
        Err(rejection) => return json_rejection(rejection, SEND),
    };
    match add_user(&app.store, tenant, b).await {
        Ok(v) => {
            tracing::info!(tenant, user = v["id"].as_i64(), "user made");
            (StatusCode::CREATED, Json(v)).into_response()
        }
        Err(r) => refused(r, "badUser"),
    }
}

async fn list_groups(State(app): State<App>, headers: HeaderMap) -> Response {
    let tenant = match admin_or_key(&app, &headers, "users:write").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let groups = match app.store.groups(Some(tenant)).await {
        Ok(g) => g,
        Err(e) => return internal(e),
    };
    // Each group's queue settings beside it, for the console's routing form.
    let routings = match app.store.group_routings().await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let list: Vec<Value> = groups
        .iter()
        .map(|g| {
            let mut v = group_json(g);
            if let Some(r) = routings
                .iter()
                .find(|r| r.tenant_id == tenant && r.group_no == g.group_no)
            {
                v["strategy"] = json!(r.strategy);
                v["maxMissed"] = json!(r.max_missed);
                v["maxWaitSecs"] = json!(r.max_wait_secs);
                v["overflowGroup"] = json!(r.overflow_group);
                v["overflowNumber"] = json!(r.overflow_number);
                v["ringTimeoutSecs"] = json!(r.ring_timeout_secs);
                v["announceLang"] = json!(r.announce_lang);
            }
            v
        })
        .collect();
    Json(json!({ "groups": list })).into_response()
}

async fn post_group(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Json<NewGroup>, JsonRejection>,
) -> Response {
    let tenant = match admin_or_key(&app, &headers, "users:write").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    const SEND: &str = "send {\"group\": \"G002\", \"name\": \"Sales\", \"acwSecs\": 0}";
    let b = match body {
        Ok(Json(b)) => b,
        Err(rejection) => return json_rejection(rejection, SEND),
    };
    match add_group(&app.store, tenant, b).await {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(r) => refused(r, "badGroup"),
    }
}

/// `PUT /api/v1/admin/groups/{groupNo}`: the group's name and after-call
/// work. Its agents signed in now wrap up the calls that end from now on
/// for the new time.
async fn put_group(
    State(app): State<App>,
    headers: HeaderMap,
    group_no: Result<Path<String>, PathRejection>,
    body: Result<Json<GroupChange>, JsonRejection>,
) -> Response {
    let tenant = match admin_or_key(&app, &headers, "users:write").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Path(group_no) = match group_no {
        Ok(p) => p,
        Err(rejection) => return path_rejection(rejection),
    };
    const SEND: &str = "send {\"name\": \"Sales\", \"acwSecs\": 30}";
    let c = match body {
        Ok(Json(c)) => c,
        Err(rejection) => return json_rejection(rejection, SEND),
    };
    let secs = c.acw_secs;
    match change_group(&app.store, tenant, &group_no, c).await {
        Ok(Some(v)) => {
            app.hub
                .set_group_acw(tenant, &group_no, u64::try_from(secs).unwrap_or(0));
            tracing::info!(tenant, group = %group_no, acw_secs = secs, "group changed");
            Json(v).into_response()
        }
        Ok(None) => api_error(
            StatusCode::NOT_FOUND,
            "notFound",
            "the tenant has no such group",
        ),
        Err(r) => refused(r, "badGroup"),
    }
}
