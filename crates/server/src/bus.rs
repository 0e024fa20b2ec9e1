//! Events between nodes over NATS (issue 12, `[cluster] nats`): what one
//! node changes that the others keep in memory. The store holds the truth;
//! an event only says what to read again or whom to sign out, so a lost
//! event leaves a node behind until the next one, never wrong in the store.
//!
//! Every event is a small JSON object on the subject `seatline.changes`,
//! with the sending node's name; a node ignores its own. What comes from
//! NATS is checked like any input from the network: bounded, parsed
//! strictly, and an event naming nothing known changes nothing.

use crate::App;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The subject every node publishes to and listens on.
pub const SUBJECT: &str = "seatline.changes";
/// The largest event taken (a real one is under 200 bytes).
const MAX_EVENT: usize = 4096;

/// A change other nodes must know of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum Change {
    /// A DID's route changed: read the routes from the store again.
    DidRoutes,
    /// A user's sessions ended (signed out elsewhere, revoked, disabled):
    /// their tabs here close; `keep` is the one session left alone.
    #[serde(rename_all = "camelCase")]
    UserSessions {
        user_id: i64,
        keep: Option<String>,
        disabled: bool,
    },
    /// A supervisor signed an agent out (the wallboard).
    #[serde(rename_all = "camelCase")]
    SeatSignedOut { tenant_id: i64, seat_id: i64 },
    /// A tenant's settings that nodes keep in memory changed: read them
    /// from the store again.
    #[serde(rename_all = "camelCase")]
    Reload { tenant_id: i64, what: Reload },
}

/// Which of a tenant's settings to read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Reload {
    /// Its own trunks (all tenants' trunks are installed together).
    Trunks,
    /// Its policy's balance, set by an admin.
    Balance,
    /// Its rates.
    Rates,
    /// Its recording setting.
    Recording,
    /// Its groups' queue settings.
    GroupRouting,
    /// Its own waiting music.
    Music,
    /// Its DIDs' menu prompts.
    Prompts,
    /// Its agents' skills.
    Skills,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    node: String,
    change: Change,
}

/// This node's end of the bus; without `[cluster] nats`, publishing does
/// nothing (one node has no one to tell).
#[derive(Default)]
pub struct Bus {
    client: Option<async_nats::Client>,
    node: String,
}

