//! What a CRM's back end reads: API keys (made and revoked by a tenant
//! admin) and the call records, by `orderId` and other filters, as JSON
//! pages or CSV; and the OpenAPI document of every `/api` route.

use crate::admin::admin;
use crate::errors::{api_error, internal, json_rejection, path_rejection};
use crate::App;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use base64::Engine;
use seatline_store::{ApiKey, CallFilter, CallListRow, CallOutcome, SCOPES};
use serde::Deserialize;
use serde_json::{json, Value};

/// The OpenAPI document, kept beside the code; a test checks it against
/// the routes.
const OPENAPI: &str = include_str!("openapi.json");

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/admin/api-keys", get(list_keys).post(create_key))
        .route("/api/v1/admin/api-keys/{id}", delete(revoke_key))
        .route("/api/v1/calls", get(calls_json))
        .route("/api/v1/calls.csv", get(calls_csv))
        .route("/api/openapi.json", get(openapi))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

// ---- API keys ---------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    scopes: Vec<String>,
}

fn key_json(k: &ApiKey) -> Value {
    json!({
        "id": k.id, "name": k.name, "prefix": k.prefix, "scopes": k.scopes,
        "createdAt": k.created_ms, "revokedAt": k.revoked_ms, "lastUsedAt": k.last_used_ms,
    })
}

async fn create_key(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Json<NewKey>, JsonRejection>,
) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    const SEND: &str = "send {\"name\": \"crm\", \"scopes\": [\"records:read\"]}";
    let b = match body {
        Ok(Json(b)) => b,
        Err(rejection) => return json_rejection(rejection, SEND),
    };
    let bad = |msg: &str| api_error(StatusCode::BAD_REQUEST, "badKey", msg);
    let name = b.name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return bad("a key's name is 1 to 64 characters");
    }
    let mut scopes = Vec::new();
    for s in &b.scopes {
        if !SCOPES.contains(&s.as_str()) {
            return bad(&format!(
                "unknown scope {s:?}: one of {}",
                SCOPES.join(", ")
            ));
        }
        if !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    if scopes.is_empty() {
        return bad(&format!("give at least one scope: {}", SCOPES.join(", ")));
    }
    match app
        .store
        .create_api_key(user.tenant_id, name, &scopes)
        .await
    {
        Ok((key, rec)) => {
            tracing::info!(tenant = user.tenant_id, key_id = rec.id, "API key made");
            let mut v = key_json(&rec);
            v["key"] = key.into();
            (StatusCode::CREATED, Json(v)).into_response()
        }
        Err(e) => internal(e),
    }
}

async fn list_keys(State(app): State<App>, headers: HeaderMap) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match app.store.api_keys(user.tenant_id).await {
        Ok(keys) => {
            Json(json!({"keys": keys.iter().map(key_json).collect::<Vec<_>>()})).into_response()
        }
        Err(e) => internal(e),
    }
}

async fn revoke_key(
    State(app): State<App>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let id = match id {
        Ok(Path(id)) => id,
        Err(rejection) => return path_rejection(rejection),
    };
    match app.store.revoke_api_key(user.tenant_id, id).await {
        Ok(true) => {
            tracing::info!(tenant = user.tenant_id, key_id = id, "API key revoked");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => api_error(
            StatusCode::NOT_FOUND,
            "notFound",
            "the tenant has no live key with that id",
        ),
        Err(e) => internal(e),
    }
}

/// The live API key of the request, if it has `scope`; or the error to
/// answer with: 401 for a missing, unknown or revoked key, 403 for a key
/// without the scope.
pub(crate) async fn api_key(
    app: &App,
    headers: &HeaderMap,
    scope: &str,
) -> Result<ApiKey, Response> {
    let unauthorized = |msg: &str| api_error(StatusCode::UNAUTHORIZED, "keyInvalid", msg);
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("send Authorization: Bearer <API key>"))?;
    let key = match app.store.check_api_key(key.trim()).await {
        Ok(Some(k)) => k,
        Ok(None) => return Err(unauthorized("no such key, or it was revoked")),
        Err(e) => return Err(internal(e)),
    };
    if !key.allows(scope) {
        return Err(api_error(
            StatusCode::FORBIDDEN,
            "scopeMissing",
            &format!("this needs a key with the {scope} scope"),
        ));
    }
    Ok(key)
}

/// The tenant of a request by an admin's session, or by an API key with
/// `scope` (a bearer that starts like a key is taken as one).
pub(crate) async fn admin_or_key(
    app: &App,
    headers: &HeaderMap,
    scope: &str,
) -> Result<i64, Response> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bearer.starts_with(seatline_store::KEY_PREFIX) {
        api_key(app, headers, scope).await.map(|k| k.tenant_id)
    } else {
        admin(app, headers).await.map(|u| u.tenant_id)
    }
}

