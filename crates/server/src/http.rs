//! The HTTP surface: health, the sign-in API, the softphone's WebSocket, and
//! the embedded web pages (softphone at `/admin/#/nxcc`, demo CRM at `/demo`).

use crate::{ws, App};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rust_embed::RustEmbed;
use seatline_protocol::{ApiError, SeatInfo};
use seatline_store::{now_ms, token_id, SessionCheck};
use serde::{Deserialize, Serialize};
use std::time::Instant;

#[derive(RustEmbed)]
#[folder = "../../web/"]
struct Web;

pub fn router(app: App) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/v1/sessions", post(sign_in))
        .route("/api/v1/sessions/current", axum::routing::delete(sign_out))
        .route("/api/v1/embed", get(embed_config))
        .route("/ws", get(websocket))
        .route("/api/v1/sandbox/digits", get(sandbox_digits))
        .route("/api/v1/sandbox/calls", post(sandbox_call))
        .route("/", get(|| async { Redirect::to("/demo") }))
        .route("/admin", get(|| async { Redirect::to("/admin/") }))
        .route("/admin/", get(softphone_index))
        .route("/admin/{*path}", get(softphone_asset))
        .route("/demo", get(demo_index))
        .route("/demo/", get(demo_index))
        .route("/demo/{*path}", get(demo_asset))
        .merge(crate::admin::routes())
        .fallback(|| async { api_error(StatusCode::NOT_FOUND, "notFound", "no such page") })
        .with_state(app)
}

/// Every HTTP error: a status and a JSON body `{error, message}`.
pub fn api_error(status: StatusCode, error: &str, message: &str) -> Response {
    (status, Json(ApiError { error: error.to_string(), message: message.to_string() })).into_response()
}

#[derive(Deserialize)]
struct SignIn {
    email: String,
    password: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SignedIn {
    email: String,
    /// 1: the account has an enabled seat; 2: it has none (no session is kept).
    agent_exists: u8,
    /// Present only with a seat.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seat: Option<SeatInfo>,
    idle_timeout_secs: u64,
}

async fn sign_in(State(app): State<App>, body: Result<Json<SignIn>, JsonRejection>) -> Response {
    let Ok(Json(body)) = body else {
        return api_error(StatusCode::BAD_REQUEST, "badRequest", "send JSON {\"email\", \"password\"}");
    };
    if body.email.trim().is_empty() || body.password.is_empty() {
        return api_error(StatusCode::BAD_REQUEST, "missingCredentials", "email and password are required");
    }
    let user = match app.store.authenticate(&body.email, &body.password).await {
        Ok(Some(user)) => user,
        Ok(None) => return api_error(StatusCode::UNAUTHORIZED, "invalidCredentials", "wrong email or password"),
        Err(e) => return internal(e),
    };
    let seat = match app.store.seat_of_user(user.id).await {
        Ok(seat) => seat.filter(|s| s.enabled),
        Err(e) => return internal(e),
    };
    let idle_timeout_secs = app.hub.idle_timeout().as_secs();
    let Some(seat) = seat else {
        // No seat: the softphone has nothing to offer this account, so no
        // session is kept for it; the page says why and stays signed out.
        // A tenant admin still gets a session, for the admin API.
        let token = if user.role == "admin" {
            match app.store.create_session(user.id, now_ms()).await {
                Ok((token, _)) => Some(token),
                Err(e) => return internal(e),
            }
        } else {
            None
        };
        return Json(SignedIn { email: user.email, agent_exists: 2, token, seat: None, idle_timeout_secs }).into_response();
    };
    let (token, session_id) = match app.store.create_session(user.id, now_ms()).await {
        Ok(t) => t,
        Err(e) => return internal(e),
    };
    app.hub.signed_in(&session_id, &seat, Instant::now());
    tracing::info!(user = user.id, "signed in");
    Json(SignedIn {
        email: user.email,
        agent_exists: 1,
        token: Some(token),
        seat: Some(SeatInfo { sip_num: seat.sip_num, group_no: seat.group_no }),
        idle_timeout_secs,
    })
    .into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

/// Signs the session out; every tab of it is told (`loggedOut`).
async fn sign_out(State(app): State<App>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return api_error(StatusCode::UNAUTHORIZED, "tokenInvalid", "send Authorization: Bearer <token>");
    };
    let idle_ms = app.hub.idle_timeout().as_millis() as i64;
    let valid = matches!(app.store.check_session(token, idle_ms, now_ms()).await, Ok(SessionCheck::Valid { .. }));
    let id = token_id(token);
    if let Err(e) = app.store.revoke_session(&id).await {
        return internal(e);
    }
    app.hub.logout(&id, Instant::now());
    if valid {
        StatusCode::NO_CONTENT.into_response()
    } else {
        api_error(StatusCode::UNAUTHORIZED, "tokenInvalid", "the session had already ended")
    }
}

pub(crate) fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!("request failed: {e}");
    api_error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the server could not complete the request")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EmbedConfig<'a> {
    allowed_origins: &'a [String],
}

