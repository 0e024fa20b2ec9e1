//! Webhooks: a tenant's URL and secret, and the outbox of deliveries. The
//! outbox is filled by the database itself (triggers on the call records,
//! in the transaction that ends a call); the server's deliverer takes due
//! deliveries, and marks each delivered, or due again later, or given up.

use crate::Get;
use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub secret: String,
}

/// One delivery of the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    /// Sent as `Seatline-Delivery`: the receiver's key to drop repeats.
    pub delivery_id: String,
    pub tenant_id: i64,
    pub call_id: String,
    /// Made at the first attempt; the same at every retry.
    pub body: Option<String>,
    pub created_ms: i64,
    pub attempts: i64,
    pub next_ms: i64,
    pub delivered_ms: Option<i64>,
    pub failed_ms: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
}

fn delivery_of(r: &impl Get) -> Result<Delivery> {
    Ok(Delivery {
        id: r.try_get("id")?,
        delivery_id: r.try_get("delivery_id")?,
        tenant_id: r.try_get("tenant_id")?,
        call_id: r.try_get("call_id")?,
        body: r.try_get("body")?,
        created_ms: r.try_get("created_ms")?,
        attempts: r.try_get("attempts")?,
        next_ms: r.try_get("next_ms")?,
        delivered_ms: r.try_get("delivered_ms")?,
        failed_ms: r.try_get("failed_ms")?,
        last_status: r.try_get("last_status")?,
        last_error: r.try_get("last_error")?,
    })
}

/// See [`Store::claim_deliveries`] (SQLite: one writer at a time).
const CLAIM_SQLITE: &str = "UPDATE webhook_outbox SET next_ms = $2
     WHERE id IN (SELECT o.id FROM webhook_outbox o JOIN webhooks w ON w.tenant_id = o.tenant_id
                  WHERE o.delivered_ms IS NULL AND o.failed_ms IS NULL AND o.next_ms <= $1
                  ORDER BY o.next_ms, o.id LIMIT $3)
     RETURNING *";

/// The same for PostgreSQL, where claims run at once: the rows are locked
/// as they are chosen, once (a CTE; a subquery under `IN` may run again
/// per row and pass its LIMIT), and rows another claim holds are passed by.
/// The `next_ms <= $1` of the update is checked again on a row another
/// claim changed meanwhile, so no row is taken twice.
const CLAIM_POSTGRES: &str = "WITH due AS (
         SELECT o.id FROM webhook_outbox o JOIN webhooks w ON w.tenant_id = o.tenant_id
         WHERE o.delivered_ms IS NULL AND o.failed_ms IS NULL AND o.next_ms <= $1
         ORDER BY o.next_ms, o.id LIMIT $3 FOR UPDATE OF o SKIP LOCKED)
     UPDATE webhook_outbox SET next_ms = $2 FROM due
     WHERE webhook_outbox.id = due.id AND webhook_outbox.next_ms <= $1
     RETURNING webhook_outbox.*";

