//! Nodes sharing one database (issue 12): each beats every second, and
//! one survivor takes over a node whose beat stopped.

use crate::Get;
use crate::{Result, Store};

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
}
