//! The operator console's live wallboard and supervisor actions, over
//! HTTP: a JSON snapshot, a Server-Sent Events stream of snapshots, and
//! forcing an agent's status or signing an agent out.
//!
//! What the wallboard shows and whether an action is allowed are the
//! switchboard's (see `seatline_switchboard::Wallboard`); this module only
//! authenticates, reads the store for who an `agentId` is, and paces the
//! stream: a snapshot at once, then one each time the tenant's wallboard
//! changed, at most one per [`MIN_GAP`], and one a second while a timer is
//! shown (so durations move). The stream re-checks its session every
//! [`SESSION_CHECK`] and ends when it is gone.
//!
//! EventSource cannot send headers: the stream also takes the session token
//! as `?token=`. No request line or token is ever logged.

use crate::admin::{admin, admin_of_token};
use crate::errors::{api_error, internal, json_rejection, path_rejection};
use crate::App;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use seatline_agent::{AgentError, Status};
use seatline_switchboard::SuperviseError;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The least time between two snapshots of one stream.
pub const MIN_GAP: Duration = Duration::from_millis(200);
/// How often a stream showing a timer is refreshed.
const TICK: Duration = Duration::from_secs(1);
/// How often a stream checks that its session is still valid.
const SESSION_CHECK: Duration = Duration::from_secs(30);

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/admin/wallboard", get(snapshot))
        .route("/api/v1/admin/wallboard/stream", get(stream))
        .route("/api/v1/admin/agents/{agentId}/status", post(force_status))
        .route("/api/v1/admin/agents/{agentId}/sign-out", post(sign_out))
}

async fn snapshot(State(app): State<App>, headers: HeaderMap) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    Json(app.hub.wallboard(user.tenant_id, Instant::now())).into_response()
}

/// The token of `?token=` (percent-decoded), when there is one.
fn query_token(query: Option<&str>) -> Option<String> {
    let query = query?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "token").then(|| percent_decode(v))
    })
}

/// `%XX` and `+` decoded; a bad escape is left as it is (the token then
/// fails the session check like any wrong token).
fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escaped = (b[i] == b'%')
            .then(|| Some(hex(*b.get(i + 1)?)? << 4 | hex(*b.get(i + 2)?)?))
            .flatten();
        match (b[i], escaped) {
            (_, Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (c, None) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What woke a stream up.
enum Wake {
    Changed,
    Tick,
    Check,
    Gone,
}

/// What one console's stream keeps between snapshots.
struct Feed {
    app: App,
    tenant_id: i64,
    token: String,
    changes: watch::Receiver<u64>,
    /// When the last snapshot went (none yet: the first goes at once).
    last: Option<tokio::time::Instant>,
    /// The last snapshot showed a timer: refresh it each [`TICK`].
    ticking: bool,
    next_check: tokio::time::Instant,
    /// The session ended: the `signedOut` event went, the stream ends.
    done: bool,
}

impl Feed {
    /// The next event: a snapshot when it is due, or `signedOut`; `None`
    /// when the stream is over.
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Feed)> {
        if self.done {
            return None;
        }
        if let Some(last) = self.last {
            let ticking = self.ticking;
            let tick = async move {
                if ticking {
                    tokio::time::sleep(TICK).await
                } else {
                    std::future::pending().await
                }
            };
            let woke = tokio::select! {
                r = self.changes.changed() => r.map(|_| Wake::Changed).unwrap_or(Wake::Gone),
                _ = tick => Wake::Tick,
                _ = tokio::time::sleep_until(self.next_check) => Wake::Check,
            };
            match woke {
                // The hub is gone: the server stops.
                Wake::Gone => return None,
                Wake::Changed | Wake::Tick => {}
                Wake::Check => {
                    self.next_check += SESSION_CHECK;
                    if admin_of_token(&self.app, Some(self.token.as_str()))
                        .await
                        .is_err()
                    {
                        self.done = true;
                        let ev = Event::default()
                            .event("signedOut")
                            .data(r#"{"error":"tokenInvalid"}"#);
                        return Some((Ok(ev), self));
                    }
                }
            }
            // Changes close together make one snapshot.
            tokio::time::sleep_until(last + MIN_GAP).await;
        }
        self.changes.borrow_and_update();
        let board = self
            .app
            .hub
            .wallboard_shared(self.tenant_id, Instant::now());
        self.ticking = board.ticking;
        self.last = Some(tokio::time::Instant::now());
        let ev = Event::default().event("wallboard").data(&*board.json);
        Some((Ok(ev), self))
    }
}

async fn stream(State(app): State<App>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string)
        .or_else(|| query_token(q.as_deref()));
    let user = match admin_of_token(&app, token.as_deref()).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let feed = Feed {
        changes: app.hub.watch_wallboard(user.tenant_id),
        app,
        tenant_id: user.tenant_id,
        token: token.unwrap_or_default(),
        last: None,
        ticking: false,
        next_check: tokio::time::Instant::now() + SESSION_CHECK,
        done: false,
    };
    let events = futures_util::stream::unfold(feed, Feed::next);
    let mut resp = Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response();
    // Through a proxy too: no buffering of the stream.
    resp.headers_mut()
        .insert("x-accel-buffering", header::HeaderValue::from_static("no"));
    resp
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StatusBody {
    /// An `agentStatus` code, 1 to 7.
    status: i64,
}

/// The seat of user `agent_id` when it is in the admin's tenant: 404 otherwise.
async fn seat_in_tenant(app: &App, tenant_id: i64, agent_id: i64) -> Result<i64, Response> {
    let seat = app.store.seat_of_user(agent_id).await.map_err(internal)?;
    seat.filter(|s| s.tenant_id == tenant_id)
        .map(|s| s.id)
        .ok_or_else(|| {
            api_error(
                StatusCode::NOT_FOUND,
                "notFound",
                &format!("this tenant has no agent {agent_id} with a seat"),
            )
        })
}

/// Why the switchboard refused a supervisor's action, as HTTP.
fn refused(e: SuperviseError) -> Response {
    match e {
        SuperviseError::NotFound | SuperviseError::Agent(AgentError::NotSignedIn) => api_error(
            StatusCode::CONFLICT,
            "notSignedIn",
            "the agent is not signed in",
        ),
        SuperviseError::Agent(AgentError::BusyWithCall) => api_error(
            StatusCode::CONFLICT,
            "busyWithCall",
            "the agent is in a call or one is ringing: the status can change after it",
        ),
        SuperviseError::Agent(e) => api_error(StatusCode::CONFLICT, "notAvailable", &e.to_string()),
    }
}

async fn force_status(
    State(app): State<App>,
    headers: HeaderMap,
    agent: Result<Path<i64>, PathRejection>,
    body: Result<Json<StatusBody>, JsonRejection>,
) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Path(agent_id) = match agent {
        Ok(p) => p,
        Err(r) => return path_rejection(r),
    };
    let Json(body) = match body {
        Ok(b) => b,
        Err(r) => return json_rejection(r, "send JSON {\"status\": 1..7}"),
    };
    let Some(status) = Status::from_code(body.status) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "badStatus",
            "status is an agentStatus code, 1 to 7",
        );
    };
    let seat = match seat_in_tenant(&app, user.tenant_id, agent_id).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    // Another node holds the agent: that node decides, and its answer is
    // this one (a request it relays is never relayed again).
    if !headers.contains_key(crate::relay::HEADER) {
        if let Some(base) = crate::holder::elsewhere(&app, seat).await {
            return relay_status(&app, &base, agent_id, &headers, body.status).await;
        }
    }
    match app
        .hub
        .force_status(user.tenant_id, seat, status, Instant::now())
    {
        Ok(()) => {
            tracing::info!(
                admin = user.id,
                agent = agent_id,
                status = body.status,
                "status forced"
            );
            Json(serde_json::json!({"agentId": agent_id, "status": body.status})).into_response()
        }
        Err(e) => refused(e),
    }
}

