//! The HTTP surface: health, the sign-in API, the softphone's WebSocket, and
//! the embedded web pages (softphone at `/admin/#/nxcc`, demo CRM at `/demo`,
//! operator console at `/console/`, the embedding SDK under `/sdk/`, the
//! modules both pages import under `/shared/`).
//!
//! One middleware ([`edges`]) sees every response: request bodies over
//! [`BODY_LIMIT`] get 413, every error is JSON `{error, message}`, and every
//! response carries the security headers (framing: only the softphone may be
//! framed, by the configured CRM origins).

use crate::errors::payload_too_large;
use crate::errors::{api_error, internal, json_rejection, path_rejection};
use crate::signin::Signin;
use crate::{ws, App};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, Request, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use rust_embed::RustEmbed;
use seatline_protocol::SeatInfo;
use seatline_store::{now_ms, token_id, SessionCheck};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

pub use crate::errors::BODY_LIMIT;

#[derive(RustEmbed)]
#[folder = "../../web/"]
struct Web;

pub fn router(app: App) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/api/v1/sessions", post(sign_in))
        .route("/api/v1/sessions/current", axum::routing::delete(sign_out))
        .route("/api/v1/embed", get(embed_config))
        .route("/ws", get(websocket))
        .route("/api/v1/sandbox/digits", get(sandbox_digits))
        .route(
            "/api/v1/sandbox/calls",
            post(sandbox_call).get(sandbox_placed),
        )
        .route("/", get(|| async { Redirect::to("/demo") }))
        .route("/admin", get(|| async { Redirect::to("/admin/") }))
        .route("/admin/", get(softphone_index))
        .route("/admin/{*path}", get(softphone_asset))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(console_index))
        .route("/console/{*path}", get(console_asset))
        .route("/demo", get(demo_index))
        .route("/demo/", get(demo_index))
        .route("/demo/{*path}", get(demo_asset))
        .route("/sdk/{*path}", get(sdk_asset))
        .route("/shared/{*path}", get(shared_asset))
        .merge(crate::admin::routes())
        .merge(crate::records::routes())
        .merge(crate::recordings::routes())
        .merge(crate::directory::routes())
        .merge(crate::access::routes())
        .merge(crate::webhooks::routes())
        .merge(crate::wallboard::routes())
        .merge(crate::sso::routes())
        .merge(crate::music::routes())
        .merge(crate::menus::routes())
        .fallback(|| async { api_error(StatusCode::NOT_FOUND, "notFound", "no such page") })
        .layer(Extension(Signin::new(&app.cfg.signin)))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(app.clone(), edges))
        .with_state(app)
}

/// Around every request: refuses a declared body over [`BODY_LIMIT`] (a
/// tenant's music file: over its own limit) before reading it (a chunked
/// one is cut at the limit by `DefaultBodyLimit`), turns
/// any error that is not JSON yet (axum's rejections, 405s) into
/// `{error, message}`, and adds the security headers.
async fn edges(State(app): State<App>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let limit = if path == "/api/v1/admin/music" {
        crate::music::FILE_LIMIT
    } else {
        BODY_LIMIT
    };
    let too_large = declared.is_some_and(|n| n > limit as u64);
    let mut resp = if too_large {
        payload_too_large(limit)
    } else {
        next.run(req).await
    };
    if resp.status().is_client_error() || resp.status().is_server_error() {
        resp = json_error(resp).await;
    }
    security_headers(&app, &path, resp.headers_mut());
    resp
}

/// An error response as JSON `{error, message}`; one that is JSON already
/// is left as it is. Other headers (`Allow`, `Retry-After`) are kept.
async fn json_error(resp: Response) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let status = parts.status;
    let text = axum::body::to_bytes(body, 1024)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok());
    let text = text
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty() && status.is_client_error());
    let reason = status
        .canonical_reason()
        .unwrap_or("the request failed")
        .to_lowercase();
    let error = match status.as_u16() {
        400 | 422 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "notFound",
        405 => "methodNotAllowed",
        408 => "requestTimeout",
        413 => "payloadTooLarge",
        415 => "unsupportedMediaType",
        426 => "upgradeRequired",
        429 => "tooManyRequests",
        503 => "unavailable",
        500..=599 => "internal",
        _ => "requestFailed",
    };
    let (json, body) = api_error(status, error, &text.unwrap_or(reason)).into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(json.headers);
    Response::from_parts(parts, body)
}

