//! Webhooks: every ended call's record, POSTed to the tenant's URL, signed
//! (`Seatline-Signature: t=UNIX_SECONDS,v1=HEX`, HMAC-SHA256 with the
//! tenant's secret over `UNIX_SECONDS.BODY`) and named (`Seatline-Delivery`).
//! Deliveries come from the database's outbox, so a restart or a crash
//! loses none: a delivery is retried, waiting twice as long each time,
//! until a 2xx comes back, and never sent again after that.

use crate::errors::{api_error, internal, json_rejection};
use crate::records::record_json;
use crate::App;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use seatline_store::{now_ms, CallFilter, Delivery, Webhook};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;
use std::time::Duration;

pub fn routes() -> Router<App> {
    Router::new()
        .route(
            "/api/v1/admin/webhook",
            get(get_webhook).put(put_webhook).delete(delete_webhook),
        )
        .route("/api/v1/admin/webhook/deliveries", get(deliveries))
}

/// The signature of `body` sent at `t` (Unix seconds): lowercase hex.
pub fn sign(secret: &str, t: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The wait before attempt `attempts + 1`, after `attempts` failures.
pub fn backoff(first: Duration, max: Duration, attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).max(0)).unwrap_or(u32::MAX);
    first
        .checked_mul(2u32.saturating_pow(doublings.min(30)))
        .unwrap_or(max)
        .min(max)
}

// ---- the deliverer ----------------------------------------------------------

/// Starts delivering the outbox; runs as long as the server.
pub fn start(app: App) {
    let cfg = app.cfg.webhooks.clone();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(cfg.timeout_ms.max(100)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Seatline-Webhooks/1")
        .build()
        .expect("an HTTP client");
    tokio::spawn(async move {
        let batch = cfg.concurrency.clamp(1, 256) as i64;
        loop {
            // Taken for as long as an attempt may last, and then some: if
            // this node dies meanwhile, another one tries them after that.
            let now = now_ms();
            let lease = now + i64::try_from(cfg.timeout_ms).unwrap_or(i64::MAX / 4) + 30_000;
            let due = match app.store.claim_deliveries(now, lease, batch).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!("webhooks: cannot read the outbox: {e}");
                    Vec::new()
                }
            };
            if due.is_empty() {
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            let tries = due.into_iter().map(|d| attempt(&app, &client, d));
            futures_util::future::join_all(tries).await;
        }
    });
}

/// One attempt at one delivery; its outcome goes into the outbox.
async fn attempt(app: &App, client: &reqwest::Client, d: Delivery) {
    let cfg = &app.cfg.webhooks;
    let hook = match app.store.webhook(d.tenant_id).await {
        Ok(Some(h)) => h,
        // Removed meanwhile: the delivery waits for a webhook again.
        Ok(None) => return,
        Err(e) => return tracing::error!("webhooks: {e}"),
    };
    let body = match d.body.clone() {
        Some(b) => b,
        None => match body_of(app, &d).await {
            Some(b) => b,
            None => return,
        },
    };
    let t = now_ms() / 1000;
    let signature = format!("t={t},v1={}", sign(&hook.secret, t, &body));
    let sent = client
        .post(&hook.url)
        .header(header::CONTENT_TYPE, "application/json")
        .header("Seatline-Signature", signature)
        .header("Seatline-Delivery", &d.delivery_id)
        .body(body)
        .send()
        .await;
    let (status, error) = match sent {
        Ok(r) => (Some(i64::from(r.status().as_u16())), None),
        Err(e) => (
            e.status().map(|s| i64::from(s.as_u16())),
            Some(if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                "could not connect".to_string()
            } else {
                "the request failed".to_string()
            }),
        ),
    };
    let delivered = status.is_some_and(|s| (200..300).contains(&s));
    let now = now_ms();
    let next = (!delivered).then(|| {
        let wait = backoff(
            Duration::from_millis(cfg.first_retry_ms),
            Duration::from_millis(cfg.max_retry_ms),
            d.attempts + 1,
        );
        now + wait.as_millis() as i64
    });
    let give_up = d.created_ms + (cfg.give_up_after_secs as i64) * 1000;
    let next = next.filter(|&n| n <= give_up);
    if !delivered {
        tracing::warn!(
            tenant = d.tenant_id,
            delivery = %d.delivery_id,
            call_id = %d.call_id,
            status = ?status,
            error = ?error,
            retry = next.is_some(),
            "webhook delivery failed"
        );
    }
    if let Err(e) = app
        .store
        .delivery_attempted(d.id, now, status, delivered, error.as_deref(), next)
        .await
    {
        tracing::error!("webhooks: cannot note an attempt: {e}");
    }
}