/// Sends a supervisor's status change to the node at `base` that holds the
/// agent, with the supervisor's own credentials; its answer, as it is.
async fn relay_status(
    app: &App,
    base: &str,
    agent_id: i64,
    headers: &HeaderMap,
    status: i64,
) -> Response {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/api/v1/admin/agents/{agent_id}/status"))
        .timeout(std::time::Duration::from_secs(5))
        .header(crate::relay::HEADER, app.cfg.cluster.node.as_str())
        .json(&serde_json::json!({ "status": status }));
    if let Some(auth) = headers.get(axum::http::header::AUTHORIZATION) {
        req = req.header(reqwest::header::AUTHORIZATION, auth.as_bytes());
    }
    let answer = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("cannot reach the node holding an agent: {e}");
            return api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the node holding the agent cannot be reached now",
            );
        }
    };
    let code = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    match answer.json::<serde_json::Value>().await {
        Ok(body) => (code, Json(body)).into_response(),
        Err(_) => code.into_response(),
    }
}

async fn sign_out(
    State(app): State<App>,
    headers: HeaderMap,
    agent: Result<Path<i64>, PathRejection>,
) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Path(agent_id) = match agent {
        Ok(p) => p,
        Err(r) => return path_rejection(r),
    };
    let seat = match seat_in_tenant(&app, user.tenant_id, agent_id).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    // The store first: no tab can reconnect with a session that was ended.
    let revoked = match app.store.end_user_sessions(agent_id, None).await {
        Ok(ended) => ended.len() as u64,
        Err(e) => return internal(e),
    };
    let tabs_closed = match app.hub.force_sign_out(user.tenant_id, seat, Instant::now()) {
        Ok(sessions) => sessions.len(),
        // Not signed in here: the store's sessions are ended all the same.
        Err(SuperviseError::NotFound) => 0,
        Err(e) => return refused(e),
    };
    // Its tabs on the other nodes too.
    app.bus
        .publish(crate::bus::Change::SeatSignedOut {
            tenant_id: user.tenant_id,
            seat_id: seat,
        })
        .await;
    tracing::info!(
        admin = user.id,
        agent = agent_id,
        revoked,
        "agent signed out by a supervisor"
    );
    Json(serde_json::json!({"agentId": agent_id, "sessionsEnded": revoked.max(tabs_closed as u64)}))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_from_the_query_decoded() {
        assert_eq!(query_token(Some("token=abc")), Some("abc".into()));
        assert_eq!(query_token(Some("x=1&token=a%2Bb%3D")), Some("a+b=".into()));
        assert_eq!(query_token(Some("x=1")), None);
        assert_eq!(query_token(None), None);
        // Bad escapes stay as they are; nothing panics.
        assert_eq!(query_token(Some("token=%zz%4")), Some("%zz%4".into()));
        assert_eq!(query_token(Some("token=%")), Some("%".into()));
        assert_eq!(query_token(Some("token=%aé")), Some("%aé".into()));
    }
}