impl Bus {
    /// Connects to NATS at `url` as the node `node`. A NATS server that is
    /// down does not keep the node from starting: the client connects (and
    /// reconnects) in the background.
    pub async fn connect(url: &str, node: &str) -> anyhow::Result<Bus> {
        let client = async_nats::ConnectOptions::new()
            .name(format!("seatline-{node}"))
            .retry_on_initial_connect()
            .connect(url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to NATS at {}: {e}", redacted(url)))?;
        Ok(Bus {
            client: Some(client),
            node: node.to_string(),
        })
    }

    /// Tells the other nodes; a failure is logged (the store has the
    /// change already).
    pub async fn publish(&self, change: Change) {
        let Some(client) = &self.client else { return };
        let env = Envelope {
            node: self.node.clone(),
            change,
        };
        let Ok(body) = serde_json::to_vec(&env) else {
            return;
        };
        if let Err(e) = client.publish(SUBJECT, body.into()).await {
            tracing::error!("bus: cannot publish a change: {e}");
        }
    }
}

/// `url` without its credentials, for the log.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// The change an event from NATS carries, when it is well formed and from
/// another node than `me`.
pub fn parse(payload: &[u8], me: &str) -> Option<Change> {
    if payload.len() > MAX_EVENT {
        return None;
    }
    let env: Envelope = serde_json::from_slice(payload).ok()?;
    (env.node != me).then_some(env.change)
}

/// Listens to the other nodes' changes and applies them here, as long as
/// the server runs.
pub(crate) async fn listen(app: App) -> anyhow::Result<()> {
    let Some(client) = app.bus.client.clone() else {
        return Ok(());
    };
    let mut sub = client
        .subscribe(SUBJECT)
        .await
        .map_err(|e| anyhow::anyhow!("cannot subscribe to {SUBJECT}: {e}"))?;
    tokio::spawn(async move {
        use futures_util::StreamExt;
        while let Some(msg) = sub.next().await {
            match parse(&msg.payload, &app.bus.node) {
                Some(change) => apply(&app, change),
                None => tracing::debug!("bus: an event was ignored"),
            }
        }
        tracing::error!("bus: the NATS subscription ended");
    });
    Ok(())
}

fn apply(app: &App, change: Change) {
    let now = Instant::now();
    match change {
        Change::Reload { tenant_id, what } => {
            let app = app.clone();
            tokio::spawn(async move {
                if let Err(e) = reload(&app, tenant_id, what).await {
                    tracing::error!(tenant = tenant_id, ?what, "bus: cannot read again: {e}");
                }
            });
        }
        Change::DidRoutes => app.calls.dids.forget(),
        Change::UserSessions {
            user_id,
            keep,
            disabled,
        } => {
            if disabled {
                app.hub.sign_user_out(user_id, now);
            } else {
                app.hub
                    .end_user_sessions_except(user_id, keep.as_deref(), now);
            }
        }
        Change::SeatSignedOut { tenant_id, seat_id } => {
            // Not signed in here: nothing to do.
            let _ = app.hub.force_sign_out(tenant_id, seat_id, now);
        }
    }
}

/// Reads `what` of the tenant from the store again, as this node did at
/// its start.
async fn reload(app: &App, tenant_id: i64, what: Reload) -> anyhow::Result<()> {
    match what {
        Reload::Trunks => crate::trunks::install(app, crate::trunks::resolve_stored(app).await?),
        Reload::Balance => app
            .hub
            .set_balance(tenant_id, app.store.policy(tenant_id).await?.balance_cents),
        Reload::Rates => {
            let rows: Vec<(String, i64, i64, i64)> = app
                .store
                .all_rates()
                .await?
                .into_iter()
                .filter(|r| r.0 == tenant_id)
                .map(|(_, prefix, mc, first, next)| (prefix, mc, first, next))
                .collect();
            app.hub
                .know_balance(tenant_id, app.store.policy(tenant_id).await?.balance_cents);
            app.hub.set_rates(tenant_id, crate::admin::rates_of(&rows));
        }
        Reload::Recording => {
            let setting = app.store.recording_setting(tenant_id).await?;
            app.hub
                .set_recording(tenant_id, crate::recordings::policy_of(&setting));
        }
        Reload::GroupRouting => {
            for g in app.store.group_routings().await? {
                if g.tenant_id != tenant_id {
                    continue;
                }
                if let Some(routing) = crate::admin::group_routing_of(&g) {
                    app.hub.set_group_routing(tenant_id, &g.group_no, routing);
                }
            }
        }
        Reload::Music => {
            let samples = app
                .store
                .tenant_musics()
                .await?
                .into_iter()
                .find(|(t, _)| *t == tenant_id)
                .map(|(_, s)| s.into());
            app.hub.set_tenant_music(tenant_id, samples);
        }
        Reload::Prompts => {
            let mut prompts: std::collections::HashMap<String, Vec<i16>> = app
                .store
                .did_prompts()
                .await?
                .into_iter()
                .filter(|(t, _, _)| *t == tenant_id)
                .map(|(_, did, s)| (did, s))
                .collect();
            // Every DID of the tenant: a removed prompt is cleared too.
            for did in app.store.dids(tenant_id).await?.0 {
                let samples = prompts.remove(&did).map(Into::into);
                app.hub.set_did_prompt(tenant_id, &did, samples);
            }
        }
        Reload::Skills => {
            for u in app.store.users(Some(tenant_id)).await? {
                if let Some(seat) = app.store.seat_of_user(u.id).await? {
                    app.hub.set_agent_skills(seat.id, seat.skills);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_forged_or_own_ones_are_ignored() {
        let change = Change::UserSessions {
            user_id: 7,
            keep: Some("s".into()),
            disabled: false,
        };
        let body = serde_json::to_vec(&Envelope {
            node: "a".into(),
            change: change.clone(),
        })
        .unwrap();
        assert_eq!(parse(&body, "b"), Some(change));
        assert_eq!(parse(&body, "a"), None, "a node's own event");
        for bad in [
            &b"not json"[..],
            br#"{"node":"a","change":{"kind":"dropTables"}}"#,
            br#"{"node":"a","change":{"kind":"seatSignedOut","tenantId":1,"seatId":2,"x":1}}"#,
            br#"{"node":"a","change":{"kind":"didRoutes"},"extra":1}"#,
            br#"{"node":"a","change":{"kind":"seatSignedOut","tenantId":"1","seatId":2}}"#,
            br#"{"change":{"kind":"didRoutes"}}"#,
        ] {
            assert_eq!(parse(bad, "b"), None, "{}", String::from_utf8_lossy(bad));
        }
        let mut big = br#"{"node":"a","change":{"kind":"didRoutes"}}"#.to_vec();
        big.resize(MAX_EVENT + 1, b' ');
        assert_eq!(parse(&big, "b"), None, "too big");
        assert_eq!(
            parse(br#"{"node":"a","change":{"kind":"didRoutes"}}"#, "b"),
            Some(Change::DidRoutes)
        );
    }

    #[test]
    fn a_nats_url_is_logged_without_its_credentials() {
        assert_eq!(
            redacted("nats://seat:s3cret@10.0.0.5:4222"),
            "nats://***@10.0.0.5:4222"
        );
        assert_eq!(redacted("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }
}
