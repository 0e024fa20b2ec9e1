//! Softphone sessions: an opaque bearer token per signed-in browser, with an
//! idle expiry renewed by activity.
//!
//! The token lives in the softphone's own storage and travels on its
//! WebSocket; it is never a cookie (third-party cookies are blocked or
//! partitioned inside a CRM's iframe). The database keeps only its SHA-256.

use crate::Get;
use crate::{Result, Store};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new random token (256 bits, base64url) and the id it is stored under.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let id = token_id(&token);
    (token, id)
}

/// The id a token is stored under: its SHA-256 in hex.
pub fn token_id(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What a presented token is worth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCheck {
    Valid {
        session_id: String,
        user_id: i64,
    },
    /// Idle for longer than the expiry allows.
    Expired,
    /// Signed out, or never issued.
    Invalid,
}

impl Store {
    /// Opens a session for a user who just proved their password.
    pub async fn create_session(&self, user_id: i64, now_ms: i64) -> Result<(String, String)> {
        on_db!(self, |pool| {
            let (token, id) = new_token();
            sqlx::query(
                "INSERT INTO sessions (id, user_id, created_at, last_seen) VALUES ($1, $2, $3, $3)",
            )
            .bind(&id)
            .bind(user_id)
            .bind(now_ms)
            .execute(pool)
            .await?;
            Ok((token, id))
        })
    }

    /// Checks a token and, when valid, renews its idle expiry.
    pub async fn check_session(
        &self,
        token: &str,
        idle_ms: i64,
        now_ms: i64,
    ) -> Result<SessionCheck> {
        on_db!(self, |pool| {
            let id = token_id(token);
            let row = sqlx::query(
                "SELECT s.user_id, s.last_seen, s.revoked, u.enabled FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
            )
            .bind(&id)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else {
                return Ok(SessionCheck::Invalid);
            };
            let revoked: i64 = row.try_get("revoked")?;
            let enabled: i64 = row.try_get("enabled")?;
            if revoked != 0 || enabled == 0 {
                return Ok(SessionCheck::Invalid);
            }
            let last_seen: i64 = row.try_get("last_seen")?;
            if now_ms - last_seen > idle_ms {
                self.revoke_session(&id).await?;
                return Ok(SessionCheck::Expired);
            }
            self.touch_session(&id, now_ms).await?;
            Ok(SessionCheck::Valid {
                session_id: id,
                user_id: row.try_get("user_id")?,
            })
        })
    }

    /// Records activity on a session (renews its idle expiry).
    pub async fn touch_session(&self, session_id: &str, now_ms: i64) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query("UPDATE sessions SET last_seen = $1 WHERE id = $2 AND last_seen < $1")
                .bind(now_ms)
                .bind(session_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    pub async fn revoke_session(&self, session_id: &str) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query("UPDATE sessions SET revoked = 1 WHERE id = $1")
                .bind(session_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Whether the session is still there and not revoked (no renewal).
    pub async fn session_live(&self, session_id: &str) -> Result<bool> {
        on_db!(self, |pool| {
            let row = sqlx::query("SELECT revoked FROM sessions WHERE id = $1")
                .bind(session_id)
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                Some(r) => r.try_get::<i64, _>("revoked")? == 0,
                None => false,
            })
        })
    }

    /// Ends every session of a user but `keep` (the caller's own, when a
    /// user changes their password): the rows are deleted, so their tokens
    /// are unknown from now on. Returns the ended sessions' ids.
    pub async fn end_user_sessions(&self, user_id: i64, keep: Option<&str>) -> Result<Vec<String>> {
        on_db!(self, |pool| {
            let rows =
                sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id != $2 RETURNING id")
                    .bind(user_id)
                    .bind(keep.unwrap_or(""))
                    .fetch_all(pool)
                    .await?;
            rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
        })
    }

    /// Drops sessions that ended long ago, so the table stays small.
    pub async fn purge_sessions(&self, older_than_ms: i64) -> Result<u64> {
        on_db!(self, |pool| {
            let done = sqlx::query("DELETE FROM sessions WHERE revoked = 1 OR last_seen < $1")
                .bind(older_than_ms)
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_by_digest() {
        let (t1, id1) = new_token();
        let (t2, _) = new_token();
        assert_ne!(t1, t2);
        assert_eq!(t1.len(), 43);
        assert_eq!(id1, token_id(&t1));
        assert_ne!(id1, t1);
        assert_eq!(id1.len(), 64);
    }

    async fn stores_with_user() -> Vec<(Store, i64)> {
        let mut out = Vec::new();
        for store in crate::testing::stores().await {
            eprintln!("on {}", store.backend());
            store.seed_demo().await.unwrap();
            let u = store
                .authenticate("agent1@demo.local", "demo1234")
                .await
                .unwrap()
                .unwrap();
            out.push((store, u.id));
        }
        out
    }

    #[tokio::test]
    async fn a_session_expires_when_idle_and_activity_renews_it() {
        for (store, user) in stores_with_user().await {
            eprintln!("on {}", store.backend());
            let (token, id) = store.create_session(user, 1_000).await.unwrap();
            let idle = 5_000;
            assert_eq!(
                store.check_session(&token, idle, 5_000).await.unwrap(),
                SessionCheck::Valid {
                    session_id: id.clone(),
                    user_id: user
                }
            );
            // The check at 5 000 renewed it: 9 000 is within 5 s of it.
            assert!(matches!(
                store.check_session(&token, idle, 9_000).await.unwrap(),
                SessionCheck::Valid { .. }
            ));
            assert_eq!(
                store.check_session(&token, idle, 14_001).await.unwrap(),
                SessionCheck::Expired
            );
            // Once expired it stays dead, even if presented in time again.
            assert_eq!(
                store.check_session(&token, idle, 9_500).await.unwrap(),
                SessionCheck::Invalid
            );
        }
    }

    #[tokio::test]
    async fn revoked_unknown_and_disabled_sessions_are_invalid() {
        for (store, user) in stores_with_user().await {
            eprintln!("on {}", store.backend());
            let (token, id) = store.create_session(user, 0).await.unwrap();
            let (token2, _) = store.create_session(user, 0).await.unwrap();
            store.revoke_session(&id).await.unwrap();
            assert_eq!(
                store.check_session(&token, 60_000, 1).await.unwrap(),
                SessionCheck::Invalid
            );
            assert!(matches!(
                store.check_session(&token2, 60_000, 1).await.unwrap(),
                SessionCheck::Valid { .. }
            ));
            assert_eq!(
                store.check_session("made-up", 60_000, 1).await.unwrap(),
                SessionCheck::Invalid
            );
            store.set_user_enabled(user, false).await.unwrap();
            assert_eq!(
                store.check_session(&token2, 60_000, 1).await.unwrap(),
                SessionCheck::Invalid
            );
        }
    }

    #[tokio::test]
    async fn ending_a_users_sessions_keeps_the_one_asked_and_others_users() {
        for (store, user) in stores_with_user().await {
            eprintln!("on {}", store.backend());
            let (a, _) = store.create_session(user, 0).await.unwrap();
            let (b, b_id) = store.create_session(user, 0).await.unwrap();
            let other = store
                .authenticate("agent2@demo.local", "demo1234")
                .await
                .unwrap()
                .unwrap();
            let (c, _) = store.create_session(other.id, 0).await.unwrap();
            assert!(store.session_live(&token_id(&a)).await.unwrap());
            let ended = store.end_user_sessions(user, Some(&b_id)).await.unwrap();
            assert_eq!(ended, vec![token_id(&a)]);
            assert!(!store.session_live(&token_id(&a)).await.unwrap());
            assert!(store.session_live(&b_id).await.unwrap());
            let valid = |t: String| {
                let store = store.clone();
                async move {
                    matches!(
                        store.check_session(&t, 60_000, 1).await.unwrap(),
                        SessionCheck::Valid { .. }
                    )
                }
            };
            assert!(!valid(a).await);
            assert!(valid(b.clone()).await && valid(c).await);
            assert_eq!(store.end_user_sessions(user, None).await.unwrap().len(), 1);
            assert!(!valid(b).await);
        }
    }

    #[tokio::test]
    async fn purge_keeps_live_sessions() {
        for (store, user) in stores_with_user().await {
            eprintln!("on {}", store.backend());
            let (live, _) = store.create_session(user, 10_000).await.unwrap();
            let (_, dead) = store.create_session(user, 10_000).await.unwrap();
            store.revoke_session(&dead).await.unwrap();
            assert_eq!(store.purge_sessions(5_000).await.unwrap(), 1);
            assert!(matches!(
                store.check_session(&live, 60_000, 11_000).await.unwrap(),
                SessionCheck::Valid { .. }
            ));
        }
    }
}
