//! Menus (IVR) per DID, as the admin API takes them, and each DID's
//! prompt: `GET`/`PUT`/`DELETE /api/v1/admin/dids/{number}/prompt` (a WAV
//! file, read as the waiting music is). The rules of a call in a menu are
//! the switchboard's (`seatline_switchboard::Menu`).

use crate::admin::admin_at;
use crate::errors::{api_error, internal};
use crate::App;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use seatline_switchboard::{Menu, MenuChoice};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The time to choose when the admin gives none.
const DEFAULT_TIMEOUT_SECS: i64 = 10;

fn default_timeout() -> i64 {
    DEFAULT_TIMEOUT_SECS
}

/// A menu as the admin sends it (and reads it back): `{"options": {"1":
/// {"group": "G001"}, "2": {"group": "G002", "skill": "es"}},
/// "timeoutSecs": 10, "default": "1"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MenuBody {
    options: BTreeMap<String, OptionBody>,
    #[serde(default = "default_timeout")]
    timeout_secs: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OptionBody {
    group: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    skill: Option<String>,
}

/// One key of a phone's pad, from its text.
fn key_of(s: &str) -> Option<char> {
    let mut chars = s.chars();
    let c = chars.next()?;
    (chars.next().is_none() && seatline_switchboard::is_key(c)).then_some(c)
}

/// The switchboard's menu, or why the body is not one (the groups' being
/// the tenant's is checked apart, against the store).
pub fn menu_of(b: &MenuBody) -> Result<Menu, &'static str> {
    let mut options = Vec::with_capacity(b.options.len());
    for (k, o) in &b.options {
        let key = key_of(k).ok_or("an option's key is a digit 0-9, * or #")?;
        if o.group.is_empty() || o.group.len() > 32 {
            return Err("an option's group is a group number such as G001");
        }
        if o.skill
            .as_deref()
            .is_some_and(|s| !seatline_store::skill_name_ok(s))
        {
            return Err("a skill is 1 to 32 letters, digits, - or _");
        }
        options.push((
            key,
            MenuChoice {
                group_no: o.group.clone(),
                skill: o.skill.clone(),
            },
        ));
    }
    let default = match &b.default {
        Some(d) => Some(key_of(d).ok_or("the default is one of the menu's keys")?),
        None => None,
    };
    let menu = Menu {
        options,
        timeout_secs: u32::try_from(b.timeout_secs).unwrap_or(0),
        default,
    };
    menu.check()?;
    Ok(menu)
}

/// A stored menu for the switchboard: one that no longer reads as a menu
/// (it was checked when stored) becomes an empty one, which it refuses.
pub fn stored_menu(v: &serde_json::Value) -> Menu {
    serde_json::from_value::<MenuBody>(v.clone())
        .ok()
        .and_then(|b| menu_of(&b).ok())
        .unwrap_or(Menu {
            options: Vec::new(),
            timeout_secs: 0,
            default: None,
        })
}

/// The groups a menu sends calls to that the tenant does not have.
pub async fn unknown_groups(
    app: &App,
    tenant_id: i64,
    menu: &Menu,
) -> seatline_store::Result<Vec<String>> {
    let groups = app.store.group_numbers(tenant_id).await?;
    Ok(menu
        .options
        .iter()
        .map(|(_, c)| &c.group_no)
        .filter(|g| !groups.contains(g))
        .cloned()
        .collect())
}

pub fn routes() -> Router<App> {
    Router::new().route(
        "/api/v1/admin/dids/{number}/prompt",
        get(get_prompt)
            .put(put_prompt)
            .delete(delete_prompt)
            .layer(DefaultBodyLimit::max(crate::music::FILE_LIMIT)),
    )
}

type Number = Result<Path<String>, PathRejection>;

/// The DID of the path, in E.164 digits.
fn did_of(number: &str) -> Result<String, Box<Response>> {
    let n = number.trim_start_matches('+');
    if !n.is_empty() && n.len() <= 32 && n.bytes().all(|b| b.is_ascii_digit()) {
        Ok(n.to_string())
    } else {
        Err(Box::new(api_error(
            StatusCode::BAD_REQUEST,
            "badNumber",
            "the DID in E.164 digits",
        )))
    }
}

