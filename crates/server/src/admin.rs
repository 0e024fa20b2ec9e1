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
        .route("/api/v1/admin/rates", get(get_rates).put(set_rates))
        .route("/api/v1/admin/blacklist", get(list_blacklist))
        .route(
            "/api/v1/admin/blacklist/{number}",
            put(blacklist_add).delete(blacklist_remove),
        )
        .route("/api/v1/admin/calls", get(calls))
        .route("/api/v1/admin/dids", get(list_dids))
        .route("/api/v1/admin/dids/{number}/route", put(set_did_route))
        .route(
            "/api/v1/admin/users/{agentId}/skills",
            get(get_user_skills).put(set_user_skills),
        )
        .route(
            "/api/v1/admin/groups/{groupNo}/routing",
            get(get_group_routing).put(set_group_routing),
        )
        .route("/api/v1/admin/trunks", get(trunks))
        .route("/api/v1/admin/embed", get(get_embed).put(set_embed))
        .route(
            "/api/v1/admin/trunks/{name}",
            put(put_trunk).delete(delete_trunk),
        )
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EmbedBody {
    allowed_origins: Vec<String>,
}

/// The tenant's own CRM origins (empty: the global list applies).
async fn get_embed(State(app): State<App>, headers: HeaderMap) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match app.store.tenant_origins(user.tenant_id).await {
        Ok(allowed_origins) => Json(EmbedBody { allowed_origins }).into_response(),
        Err(e) => internal(e),
    }
}

/// Replaces the tenant's CRM origins; one bad entry refuses the whole list
/// (400 `badOrigin`, naming it) and changes nothing.
async fn set_embed(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Json<EmbedBody>, JsonRejection>,
) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let b = match body {
        Ok(Json(b)) => b,
        Err(rejection) => {
            return json_rejection(
                rejection,
                "send JSON {\"allowedOrigins\": [\"https://crm.example.com\"]}",
            )
        }
    };
    let list = match crate::origins::check_list(b.allowed_origins) {
        Ok(list) => list,
        Err(bad) => return api_error(StatusCode::BAD_REQUEST, "badOrigin", &bad.to_string()),
    };
    match app.store.set_tenant_origins(user.tenant_id, &list).await {
        Ok(()) => {
            tracing::info!(
                tenant = user.tenant_id,
                origins = list.len(),
                "embed origins set"
            );
            Json(EmbedBody {
                allowed_origins: list,
            })
            .into_response()
        }
        Err(e) => internal(e),
    }
}

/// The trunks the tenant's calls may use, their health, and the SIP
/// side's refusal counts. The shared trunks show only their name and health;
/// the tenant's own show their settings (never the password).
async fn trunks(State(app): State<App>, headers: HeaderMap) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let stored = match app.store.all_trunks().await {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    let (_, unknown_dids, dropped) = app.hub.sip_status();
    let health = app.hub.trunks();
    let up = |name: &str, tenant: Option<i64>| {
        health
            .iter()
            .any(|(n, t, up)| n == name && *t == tenant && *up)
    };
    // A trunk with several addresses is one entry, up when any is.
    let mut list: Vec<serde_json::Value> = Vec::new();
    for (name, _, _) in health.iter().filter(|(_, t, _)| t.is_none()) {
        if !list.iter().any(|v| v["name"] == name.as_str()) {
            list.push(serde_json::json!({"name": name, "shared": true, "up": up(name, None)}));
        }
    }
    for t in stored.iter().filter(|t| t.tenant_id == user.tenant_id) {
        let mut view = match crate::trunks::parse_stored(t) {
            Ok(c) => trunk_view(&c),
            Err(_) => serde_json::json!({"name": t.name, "unreadable": true}),
        };
        view["shared"] = false.into();
        view["position"] = t.position.into();
        view["up"] = up(&t.name, Some(user.tenant_id)).into();
        list.push(view);
    }
    Json(serde_json::json!({
        "trunks": list,
        "unknownDidCalls": unknown_dids,
        "droppedUntrusted": dropped,
    }))
    .into_response()
}

