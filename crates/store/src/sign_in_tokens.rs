//! One-time sign-in tokens: a CRM's back end, holding an API key, gets a
//! short-lived token for one of its users, and the softphone trades it for a
//! session, so no password ever crosses the host page.
//!
//! Like sessions, only the token's SHA-256 is stored. Redeeming deletes the
//! row in the same statement that reads it (`DELETE ... RETURNING`), so two
//! redemptions of one token can never both succeed.

use crate::sessions::{new_token, token_id};
use crate::Get;
use crate::{Result, Store};

impl Store {
    /// Makes a token for `user_id`, valid until `expires_ms`; returns the
    /// token (the only time it exists outside the caller). Expired tokens of
    /// anyone are purged on the way.
    pub async fn create_sign_in_token(
        &self,
        user_id: i64,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<String> {
        on_db!(self, |pool| {
            self.purge_sign_in_tokens(now_ms).await?;
            let (token, id) = new_token();
            sqlx::query("INSERT INTO sign_in_tokens (id, user_id, expires_at) VALUES ($1, $2, $3)")
                .bind(&id)
                .bind(user_id)
                .bind(expires_ms)
                .execute(pool)
                .await?;
            Ok(token)
        })
    }

    /// Uses up a token: the user it was made for, or `None` when it is
    /// unknown, used already or expired. Either way it cannot be used again.
    pub async fn redeem_sign_in_token(&self, token: &str, now_ms: i64) -> Result<Option<i64>> {
        on_db!(self, |pool| {
            if token.is_empty() || token.len() > 128 {
                return Ok(None);
            }
            let row = sqlx::query(
                "DELETE FROM sign_in_tokens WHERE id = $1 RETURNING user_id, expires_at",
            )
            .bind(token_id(token))
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            let expires: i64 = row.try_get("expires_at")?;
            if now_ms >= expires {
                return Ok(None);
            }
            Ok(Some(row.try_get("user_id")?))
        })
    }

    /// Drops every token expired at `now_ms`.
    pub async fn purge_sign_in_tokens(&self, now_ms: i64) -> Result<u64> {
        on_db!(self, |pool| {
            let done = sqlx::query("DELETE FROM sign_in_tokens WHERE expires_at <= $1")
                .bind(now_ms)
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn stores_with_user() -> Vec<(Store, i64)> {
        let mut out = Vec::new();
        for store in crate::testing::stores().await {
            eprintln!("on {}", store.backend());
            store.seed_demo().await.unwrap();
            let u = store
                .user_by_email("agent1@demo.local")
                .await
                .unwrap()
                .unwrap();
            out.push((store, u.id));
        }
        out
    }

    #[tokio::test]
    async fn a_token_is_stored_by_digest_and_redeemed_once() {
        for (store, user) in stores_with_user().await {
            eprintln!("on {}", store.backend());
            let token = store
                .create_sign_in_token(user, 1_000, 61_000)
                .await
                .unwrap();
            assert_eq!(token.len(), 43);
            let stored: String = store.first("SELECT id FROM sign_in_tokens").await;
            assert_eq!(stored, token_id(&token));
            let redeem = |t: String| {
                let store = store.clone();
                async move { store.redeem_sign_in_token(&t, 2_000).await.unwrap() }
            };
            assert_eq!(redeem(token.clone()).await, Some(user));
            assert_eq!(redeem(token).await, None, "one use");
            assert_eq!(redeem(String::new()).await, None);
            assert_eq!(redeem("x".repeat(4096)).await, None);
        }
    }

    #[tokio::test]
    async fn an_expired_token_is_refused_and_purged() {
        for (store, user) in stores_with_user().await {
            eprintln!("on {}", store.backend());
            let late = store.create_sign_in_token(user, 0, 1_000).await.unwrap();
            assert_eq!(
                store.redeem_sign_in_token(&late, 1_000).await.unwrap(),
                None
            );
            let old = store.create_sign_in_token(user, 0, 1_000).await.unwrap();
            // Making another one later purges the expired one.
            store
                .create_sign_in_token(user, 5_000, 65_000)
                .await
                .unwrap();
            let n: i64 = store.first("SELECT COUNT(*) FROM sign_in_tokens").await;
            assert_eq!(n, 1);
            assert_eq!(store.redeem_sign_in_token(&old, 500).await.unwrap(), None);
        }
    }
}