/// The body of a delivery, made and kept at its first attempt.
async fn body_of(app: &App, d: &Delivery) -> Option<String> {
    let f = CallFilter {
        tenant_id: d.tenant_id,
        call_id: Some(d.call_id.clone()),
        limit: 1,
        ..Default::default()
    };
    let row = match app.store.find_calls(&f).await {
        Ok(mut rows) if !rows.is_empty() => rows.remove(0),
        Ok(_) => return None,
        Err(e) => {
            tracing::error!("webhooks: {e}");
            return None;
        }
    };
    let body = json!({
        "type": "callEnded",
        "deliveryId": d.delivery_id,
        "call": record_json(&row),
    })
    .to_string();
    if let Err(e) = app.store.set_delivery_body(d.id, &body).await {
        tracing::error!("webhooks: {e}");
        return None;
    }
    Some(body)
}

// ---- the API ----------------------------------------------------------------

/// The tenant of a request by an admin's session, or by an API key with
/// `webhooks:write`.
async fn tenant_of(app: &App, headers: &HeaderMap) -> Result<i64, Response> {
    crate::records::admin_or_key(app, headers, "webhooks:write").await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookBody {
    url: String,
    secret: String,
}

async fn put_webhook(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Json<WebhookBody>, JsonRejection>,
) -> Response {
    let tenant = match tenant_of(&app, &headers).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    const SEND: &str = "send {\"url\": \"https://crm.example/hooks/seatline\", \"secret\": \"16 to 256 characters\"}";
    let b = match body {
        Ok(Json(b)) => b,
        Err(rejection) => return json_rejection(rejection, SEND),
    };
    let bad = |msg: &str| api_error(StatusCode::BAD_REQUEST, "badWebhook", msg);
    let url = match reqwest::Url::parse(&b.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
        _ => return bad("url is an http:// or https:// URL"),
    };
    if b.url.len() > 2048 {
        return bad("url is up to 2048 characters");
    }
    if !(16..=256).contains(&b.secret.len()) {
        return bad("secret is 16 to 256 characters");
    }
    let hook = Webhook {
        url: url.to_string(),
        secret: b.secret,
    };
    match app.store.set_webhook(tenant, &hook).await {
        Ok(()) => {
            tracing::info!(tenant, "webhook set");
            Json(json!({"url": hook.url, "hasSecret": true})).into_response()
        }
        Err(e) => internal(e),
    }
}

async fn get_webhook(State(app): State<App>, headers: HeaderMap) -> Response {
    let tenant = match tenant_of(&app, &headers).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match app.store.webhook(tenant).await {
        Ok(Some(h)) => Json(json!({"url": h.url, "hasSecret": true})).into_response(),
        Ok(None) => api_error(StatusCode::NOT_FOUND, "notFound", "no webhook is set"),
        Err(e) => internal(e),
    }
}

async fn delete_webhook(State(app): State<App>, headers: HeaderMap) -> Response {
    let tenant = match tenant_of(&app, &headers).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match app.store.delete_webhook(tenant).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => api_error(StatusCode::NOT_FOUND, "notFound", "no webhook is set"),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Limit {
    limit: Option<i64>,
}

async fn deliveries(
    State(app): State<App>,
    headers: HeaderMap,
    q: Result<Query<Limit>, QueryRejection>,
) -> Response {
    let tenant = match tenant_of(&app, &headers).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let limit = match q {
        Ok(Query(Limit { limit })) => limit.unwrap_or(100),
        Err(_) => 0,
    };
    if !(1..=1000).contains(&limit) {
        return api_error(StatusCode::BAD_REQUEST, "badQuery", "limit is 1 to 1000");
    }
    match app.store.deliveries(tenant, limit).await {
        Ok(list) => {
            let list: Vec<_> = list
                .iter()
                .map(|d| {
                    let state = match (d.delivered_ms, d.failed_ms) {
                        (Some(_), _) => "delivered",
                        (None, Some(_)) => "failed",
                        _ => "pending",
                    };
                    json!({
                        "deliveryId": d.delivery_id, "callId": d.call_id, "state": state,
                        "attempts": d.attempts, "lastStatus": d.last_status, "lastError": d.last_error,
                        "createdAt": d.created_ms, "deliveredAt": d.delivered_ms,
                        "nextAttemptAt": (state == "pending").then_some(d.next_ms),
                    })
                })
                .collect();
            Json(json!({"deliveries": list})).into_response()
        }
        Err(e) => internal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_time_dot_body() {
        // Figure from
        // `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 0123456789abcdef`.
        assert_eq!(
            sign("0123456789abcdef", 1_700_000_000, "{\"a\":1}"),
            "9eb18f493f8ec135d9eb2dad817c369bb4e9cbfa818657897a7437c1cd8c3a23"
        );
    }

    #[test]
    fn retries_wait_twice_as_long_each_time_up_to_the_cap() {
        let s = Duration::from_secs;
        let waits: Vec<_> = (1..=6).map(|a| backoff(s(2), s(20), a)).collect();
        assert_eq!(waits, vec![s(2), s(4), s(8), s(16), s(20), s(20)]);
        assert_eq!(backoff(s(2), s(20), i64::MAX), s(20));
    }
}
