//! Nodes sharing one database (issue 12): each beats every second, and
//! one survivor takes over a node whose beat stopped.

use crate::Get;
use crate::{Result, Store};

/// Which node holds an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// This node.
    Here,
    /// Another node, reached at `ws_url` (none: it never said where).
    There {
        node: String,
        ws_url: Option<String>,
    },
}

impl Store {
    /// Registers this node at its start (again after a restart: alive,
    /// not draining).
    pub async fn node_started(&self, now_ms: i64) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query(
                "INSERT INTO nodes (name, started_ms, heartbeat_ms, draining, gone_ms)
                 VALUES ($1, $2, $2, 0, NULL)
                 ON CONFLICT (name) DO UPDATE SET started_ms = excluded.started_ms,
                    heartbeat_ms = excluded.heartbeat_ms, draining = 0, gone_ms = NULL",
            )
            .bind(&*self.node)
            .bind(now_ms)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// This node's beat; `false` when the others took it for dead
    /// meanwhile (and closed its calls): it must not go on with them.
    pub async fn node_beat(&self, now_ms: i64, draining: bool) -> Result<bool> {
        on_db!(self, |pool| {
            let done = sqlx::query(
                "UPDATE nodes SET heartbeat_ms = $2, draining = $3 WHERE name = $1 AND gone_ms IS NULL",
            )
            .bind(&*self.node)
            .bind(now_ms)
            .bind(i64::from(draining))
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Marks gone the other nodes silent since before `silent_since` and
    /// returns their names: each dead node is returned to one caller only,
    /// however many nodes ask at once.
    pub async fn take_dead_nodes(&self, now_ms: i64, silent_since: i64) -> Result<Vec<String>> {
        on_db!(self, |pool| {
            let rows = sqlx::query(
                "UPDATE nodes SET gone_ms = $1
                 WHERE gone_ms IS NULL AND heartbeat_ms < $2 AND name <> $3 RETURNING name",
            )
            .bind(now_ms)
            .bind(silent_since)
            .bind(&*self.node)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| Ok(r.try_get("name")?))
                .collect::<Result<Vec<String>>>()
        })
    }

    /// Where the other nodes reach this one: its WebSocket URL (for the
    /// tabs they relay) and its SIP URI (for the calls they redirect).
    pub async fn node_addresses(&self, ws_url: &str, sip_uri: &str) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query("UPDATE nodes SET ws_url = $2, sip_uri = $3 WHERE name = $1")
                .bind(&*self.node)
                .bind(ws_url)
                .bind(sip_uri)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// The node that holds the agent of `seat_id`: this one, when no
    /// other live node held it (a gone or silent-since-`silent_since`
    /// owner is replaced), else the other with its WebSocket URL. One
    /// statement decides, so two nodes claiming at once agree.
    pub async fn claim_seat(&self, seat_id: i64, now_ms: i64, silent_since: i64) -> Result<Owner> {
        on_db!(self, |pool| {
            sqlx::query(
                "INSERT INTO seat_owners (seat_id, node, since_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (seat_id) DO UPDATE SET node = excluded.node, since_ms = excluded.since_ms
                 WHERE seat_owners.node IN (SELECT name FROM nodes
                     WHERE gone_ms IS NOT NULL OR heartbeat_ms < $4)",
            )
            .bind(seat_id)
            .bind(&*self.node)
            .bind(now_ms)
            .bind(silent_since)
            .execute(pool)
            .await?;
            let row = sqlx::query(
                "SELECT o.node, n.ws_url FROM seat_owners o LEFT JOIN nodes n ON n.name = o.node
                 WHERE o.seat_id = $1",
            )
            .bind(seat_id)
            .fetch_one(pool)
            .await?;
            let node: String = row.try_get("node")?;
            Ok(if node == *self.node {
                Owner::Here
            } else {
                Owner::There {
                    node,
                    ws_url: row.try_get("ws_url")?,
                }
            })
        })
    }

    /// The other live node (beat since `silent_since`) that holds the
    /// agent of `seat_id`, with its WebSocket URL; none when it is this
    /// one, or none holds it. Claims nothing.
    pub async fn holder_of(
        &self,
        seat_id: i64,
        silent_since: i64,
    ) -> Result<Option<(String, String)>> {
        on_db!(self, |pool| {
            let row = sqlx::query(
                "SELECT o.node, n.ws_url FROM seat_owners o JOIN nodes n ON n.name = o.node
                 WHERE o.seat_id = $1 AND o.node <> $2 AND n.gone_ms IS NULL
                   AND n.heartbeat_ms >= $3 AND n.ws_url IS NOT NULL",
            )
            .bind(seat_id)
            .bind(&*self.node)
            .bind(silent_since)
            .fetch_optional(pool)
            .await?;
            row.map(|r| Ok((r.try_get("node")?, r.try_get("ws_url")?)))
                .transpose()
        })
    }

    /// Lets go of agents this node holds (a draining node, of the agents
    /// with no call; all of them, once it stops): their next tab makes
    /// another node their holder.
    pub async fn release_seats(&self, seat_ids: Option<&[i64]>) -> Result<()> {
        on_db!(self, |pool| {
            match seat_ids {
                None => {
                    sqlx::query("DELETE FROM seat_owners WHERE node = $1")
                        .bind(&*self.node)
                        .execute(pool)
                        .await?;
                }
                Some(ids) => {
                    for id in ids {
                        sqlx::query("DELETE FROM seat_owners WHERE node = $1 AND seat_id = $2")
                            .bind(&*self.node)
                            .bind(id)
                            .execute(pool)
                            .await?;
                    }
                }
            }
            Ok(())
        })
    }

    /// The SIP URI of the live node, other than this one and not
    /// draining, that holds the most agents of the group who chose Idle:
    /// where an inbound call for the group is redirected when no agent
    /// here can take it.
    pub async fn node_for_group(
        &self,
        tenant_id: i64,
        group_no: &str,
        silent_since: i64,
    ) -> Result<Option<String>> {
        on_db!(self, |pool| {
            let row = sqlx::query(
                "SELECT n.sip_uri FROM seat_owners o
                 JOIN seats s ON s.id = o.seat_id
                 JOIN agent_groups g ON g.id = s.group_id
                 JOIN nodes n ON n.name = o.node
                 WHERE s.tenant_id = $1 AND g.group_no = $2 AND s.enabled <> 0
                   AND COALESCE(s.agent_status, g.initial_status) = 1 AND o.node <> $3 AND n.sip_uri IS NOT NULL
                   AND n.gone_ms IS NULL AND n.draining = 0 AND n.heartbeat_ms >= $4
                 GROUP BY n.name, n.sip_uri
                 ORDER BY COUNT(*) DESC, n.name LIMIT 1",
            )
            .bind(tenant_id)
            .bind(group_no)
            .bind(&*self.node)
            .bind(silent_since)
            .fetch_optional(pool)
            .await?;
            row.map(|r| Ok(r.try_get("sip_uri")?)).transpose()
        })
    }

    /// Every node known: (name, last beat, draining, gone since).
    pub async fn nodes(&self) -> Result<Vec<(String, i64, bool, Option<i64>)>> {
        on_db!(self, |pool| {
            let rows = sqlx::query(
                "SELECT name, heartbeat_ms, draining, gone_ms FROM nodes ORDER BY name",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get("name")?,
                        r.try_get("heartbeat_ms")?,
                        r.try_get::<i64, _>("draining")? != 0,
                        r.try_get("gone_ms")?,
                    ))
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Owner;
    use crate::{CallRow, Store};

    fn open_call(id: &str) -> CallRow {
        CallRow {
            id: id.into(),
            tenant_id: 1,
            direction: 1,
            start_ms: 1,
            ..Default::default()
        }
    }

    /// Three nodes on one database: a silent one is taken over by exactly
    /// one of the others, with its open calls, and learns it at its next
    /// beat; a restart makes it alive again.
    #[tokio::test]
    async fn a_silent_node_is_taken_over_once_with_its_open_calls() {
        let pg = crate::testing::TestPostgres::shared().unwrap();
        let url = pg.url(&pg.new_schema().await.unwrap());
        let a = Store::open_postgres(&url).await.unwrap().with_node("a");
        let b = Store::open_postgres(&url).await.unwrap().with_node("b");
        let c = Store::open_postgres(&url).await.unwrap().with_node("c");
        a.seed_demo().await.unwrap();
        for s in [&a, &b, &c] {
            s.node_started(1_000).await.unwrap();
        }
        a.save_call(&open_call("on-a")).await.unwrap();
        b.save_call(&open_call("on-b")).await.unwrap();
        assert_eq!(a.open_calls().await.unwrap()[0].id, "on-a", "its own only");
        // b and c beat on; a stops.
        for s in [&b, &c] {
            assert!(s.node_beat(4_000, false).await.unwrap());
        }
        assert!(
            b.take_dead_nodes(4_000, 1_000).await.unwrap().is_empty(),
            "not yet"
        );
        let (x, y) = tokio::join!(
            b.take_dead_nodes(4_500, 2_000),
            c.take_dead_nodes(4_500, 2_000)
        );
        let mut taken = x.unwrap();
        taken.extend(y.unwrap());
        assert_eq!(taken, vec!["a".to_string()], "once, by one survivor");
        let left: Vec<String> = b
            .open_calls_of("a")
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(left, vec!["on-a".to_string()]);
        assert!(
            !a.node_beat(5_000, false).await.unwrap(),
            "a learns it was taken over"
        );
        a.node_started(6_000).await.unwrap();
        assert!(a.node_beat(7_000, true).await.unwrap());
        let nodes = c.nodes().await.unwrap();
        assert_eq!(nodes[0], ("a".to_string(), 7_000, true, None));
    }

    /// An agent is held by the node its first tab opened on; the others
    /// are told where it is, also when they claim at once. A silent or
    /// gone holder is replaced; a released agent goes to the next claimer.
    /// Calls for a group are sent where its idle agents are held.
    #[tokio::test]
    async fn one_node_holds_an_agent_and_calls_go_where_idle_agents_are() {
        let pg = crate::testing::TestPostgres::shared().unwrap();
        let url = pg.url(&pg.new_schema().await.unwrap());
        let a = Store::open_postgres(&url).await.unwrap().with_node("a");
        let b = Store::open_postgres(&url).await.unwrap().with_node("b");
        let c = Store::open_postgres(&url).await.unwrap().with_node("c");
        a.seed_demo().await.unwrap();
        for (s, n) in [(&a, "a"), (&b, "b"), (&c, "c")] {
            s.node_started(1_000).await.unwrap();
            s.node_addresses(&format!("ws://{n}/ws"), &format!("sip:{n}"))
                .await
                .unwrap();
        }
        let user = a.user_by_email("agent1@demo.local").await.unwrap().unwrap();
        let seat = a.seat_of_user(user.id).await.unwrap().unwrap();
        let there = |n: &str| Owner::There {
            node: n.into(),
            ws_url: Some(format!("ws://{n}/ws")),
        };
        let (x, y) = tokio::join!(
            b.claim_seat(seat.id, 1_100, 0),
            c.claim_seat(seat.id, 1_100, 0)
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(
            (x == Owner::Here && y == there("b")) || (y == Owner::Here && x == there("c")),
            "one holder: {x:?} {y:?}"
        );
        let holder = if x == Owner::Here { &b } else { &c };
        let other = if x == Owner::Here { &c } else { &b };
        let name = holder.node().to_string();
        assert_eq!(a.claim_seat(seat.id, 1_200, 0).await.unwrap(), there(&name));
        assert_eq!(
            holder.claim_seat(seat.id, 1_200, 0).await.unwrap(),
            Owner::Here
        );
        // The group's idle agent is held by `holder`: calls go there, but
        // never from the holder to itself.
        assert_eq!(
            a.node_for_group(seat.tenant_id, &seat.group_no, 0)
                .await
                .unwrap(),
            Some(format!("sip:{name}"))
        );
        assert_eq!(
            holder
                .node_for_group(seat.tenant_id, &seat.group_no, 0)
                .await
                .unwrap(),
            None
        );
        a.save_agent_status(seat.id, 2).await.unwrap();
        assert_eq!(
            a.node_for_group(seat.tenant_id, &seat.group_no, 0)
                .await
                .unwrap(),
            None,
            "no idle agent there"
        );
        a.save_agent_status(seat.id, 1).await.unwrap();
        // The holder goes silent: the next claimer takes the agent, and
        // no call is sent to a silent node.
        assert_eq!(
            a.node_for_group(seat.tenant_id, &seat.group_no, 2_000)
                .await
                .unwrap(),
            None
        );
        other.node_beat(5_000, false).await.unwrap();
        assert_eq!(
            other.claim_seat(seat.id, 5_000, 2_000).await.unwrap(),
            Owner::Here
        );
        // Released, it goes to whoever claims next.
        other.release_seats(Some(&[seat.id])).await.unwrap();
        assert_eq!(a.claim_seat(seat.id, 5_100, 0).await.unwrap(), Owner::Here);
        a.release_seats(None).await.unwrap();
        assert_eq!(
            holder.claim_seat(seat.id, 5_200, 0).await.unwrap(),
            Owner::Here
        );
    }
}
