//! The tenant admin's API: call policy, blacklist and call records. Every
//! request carries an admin's session token (`Authorization: Bearer`).

use crate::errors::{api_error, internal, json_rejection, path_rejection};
use crate::App;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use seatline_store::{now_ms, DidRouteSet, Policy, SessionCheck, User};
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/admin/policy", get(get_policy).put(set_policy))
        .route(
            "/api/v1/admin/blacklist/{number}",
            put(blacklist_add).delete(blacklist_remove),
        )
        .route("/api/v1/admin/calls", get(calls))
        .route("/api/v1/admin/dids/{number}/route", put(set_did_route))
        .route("/api/v1/admin/trunks", get(trunks))
}

/// The trunks and their health, with the SIP side's refusal counts.
async fn trunks(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(r) = admin(&app, &headers).await {
        return r;
    }
    let (trunks, unknown_dids, dropped) = app.hub.sip_status();
    let trunks: Vec<_> = trunks
        .into_iter()
        .map(|(name, up)| serde_json::json!({"name": name, "up": up}))
        .collect();
    Json(serde_json::json!({
        "trunks": trunks,
        "unknownDidCalls": unknown_dids,
        "droppedUntrusted": dropped,
    }))
    .into_response()
}

/// A DID's route: exactly one of the three.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DidRouteBody {
    /// A group of the tenant (e.g. "G001"): its agents take the calls.
    group: Option<String>,
    /// A number (E.164 digits) the calls are forwarded to, through the trunks.
    forward_to: Option<String>,
    /// A SIP status (400-699) every call gets, e.g. 486 or 603.
    reject: Option<u16>,
}

fn digits(number: &str) -> Option<String> {
    let n = number.trim_start_matches('+');
    (!n.is_empty() && n.len() <= 32 && n.bytes().all(|b| b.is_ascii_digit())).then(|| n.to_string())
}

async fn set_did_route(
    State(app): State<App>,
    headers: HeaderMap,
    number: Result<Path<String>, PathRejection>,
    body: Result<Json<DidRouteBody>, JsonRejection>,
) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    const SEND: &str =
        "send one of {\"group\": \"G001\"}, {\"forwardTo\": \"14155550100\"}, {\"reject\": 486}";
    let number = match number {
        Ok(Path(n)) => n,
        Err(rejection) => return path_rejection(rejection),
    };
    let b = match body {
        Ok(Json(b)) => b,
        Err(rejection) => return json_rejection(rejection, SEND),
    };
    let bad = |code: &str, msg: &str| api_error(StatusCode::BAD_REQUEST, code, msg);
    let Some(did) = digits(&number) else {
        return bad("badNumber", "the DID in E.164 digits");
    };
    let route = match (b.group, b.forward_to, b.reject) {
        (Some(g), None, None) if !g.is_empty() && g.len() <= 32 => DidRouteSet::Group(g),
        (None, Some(n), None) => match digits(&n) {
            Some(n) if n != did => DidRouteSet::Forward(n),
            Some(_) => return bad("badNumber", "a DID cannot be forwarded to itself"),
            None => return bad("badNumber", "forwardTo is a number in E.164 digits"),
        },
        (None, None, Some(code)) if (400..700).contains(&code) => DidRouteSet::Reject(code),
        (None, None, Some(_)) => return bad("badCode", "reject is a SIP status from 400 to 699"),
        _ => return bad("badRoute", SEND),
    };
    match app.store.set_did_route(user.tenant_id, &did, &route).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => api_error(
            StatusCode::NOT_FOUND,
            "notFound",
            "the tenant owns no such DID (or no such group)",
        ),
        Err(e) => internal(e),
    }
}

/// The admin behind the request's token, or the error to answer with.
async fn admin(app: &App, headers: &HeaderMap) -> Result<User, Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            api_error(
                StatusCode::UNAUTHORIZED,
                "tokenInvalid",
                "send Authorization: Bearer <token>",
            )
        })?;
    let idle_ms = app.hub.idle_timeout().as_millis() as i64;
    let user_id = match app.store.check_session(token, idle_ms, now_ms()).await {
        Ok(SessionCheck::Valid { user_id, .. }) => user_id,
        Ok(_) => {
            return Err(api_error(
                StatusCode::UNAUTHORIZED,
                "tokenInvalid",
                "the session has ended",
            ))
        }
        Err(e) => return Err(internal(e)),
    };
    let user = app.store.user_by_id(user_id).await.map_err(internal)?;
    if user.role != "admin" {
        return Err(api_error(
            StatusCode::FORBIDDEN,
            "notAdmin",
            "this needs a tenant admin",
        ));
    }
    Ok(user)
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PolicyBody {
    balance_cents: i64,
    allowed_countries: Vec<String>,
    trial: bool,
    trial_calls_per_day: i64,
    max_calls_per_callee_per_day: i64,
}