/// The headers every response carries. Framing: the softphone (`/admin/`) by
/// the configured CRM origins only; the SDK is a script any page may load;
/// nothing else may be framed (the demo page frames the softphone, which is
/// the framed page's rule to set, not the demo's).
fn security_headers(app: &App, path: &str, h: &mut HeaderMap) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    if path.starts_with("/sdk/") {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        h.insert(
            "cross-origin-resource-policy",
            HeaderValue::from_static("cross-origin"),
        );
    } else if path.starts_with("/admin/") {
        if let Some(ancestors) = frame_ancestors(app) {
            add_frame_ancestors(h, ancestors);
        }
    } else {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        add_frame_ancestors(h, HeaderValue::from_static("frame-ancestors 'none'"));
    }
    if path.starts_with("/api/") && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// Adds a `frame-ancestors` directive to the response's CSP, keeping one
/// the handler set itself.
fn add_frame_ancestors(h: &mut HeaderMap, directive: HeaderValue) {
    let csp = match h
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
    {
        None => directive,
        Some(csp) if csp.contains("frame-ancestors") => return,
        Some(csp) => match HeaderValue::from_str(&format!(
            "{csp}; {}",
            directive.to_str().unwrap_or_default()
        )) {
            Ok(v) => v,
            Err(_) => return,
        },
    };
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
}

/// 429 for a throttled sign-in, the same whichever limit and whether the
/// account exists or not.
fn too_many_attempts(retry_after_secs: u64) -> Response {
    let body = serde_json::json!({
        "error": "tooManyAttempts",
        "message": format!("too many failed sign-ins; try again in {retry_after_secs} s"),
        "retryAfterSecs": retry_after_secs,
    });
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    resp
}

