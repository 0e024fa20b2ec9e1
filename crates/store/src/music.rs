//! Each tenant's own waiting music: the samples the caller hears (8 kHz
//! mono, 16-bit), replacing the built-in tune while set.

use crate::Get;
use crate::{Result, Store};

fn to_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

fn from_bytes(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

impl Store {
    /// Sets (or replaces) the tenant's music; the caller bounded its length.
    pub async fn set_tenant_music(
        &self,
        tenant_id: i64,
        samples: &[i16],
        now_ms: i64,
    ) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query(
                "INSERT INTO tenant_music (tenant_id, samples, updated_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id) DO UPDATE SET samples = excluded.samples, updated_ms = excluded.updated_ms",
            )
            .bind(tenant_id)
            .bind(to_bytes(samples))
            .bind(now_ms)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Back to the built-in tune; false when the tenant had no music.
    pub async fn delete_tenant_music(&self, tenant_id: i64) -> Result<bool> {
        on_db!(self, |pool| {
            let done = sqlx::query("DELETE FROM tenant_music WHERE tenant_id = $1")
                .bind(tenant_id)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Every tenant's music: (tenant, samples).
    pub async fn tenant_musics(&self) -> Result<Vec<(i64, Vec<i16>)>> {
        on_db!(self, |pool| {
            let rows =
                sqlx::query("SELECT tenant_id, samples FROM tenant_music ORDER BY tenant_id")
                    .fetch_all(pool)
                    .await?;
            rows.iter()
                .map(|r| {
                    let bytes: Vec<u8> = r.try_get("samples")?;
                    Ok((r.try_get("tenant_id")?, from_bytes(&bytes)))
                })
                .collect()
        })
    }
}

/// Each DID's menu prompt (IVR): samples as for the music.
impl Store {
    /// Sets (or replaces) the prompt of the tenant's DID; false when the
    /// tenant owns no such DID. The caller bounded its length.
    pub async fn set_did_prompt(
        &self,
        tenant_id: i64,
        number: &str,
        samples: &[i16],
        now_ms: i64,
    ) -> Result<bool> {
        on_db!(self, |pool| {
            let done = sqlx::query(
                "INSERT INTO did_prompts (tenant_id, number, samples, updated_ms)
                 SELECT $1, $2, $3, $4 WHERE EXISTS
                   (SELECT 1 FROM dids WHERE tenant_id = $1 AND number = $2)
                 ON CONFLICT (tenant_id, number) DO UPDATE
                   SET samples = excluded.samples, updated_ms = excluded.updated_ms",
            )
            .bind(tenant_id)
            .bind(number)
            .bind(to_bytes(samples))
            .bind(now_ms)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Removes the DID's prompt; false when it had none.
    pub async fn delete_did_prompt(&self, tenant_id: i64, number: &str) -> Result<bool> {
        on_db!(self, |pool| {
            let done = sqlx::query("DELETE FROM did_prompts WHERE tenant_id = $1 AND number = $2")
                .bind(tenant_id)
                .bind(number)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Every DID's prompt: (tenant, number, samples).
    pub async fn did_prompts(&self) -> Result<Vec<(i64, String, Vec<i16>)>> {
        on_db!(self, |pool| {
            let rows = sqlx::query(
                "SELECT tenant_id, number, samples FROM did_prompts ORDER BY tenant_id, number",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let bytes: Vec<u8> = r.try_get("samples")?;
                    Ok((
                        r.try_get("tenant_id")?,
                        r.try_get("number")?,
                        from_bytes(&bytes),
                    ))
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_tenant_music_is_kept_replaced_and_removed() {
        for store in crate::testing::stores().await {
            eprintln!("on {}", store.backend());
            store.seed_demo().await.unwrap();
            assert!(store.tenant_musics().await.unwrap().is_empty());
            store
                .set_tenant_music(1, &[1, -2, i16::MAX, i16::MIN], 5)
                .await
                .unwrap();
            assert_eq!(
                store.tenant_musics().await.unwrap(),
                vec![(1, vec![1, -2, i16::MAX, i16::MIN])]
            );
            store.set_tenant_music(1, &[7; 3], 6).await.unwrap();
            assert_eq!(store.tenant_musics().await.unwrap(), vec![(1, vec![7; 3])]);
            // The schema refuses nothing at all, or a tenant that does not exist.
            assert!(store.set_tenant_music(1, &[], 7).await.is_err());
            assert!(store.set_tenant_music(999, &[1], 7).await.is_err());
            assert!(store.delete_tenant_music(1).await.unwrap());
            assert!(!store.delete_tenant_music(1).await.unwrap());
            assert!(store.tenant_musics().await.unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn a_dids_prompt_is_kept_for_its_own_tenant_only() {
        for store in crate::testing::stores().await {
            eprintln!("on {}", store.backend());
            store.seed_demo().await.unwrap();
            let (owned, _) = store.dids(1).await.unwrap();
            let did = owned[0].clone();
            assert!(store.set_did_prompt(1, &did, &[1, 2, 3], 5).await.unwrap());
            assert!(store.set_did_prompt(1, &did, &[4, 5], 6).await.unwrap());
            // Not a DID of tenant 2, nor a DID at all.
            assert!(!store.set_did_prompt(2, &did, &[9], 7).await.unwrap());
            assert!(!store.set_did_prompt(1, "999", &[9], 7).await.unwrap());
            assert_eq!(
                store.did_prompts().await.unwrap(),
                vec![(1, did.clone(), vec![4, 5])]
            );
            assert!(!store.delete_did_prompt(2, &did).await.unwrap());
            assert!(store.delete_did_prompt(1, &did).await.unwrap());
            assert!(store.did_prompts().await.unwrap().is_empty());
        }
    }
}