/// A tenant's own trunk as the API shows it: its settings, without the
/// password.
fn trunk_view(c: &crate::config::TrunkConfig) -> serde_json::Value {
    serde_json::json!({
        "name": c.name,
        "uri": c.uri,
        "transport": c.transport,
        "username": c.username,
        "hasPassword": c.password.is_some(),
        "register": c.register,
        "domain": c.domain,
        "registerExpiresSecs": c.register_expires_secs,
        "inboundFrom": c.inbound_from,
        "stripPrefix": c.strip_prefix,
        "addPrefix": c.add_prefix,
        "didStripPrefix": c.did_strip_prefix,
        "didAddPrefix": c.did_add_prefix,
        "callerFormat": c.caller_format,
        "keepaliveSecs": c.keepalive_secs,
        "srtp": c.srtp,
    })
}

/// A tenant's own trunk, as an admin sends it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TrunkBody {
    uri: String,
    #[serde(default)]
    transport: crate::config::Transport,
    username: Option<String>,
    /// Left out with the same username: the stored password stays.
    password: Option<String>,
    #[serde(default)]
    register: bool,
    domain: Option<String>,
    register_expires_secs: Option<u32>,
    #[serde(default)]
    inbound_from: Vec<String>,
    #[serde(default)]
    strip_prefix: String,
    #[serde(default)]
    add_prefix: String,
    #[serde(default)]
    did_strip_prefix: String,
    #[serde(default)]
    did_add_prefix: String,
    #[serde(default)]
    caller_format: crate::config::CallerFormat,
    #[serde(default)]
    keepalive_secs: u64,
    /// "off" or "sdes".
    #[serde(default)]
    srtp: crate::config::SrtpMode,
    /// Trunks are tried by position, then name (default 0).
    #[serde(default)]
    position: i64,
}

/// A trunk's name: letters, digits, `.`, `_` and `-`, 1 to 64 of them (it
/// goes into call records, logs and metrics labels).
fn trunk_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

async fn put_trunk(
    State(app): State<App>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: Result<Json<TrunkBody>, JsonRejection>,
) -> Response {
    const SEND: &str =
        "send {\"uri\": \"sip:HOST[:PORT]\", ...}: the keys of a [[trunk]] table, in camelCase";
    let (user, name) = match admin_at(&app, &headers, name).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let b = match body {
        Ok(Json(b)) => b,
        Err(rejection) => return json_rejection(rejection, SEND),
    };
    let bad = |msg: &str| api_error(StatusCode::BAD_REQUEST, "badTrunk", msg);
    if !trunk_name(&name) {
        return bad("a trunk's name is 1 to 64 letters, digits, '.', '_' or '-'");
    }
    if !(-1000..=1000).contains(&b.position) {
        return bad("position is from -1000 to 1000");
    }
    // One change at a time: the checks below hold until it is installed.
    let _one = app.trunk_changes.lock().await;
    let stored = match app.store.all_trunks().await {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    let before = stored
        .iter()
        .find(|t| t.tenant_id == user.tenant_id && t.name == name)
        .and_then(|t| crate::trunks::parse_stored(t).ok());
    let own = stored
        .iter()
        .filter(|t| t.tenant_id == user.tenant_id)
        .count();
    if before.is_none() && own >= crate::trunks::MAX_PER_TENANT {
        return api_error(
            StatusCode::CONFLICT,
            "tooManyTrunks",
            &format!(
                "a tenant has at most {} trunks of its own",
                crate::trunks::MAX_PER_TENANT
            ),
        );
    }
    let password = match (&b.password, &before) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(old)) if old.username == b.username => old.password.clone(),
        (None, _) => None,
    };
    let mut c = crate::config::TrunkConfig::udp(&name, &b.uri);
    c.transport = b.transport;
    c.username = b.username;
    c.password = password;
    c.register = b.register;
    c.domain = b.domain;
    if let Some(secs) = b.register_expires_secs {
        c.register_expires_secs = secs;
    }
    c.inbound_from = b.inbound_from;
    c.strip_prefix = b.strip_prefix;
    c.add_prefix = b.add_prefix;
    c.did_strip_prefix = b.did_strip_prefix;
    c.did_add_prefix = b.did_add_prefix;
    c.caller_format = b.caller_format;
    c.keepalive_secs = b.keepalive_secs;
    c.srtp = b.srtp;
    if c.uri.len() > 256 || c.inbound_from.len() > 32 || c.keepalive_secs > 3600 {
        return bad(
            "uri is up to 256 characters, inboundFrom up to 32 entries, keepaliveSecs up to 3600",
        );
    }
    if c.domain.as_ref().is_some_and(|d| d.len() > 256)
        || c.username.as_ref().is_some_and(|u| u.len() > 128)
        || c.password.as_ref().is_some_and(|p| p.len() > 128)
    {
        return bad("domain is up to 256 characters, username and password up to 128");
    }
    if let Err(e) = c.validate() {
        return bad(&e.to_string());
    }
    let resolved = match crate::trunks::resolve(&c, Some(user.tenant_id), &app.dns).await {
        Ok(r) => r,
        Err(e) => return bad(&e.to_string()),
    };
    let peer = resolved.setup.trunk.peer;
    if peer == app.calls.sip_addr {
        return bad("the trunk's address is Seatline's own SIP address");
    }
    // One trunk per address: the carrier's challenges and registrations
    // are answered by address.
    let taken = app
        .hub
        .trunk_peers()
        .into_iter()
        .any(|(n, t, p)| p == peer && !(t == Some(user.tenant_id) && n == name));
    if taken {
        return api_error(
            StatusCode::CONFLICT,
            "addressInUse",
            "another trunk already reaches that address",
        );
    }
    let settings = match serde_json::to_string(&c) {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    let row = seatline_store::StoredTrunk {
        tenant_id: user.tenant_id,
        name: name.clone(),
        position: b.position,
        settings,
    };
    if let Err(e) = app.store.put_trunk(&row).await {
        return internal(e);
    }
    match crate::trunks::resolve_stored(&app).await {
        Ok(own) => crate::trunks::install(&app, own),
        Err(e) => return internal(e),
    }
    app.bus
        .publish(crate::bus::Change::Reload {
            tenant_id: user.tenant_id,
            what: crate::bus::Reload::Trunks,
        })
        .await;
    tracing::info!(tenant = user.tenant_id, trunk = %name, "trunk saved by an admin");
    let mut view = trunk_view(&c);
    view["shared"] = false.into();
    view["position"] = b.position.into();
    let status = if before.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (status, Json(view)).into_response()
}

