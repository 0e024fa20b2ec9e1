//! Each tenant's list of CRM origins allowed to embed its softphones.

use crate::Get;
use crate::{Result, Store};

impl Store {
    /// The tenant's allowed origins, in the admin's order; empty when it has
    /// none (the global list applies).
    pub async fn tenant_origins(&self, tenant_id: i64) -> Result<Vec<String>> {
        on_db!(self, |pool| {
            let rows = sqlx::query(
                "SELECT origin FROM tenant_origins WHERE tenant_id = $1 ORDER BY position",
            )
            .bind(tenant_id)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| Ok(r.try_get("origin")?))
                .collect::<Result<_>>()
        })
    }

    /// Replaces the tenant's list in one transaction (empty: none of its
    /// own). The caller validates the entries and removes duplicates.
    pub async fn set_tenant_origins(&self, tenant_id: i64, origins: &[String]) -> Result<()> {
        on_db!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM tenant_origins WHERE tenant_id = $1")
                .bind(tenant_id)
                .execute(&mut *tx)
                .await?;
            for (i, o) in origins.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO tenant_origins (tenant_id, position, origin) VALUES ($1, $2, $3)",
                )
                .bind(tenant_id)
                .bind(i as i64)
                .bind(o)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
