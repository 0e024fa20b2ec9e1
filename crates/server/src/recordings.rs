//! Call recordings through the API: the tenant's setting (mode per tenant
//! and per group, retention in days), a recording fetched with a key that
//! has `recordings:read`, and the sweep that removes recordings older than
//! their tenant keeps them.

use crate::admin::admin;
use crate::errors::{api_error, internal, json_rejection};
use crate::records::key_or_admin;
use crate::App;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use seatline_store::RecordingSetting;
use seatline_switchboard::{RecordingMode, RecordingPolicy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/admin/recording", get(get_setting).put(put_setting))
        .route("/api/v1/calls/{callId}/recording", get(fetch))
}

/// Groups with a mode of their own, at most.
const MAX_GROUPS: usize = 1000;

/// How often retention looks for recordings to remove.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SettingBody {
    /// off, all or onDemand.
    mode: String,
    retention_days: i64,
    /// Group number -> its own mode.
    #[serde(default)]
    groups: BTreeMap<String, String>,
}

/// The switchboard's policy of a stored setting (an unknown mode, which
/// the database's CHECK rules out, counts as off).
pub(crate) fn policy_of(s: &RecordingSetting) -> RecordingPolicy {
    let mode = |m: &str| RecordingMode::parse(m).unwrap_or_default();
    RecordingPolicy {
        mode: mode(&s.mode),
        groups: s.groups.iter().map(|(g, m)| (g.clone(), mode(m))).collect(),
    }
}

async fn get_setting(State(app): State<App>, headers: HeaderMap) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match app.store.recording_setting(user.tenant_id).await {
        Ok(s) => Json(SettingBody {
            mode: s.mode,
            retention_days: s.retention_days,
            groups: s.groups.into_iter().collect(),
        })
        .into_response(),
        Err(e) => internal(e),
    }
}

async fn put_setting(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Json<SettingBody>, JsonRejection>,
) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    const SEND: &str =
        "send {\"mode\": \"off|all|onDemand\", \"retentionDays\": 90, \"groups\": {\"1001\": \"all\"}}";
    let b = match body {
        Ok(Json(b)) => b,
        Err(rejection) => return json_rejection(rejection, SEND),
    };
    let bad = |msg: &str| api_error(StatusCode::BAD_REQUEST, "badRecording", msg);
    if RecordingMode::parse(&b.mode).is_none() {
        return bad("mode is off, all or onDemand");
    }
    if !(1..=3650).contains(&b.retention_days) {
        return bad("retentionDays is 1 to 3650");
    }
    if b.groups.len() > MAX_GROUPS {
        return bad("at most 1000 groups");
    }
    let known = match app.store.group_numbers(user.tenant_id).await {
        Ok(g) => g,
        Err(e) => return internal(e),
    };
    for (group, mode) in &b.groups {
        if !known.contains(group) {
            return bad(&format!("the tenant has no group {group:?}"));
        }
        if RecordingMode::parse(mode).is_none() {
            return bad(&format!("group {group:?}: mode is off, all or onDemand"));
        }
    }
    let setting = RecordingSetting {
        mode: b.mode,
        retention_days: b.retention_days,
        groups: b.groups.into_iter().collect(),
    };
    if let Err(e) = app
        .store
        .set_recording_setting(user.tenant_id, &setting)
        .await
    {
        return internal(e);
    }
    app.hub.set_recording(user.tenant_id, policy_of(&setting));
    app.bus
        .publish(crate::bus::Change::Reload {
            tenant_id: user.tenant_id,
            what: crate::bus::Reload::Recording,
        })
        .await;
    tracing::info!(
        tenant = user.tenant_id,
        mode = setting.mode,
        "recording setting changed"
    );
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /api/v1/calls/{callId}/recording`: the stereo WAV (left: agent,
/// right: customer) of one of the key's tenant's calls.
async fn fetch(
    State(app): State<App>,
    headers: HeaderMap,
    call_id: Result<Path<String>, PathRejection>,
) -> Response {
    // A back end's key, or the console's admin session (its player).
    let tenant_id = match key_or_admin(&app, &headers, "recordings:read").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let not_found = || {
        api_error(
            StatusCode::NOT_FOUND,
            "notFound",
            "the tenant has no recording of that call",
        )
    };
    let Ok(Path(call_id)) = call_id else {
        return not_found();
    };
    let call = match app.store.call(&call_id).await {
        Ok(Some(c)) if c.tenant_id == tenant_id && c.recorded => c,
        Ok(_) => return not_found(),
        Err(e) => return internal(e),
    };
    let Some(path) = app.recorder.path_of(call.tenant_id, &call.id) else {
        return not_found();
    };
    // A call that just ended: its last second is being written.
    for _ in 0..100 {
        if !app.recorder.is_writing(&call.id) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if app.recorder.is_writing(&call.id) {
        return api_error(
            StatusCode::CONFLICT,
            "recordingInProgress",
            "the call is still being recorded: fetch it once it ended",
        );
    }
    let (file, len) = match tokio::fs::File::open(&path).await {
        Ok(f) => match f.metadata().await {
            Ok(m) => (f, m.len()),
            Err(e) => return internal(e),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return not_found(),
        Err(e) => return internal(e),
    };
    (
        [
            (header::CONTENT_TYPE, "audio/wav".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.wav\"", call.id),
            ),
        ],
        Body::from_stream(chunks(file)),
    )
        .into_response()
}

/// A file as a stream of chunks: an hour's recording (115 MB) is sent
/// without being held in memory.
fn chunks(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> + Send {
    use tokio::io::AsyncReadExt;
    futures_util::stream::try_unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 64 * 1024];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((buf, file)))
    })
}

/// Removes recordings older than their tenant keeps them, now and every
/// hour: the file, then the record's mark.
pub fn spawn_retention(app: App) {
    tokio::spawn(async move {
        loop {
            sweep(&app).await;
            tokio::time::sleep(SWEEP_EVERY).await;
        }
    });
}

/// One pass of retention; how many recordings it removed.
pub async fn sweep(app: &App) -> usize {
    let mut removed = 0;
    loop {
        let now = seatline_store::now_ms();
        let expired = match app.store.expired_recordings(now, 500).await {
            Ok(e) => e,
            Err(e) => {
                tracing::error!("cannot look for expired recordings: {e}");
                return removed;
            }
        };
        if expired.is_empty() {
            return removed;
        }
        for (tenant_id, call_id) in expired {
            if let Some(path) = app.recorder.path_of(tenant_id, &call_id) {
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::error!(call_id, "cannot remove an expired recording: {e}");
                        return removed;
                    }
                }
            }
            if let Err(e) = app.store.forget_recording(&call_id).await {
                tracing::error!(call_id, "cannot mark a recording removed: {e}");
                return removed;
            }
            removed += 1;
        }
    }
}
