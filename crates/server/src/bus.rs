//! Events between nodes over NATS (issue 12, `[cluster] nats`): what one
//! node changes that the others keep in memory. The store holds the truth;
//! an event only says what to read again or whom to sign out, so a lost
//! event leaves a node behind until the next one, never wrong in the store.
//!
//! This module says what an event is and sends it; `cluster.rs` applies
//! the other nodes' events here.
//!
//! Every event is a small JSON object on the subject `seatline.changes`,
//! with the sending node's name; a node ignores its own. What comes from
//! NATS is checked like any input from the network: bounded, parsed
//! strictly, and an event naming nothing known changes nothing.

use serde::{Deserialize, Serialize};

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
    /// A session signed out on one node: its tabs wherever they are
    /// close (`loggedOut`). The session's id, never its token.
    #[serde(rename_all = "camelCase")]
    SessionEnded { session_id: String },
    /// A user signed in on one node, and `holder` holds their agent: the
    /// holder starts the agent afresh (its initial status).
    #[serde(rename_all = "camelCase")]
    SignedIn {
        user_id: i64,
        session_id: String,
        holder: String,
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
            .map_err(|e| {
                anyhow::anyhow!("cannot connect to NATS at {}: {e}", crate::redact::url(url))
            })?;
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

impl Bus {
    /// The NATS client, when there is one; the node's name.
    pub(crate) fn parts(&self) -> (Option<&async_nats::Client>, &str) {
        (self.client.as_ref(), &self.node)
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
}