fn busy() -> Response {
    let message = "too many sign-ins at once; try again in a second";
    let mut resp = api_error(StatusCode::SERVICE_UNAVAILABLE, "busy", message);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// A sign-in: an email and password, or a one-time sign-in token (from
/// `POST /api/v1/sign-in-tokens`) instead.
#[derive(Deserialize)]
struct SignIn {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SignedIn {
    email: String,
    /// 1: the account has an enabled seat; 2: it has none (no session is kept).
    agent_exists: u8,
    /// Present only with a seat.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seat: Option<SeatInfo>,
    idle_timeout_secs: u64,
    /// The host origins that apply once signed in: the tenant's own list,
    /// else the global one (empty: any).
    allowed_origins: Vec<String>,
}

async fn sign_in(
    State(app): State<App>,
    Extension(signin): Extension<Arc<Signin>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Result<Json<SignIn>, JsonRejection>,
) -> Response {
    let body = match body {
        Ok(Json(body)) => body,
        Err(rejection) => {
            return json_rejection(
                rejection,
                "send JSON {\"email\", \"password\"} or {\"token\"}",
            )
        }
    };
    if let Some(token) = body.token {
        if !body.email.is_empty() || !body.password.is_empty() {
            return api_error(
                StatusCode::BAD_REQUEST,
                "badRequest",
                "send either a token or an email and password",
            );
        }
        return redeem(&app, &token).await;
    }
    if body.email.trim().is_empty() || body.password.is_empty() {
        return api_error(
            StatusCode::BAD_REQUEST,
            "missingCredentials",
            "email and password are required",
        );
    }
    // Throttled before any hashing: a refused attempt costs no argon2.
    let ip = peer.map_or(
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        |Extension(ConnectInfo(a))| a.ip(),
    );
    let attempt = match signin.begin(&body.email, ip, Instant::now()) {
        Ok(attempt) => attempt,
        Err(throttled) => return too_many_attempts(throttled.retry_after_secs),
    };
    let Some(place) = signin.enter_hashing() else {
        attempt.not_judged();
        return busy();
    };
    let user = match app.store.check_password(&body.email, &body.password).await {
        Ok(Some(user)) => {
            attempt.succeeded();
            user
        }
        Ok(None) => {
            attempt.failed();
            return api_error(
                StatusCode::UNAUTHORIZED,
                "invalidCredentials",
                "wrong email or password",
            );
        }
        Err(e) => {
            attempt.not_judged();
            return internal(e);
        }
    };
    drop(place);
    open_session(&app, user).await
}

/// A sign-in with a one-time token: the same answer as with a password; a
/// used, expired or unknown token is 401 `tokenInvalid`.
async fn redeem(app: &App, token: &str) -> Response {
    let user_id = match app.store.redeem_sign_in_token(token, now_ms()).await {
        Ok(Some(id)) => id,
        Ok(None) => {
            return api_error(
                StatusCode::UNAUTHORIZED,
                "tokenInvalid",
                "the sign-in token is unknown, used already or expired",
            )
        }
        Err(e) => return internal(e),
    };
    match app.store.user_by_id(user_id).await {
        Ok(user) => {
            tracing::info!(user = user.id, "sign-in token redeemed");
            open_session(app, user).await
        }
        Err(e) => internal(e),
    }
}

/// Opens a session for a user who proved who they are (a disabled one is
/// refused with 403 `userDisabled`): the sign-in answer.
async fn open_session(app: &App, user: seatline_store::User) -> Response {
    match open_session_body(app, user).await {
        Ok(body) => Json(body).into_response(),
        Err(r) => r,
    }
}

/// The sign-in answer's body for a user who proved who they are (by
/// password, one-time token or single sign-on), or the error to answer with.
pub(crate) async fn open_session_body(
    app: &App,
    user: seatline_store::User,
) -> Result<SignedIn, Response> {
    if !user.enabled {
        return Err(api_error(
            StatusCode::FORBIDDEN,
            "userDisabled",
            "this account is disabled",
        ));
    }
    let seat = match app.store.seat_of_user(user.id).await {
        Ok(seat) => seat.filter(|s| s.enabled),
        Err(e) => return Err(internal(e)),
    };
    let idle_timeout_secs = app.hub.idle_timeout().as_secs();
    let allowed_origins = match crate::origins::effective(app, user.tenant_id).await {
        Ok(list) => list,
        Err(e) => return Err(internal(e)),
    };
    let Some(seat) = seat else {
        // No seat: the softphone has nothing to offer this account, so no
        // session is kept for it; the page says why and stays signed out.
        // A tenant admin still gets a session, for the admin API.
        let token = if user.role == "admin" {
            match app.store.create_session(user.id, now_ms()).await {
                Ok((token, _)) => Some(token),
                Err(e) => return Err(internal(e)),
            }
        } else {
            None
        };
        return Ok(SignedIn {
            email: user.email,
            agent_exists: 2,
            token,
            seat: None,
            idle_timeout_secs,
            allowed_origins,
        });
    };
    let (token, session_id) = match app.store.create_session(user.id, now_ms()).await {
        Ok(t) => t,
        Err(e) => return Err(internal(e)),
    };
    app.hub.label_agent(&seat, &user.email);
    match crate::holder::holder(app, seat.id).await {
        None => app.hub.signed_in(&session_id, &seat, Instant::now()),
        Some(holder) => {
            app.bus
                .publish(crate::bus::Change::SignedIn {
                    user_id: user.id,
                    session_id: session_id.clone(),
                    holder,
                })
                .await
        }
    }
    tracing::info!(user = user.id, "signed in");
    Ok(SignedIn {
        email: user.email,
        agent_exists: 1,
        token: Some(token),
        seat: Some(SeatInfo {
            sip_num: seat.sip_num,
            group_no: seat.group_no,
        }),
        idle_timeout_secs,
        allowed_origins,
    })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Signs the session out; every tab of it is told (`loggedOut`).
async fn sign_out(State(app): State<App>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "tokenInvalid",
            "send Authorization: Bearer <token>",
        );
    };
    let idle_ms = app.hub.idle_timeout().as_millis() as i64;
    let valid = matches!(
        app.store.check_session(token, idle_ms, now_ms()).await,
        Ok(SessionCheck::Valid { .. })
    );
    let id = token_id(token);
    if let Err(e) = app.store.revoke_session(&id).await {
        return internal(e);
    }
    app.hub.logout(&id, Instant::now());
    app.bus
        .publish(crate::bus::Change::SessionEnded { session_id: id })
        .await;
    if valid {
        StatusCode::NO_CONTENT.into_response()
    } else {
        api_error(
            StatusCode::UNAUTHORIZED,
            "tokenInvalid",
            "the session had already ended",
        )
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EmbedConfig {
    allowed_origins: Vec<String>,
}

/// The host origins the softphone listens to: the global list, or with a
/// session's token (`Authorization: Bearer`) the list of its tenant (its
/// own when set, else the global one). A token that is not a live session
/// is 401 `tokenInvalid`, not the global list: the softphone must not widen
/// what it accepts because its session ended.
async fn embed_config(State(app): State<App>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return Json(EmbedConfig {
            allowed_origins: app.cfg.embed.allowed_origins.clone(),
        })
        .into_response();
    };
    let idle_ms = app.hub.idle_timeout().as_millis() as i64;
    let user_id = match app.store.check_session(token, idle_ms, now_ms()).await {
        Ok(SessionCheck::Valid { user_id, .. }) => user_id,
        Ok(_) => {
            return api_error(
                StatusCode::UNAUTHORIZED,
                "tokenInvalid",
                "the session has ended",
            )
        }
        Err(e) => return internal(e),
    };
    let user = match app.store.user_by_id(user_id).await {
        Ok(u) => u,
        Err(e) => return internal(e),
    };
    match crate::origins::effective(&app, user.tenant_id).await {
        Ok(allowed_origins) => Json(EmbedConfig { allowed_origins }).into_response(),
        Err(e) => internal(e),
    }
}

/// What the sandbox carrier heard as DTMF, per callee (tests, demo).
async fn sandbox_digits(State(app): State<App>) -> Response {
    let Some(sb) = &app.sandbox else {
        return api_error(
            StatusCode::NOT_FOUND,
            "noSandbox",
            "a real trunk is configured; the sandbox carrier is off",
        );
    };
    let calls: Vec<_> = sb
        .log
        .digits()
        .into_iter()
        .map(|(callee, digits)| serde_json::json!({"callee": callee, "digits": digits}))
        .collect();
    Json(serde_json::json!({ "calls": calls })).into_response()
}

/// The inbound calls the sandbox placed (the last 32), with what their
/// caller heard: for tests and the demo.
async fn sandbox_placed(State(app): State<App>) -> Response {
    let Some(sb) = &app.sandbox else {
        return api_error(
            StatusCode::NOT_FOUND,
            "noSandbox",
            "a real trunk is configured; the sandbox carrier is off",
        );
    };
    Json(serde_json::json!({ "calls": sb.log.placed() })).into_response()
}

#[derive(Deserialize)]
struct SandboxCall {
    to: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    other: String,
    /// Keys the caller presses (RFC 4733) once answered, e.g. a menu's.
    #[serde(default)]
    keys: String,
}

/// The sandbox carrier places an inbound call to one of our DIDs.
async fn sandbox_call(
    State(app): State<App>,
    body: Result<Json<SandboxCall>, JsonRejection>,
) -> Response {
    let Some(sb) = &app.sandbox else {
        return api_error(
            StatusCode::NOT_FOUND,
            "noSandbox",
            "a real trunk is configured; the sandbox carrier is off",
        );
    };
    let body = match body {
        Ok(Json(body)) => body,
        Err(rejection) => {
            return json_rejection(
                rejection,
                "send JSON {\"to\", \"from\", \"other\", \"keys\"}",
            )
        }
    };
    let digits = |s: &str| {
        !s.is_empty()
            && s.len() <= 32
            && s.trim_start_matches('+')
                .bytes()
                .all(|b| b.is_ascii_digit())
    };
    let from = if body.from.is_empty() {
        "12025550199".to_string()
    } else {
        body.from
    };
    if body.keys.len() > 16 || !body.keys.chars().all(seatline_switchboard::is_key) {
        return api_error(
            StatusCode::BAD_REQUEST,
            "badKeys",
            "keys are up to 16 of 0-9, * and #",
        );
    }
    if !digits(&body.to) || !digits(&from) {
        return api_error(
            StatusCode::BAD_REQUEST,
            "badNumber",
            "to and from must be phone numbers (digits, up to 32)",
        );
    }
    sb.place_call(crate::sandbox::PlaceCall {
        from: from.trim_start_matches('+').to_string(),
        to: body.to.trim_start_matches('+').to_string(),
        other: body.other,
        keys: body.keys,
        target: app.calls.sip_addr,
    });
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"placed": true})),
    )
        .into_response()
}

