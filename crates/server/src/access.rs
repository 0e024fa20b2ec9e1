//! Who may be signed in: one-time sign-in tokens for a CRM's back end, and
//! the admin's levers over a user's sessions (revoke them all, change the
//! password, disable the account).
//!
//! A token is shown once, in the 201 answer; only its SHA-256 is stored and
//! it is never logged. Ending a user's sessions deletes them in the store
//! first, then tells every open tab (every tab of every browser), so a tab
//! that reconnects finds its token dead.

use crate::errors::{api_error, internal, json_rejection, path_rejection};
use crate::records::admin_or_key;
use crate::App;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post, put};
use axum::{Json, Router};
use seatline_store::{hash_password, now_ms, token_id, User, KEY_PREFIX};
use serde::Deserialize;
use serde_json::json;
use std::time::Instant;

/// A sign-in token lives at most this long (and by default).
pub const MAX_TTL_SECS: i64 = 60;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/sign-in-tokens", post(issue))
        .route("/api/v1/admin/users/{userId}", put(update_user))
        .route("/api/v1/admin/users/{userId}/sessions", delete(revoke))
        .route("/api/v1/admin/users/{userId}/password", put(set_password))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewToken {
    email: String,
    #[serde(default)]
    ttl_seconds: Option<i64>,
}

/// `POST /api/v1/sign-in-tokens` (API key with `users:write`): a one-time
/// token for one of the key's tenant's users.
async fn issue(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Json<NewToken>, JsonRejection>,
) -> Response {
    let key = match crate::records::api_key(&app, &headers, "users:write").await {
        Ok(k) => k,
        Err(r) => return r,
    };
    let b = match body {
        Ok(Json(b)) => b,
        Err(rejection) => {
            return json_rejection(
                rejection,
                "send {\"email\": \"agent@example.com\", \"ttlSeconds\": 60}",
            )
        }
    };
    let ttl = b.ttl_seconds.unwrap_or(MAX_TTL_SECS);
    if !(1..=MAX_TTL_SECS).contains(&ttl) {
        return api_error(
            StatusCode::BAD_REQUEST,
            "badRequest",
            "ttlSeconds is 1 to 60",
        );
    }
    let email = b.email.trim();
    if email.is_empty() || email.len() > 254 || email.chars().any(char::is_control) {
        return api_error(
            StatusCode::BAD_REQUEST,
            "badRequest",
            "email is an email address",
        );
    }
    let user = match app.store.user_by_email(email).await {
        Ok(Some(u)) if u.tenant_id == key.tenant_id => u,
        Ok(_) => return unknown_user(),
        Err(e) => return internal(e),
    };
    if !user.enabled {
        return api_error(
            StatusCode::FORBIDDEN,
            "userDisabled",
            "this account is disabled",
        );
    }
    let now = now_ms();
    let expires = now + ttl * 1000;
    match app.store.create_sign_in_token(user.id, now, expires).await {
        Ok(token) => {
            tracing::info!(
                tenant = key.tenant_id,
                user = user.id,
                key_id = key.id,
                ttl,
                "sign-in token issued"
            );
            (
                StatusCode::CREATED,
                Json(json!({"token": token, "expiresAt": expires})),
            )
                .into_response()
        }
        Err(e) => internal(e),
    }
}

fn unknown_user() -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "unknownUser",
        "the tenant has no such user",
    )
}

/// The tenant's user `user_id` (by an admin's session or a `users:write`
/// key); another tenant's user is 404 like a missing one.
async fn tenant_user(
    app: &App,
    headers: &HeaderMap,
    user_id: Result<Path<i64>, PathRejection>,
) -> Result<User, Response> {
    let tenant = admin_or_key(app, headers, "users:write").await?;
    let Path(user_id) = user_id.map_err(path_rejection)?;
    match app.store.user_by_id(user_id).await {
        Ok(u) if u.tenant_id == tenant => Ok(u),
        Ok(_) | Err(seatline_store::StoreError::NotFound) => Err(unknown_user()),
        Err(e) => Err(internal(e)),
    }
}

/// The caller's own session, when it signed in with one (not a key).
fn own_session(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    (!bearer.starts_with(KEY_PREFIX)).then(|| token_id(bearer))
}

/// How a user's sessions end: what their tabs are told.
#[derive(Clone, Copy)]
enum Ending {
    /// `tokenInvalid`: revoked, or the password changed.
    Revoked,
    /// `loggedOut` (the host gets `logout`): the account was disabled.
    Disabled,
}