/// The tenant of a request to the records API: by an API key with `scope`
/// (what back ends send), or by an admin's session (the operator console).
/// No credentials at all is answered as before sessions were taken here:
/// 401 `keyInvalid`, asking for a key.
pub(crate) async fn key_or_admin(
    app: &App,
    headers: &HeaderMap,
    scope: &str,
) -> Result<i64, Response> {
    let has_bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|b| !b.trim().is_empty());
    if has_bearer {
        admin_or_key(app, headers, scope).await
    } else {
        api_key(app, headers, scope).await.map(|k| k.tenant_id)
    }
}

// ---- call records -----------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CallsQuery {
    /// Started at or after, milliseconds since the Unix epoch.
    from: Option<i64>,
    /// Started before.
    to: Option<i64>,
    /// The agent's email.
    agent: Option<String>,
    order_id: Option<String>,
    call_id: Option<String>,
    /// inbound, outbound or autoDialed.
    direction: Option<String>,
    /// answered, unanswered, failed or inProgress.
    outcome: Option<String>,
    limit: Option<i64>,
    /// The `nextCursor` of the page before.
    cursor: Option<String>,
}

const QUERY_HINT: &str = "filters: from, to (ms since the epoch), agent (email), orderId, callId, \
direction (inbound|outbound|autoDialed), outcome (answered|unanswered|failed|inProgress), \
limit, cursor";

fn cursor_of(row: &CallListRow) -> String {
    let raw = format!("{}:{}", row.call.start_ms, row.call.id);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn parse_cursor(c: &str) -> Option<(i64, String)> {
    if c.len() > 256 {
        return None;
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (start, id) = raw.split_once(':')?;
    Some((start.parse().ok()?, id.to_string()))
}

/// The filter of a query, or the 400 to answer with (made once per bad
/// request: its size does not matter).
#[allow(clippy::result_large_err)]
fn filter_of(
    tenant_id: i64,
    q: Result<Query<CallsQuery>, QueryRejection>,
    default_limit: i64,
    max_limit: i64,
) -> Result<CallFilter, Response> {
    let bad = |msg: &str| api_error(StatusCode::BAD_REQUEST, "badQuery", msg);
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return Err(bad(&format!("{}; {QUERY_HINT}", e.body_text()))),
    };
    let short = |s: &Option<String>| s.as_ref().is_some_and(|s| s.len() > 256);
    if short(&q.agent) || short(&q.order_id) || short(&q.call_id) {
        return Err(bad("agent, orderId and callId are up to 256 characters"));
    }
    let direction = match q.direction.as_deref() {
        None => None,
        Some("inbound") => Some(0),
        Some("outbound") => Some(1),
        Some("autoDialed") => Some(2),
        Some(_) => return Err(bad("direction is inbound, outbound or autoDialed")),
    };
    let outcome = match q.outcome.as_deref() {
        None => None,
        Some("answered") => Some(CallOutcome::Answered),
        Some("unanswered") => Some(CallOutcome::Unanswered),
        Some("failed") => Some(CallOutcome::Failed),
        Some("inProgress") => Some(CallOutcome::InProgress),
        Some(_) => return Err(bad("outcome is answered, unanswered, failed or inProgress")),
    };
    let limit = q.limit.unwrap_or(default_limit);
    if !(1..=max_limit).contains(&limit) {
        return Err(bad(&format!("limit is 1 to {max_limit}")));
    }
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => match parse_cursor(c) {
            Some(a) => Some(a),
            None => {
                return Err(api_error(
                    StatusCode::BAD_REQUEST,
                    "badCursor",
                    "cursor is the nextCursor of a page, unchanged",
                ))
            }
        },
    };
    Ok(CallFilter {
        tenant_id,
        from_ms: q.from,
        to_ms: q.to,
        agent: q.agent,
        order_id: q.order_id,
        call_id: q.call_id,
        direction,
        outcome,
        after,
        // One more than asked: whether a next page exists.
        limit: limit + 1,
    })
}

/// The columns of a record, in the order of the CSV.
const COLUMNS: [&str; 27] = [
    "callId",
    "direction",
    "caller",
    "callee",
    "orderId",
    "params",
    "other",
    "callStartTimestamp",
    "callConnectedTimestamp",
    "callHangUpTimestamp",
    "hangupCode",
    "sipCode",
    "hungUpBy",
    "talkSeconds",
    "billedSeconds",
    "cost",
    "agent",
    "seatId",
    "group",
    "trunk",
    "forwardedTo",
    "lossPct",
    "jitterMs",
    "rttMs",
    "mos",
    "mosMin",
    "recording",
];