/// 200 `ok` while the node takes calls; 503 `draining` once it drains
/// (a proxy's or dispatcher's health check then sends work elsewhere).
async fn healthz(State(app): State<App>) -> Response {
    if app.draining.load(std::sync::atomic::Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response()
    } else {
        "ok".into_response()
    }
}

async fn websocket(
    State(app): State<App>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    // The socket is opened by our own page: refuse other sites' pages
    // (cross-site WebSocket hijacking). The token is checked after upgrade.
    if !same_origin(&headers) {
        return api_error(
            StatusCode::FORBIDDEN,
            "forbiddenOrigin",
            "the WebSocket is for the softphone page only",
        );
    }
    // A tab another node relays to this one, which holds its agent (never
    // a browser's own: a page cannot set this header, and has an Origin).
    let relayed = headers.contains_key(crate::relay::HEADER)
        && !headers.contains_key(header::ORIGIN)
        && app.store.backend() == "postgres";
    if !relayed && app.draining.load(std::sync::atomic::Ordering::Relaxed) {
        // The softphone tries again, through the proxy to another node.
        return api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "this node is draining; connect to another",
        );
    }
    upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(64 * 1024)
        .max_frame_size(64 * 1024)
        .on_upgrade(move |socket| ws::run(socket, app, relayed))
}

fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true; // not a browser
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split("://").nth(1).unwrap_or("");
    origin_host.eq_ignore_ascii_case(host)
}

/// An embedded file, or a JSON 404. Framing and the other security headers
/// are added by [`edges`], by path.
fn asset(path: &str) -> Response {
    let Some(file) = Web::get(path) else {
        return api_error(StatusCode::NOT_FOUND, "notFound", "no such file");
    };
    (
        [
            (header::CONTENT_TYPE, content_type(path)),
            (header::CACHE_CONTROL, "no-cache".to_string()),
        ],
        file.data.into_owned(),
    )
        .into_response()
}

/// The content type of an embedded file, text in UTF-8.
fn content_type(path: &str) -> String {
    let mime = match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js" | "mjs") => "text/javascript".to_string(),
        // TypeScript (the SDK's `.d.ts`), not an MPEG stream.
        Some("ts" | "mts") => "application/typescript".to_string(),
        _ => mime_guess::from_path(path)
            .first_or_octet_stream()
            .to_string(),
    };
    let text = mime.starts_with("text/")
        || matches!(
            mime.as_str(),
            "application/typescript" | "application/json" | "image/svg+xml"
        );
    if text {
        format!("{mime}; charset=utf-8")
    } else {
        mime
    }
}

/// Who may frame the softphone: the configured CRM origins, or anyone.
fn frame_ancestors(app: &App) -> Option<HeaderValue> {
    let origins = &app.cfg.embed.allowed_origins;
    let list = if origins.is_empty() {
        "*".to_string()
    } else {
        format!("'self' {}", origins.join(" "))
    };
    HeaderValue::from_str(&format!("frame-ancestors {list}")).ok()
}