async fn get_policy(State(app): State<App>, headers: HeaderMap) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match app.store.policy(user.tenant_id).await {
        Ok(p) => Json(PolicyBody {
            balance_cents: p.balance_cents,
            allowed_countries: p.allowed_countries,
            trial: p.trial,
            trial_calls_per_day: p.trial_calls_per_day,
            max_calls_per_callee_per_day: p.max_calls_per_callee_per_day,
        })
        .into_response(),
        Err(e) => internal(e),
    }
}

async fn set_policy(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Json<PolicyBody>, JsonRejection>,
) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    const SEND: &str =
        "send the whole policy: balanceCents, allowedCountries, trial, trialCallsPerDay, maxCallsPerCalleePerDay";
    let b = match body {
        Ok(Json(b)) => b,
        Err(rejection) => return json_rejection(rejection, SEND),
    };
    if b.allowed_countries
        .iter()
        .any(|c| c.is_empty() || c.len() > 3 || !c.bytes().all(|x| x.is_ascii_digit()))
    {
        return api_error(
            StatusCode::BAD_REQUEST,
            "badCountry",
            "allowedCountries are calling codes, e.g. \"1\", \"852\"",
        );
    }
    if b.trial_calls_per_day < 0 || b.max_calls_per_callee_per_day < 0 {
        return api_error(
            StatusCode::BAD_REQUEST,
            "badLimit",
            "limits cannot be negative",
        );
    }
    let p = Policy {
        balance_cents: b.balance_cents,
        allowed_countries: b.allowed_countries,
        trial: b.trial,
        trial_calls_per_day: b.trial_calls_per_day,
        max_calls_per_callee_per_day: b.max_calls_per_callee_per_day,
    };
    match app.store.set_policy(user.tenant_id, &p).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => internal(e),
    }
}

async fn blacklist(app: App, headers: HeaderMap, number: String, on: bool) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let number = number.trim_start_matches('+').to_string();
    if number.is_empty() || number.len() > 32 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return api_error(
            StatusCode::BAD_REQUEST,
            "badNumber",
            "a number in E.164 digits",
        );
    }
    match app.store.set_blacklisted(user.tenant_id, &number, on).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => internal(e),
    }
}

async fn blacklist_add(
    State(app): State<App>,
    headers: HeaderMap,
    number: Result<Path<String>, PathRejection>,
) -> Response {
    match number {
        Ok(Path(number)) => blacklist(app, headers, number, true).await,
        Err(rejection) => path_rejection(rejection),
    }
}

async fn blacklist_remove(
    State(app): State<App>,
    headers: HeaderMap,
    number: Result<Path<String>, PathRejection>,
) -> Response {
    match number {
        Ok(Path(number)) => blacklist(app, headers, number, false).await,
        Err(rejection) => path_rejection(rejection),
    }
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<i64>,
}

async fn calls(
    State(app): State<App>,
    headers: HeaderMap,
    q: Result<Query<Limit>, QueryRejection>,
) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Ok(Query(q)) = q else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "badQuery",
            "limit must be a whole number, e.g. ?limit=50",
        );
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    match app.store.recent_calls(user.tenant_id, limit).await {
        Ok(rows) => {
            let calls: Vec<_> = rows
                .into_iter()
                .map(|c| {
                    serde_json::json!({
                        "callId": c.id, "direction": c.direction, "caller": c.caller, "callee": c.callee,
                        "orderId": c.order_id, "params": c.params, "other": c.other, "seatId": c.seat_id,
                        "callStartTimestamp": c.start_ms, "callConnectedTimestamp": c.connected_ms,
                        "callHangUpTimestamp": c.hangup_ms, "hangupCode": c.hangup_code, "sipCode": c.sip_code,
                        // Quality, null when never measured.
                        "lossPct": c.loss_pct, "jitterMs": c.jitter_ms, "rttMs": c.rtt_ms,
                        "mos": c.mos, "mosMin": c.mos_min, "trunk": c.trunk, "forwardedTo": c.forwarded_to,
                    })
                })
                .collect();
            Json(serde_json::json!({ "calls": calls })).into_response()
        }
        Err(e) => internal(e),
    }
}