pub(crate) fn record_json(r: &CallListRow) -> Value {
    let c = &r.call;
    let talk = match (c.connected_ms, c.hangup_ms) {
        (Some(a), Some(b)) if b >= a => Some((b - a) / 1000),
        _ => None,
    };
    let v = json!({
        "callId": c.id, "direction": c.direction, "caller": c.caller, "callee": c.callee,
        "orderId": c.order_id, "params": c.params, "other": c.other,
        "callStartTimestamp": c.start_ms, "callConnectedTimestamp": c.connected_ms,
        "callHangUpTimestamp": c.hangup_ms, "hangupCode": c.hangup_code, "sipCode": c.sip_code,
        "hungUpBy": c.hung_up_by, "talkSeconds": talk,
        "billedSeconds": c.billed_secs,
        // Cents; null when not billed (unanswered, or no rate).
        "cost": c.cost_millicents.map(|mc| mc as f64 / 1000.0),
        "agent": r.agent, "seatId": c.seat_id, "group": r.group_no,
        "trunk": c.trunk, "forwardedTo": c.forwarded_to,
        "lossPct": c.loss_pct, "jitterMs": c.jitter_ms, "rttMs": c.rtt_ms,
        "mos": c.mos, "mosMin": c.mos_min,
        // Where to fetch it (a key with recordings:read); null when none.
        "recording": c.recorded.then(|| format!("/api/v1/calls/{}/recording", c.id)),
    });
    debug_assert_eq!(v.as_object().map(|o| o.len()), Some(COLUMNS.len()));
    v
}

/// The records of a filter: at most `limit`, and the cursor of the next
/// page when there is one.
async fn page(app: &App, f: &CallFilter) -> Result<(Vec<CallListRow>, Option<String>), Response> {
    let mut rows = app.store.find_calls(f).await.map_err(internal)?;
    let asked = (f.limit - 1) as usize;
    let next = (rows.len() > asked).then(|| {
        rows.truncate(asked);
        rows.last().map(cursor_of)
    });
    Ok((rows, next.flatten()))
}

async fn calls_json(
    State(app): State<App>,
    headers: HeaderMap,
    q: Result<Query<CallsQuery>, QueryRejection>,
) -> Response {
    // The console's admin session, or a back end's key.
    let tenant_id = match key_or_admin(&app, &headers, "records:read").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let f = match filter_of(tenant_id, q, 100, 1000) {
        Ok(f) => f,
        Err(r) => return r,
    };
    match page(&app, &f).await {
        Ok((rows, next)) => Json(json!({
            "calls": rows.iter().map(record_json).collect::<Vec<_>>(),
            "nextCursor": next,
        }))
        .into_response(),
        Err(r) => r,
    }
}

/// A CSV cell: what a spreadsheet would take for a formula gets a `'`
/// in front (the host page and the carrier write some fields).
fn cell(v: &Value) -> String {
    let s = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) && !matches!(v, Value::Number(_)) {
        format!("'{s}")
    } else {
        s
    }
}

async fn calls_csv(
    State(app): State<App>,
    headers: HeaderMap,
    q: Result<Query<CallsQuery>, QueryRejection>,
) -> Response {
    // The console's admin session, or a back end's key.
    let tenant_id = match key_or_admin(&app, &headers, "records:read").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let f = match filter_of(tenant_id, q, 1000, 10_000) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (rows, next) = match page(&app, &f).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let write = || -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(COLUMNS)?;
        for r in &rows {
            let v = record_json(r);
            w.write_record(COLUMNS.iter().map(|c| cell(&v[*c])))?;
        }
        Ok(w.into_inner()?)
    };
    let body = match write() {
        Ok(b) => b,
        Err(e) => return internal(e),
    };
    let mut resp = (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"calls.csv\"",
            ),
        ],
        body,
    )
        .into_response();
    if let Some(next) = next.and_then(|n| n.parse().ok()) {
        resp.headers_mut().insert("Seatline-Next-Cursor", next);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_forged_ones_are_refused() {
        let row = CallListRow {
            call: seatline_store::CallRow {
                id: "c-1:x".into(),
                start_ms: 1_700_000_000_123,
                ..Default::default()
            },
            agent: None,
            group_no: None,
        };
        let c = cursor_of(&row);
        assert_eq!(parse_cursor(&c), Some((1_700_000_000_123, "c-1:x".into())));
        for bad in ["", "!!", "bm90LWEtY3Vyc29y", &"A".repeat(300)] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn cells_that_a_spreadsheet_would_run_are_defused() {
        assert_eq!(cell(&json!("=HYPERLINK(\"x\")")), "'=HYPERLINK(\"x\")");
        assert_eq!(cell(&json!("@SUM(1)")), "'@SUM(1)");
        assert_eq!(cell(&json!("+12025550100")), "'+12025550100");
        assert_eq!(cell(&json!("12025550100")), "12025550100");
        assert_eq!(cell(&json!(-1)), "-1");
        assert_eq!(cell(&Value::Null), "");
    }
}