/// The softphone's page. A CRM that names its tenant in the iframe's
/// address (`/admin/?tenant=ID`, as single sign-on does) gets that
/// tenant's own origins as the `frame-ancestors` of the page, when the
/// tenant has set any; otherwise the global list applies (set by
/// [`security_headers`]). A tenant that is not a number, or has no list,
/// changes nothing.
async fn softphone_index(State(app): State<App>, query: axum::extract::RawQuery) -> Response {
    let mut page = asset("softphone/index.html");
    let tenant = query.0.as_deref().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "tenant")
            .and_then(|(_, v)| v.parse::<i64>().ok())
    });
    let Some(tenant) = tenant.filter(|t| *t > 0) else {
        return page;
    };
    let origins = match app.store.tenant_origins(tenant).await {
        Ok(o) if !o.is_empty() => o,
        _ => return page,
    };
    if let Ok(v) = HeaderValue::from_str(&format!("frame-ancestors 'self' {}", origins.join(" "))) {
        add_frame_ancestors(page.headers_mut(), v);
    }
    page
}

async fn softphone_asset(path: Result<Path<String>, PathRejection>) -> Response {
    match path {
        Ok(Path(path)) => asset(&format!("softphone/{path}")),
        Err(rejection) => path_rejection(rejection),
    }
}

/// The operator console (`/console/`): the admin's live wallboard.
async fn console_index() -> Response {
    asset("console/index.html")
}

async fn console_asset(path: Result<Path<String>, PathRejection>) -> Response {
    match path {
        Ok(Path(path)) => asset(&format!("console/{path}")),
        Err(rejection) => path_rejection(rejection),
    }
}

async fn demo_index() -> Response {
    asset("demo/index.html")
}

async fn demo_asset(path: Result<Path<String>, PathRejection>) -> Response {
    match path {
        Ok(Path(path)) => asset(&format!("demo/{path}")),
        Err(rejection) => path_rejection(rejection),
    }
}

/// The embedding SDK (`/sdk/seatline.js`, `/sdk/seatline.d.ts`): any CRM page
/// may import it (`Access-Control-Allow-Origin: *`, set by [`edges`]).
async fn sdk_asset(path: Result<Path<String>, PathRejection>) -> Response {
    match path {
        Ok(Path(path)) => asset(&format!("sdk/{path}")),
        Err(rejection) => path_rejection(rejection),
    }
}

/// The modules the softphone and the console both import (`/shared/`), e.g.
/// the i18n helpers.
async fn shared_asset(path: Result<Path<String>, PathRejection>) -> Response {
    match path {
        Ok(Path(path)) => asset(&format!("shared/{path}")),
        Err(rejection) => path_rejection(rejection),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_of_the_embedded_files() {
        assert_eq!(
            content_type("sdk/seatline.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type("sdk/seatline.d.ts"),
            "application/typescript; charset=utf-8"
        );
        assert_eq!(content_type("demo/index.html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("softphone/softphone.css"),
            "text/css; charset=utf-8"
        );
        assert_eq!(content_type("x/ring.wav"), "audio/wav");
        assert_eq!(content_type("x/blob"), "application/octet-stream");
    }

    #[test]
    fn a_frame_ancestors_directive_joins_a_csp_set_by_the_handler() {
        let mut h = HeaderMap::new();
        add_frame_ancestors(&mut h, HeaderValue::from_static("frame-ancestors 'none'"));
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], "frame-ancestors 'none'");
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'"),
        );
        add_frame_ancestors(&mut h, HeaderValue::from_static("frame-ancestors *"));
        assert_eq!(
            h[header::CONTENT_SECURITY_POLICY],
            "default-src 'self'; frame-ancestors *"
        );
        add_frame_ancestors(&mut h, HeaderValue::from_static("frame-ancestors 'none'"));
        assert_eq!(
            h[header::CONTENT_SECURITY_POLICY],
            "default-src 'self'; frame-ancestors *",
            "kept"
        );
    }
}
