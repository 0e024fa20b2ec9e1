//! A tenant's own carrier trunks. The store keeps each trunk's settings as
//! the server wrote them (JSON) and never reads inside them.

use crate::Get;
use crate::{now_ms, Result, Store};

/// One stored trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTrunk {
    pub tenant_id: i64,
    pub name: String,
    /// Trunks are tried by position, then name.
    pub position: i64,
    /// The settings, as JSON.
    pub settings: String,
}

fn row(r: impl Get) -> Result<StoredTrunk> {
    Ok(StoredTrunk {
        tenant_id: r.try_get("tenant_id")?,
        name: r.try_get("name")?,
        position: r.try_get("position")?,
        settings: r.try_get("settings")?,
    })
}

impl Store {
    /// Every tenant's trunks, by tenant, then in the order they are tried.
    pub async fn all_trunks(&self) -> Result<Vec<StoredTrunk>> {
        on_db!(self, |pool| {
            sqlx::query(
                "SELECT tenant_id, name, position, settings FROM trunks
                 ORDER BY tenant_id, position, name",
            )
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(row)
            .collect()
        })
    }

    /// Adds the trunk, or replaces the tenant's trunk of that name.
    pub async fn put_trunk(&self, t: &StoredTrunk) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query(
                "INSERT INTO trunks (tenant_id, name, position, settings, updated_ms)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant_id, name) DO UPDATE
                 SET position = excluded.position, settings = excluded.settings,
                     updated_ms = excluded.updated_ms",
            )
            .bind(t.tenant_id)
            .bind(&t.name)
            .bind(t.position)
            .bind(&t.settings)
            .bind(now_ms())
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Removes the tenant's trunk of that name; false when there was none.
    pub async fn delete_trunk(&self, tenant_id: i64, name: &str) -> Result<bool> {
        on_db!(self, |pool| {
            let done = sqlx::query("DELETE FROM trunks WHERE tenant_id = $1 AND name = $2")
                .bind(tenant_id)
                .bind(name)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn trunks_are_kept_per_tenant_in_order_replaced_by_name_and_removed() {
        for s in crate::testing::stores().await {
            eprintln!("on {}", s.backend());
            s.seed_demo().await.unwrap();
            let t = |name: &str, position: i64, settings: &str| StoredTrunk {
                tenant_id: 1,
                name: name.into(),
                position,
                settings: settings.into(),
            };
            s.put_trunk(&t("b", 1, "{}")).await.unwrap();
            s.put_trunk(&t("a", 2, "{}")).await.unwrap();
            s.put_trunk(&t("b", 3, "{\"uri\":\"sip:x\"}"))
                .await
                .unwrap();
            let all = s.all_trunks().await.unwrap();
            assert_eq!(all, vec![t("a", 2, "{}"), t("b", 3, "{\"uri\":\"sip:x\"}")]);
            assert!(s.delete_trunk(1, "a").await.unwrap());
            assert!(!s.delete_trunk(1, "a").await.unwrap());
            assert!(!s.delete_trunk(2, "b").await.unwrap(), "another tenant's");
            assert_eq!(s.all_trunks().await.unwrap().len(), 1);
        }
    }
}