async fn delete_trunk(
    State(app): State<App>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Response {
    let (user, name) = match admin_at(&app, &headers, name).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let _one = app.trunk_changes.lock().await;
    match app.store.delete_trunk(user.tenant_id, &name).await {
        Ok(true) => {}
        Ok(false) => {
            return api_error(
                StatusCode::NOT_FOUND,
                "notFound",
                "the tenant has no trunk of that name",
            )
        }
        Err(e) => return internal(e),
    }
    match crate::trunks::resolve_stored(&app).await {
        Ok(own) => crate::trunks::install(&app, own),
        Err(e) => return internal(e),
    }
    app.bus
        .publish(crate::bus::Change::Reload {
            tenant_id: user.tenant_id,
            what: crate::bus::Reload::Trunks,
        })
        .await;
    tracing::info!(tenant = user.tenant_id, trunk = %name, "trunk removed by an admin");
    StatusCode::NO_CONTENT.into_response()
}

/// An agent's skills: name to level (1 to 10).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SkillsBody {
    skills: std::collections::BTreeMap<String, i64>,
}

/// The seat of user `agent_id` of the admin's tenant, or 404.
async fn tenant_seat(
    app: &App,
    tenant_id: i64,
    agent_id: i64,
) -> Result<seatline_store::Seat, Response> {
    match app.store.seat_of_user(agent_id).await {
        Ok(Some(seat)) if seat.tenant_id == tenant_id => Ok(seat),
        Ok(_) => Err(api_error(
            StatusCode::NOT_FOUND,
            "notFound",
            &format!("this tenant has no agent {agent_id} with a seat"),
        )),
        Err(e) => Err(internal(e)),
    }
}