/// Ends a user's sessions but `keep`: deleted in the store first (no tab
/// can come back with them), then every open tab is told and closed.
async fn end_sessions(
    app: &App,
    user_id: i64,
    keep: Option<&str>,
    how: Ending,
) -> Result<usize, Response> {
    let ended = app
        .store
        .end_user_sessions(user_id, keep)
        .await
        .map_err(internal)?;
    let now = Instant::now();
    match how {
        Ending::Revoked => {
            app.hub.end_user_sessions_except(user_id, keep, now);
        }
        Ending::Disabled => {
            app.hub.sign_user_out(user_id, now);
        }
    }
    // The user's tabs on the other nodes too.
    app.bus
        .publish(crate::bus::Change::UserSessions {
            user_id,
            keep: keep.map(str::to_string),
            disabled: matches!(how, Ending::Disabled),
        })
        .await;
    Ok(ended.len())
}

/// `DELETE /api/v1/admin/users/{userId}/sessions`: signs the user out
/// everywhere.
async fn revoke(
    State(app): State<App>,
    headers: HeaderMap,
    user_id: Result<Path<i64>, PathRejection>,
) -> Response {
    let user = match tenant_user(&app, &headers, user_id).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match end_sessions(&app, user.id, None, Ending::Revoked).await {
        Ok(n) => {
            tracing::info!(
                tenant = user.tenant_id,
                user = user.id,
                sessions = n,
                "sessions revoked"
            );
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

/// `PUT /api/v1/admin/users/{userId}/password`: sets the password and ends
/// every other session of the user (the caller's own stays).
async fn set_password(
    State(app): State<App>,
    headers: HeaderMap,
    user_id: Result<Path<i64>, PathRejection>,
    body: Result<Json<NewPassword>, JsonRejection>,
) -> Response {
    let user = match tenant_user(&app, &headers, user_id).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let b = match body {
        Ok(Json(b)) => b,
        Err(rejection) => return json_rejection(rejection, "send {\"password\": \"8 or more\"}"),
    };
    if !(8..=256).contains(&b.password.chars().count()) {
        return api_error(
            StatusCode::BAD_REQUEST,
            "badPassword",
            "the password is 8 to 256 characters",
        );
    }
    let password = b.password;
    let hash = match tokio::task::spawn_blocking(move || hash_password(&password)).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return internal(e),
        Err(e) => return internal(e),
    };
    match app.store.set_user_password(user.id, &hash).await {
        Ok(true) => {}
        Ok(false) => return unknown_user(),
        Err(e) => return internal(e),
    }
    let keep = own_session(&headers);
    match end_sessions(&app, user.id, keep.as_deref(), Ending::Revoked).await {
        Ok(n) => {
            tracing::info!(
                tenant = user.tenant_id,
                user = user.id,
                sessions = n,
                "password changed"
            );
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserChange {
    /// `true` disables the account (signed out everywhere), `false` enables it.
    #[serde(default)]
    disabled: Option<bool>,
    /// The same, the other way round (as `GET /api/v1/admin/users` shows it).
    #[serde(default)]
    enabled: Option<bool>,
}

/// `PUT /api/v1/admin/users/{userId}` `{disabled}` or `{enabled}`.
async fn update_user(
    State(app): State<App>,
    headers: HeaderMap,
    user_id: Result<Path<i64>, PathRejection>,
    body: Result<Json<UserChange>, JsonRejection>,
) -> Response {
    let user = match tenant_user(&app, &headers, user_id).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    const SEND: &str = "send {\"disabled\": true} or {\"enabled\": true}";
    let b = match body {
        Ok(Json(b)) => b,
        Err(rejection) => return json_rejection(rejection, SEND),
    };
    let enabled = match (b.disabled, b.enabled) {
        (Some(d), None) => !d,
        (None, Some(e)) => e,
        (Some(d), Some(e)) if d != e => e,
        _ => return api_error(StatusCode::BAD_REQUEST, "badRequest", SEND),
    };
    if let Err(e) = app.store.set_user_enabled(user.id, enabled).await {
        return internal(e);
    }
    if !enabled {
        if let Err(r) = end_sessions(&app, user.id, None, Ending::Disabled).await {
            return r;
        }
    }
    tracing::info!(
        tenant = user.tenant_id,
        user = user.id,
        enabled,
        "user changed"
    );
    let user = User { enabled, ..user };
    Json(
        json!({"id": user.id, "tenant": user.tenant_id, "email": user.email,
                "role": user.role, "enabled": user.enabled}),
    )
    .into_response()
}