async fn embed_config(State(app): State<App>) -> Response {
    Json(EmbedConfig { allowed_origins: &app.cfg.embed.allowed_origins }).into_response()
}

/// What the sandbox carrier heard as DTMF, per callee (tests, demo).
async fn sandbox_digits(State(app): State<App>) -> Response {
    let Some(sb) = &app.sandbox else {
        return api_error(StatusCode::NOT_FOUND, "noSandbox", "a real trunk is configured; the sandbox carrier is off");
    };
    let calls: Vec<_> = sb.log.digits().into_iter().map(|(callee, digits)| serde_json::json!({"callee": callee, "digits": digits})).collect();
    Json(serde_json::json!({ "calls": calls })).into_response()
}

#[derive(Deserialize)]
struct SandboxCall {
    to: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    other: String,
}

/// The sandbox carrier places an inbound call to one of our DIDs.
async fn sandbox_call(State(app): State<App>, body: Result<Json<SandboxCall>, JsonRejection>) -> Response {
    let Some(sb) = &app.sandbox else {
        return api_error(StatusCode::NOT_FOUND, "noSandbox", "a real trunk is configured; the sandbox carrier is off");
    };
    let Ok(Json(body)) = body else {
        return api_error(StatusCode::BAD_REQUEST, "badRequest", "send JSON {\"to\", \"from\", \"other\"}");
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 32 && s.trim_start_matches('+').bytes().all(|b| b.is_ascii_digit());
    let from = if body.from.is_empty() { "12025550199".to_string() } else { body.from };
    if !digits(&body.to) || !digits(&from) {
        return api_error(StatusCode::BAD_REQUEST, "badNumber", "to and from must be phone numbers (digits, up to 32)");
    }
    sb.place_call(crate::sandbox::PlaceCall {
        from: from.trim_start_matches('+').to_string(),
        to: body.to.trim_start_matches('+').to_string(),
        other: body.other,
        target: app.calls.sip_addr,
    });
    (StatusCode::ACCEPTED, Json(serde_json::json!({"placed": true}))).into_response()
}

async fn websocket(State(app): State<App>, headers: HeaderMap, upgrade: WebSocketUpgrade) -> Response {
    // The socket is opened by our own page: refuse other sites' pages
    // (cross-site WebSocket hijacking). The token is checked after upgrade.
    if !same_origin(&headers) {
        return api_error(StatusCode::FORBIDDEN, "forbiddenOrigin", "the WebSocket is for the softphone page only");
    }
    upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(64 * 1024)
        .max_frame_size(64 * 1024)
        .on_upgrade(move |socket| ws::run(socket, app))
}

fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true; // not a browser
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let origin_host = origin.split("://").nth(1).unwrap_or("");
    origin_host.eq_ignore_ascii_case(host)
}

fn asset(path: &str, headers: Option<HeaderValue>) -> Response {
    let Some(file) = Web::get(path) else {
        return api_error(StatusCode::NOT_FOUND, "notFound", "no such file");
    };
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let mut resp = (
        [(header::CONTENT_TYPE, mime.as_ref().to_string()), (header::CACHE_CONTROL, "no-cache".to_string())],
        file.data.into_owned(),
    )
        .into_response();
    resp.headers_mut().insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    if let Some(csp) = headers {
        resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    resp
}

/// Who may frame the softphone: the configured CRM origins, or anyone.
fn frame_ancestors(app: &App) -> Option<HeaderValue> {
    let origins = &app.cfg.embed.allowed_origins;
    let list = if origins.is_empty() { "*".to_string() } else { format!("'self' {}", origins.join(" ")) };
    HeaderValue::from_str(&format!("frame-ancestors {list}")).ok()
}

async fn softphone_index(State(app): State<App>) -> Response {
    asset("softphone/index.html", frame_ancestors(&app))
}

async fn softphone_asset(State(app): State<App>, Path(path): Path<String>) -> Response {
    asset(&format!("softphone/{path}"), frame_ancestors(&app))
}

async fn demo_index() -> Response {
    asset("demo/index.html", None)
}

async fn demo_asset(Path(path): Path<String>) -> Response {
    asset(&format!("demo/{path}"), None)
}