/// `GET /api/v1/admin/users/{agentId}/skills`.
async fn get_user_skills(
    State(app): State<App>,
    headers: HeaderMap,
    agent_id: Result<Path<i64>, PathRejection>,
) -> Response {
    let (user, agent_id) = match admin_at(&app, &headers, agent_id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match tenant_seat(&app, user.tenant_id, agent_id).await {
        Ok(seat) => Json(SkillsBody {
            skills: seat
                .skills
                .into_iter()
                .map(|(n, l)| (n, i64::from(l)))
                .collect(),
        })
        .into_response(),
        Err(r) => r,
    }
}

/// `PUT /api/v1/admin/users/{agentId}/skills`: replaces the agent's skills;
/// they count from the next routing decision, signed in or not.
async fn set_user_skills(
    State(app): State<App>,
    headers: HeaderMap,
    agent_id: Result<Path<i64>, PathRejection>,
    body: Result<Json<SkillsBody>, JsonRejection>,
) -> Response {
    let (user, agent_id) = match admin_at(&app, &headers, agent_id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let b = match body {
        Ok(Json(b)) => b,
        Err(rejection) => return json_rejection(rejection, "send {\"skills\": {\"es\": 5}}"),
    };
    let bad = |msg: &str| api_error(StatusCode::BAD_REQUEST, "badSkill", msg);
    if b.skills.len() > seatline_store::SKILLS_MAX {
        return bad("at most 16 skills");
    }
    let mut skills = Vec::with_capacity(b.skills.len());
    for (name, level) in b.skills {
        if !seatline_store::skill_name_ok(&name) {
            return bad("a skill is 1 to 32 letters, digits, - or _");
        }
        let Ok(level) = u8::try_from(level) else {
            return bad("a skill's level is 1 to 10");
        };
        if !(1..=10).contains(&level) {
            return bad("a skill's level is 1 to 10");
        }
        skills.push((name, level));
    }
    let seat = match tenant_seat(&app, user.tenant_id, agent_id).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match app
        .store
        .set_seat_skills(user.tenant_id, agent_id, &skills)
        .await
    {
        Ok(true) => {
            app.hub.set_agent_skills(seat.id, skills);
            app.bus
                .publish(crate::bus::Change::Reload {
                    tenant_id: user.tenant_id,
                    what: crate::bus::Reload::Skills,
                })
                .await;
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => api_error(StatusCode::NOT_FOUND, "notFound", "no such agent"),
        Err(e) => internal(e),
    }
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
    /// With `group`: the skill an agent must have to be offered the calls.
    skill: Option<String>,
    /// A menu (IVR): the caller chooses a group with a key.
    menu: Option<crate::menus::MenuBody>,
}

fn digits(number: &str) -> Option<String> {
    let n = number.trim_start_matches('+');
    (!n.is_empty() && n.len() <= 32 && n.bytes().all(|b| b.is_ascii_digit())).then(|| n.to_string())
}

/// A DID's route as the API shows it: the body `PUT .../route` takes, or
/// null for a DID routed nowhere.
fn route_json(route: &Option<DidRouteSet>) -> serde_json::Value {
    match route {
        Some(DidRouteSet::Group(g, None)) => serde_json::json!({ "group": g }),
        Some(DidRouteSet::Group(g, Some(k))) => serde_json::json!({ "group": g, "skill": k }),
        Some(DidRouteSet::Forward(n)) => serde_json::json!({ "forwardTo": n }),
        Some(DidRouteSet::Reject(code)) => serde_json::json!({ "reject": code }),
        Some(DidRouteSet::Menu(menu)) => serde_json::json!({ "menu": menu }),
        None => serde_json::Value::Null,
    }
}

/// `GET /api/v1/admin/dids`: the tenant's numbers and where each goes (an
/// admin's session, or a key with users:write like the groups).
async fn list_dids(State(app): State<App>, headers: HeaderMap) -> Response {
    let tenant_id = match crate::records::admin_or_key(&app, &headers, "users:write").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match app.store.did_routes(tenant_id).await {
        Ok(rows) => {
            let dids: Vec<_> = rows
                .iter()
                .map(|(number, pool, route)| {
                    serde_json::json!({ "number": number, "pool": pool, "route": route_json(route) })
                })
                .collect();
            Json(serde_json::json!({ "dids": dids })).into_response()
        }
        Err(e) => internal(e),
    }
}

async fn set_did_route(
    State(app): State<App>,
    headers: HeaderMap,
    number: Result<Path<String>, PathRejection>,
    body: Result<Json<DidRouteBody>, JsonRejection>,
) -> Response {
    const SEND: &str =
        "send one of {\"group\": \"G001\", \"skill\": null}, {\"forwardTo\": \"14155550100\"}, {\"reject\": 486}, {\"menu\": {\"options\": {\"1\": {\"group\": \"G001\"}}, \"timeoutSecs\": 10}}";
    let (user, number) = match admin_at(&app, &headers, number).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let b = match body {
        Ok(Json(b)) => b,
        Err(rejection) => return json_rejection(rejection, SEND),
    };
    let bad = |code: &str, msg: &str| api_error(StatusCode::BAD_REQUEST, code, msg);
    let Some(did) = digits(&number) else {
        return bad("badNumber", "the DID in E.164 digits");
    };
    if b.skill.is_some() && b.group.is_none() {
        return bad("badRoute", "skill goes with group only");
    }
    if let Some(k) = &b.skill {
        if !seatline_store::skill_name_ok(k) {
            return bad("badSkill", "a skill is 1 to 32 letters, digits, - or _");
        }
    }
    if let Some(body) = b.menu {
        if b.group.is_some() || b.forward_to.is_some() || b.reject.is_some() {
            return bad("badRoute", SEND);
        }
        let menu = match crate::menus::menu_of(&body) {
            Ok(m) => m,
            Err(why) => return bad("badMenu", why),
        };
        match crate::menus::unknown_groups(&app, user.tenant_id, &menu).await {
            Ok(missing) if missing.is_empty() => {}
            Ok(missing) => {
                let why = format!("no such group: {}", missing.join(", "));
                return api_error(StatusCode::NOT_FOUND, "notFound", &why);
            }
            Err(e) => return internal(e),
        }
        let stored = serde_json::to_value(&body).unwrap_or_default();
        let set = app
            .store
            .set_did_route(user.tenant_id, &did, &DidRouteSet::Menu(stored))
            .await;
        // Whatever the outcome, inbound calls read the store again,
        // here and on the other nodes.
        app.calls.dids.forget();
        app.bus.publish(crate::bus::Change::DidRoutes).await;
        return match set {
            Ok(true) => StatusCode::NO_CONTENT.into_response(),
            Ok(false) => api_error(
                StatusCode::NOT_FOUND,
                "notFound",
                "the tenant owns no such DID",
            ),
            Err(e) => internal(e),
        };
    }
    let route = match (b.group, b.forward_to, b.reject) {
        (Some(g), None, None) if !g.is_empty() && g.len() <= 32 => DidRouteSet::Group(g, b.skill),
        (None, Some(n), None) => match digits(&n) {
            Some(n) if n != did => DidRouteSet::Forward(n),
            Some(_) => return bad("forwardLoop", "a DID cannot be forwarded to itself"),
            None => return bad("badNumber", "forwardTo is a number in E.164 digits"),
        },
        (None, None, Some(code)) if (400..700).contains(&code) => DidRouteSet::Reject(code),
        (None, None, Some(_)) => return bad("badCode", "reject is a SIP status from 400 to 699"),
        _ => return bad("badRoute", SEND),
    };
    let set = app.store.set_did_route(user.tenant_id, &did, &route).await;
    // Whatever the outcome, inbound calls read the store again, here and
    // on the other nodes.
    app.calls.dids.forget();
    app.bus.publish(crate::bus::Change::DidRoutes).await;
    match set {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => api_error(
            StatusCode::NOT_FOUND,
            "notFound",
            "the tenant owns no such DID (or no such group)",
        ),
        Err(e) => internal(e),
    }
}

/// A group's queue settings, as an admin sends them (and reads them back).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GroupRoutingBody {
    /// `longestIdle`, `roundRobin`, `fewestCalls`, `ringAll` or `skills`.
    strategy: String,
    /// Offers in a row an agent may let ring out before being set to Busy; 0: never.
    max_missed: i64,
    /// How long a caller may wait for an agent, 0 (no queue) to 3600.
    #[serde(default)]
    max_wait_secs: i64,
    /// The tenant's group a caller moves to when the wait runs out; none:
    /// the call ends.
    #[serde(default)]
    overflow_group: Option<String>,
    /// A number (E.164 digits) a caller is placed to on the trunks when
    /// the wait runs out, instead of a group; none: the call ends.
    #[serde(default)]
    overflow_number: Option<String>,
    /// How long each offer rings an agent, 1 to 300 s; 0: the server's
    /// `calls.ring_timeout_secs`.
    #[serde(default)]
    ring_timeout_secs: i64,
    /// `en-US`, `es-MX` or `zh-CN`: waiting callers are told their place
    /// and expected wait in it; none: music only.
    #[serde(default)]
    announce_lang: Option<String>,
}

/// The switchboard's form of a stored (or sent) group routing; `None` for
/// an unknown strategy or a number out of range.
pub(crate) fn group_routing_of(
    g: &seatline_store::GroupRoutingRow,
) -> Option<seatline_switchboard::GroupRouting> {
    use seatline_switchboard::{
        GroupRouting, Overflow, Strategy, MAX_MISSED_LIMIT, MAX_WAIT_LIMIT_SECS,
        RING_TIMEOUT_LIMIT_SECS,
    };
    Some(GroupRouting {
        strategy: Strategy::parse(&g.strategy)?,
        max_missed: u32::try_from(g.max_missed)
            .ok()
            .filter(|n| *n <= MAX_MISSED_LIMIT)?,
        max_wait_secs: u32::try_from(g.max_wait_secs)
            .ok()
            .filter(|n| *n <= MAX_WAIT_LIMIT_SECS)?,
        overflow: match (&g.overflow_group, &g.overflow_number) {
            (Some(next), _) => Overflow::Group(next.clone()),
            (None, Some(number)) => Overflow::Number(number.clone()),
            (None, None) => Overflow::HangUp,
        },
        ring_timeout_secs: u32::try_from(g.ring_timeout_secs)
            .ok()
            .filter(|n| *n <= RING_TIMEOUT_LIMIT_SECS)?,
        announce_lang: match &g.announce_lang {
            Some(l) => Some(seatline_media::announce::Lang::parse(l)?.tag().to_string()),
            None => None,
        },
    })
}

/// `GET /api/v1/admin/groups/{groupNo}/routing`: the group's queue settings.
async fn get_group_routing(
    State(app): State<App>,
    headers: HeaderMap,
    group_no: Result<Path<String>, PathRejection>,
) -> Response {
    let (user, group_no) = match admin_at(&app, &headers, group_no).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match app.store.group_routing(user.tenant_id, &group_no).await {
        Ok(Some(g)) => Json(GroupRoutingBody {
            strategy: g.strategy,
            max_missed: g.max_missed,
            max_wait_secs: g.max_wait_secs,
            overflow_group: g.overflow_group,
            overflow_number: g.overflow_number,
            ring_timeout_secs: g.ring_timeout_secs,
            announce_lang: g.announce_lang,
        })
        .into_response(),
        Ok(None) => api_error(
            StatusCode::NOT_FOUND,
            "notFound",
            "the tenant has no such group",
        ),
        Err(e) => internal(e),
    }
}

/// `PUT /api/v1/admin/groups/{groupNo}/routing`: how the group's inbound
/// calls pick an agent, after how many missed offers an agent is set to
/// Busy, how long a caller may wait and where it goes after. Takes effect
/// for the next offer; calls ringing keep their agent, callers waiting
/// keep their deadline.
async fn set_group_routing(
    State(app): State<App>,
    headers: HeaderMap,
    group_no: Result<Path<String>, PathRejection>,
    body: Result<Json<GroupRoutingBody>, JsonRejection>,
) -> Response {
    const SEND: &str = "send {\"strategy\": \"longestIdle|roundRobin|fewestCalls|ringAll|skills\", \"maxMissed\": 3, \"maxWaitSecs\": 0, \"overflowGroup\": null, \"overflowNumber\": null, \"ringTimeoutSecs\": 0, \"announceLang\": null}";
    let (user, group_no) = match admin_at(&app, &headers, group_no).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let b = match body {
        Ok(Json(b)) => b,
        Err(rejection) => return json_rejection(rejection, SEND),
    };
    let bad = |msg: &str| api_error(StatusCode::BAD_REQUEST, "badRouting", msg);
    if group_no.is_empty() || group_no.len() > 32 {
        return bad("the group number is 1 to 32 characters");
    }
    if seatline_switchboard::Strategy::parse(&b.strategy).is_none() {
        return bad("strategy is longestIdle, roundRobin, fewestCalls, ringAll or skills");
    }
    if !(0..=i64::from(seatline_switchboard::MAX_MISSED_LIMIT)).contains(&b.max_missed) {
        return bad("maxMissed is 0 (never) to 100");
    }
    if !(0..=i64::from(seatline_switchboard::MAX_WAIT_LIMIT_SECS)).contains(&b.max_wait_secs) {
        return bad("maxWaitSecs is 0 (no queue) to 3600");
    }
    if !(0..=i64::from(seatline_switchboard::RING_TIMEOUT_LIMIT_SECS))
        .contains(&b.ring_timeout_secs)
    {
        return bad("ringTimeoutSecs is 0 (the server's default) to 300");
    }
    if b.announce_lang
        .as_deref()
        .is_some_and(|l| seatline_media::announce::Lang::parse(l).is_none())
    {
        return bad("announceLang is en-US, es-MX, zh-CN or null");
    }
    let overflow_number = match b.overflow_number.as_deref() {
        None => None,
        Some(_) if b.overflow_group.is_some() => {
            return bad("overflowGroup and overflowNumber: one or the other, not both")
        }
        Some(n) => match digits(n) {
            Some(n) => Some(n),
            None => return bad("overflowNumber is a number in E.164 digits"),
        },
    };
    if let Some(n) = &overflow_number {
        // One of this server's DIDs would bring the caller back in.
        match app.store.did_route(n).await {
            Ok(None) => {}
            Ok(Some(_)) => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "forwardLoop",
                    "overflowNumber is a DID of this server: the call would come back",
                )
            }
            Err(e) => return internal(e),
        }
    }
    if let Some(next) = &b.overflow_group {
        if next == &group_no {
            return bad("overflowGroup is another group, not this one");
        }
        match app.store.group_id(user.tenant_id, next).await {
            Ok(Some(_)) => {}
            Ok(None) => return bad("overflowGroup is none of the tenant's groups"),
            Err(e) => return internal(e),
        }
    }
    let row = seatline_store::GroupRoutingRow {
        tenant_id: user.tenant_id,
        group_no: group_no.clone(),
        strategy: b.strategy,
        max_missed: b.max_missed,
        max_wait_secs: b.max_wait_secs,
        overflow_group: b.overflow_group,
        overflow_number,
        ring_timeout_secs: b.ring_timeout_secs,
        announce_lang: b.announce_lang,
    };
    let Some(routing) = group_routing_of(&row) else {
        return bad("the settings are out of range");
    };
    match app.store.set_group_routing(&row).await {
        Ok(true) => {}
        Ok(false) => {
            return api_error(
                StatusCode::NOT_FOUND,
                "notFound",
                "the tenant has no such group",
            )
        }
        Err(e) => return internal(e),
    }
    app.hub
        .set_group_routing(user.tenant_id, &group_no, routing);
    app.bus
        .publish(crate::bus::Change::Reload {
            tenant_id: user.tenant_id,
            what: crate::bus::Reload::GroupRouting,
        })
        .await;
    tracing::info!(
        tenant = user.tenant_id,
        group = %group_no,
        strategy = %row.strategy,
        max_missed = row.max_missed,
        max_wait_secs = row.max_wait_secs,
        overflow_group = row.overflow_group.as_deref().unwrap_or(""),
        overflow_number = row.overflow_number.as_deref().unwrap_or(""),
        "group routing changed"
    );
    StatusCode::NO_CONTENT.into_response()
}

