//! API keys for a CRM's back end: per tenant, with scopes. The key is shown
//! once when made; the database keeps its SHA-256 only.

use crate::sessions::{new_token, token_id};
use crate::Get;
use crate::{now_ms, Result, Store};

/// The scopes a key may carry.
pub const SCOPES: [&str; 4] = [
    "records:read",
    "recordings:read",
    "webhooks:write",
    "users:write",
];

/// Every key starts with this, so that it is recognised in a leak scan.
pub const KEY_PREFIX: &str = "slk_";

/// A key as an admin sees it (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub tenant_id: i64,
    pub name: String,
    /// The key's first characters.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
    pub last_used_ms: Option<i64>,
}

impl ApiKey {
    pub fn allows(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

fn key_of(r: &impl Get) -> Result<ApiKey> {
    let scopes: String = r.try_get("scopes")?;
    Ok(ApiKey {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        scopes: scopes.split_whitespace().map(str::to_string).collect(),
        created_ms: r.try_get("created_ms")?,
        revoked_ms: r.try_get("revoked_ms")?,
        last_used_ms: r.try_get("last_used_ms")?,
    })
}

/// A used key's `last_used_ms` is written at most this often.
const LAST_USED_EVERY_MS: i64 = 60_000;

impl Store {
    /// Makes a key; returns it (the only time it is seen) and its record.
    /// `scopes` must be among [`SCOPES`] (the caller checks).
    pub async fn create_api_key(
        &self,
        tenant_id: i64,
        name: &str,
        scopes: &[String],
    ) -> Result<(String, ApiKey)> {
        on_db!(self, |pool| {
            let (token, _) = new_token();
            let key = format!("{KEY_PREFIX}{token}");
            let prefix: String = key.chars().take(KEY_PREFIX.len() + 6).collect();
            let now = now_ms();
            let id: i64 = sqlx::query(
                "INSERT INTO api_keys (tenant_id, name, key_digest, prefix, scopes, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(tenant_id)
            .bind(name)
            .bind(token_id(&key))
            .bind(&prefix)
            .bind(scopes.join(" "))
            .bind(now)
            .fetch_one(pool)
            .await?
            .try_get("id")?;
            let rec = ApiKey {
                id,
                tenant_id,
                name: name.to_string(),
                prefix,
                scopes: scopes.to_vec(),
                created_ms: now,
                revoked_ms: None,
                last_used_ms: None,
            };
            Ok((key, rec))
        })
    }

    /// The tenant's keys, revoked ones included, newest first.
    pub async fn api_keys(&self, tenant_id: i64) -> Result<Vec<ApiKey>> {
        on_db!(self, |pool| {
            sqlx::query("SELECT * FROM api_keys WHERE tenant_id = $1 ORDER BY id DESC")
                .bind(tenant_id)
                .fetch_all(pool)
                .await?
                .iter()
                .map(key_of)
                .collect()
        })
    }

    /// Revokes one of the tenant's keys; false when it has no such key
    /// (or it was revoked already).
    pub async fn revoke_api_key(&self, tenant_id: i64, id: i64) -> Result<bool> {
        on_db!(self, |pool| {
            let done = sqlx::query(
                "UPDATE api_keys SET revoked_ms = $1
                 WHERE id = $2 AND tenant_id = $3 AND revoked_ms IS NULL",
            )
            .bind(now_ms())
            .bind(id)
            .bind(tenant_id)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// The live key `key` is, if any; notes its use.
    pub async fn check_api_key(&self, key: &str) -> Result<Option<ApiKey>> {
        on_db!(self, |pool| {
            if !key.starts_with(KEY_PREFIX) || key.len() > 128 {
                return Ok(None);
            }
            let Some(r) =
                sqlx::query("SELECT * FROM api_keys WHERE key_digest = $1 AND revoked_ms IS NULL")
                    .bind(token_id(key))
                    .fetch_optional(pool)
                    .await?
            else {
                return Ok(None);
            };
            let k = key_of(&r)?;
            let now = now_ms();
            if k.last_used_ms.is_none_or(|t| now - t >= LAST_USED_EVERY_MS) {
                sqlx::query("UPDATE api_keys SET last_used_ms = $1 WHERE id = $2")
                    .bind(now)
                    .bind(k.id)
                    .execute(pool)
                    .await?;
            }
            Ok(Some(k))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_shown_once_kept_hashed_checked_and_revoked() {
        for s in crate::testing::stores().await {
            eprintln!("on {}", s.backend());
            s.seed_demo().await.unwrap();
            let scopes = vec!["records:read".to_string()];
            let (key, rec) = s.create_api_key(1, "crm", &scopes).await.unwrap();
            assert!(key.starts_with(KEY_PREFIX) && key.len() > 40);
            let stored: String = s.first("SELECT key_digest FROM api_keys").await;
            assert!(!stored.contains(&key[KEY_PREFIX.len()..]), "only a digest");
            let got = s.check_api_key(&key).await.unwrap().unwrap();
            assert_eq!((got.id, got.tenant_id), (rec.id, 1));
            assert!(got.allows("records:read") && !got.allows("users:write"));
            assert!(s.check_api_key("slk_nope").await.unwrap().is_none());
            assert!(s.check_api_key(&key[1..]).await.unwrap().is_none());
            assert!(
                !s.revoke_api_key(2, rec.id).await.unwrap(),
                "not tenant 2's"
            );
            assert!(s.revoke_api_key(1, rec.id).await.unwrap());
            assert!(s.check_api_key(&key).await.unwrap().is_none());
            assert!(s.api_keys(1).await.unwrap()[0].revoked_ms.is_some());
        }
    }
}
