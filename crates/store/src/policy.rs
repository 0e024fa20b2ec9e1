//! Call policy per tenant: balance, countries, trial, limits, blacklist.

use crate::Get;
use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub balance_cents: i64,
    /// Calling codes that may be dialed ("1", "852"); empty: all.
    pub allowed_countries: Vec<String>,
    pub trial: bool,
    pub trial_calls_per_day: i64,
    /// Calls to one number a day; 0: no limit.
    pub max_calls_per_callee_per_day: i64,
    /// Calls one agent may place to one number in a minute, every attempt
    /// counted; 0: no limit.
    pub max_calls_per_callee_per_minute: i64,
}

impl Default for Policy {
    /// What a tenant with no policy row gets: nothing allowed on credit.
    fn default() -> Self {
        Self {
            balance_cents: 0,
            allowed_countries: Vec::new(),
            trial: false,
            trial_calls_per_day: 10,
            max_calls_per_callee_per_day: 0,
            max_calls_per_callee_per_minute: 0,
        }
    }
}

impl Store {
    /// Every tenant's stored balance: (tenant, cents).
    pub async fn balances(&self) -> Result<Vec<(i64, i64)>> {
        on_db!(self, |pool| {
            let rows = sqlx::query(
                "SELECT tenant_id, balance_cents FROM tenant_policy ORDER BY tenant_id",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("tenant_id")?, r.try_get("balance_cents")?)))
                .collect()
        })
    }

    pub async fn policy(&self, tenant_id: i64) -> Result<Policy> {
        on_db!(self, |pool| {
            let r = sqlx::query("SELECT * FROM tenant_policy WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_optional(pool)
                .await?;
            let Some(r) = r else {
                return Ok(Policy::default());
            };
            let countries: String = r.try_get("allowed_countries")?;
            Ok(Policy {
                balance_cents: r.try_get("balance_cents")?,
                allowed_countries: countries
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(String::from)
                    .collect(),
                trial: r.try_get::<i64, _>("trial")? != 0,
                trial_calls_per_day: r.try_get("trial_calls_per_day")?,
                max_calls_per_callee_per_day: r.try_get("max_calls_per_callee_per_day")?,
                max_calls_per_callee_per_minute: r.try_get("max_calls_per_callee_per_minute")?,
            })
        })
    }

    pub async fn set_policy(&self, tenant_id: i64, p: &Policy) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query(
                "INSERT INTO tenant_policy (tenant_id, balance_cents, allowed_countries, trial, trial_calls_per_day,
                                            max_calls_per_callee_per_day, max_calls_per_callee_per_minute)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT(tenant_id) DO UPDATE SET balance_cents = excluded.balance_cents, allowed_countries = excluded.allowed_countries,
                    trial = excluded.trial, trial_calls_per_day = excluded.trial_calls_per_day,
                    max_calls_per_callee_per_day = excluded.max_calls_per_callee_per_day,
                    max_calls_per_callee_per_minute = excluded.max_calls_per_callee_per_minute",
            )
            .bind(tenant_id)
            .bind(p.balance_cents)
            .bind(p.allowed_countries.join(","))
            .bind(p.trial as i64)
            .bind(p.trial_calls_per_day)
            .bind(p.max_calls_per_callee_per_day)
            .bind(p.max_calls_per_callee_per_minute)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Every tenant's rates: (tenant, prefix, millicents a minute, first
    /// block seconds, next block seconds).
    pub async fn all_rates(&self) -> Result<Vec<(i64, String, i64, i64, i64)>> {
        on_db!(self, |pool| {
            let rows = sqlx::query(
                "SELECT tenant_id, prefix, millicents_per_minute, first_secs, next_secs
                 FROM rates ORDER BY tenant_id, prefix",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get(0)?,
                        r.try_get(1)?,
                        r.try_get(2)?,
                        r.try_get(3)?,
                        r.try_get(4)?,
                    ))
                })
                .collect()
        })
    }

    /// Replaces the tenant's rates: (prefix, millicents a minute, first
    /// block seconds, next block seconds).
    pub async fn set_rates(&self, tenant_id: i64, rates: &[(String, i64, i64, i64)]) -> Result<()> {
        on_db!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM rates WHERE tenant_id = $1")
                .bind(tenant_id)
                .execute(&mut *tx)
                .await?;
            for (prefix, mc, first, next) in rates {
                sqlx::query(
                    "INSERT INTO rates (tenant_id, prefix, millicents_per_minute, first_secs, next_secs)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(tenant_id)
                .bind(prefix)
                .bind(mc)
                .bind(first)
                .bind(next)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn set_blacklisted(&self, tenant_id: i64, number: &str, on: bool) -> Result<()> {
        on_db!(self, |pool| {
            let q = if on {
                "INSERT INTO blacklist (tenant_id, number) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            } else {
                "DELETE FROM blacklist WHERE tenant_id = $1 AND number = $2"
            };
            sqlx::query(q)
                .bind(tenant_id)
                .bind(number)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// The tenant's blacklisted numbers, in order.
    pub async fn blacklist(&self, tenant_id: i64) -> Result<Vec<String>> {
        on_db!(self, |pool| {
            let rows =
                sqlx::query("SELECT number FROM blacklist WHERE tenant_id = $1 ORDER BY number")
                    .bind(tenant_id)
                    .fetch_all(pool)
                    .await?;
            rows.iter()
                .map(|r| r.try_get("number").map_err(Into::into))
                .collect()
        })
    }

    pub async fn is_blacklisted(&self, tenant_id: i64, number: &str) -> Result<bool> {
        on_db!(self, |pool| {
            let r = sqlx::query("SELECT 1 FROM blacklist WHERE tenant_id = $1 AND number = $2")
                .bind(tenant_id)
                .bind(number)
                .fetch_optional(pool)
                .await?;
            Ok(r.is_some())
        })
    }

    /// Outbound calls the tenant dialed since `since_ms` (that reached the
    /// carrier: refused ones do not count), to `callee` when given.
    pub async fn outbound_calls_since(
        &self,
        tenant_id: i64,
        callee: Option<&str>,
        since_ms: i64,
    ) -> Result<i64> {
        on_db!(self, |pool| {
            let r = sqlx::query(
                "SELECT COUNT(*) FROM calls WHERE tenant_id = $1 AND direction = 1 AND start_ms >= $2
                   AND (hangup_code IS NULL OR sip_code IS NOT NULL) AND ($3 IS NULL OR callee = $3)",
            )
            .bind(tenant_id)
            .bind(since_ms)
            .bind(callee)
            .fetch_one(pool)
            .await?;
            Ok(r.try_get(0)?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CallRow;

    #[tokio::test]
    async fn policy_round_trip_blacklist_and_counts() {
        for store in crate::testing::stores().await {
            eprintln!("on {}", store.backend());
            store.seed_demo().await.unwrap();
            let p = store.policy(1).await.unwrap();
            assert!(p.balance_cents > 0, "the demo tenant has credit");
            let mut q = p.clone();
            q.allowed_countries = vec!["1".into(), "852".into()];
            q.trial = true;
            store.set_policy(1, &q).await.unwrap();
            assert_eq!(store.policy(1).await.unwrap(), q);
            assert_eq!(store.policy(99).await.unwrap(), Policy::default());
            store.set_blacklisted(1, "12025550100", true).await.unwrap();
            assert!(store.is_blacklisted(1, "12025550100").await.unwrap());
            store
                .set_blacklisted(1, "12025550100", false)
                .await
                .unwrap();
            assert!(!store.is_blacklisted(1, "12025550100").await.unwrap());
            for (id, callee, code) in [("a", "1", None), ("b", "1", None), ("c", "2", Some(812))] {
                let row = CallRow {
                    id: id.into(),
                    tenant_id: 1,
                    direction: 1,
                    callee: callee.into(),
                    start_ms: 100,
                    hangup_code: code,
                    ..Default::default()
                };
                store.save_call(&row).await.unwrap();
            }
            assert_eq!(
                store.outbound_calls_since(1, None, 0).await.unwrap(),
                2,
                "a refused call does not count"
            );
            assert_eq!(
                store.outbound_calls_since(1, Some("1"), 0).await.unwrap(),
                2
            );
            assert_eq!(
                store.outbound_calls_since(1, Some("1"), 101).await.unwrap(),
                0
            );
        }
    }
}