/// The admin behind the request's token, or the error to answer with.
/// The tenant admin of the request and its path parameter, or the answer
/// that refuses the request (who asks is checked first).
pub(crate) async fn admin_at<T>(
    app: &App,
    headers: &HeaderMap,
    path: Result<Path<T>, PathRejection>,
) -> Result<(User, T), Response> {
    let user = admin(app, headers).await?;
    let Path(value) = path.map_err(path_rejection)?;
    Ok((user, value))
}

pub(crate) async fn admin(app: &App, headers: &HeaderMap) -> Result<User, Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    admin_of_token(app, token).await
}

/// The admin whose session `token` is (`None`: none was sent): 401 when
/// there is no valid session, 403 when its user is no admin.
pub(crate) async fn admin_of_token(app: &App, token: Option<&str>) -> Result<User, Response> {
    let token = token.ok_or_else(|| {
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
    /// Per agent, every attempt counted; 0 (the default): no limit.
    #[serde(default)]
    max_calls_per_callee_per_minute: i64,
}

async fn get_policy(State(app): State<App>, headers: HeaderMap) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match app.store.policy(user.tenant_id).await {
        Ok(p) => Json(PolicyBody {
            // Calls in progress spend it: the call path's figure is current.
            balance_cents: app
                .hub
                .balance_cents(user.tenant_id)
                .unwrap_or(p.balance_cents),
            allowed_countries: p.allowed_countries,
            trial: p.trial,
            trial_calls_per_day: p.trial_calls_per_day,
            max_calls_per_callee_per_day: p.max_calls_per_callee_per_day,
            max_calls_per_callee_per_minute: p.max_calls_per_callee_per_minute,
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
    if b.trial_calls_per_day < 0
        || b.max_calls_per_callee_per_day < 0
        || !(0..=1000).contains(&b.max_calls_per_callee_per_minute)
    {
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
        max_calls_per_callee_per_minute: b.max_calls_per_callee_per_minute,
    };
    match app.store.set_policy(user.tenant_id, &p).await {
        Ok(()) => {
            // The call path holds the balance; it stores it again, in order.
            app.hub.set_balance(user.tenant_id, p.balance_cents);
            app.bus
                .publish(crate::bus::Change::Reload {
                    tenant_id: user.tenant_id,
                    what: crate::bus::Reload::Balance,
                })
                .await;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => internal(e),
    }
}

/// One rate as the API shows and takes it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RateBody {
    /// The start of the E.164 numbers it applies to ("1", "44", "1876").
    prefix: String,
    /// Cents a minute, e.g. 1.2.
    cents_per_minute: f64,
    /// The billing increment: the first block and each next one, seconds
    /// (60/60, 6/6, 30/6 ...).
    first_secs: u32,
    next_secs: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RatesBody {
    rates: Vec<RateBody>,
}

async fn get_rates(State(app): State<App>, headers: HeaderMap) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match app.store.all_rates().await {
        Ok(all) => {
            let rates = all
                .into_iter()
                .filter(|r| r.0 == user.tenant_id)
                .map(|(_, prefix, mc, first, next)| RateBody {
                    prefix,
                    cents_per_minute: mc as f64 / 1000.0,
                    first_secs: first as u32,
                    next_secs: next as u32,
                })
                .collect();
            Json(RatesBody { rates }).into_response()
        }
        Err(e) => internal(e),
    }
}

async fn set_rates(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Json<RatesBody>, JsonRejection>,
) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    const SEND: &str = "send {\"rates\": [{\"prefix\": \"1\", \"centsPerMinute\": 1.2, \"firstSecs\": 60, \"nextSecs\": 60}]}";
    let b = match body {
        Ok(Json(b)) => b,
        Err(rejection) => return json_rejection(rejection, SEND),
    };
    let bad = |msg: &str| api_error(StatusCode::BAD_REQUEST, "badRate", msg);
    if b.rates.len() > 1000 {
        return bad("at most 1000 rates");
    }
    let mut rows = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in &b.rates {
        if r.prefix.is_empty()
            || r.prefix.len() > 15
            || !r.prefix.bytes().all(|b| b.is_ascii_digit())
        {
            return bad("a prefix is 1 to 15 digits of an E.164 number");
        }
        if !seen.insert(r.prefix.clone()) {
            return bad("each prefix once");
        }
        if !(0.0..=100_000.0).contains(&r.cents_per_minute) || !r.cents_per_minute.is_finite() {
            return bad("centsPerMinute is 0 to 100000");
        }
        if !(1..=3600).contains(&r.first_secs) || !(1..=3600).contains(&r.next_secs) {
            return bad("firstSecs and nextSecs are 1 to 3600");
        }
        let mc = (r.cents_per_minute * 1000.0).round() as i64;
        rows.push((
            r.prefix.clone(),
            mc,
            i64::from(r.first_secs),
            i64::from(r.next_secs),
        ));
    }
    if let Err(e) = app.store.set_rates(user.tenant_id, &rows).await {
        return internal(e);
    }
    // The balance first: a forwarded call billed at the new rates finds it.
    match app.store.policy(user.tenant_id).await {
        Ok(p) => app.hub.know_balance(user.tenant_id, p.balance_cents),
        Err(e) => return internal(e),
    }
    app.hub.set_rates(user.tenant_id, rates_of(&rows));
    app.bus
        .publish(crate::bus::Change::Reload {
            tenant_id: user.tenant_id,
            what: crate::bus::Reload::Rates,
        })
        .await;
    StatusCode::NO_CONTENT.into_response()
}

/// Stored rates as the switchboard's.
pub(crate) fn rates_of(rows: &[(String, i64, i64, i64)]) -> Vec<seatline_switchboard::Rate> {
    rows.iter()
        .map(|(prefix, mc, first, next)| seatline_switchboard::Rate {
            prefix: prefix.clone(),
            millicents_per_minute: *mc,
            first_secs: u32::try_from(*first).unwrap_or(60),
            next_secs: u32::try_from(*next).unwrap_or(60),
        })
        .collect()
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

/// `GET /api/v1/admin/blacklist`: the tenant's blacklisted numbers.
async fn list_blacklist(State(app): State<App>, headers: HeaderMap) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match app.store.blacklist(user.tenant_id).await {
        Ok(numbers) => Json(serde_json::json!({ "numbers": numbers })).into_response(),
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