/// The admin asking and the DID of the path (401/403, or 400 for a path
/// that is no DID).
async fn admin_did(
    app: &App,
    headers: &HeaderMap,
    number: Number,
) -> Result<(seatline_store::User, String), Box<Response>> {
    let (user, number) = admin_at(app, headers, number).await.map_err(Box::new)?;
    Ok((user, did_of(&number)?))
}

fn no_such_did() -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "notFound",
        "the tenant owns no such DID (or it has no prompt)",
    )
}

async fn get_prompt(State(app): State<App>, headers: HeaderMap, number: Number) -> Response {
    let (user, did) = match admin_did(&app, &headers, number).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match app.hub.did_prompt(user.tenant_id, &did) {
        Some(s) => Json(serde_json::json!({"number": did, "seconds": s.len() as f64 / 8_000.0}))
            .into_response(),
        None => no_such_did(),
    }
}

async fn put_prompt(
    State(app): State<App>,
    headers: HeaderMap,
    number: Number,
    body: Bytes,
) -> Response {
    let (user, did) = match admin_did(&app, &headers, number).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let samples = match crate::music::decode_wav(&body) {
        Ok(s) => s,
        Err(why) => return api_error(StatusCode::BAD_REQUEST, "badPrompt", &why),
    };
    match app
        .store
        .set_did_prompt(user.tenant_id, &did, &samples, seatline_store::now_ms())
        .await
    {
        Ok(true) => {
            let seconds = samples.len() as f64 / 8_000.0;
            app.hub
                .set_did_prompt(user.tenant_id, &did, Some(Arc::from(samples)));
            app.bus
                .publish(crate::bus::Change::Reload {
                    tenant_id: user.tenant_id,
                    what: crate::bus::Reload::Prompts,
                })
                .await;
            Json(serde_json::json!({"number": did, "seconds": seconds})).into_response()
        }
        Ok(false) => no_such_did(),
        Err(e) => internal(e),
    }
}

async fn delete_prompt(State(app): State<App>, headers: HeaderMap, number: Number) -> Response {
    let (user, did) = match admin_did(&app, &headers, number).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match app.store.delete_did_prompt(user.tenant_id, &did).await {
        Ok(true) => {
            app.hub.set_did_prompt(user.tenant_id, &did, None);
            app.bus
                .publish(crate::bus::Change::Reload {
                    tenant_id: user.tenant_id,
                    what: crate::bus::Reload::Prompts,
                })
                .await;
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => no_such_did(),
        Err(e) => internal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: serde_json::Value) -> Result<Menu, String> {
        let b: MenuBody = serde_json::from_value(v).map_err(|e| e.to_string())?;
        menu_of(&b).map_err(str::to_string)
    }

    #[test]
    fn menus_read_as_the_api_sends_them() {
        let m = body(serde_json::json!({
            "options": {"1": {"group": "G001"}, "#": {"group": "G002", "skill": "es"}},
            "default": "1"
        }))
        .unwrap();
        assert_eq!(m.timeout_secs, 10);
        assert_eq!(m.default, Some('1'));
        assert_eq!(m.choice('#').unwrap().skill.as_deref(), Some("es"));
        for bad in [
            serde_json::json!({"options": {}}),
            serde_json::json!({"options": {"12": {"group": "G001"}}}),
            serde_json::json!({"options": {"a": {"group": "G001"}}}),
            serde_json::json!({"options": {"1": {"group": ""}}}),
            serde_json::json!({"options": {"1": {"group": "G001", "skill": "no spaces"}}}),
            serde_json::json!({"options": {"1": {"group": "G001"}}, "default": "2"}),
            serde_json::json!({"options": {"1": {"group": "G001"}}, "timeoutSecs": 0}),
            serde_json::json!({"options": {"1": {"group": "G001"}}, "timeoutSecs": -5}),
            serde_json::json!({"options": {"1": {"group": "G001", "x": 1}}}),
        ] {
            assert!(body(bad.clone()).is_err(), "{bad}");
        }
        // What cannot be read back is an empty menu, which is refused.
        assert!(stored_menu(&serde_json::json!({"nonsense": true}))
            .check()
            .is_err());
    }
}
