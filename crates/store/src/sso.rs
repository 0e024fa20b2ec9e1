//! Each tenant's own OpenID Connect provider (single sign-on).

use crate::Get;
use crate::{Result, Store};

/// A tenant's provider, as stored. The caller validates it.
#[derive(Clone, PartialEq, Eq)]
pub struct TenantSso {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Lower-case email domains; empty: any.
    pub allowed_domains: Vec<String>,
}

/// Never the secret.
impl std::fmt::Debug for TenantSso {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantSso")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret_set", &self.client_secret.is_some())
            .field("allowed_domains", &self.allowed_domains)
            .finish()
    }
}

impl Store {
    /// The tenant's own provider, if it set one.
    pub async fn tenant_sso(&self, tenant_id: i64) -> Result<Option<TenantSso>> {
        on_db!(self, |pool| {
            let row = sqlx::query(
                "SELECT issuer, client_id, client_secret, allowed_domains FROM tenant_sso WHERE tenant_id = $1",
            )
            .bind(tenant_id)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let domains: String = row.try_get("allowed_domains")?;
            Ok(Some(TenantSso {
                issuer: row.try_get("issuer")?,
                client_id: row.try_get("client_id")?,
                client_secret: row.try_get("client_secret")?,
                // Written by `set_tenant_sso` only; anything else reads as none.
                allowed_domains: serde_json::from_str(&domains).unwrap_or_default(),
            }))
        })
    }

    /// Sets (replaces) the tenant's provider.
    pub async fn set_tenant_sso(&self, tenant_id: i64, sso: &TenantSso) -> Result<()> {
        on_db!(self, |pool| {
            let domains =
                serde_json::to_string(&sso.allowed_domains).unwrap_or_else(|_| "[]".into());
            sqlx::query(
                "INSERT INTO tenant_sso (tenant_id, issuer, client_id, client_secret, allowed_domains)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant_id) DO UPDATE SET issuer = excluded.issuer,
                   client_id = excluded.client_id, client_secret = excluded.client_secret,
                   allowed_domains = excluded.allowed_domains",
            )
            .bind(tenant_id)
            .bind(&sso.issuer)
            .bind(&sso.client_id)
            .bind(&sso.client_secret)
            .bind(domains)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Removes the tenant's provider (the global one applies again); false
    /// when it had none.
    pub async fn delete_tenant_sso(&self, tenant_id: i64) -> Result<bool> {
        on_db!(self, |pool| {
            let done = sqlx::query("DELETE FROM tenant_sso WHERE tenant_id = $1")
                .bind(tenant_id)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Whether a tenant with this id exists.
    pub async fn tenant_exists(&self, tenant_id: i64) -> Result<bool> {
        on_db!(self, |pool| {
            let row = sqlx::query("SELECT 1 FROM tenants WHERE id = $1")
                .bind(tenant_id)
                .fetch_optional(pool)
                .await?;
            Ok(row.is_some())
        })
    }
}