impl Store {
    pub async fn webhook(&self, tenant_id: i64) -> Result<Option<Webhook>> {
        on_db!(self, |pool| {
            let r = sqlx::query("SELECT url, secret FROM webhooks WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_optional(pool)
                .await?;
            r.map(|r| {
                Ok(Webhook {
                    url: r.try_get("url")?,
                    secret: r.try_get("secret")?,
                })
            })
            .transpose()
        })
    }

    /// Sets the tenant's webhook; calls that end from now on are delivered.
    pub async fn set_webhook(&self, tenant_id: i64, w: &Webhook) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query(
                "INSERT INTO webhooks (tenant_id, url, secret, updated_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id) DO UPDATE
                 SET url = excluded.url, secret = excluded.secret, updated_ms = excluded.updated_ms",
            )
            .bind(tenant_id)
            .bind(&w.url)
            .bind(&w.secret)
            .bind(crate::now_ms())
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Removes the tenant's webhook; deliveries still queued stay queued
    /// (and wait until a webhook is set again). False when there was none.
    pub async fn delete_webhook(&self, tenant_id: i64) -> Result<bool> {
        on_db!(self, |pool| {
            let done = sqlx::query("DELETE FROM webhooks WHERE tenant_id = $1")
                .bind(tenant_id)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Takes the deliveries due at `now_ms` of tenants that have a webhook,
    /// oldest first, at most `limit`: each is put off to `lease_until`, so
    /// that no other node (or loop) takes it while this one tries it. If
    /// this node dies, another one takes it when the lease runs out; the
    /// attempt's outcome sets its next time ([`Store::delivery_attempted`]).
    pub async fn claim_deliveries(
        &self,
        now_ms: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        let sql = match self.db {
            crate::Db::Sqlite(_) => CLAIM_SQLITE,
            crate::Db::Postgres(_) => CLAIM_POSTGRES,
        };
        on_db!(self, |pool| {
            let mut due = sqlx::query(sql)
                .bind(now_ms)
                .bind(lease_until)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .iter()
                .map(delivery_of)
                .collect::<Result<Vec<_>>>()?;
            due.sort_by_key(|d| d.id);
            Ok(due)
        })
    }

    /// Keeps the body made for a delivery's first attempt.
    pub async fn set_delivery_body(&self, id: i64, body: &str) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query("UPDATE webhook_outbox SET body = $1 WHERE id = $2 AND body IS NULL")
                .bind(body)
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// An attempt's outcome: delivered (a 2xx came back), or to be tried
    /// again at `next_ms`, or (`next_ms` None) given up.
    pub async fn delivery_attempted(
        &self,
        id: i64,
        now_ms: i64,
        status: Option<i64>,
        delivered: bool,
        error: Option<&str>,
        next_ms: Option<i64>,
    ) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query(
                "UPDATE webhook_outbox
                 SET attempts = attempts + 1, last_status = $1, last_error = $2,
                     delivered_ms = CASE WHEN $3 THEN $4 END,
                     failed_ms = CASE WHEN NOT $3 AND $5 IS NULL THEN $4 END,
                     next_ms = COALESCE($5, next_ms)
                 WHERE id = $6 AND delivered_ms IS NULL",
            )
            .bind(status)
            .bind(error)
            .bind(delivered)
            .bind(now_ms)
            .bind(next_ms)
            .bind(id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The tenant's deliveries, newest first (the delivery log).
    pub async fn deliveries(&self, tenant_id: i64, limit: i64) -> Result<Vec<Delivery>> {
        on_db!(self, |pool| {
            sqlx::query(
                "SELECT * FROM webhook_outbox WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(tenant_id)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(delivery_of)
            .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CallRow;

    fn call(id: &str, hangup_ms: Option<i64>) -> CallRow {
        CallRow {
            id: id.into(),
            tenant_id: 1,
            direction: 1,
            start_ms: 1,
            hangup_ms,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn an_ended_call_is_queued_once_in_its_own_write_and_only_with_a_webhook() {
        for s in crate::testing::stores().await {
            eprintln!("on {}", s.backend());
            s.seed_demo().await.unwrap();
            s.save_call(&call("before", Some(5))).await.unwrap();
            s.set_webhook(
                1,
                &Webhook {
                    url: "http://127.0.0.1:9/h".into(),
                    secret: "x".repeat(16),
                },
            )
            .await
            .unwrap();
            // Placed, then ended (twice: the end is saved again), then one
            // already ended when first written.
            s.save_call(&call("c1", None)).await.unwrap();
            assert!(s.claim_deliveries(10, 15, 10).await.unwrap().is_empty());
            s.save_call(&call("c1", Some(7))).await.unwrap();
            s.save_call(&call("c1", Some(7))).await.unwrap();
            s.save_all(&[crate::Write::Call(Box::new(call("c2", Some(8))))])
                .await
                .unwrap();
            let due = s.claim_deliveries(10, 15, 10).await.unwrap();
            let calls: Vec<_> = due.iter().map(|d| d.call_id.as_str()).collect();
            assert_eq!(calls, vec!["c1", "c2"], "before the webhook: not queued");
            assert_ne!(due[0].delivery_id, due[1].delivery_id);

            // Failed once, then delivered: never due again.
            let d = &due[0];
            s.delivery_attempted(d.id, 20, Some(500), false, None, Some(30))
                .await
                .unwrap();
            assert!(
                s.claim_deliveries(12, 17, 10).await.unwrap().is_empty(),
                "both taken until 15"
            );
            // c2's lease ran out (its taker died): taken again.
            let again = s.claim_deliveries(25, 30, 10).await.unwrap();
            assert_eq!(again.len(), 1);
            assert_eq!(again[0].call_id, "c2");
            s.delivery_attempted(d.id, 30, Some(200), true, None, None)
                .await
                .unwrap();
            s.delivery_attempted(d.id, 31, Some(500), false, None, Some(40))
                .await
                .unwrap();
            let log = s.deliveries(1, 10).await.unwrap();
            let c1 = log.iter().find(|x| x.call_id == "c1").unwrap();
            assert_eq!((c1.attempts, c1.delivered_ms), (2, Some(30)));
            let due = s.claim_deliveries(1000, 1005, 10).await.unwrap();
            assert_eq!(due.len(), 1, "c2 only");
            // Given up: no longer due.
            let c2 = due[0].id;
            s.delivery_attempted(c2, 40, None, false, Some("timed out"), None)
                .await
                .unwrap();
            assert!(s
                .claim_deliveries(10_000, 10_005, 10)
                .await
                .unwrap()
                .is_empty());
        }
    }

    /// Two nodes on one PostgreSQL database claim the outbox at once:
    /// every delivery is taken by exactly one of them.
    #[tokio::test]
    async fn two_nodes_never_take_the_same_delivery() {
        let pg = crate::testing::TestPostgres::shared().unwrap();
        let url = pg.url(&pg.new_schema().await.unwrap());
        let a = Store::open_postgres(&url).await.unwrap();
        let b = Store::open_postgres(&url).await.unwrap();
        a.seed_demo().await.unwrap();
        a.set_webhook(
            1,
            &Webhook {
                url: "http://127.0.0.1:9/h".into(),
                secret: "x".repeat(16),
            },
        )
        .await
        .unwrap();
        let writes: Vec<_> = (0..60)
            .map(|n| crate::Write::Call(Box::new(call(&format!("n{n}"), Some(5)))))
            .collect();
        a.save_all(&writes).await.unwrap();
        let take = |s: Store| async move {
            let mut got = Vec::new();
            loop {
                let due = s.claim_deliveries(10, 1_000, 4).await.unwrap();
                if due.is_empty() {
                    return got;
                }
                got.extend(due.into_iter().map(|d| d.call_id));
                // An attempt takes a while: the other node claims meanwhile.
                tokio::time::sleep(std::time::Duration::from_millis(3)).await;
            }
        };
        // One after the other: the second gets other deliveries.
        let first = a.claim_deliveries(10, 1_000, 4).await.unwrap();
        let second = b.claim_deliveries(10, 1_000, 4).await.unwrap();
        assert_eq!((first.len(), second.len()), (4, 4));
        assert!(first.iter().all(|d| second.iter().all(|e| e.id != d.id)));
        // At once, to the end.
        let (mut x, y) = tokio::join!(take(a.clone()), take(b.clone()));
        x.extend(y);
        x.extend(first.into_iter().chain(second).map(|d| d.call_id));
        let n = x.len();
        x.sort();
        x.dedup();
        assert_eq!((n, x.len()), (60, 60), "each once");
    }
}
