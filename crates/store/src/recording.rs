//! Each tenant's recording setting, and which recordings retention removes.

use crate::Get;
use crate::{Result, Store};

/// Days a recording is kept when the tenant never said.
pub const DEFAULT_RETENTION_DAYS: i64 = 90;

/// A tenant's recording setting: `off`, `all` or `onDemand`, the days
/// recordings are kept, and groups with their own mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSetting {
    pub mode: String,
    pub retention_days: i64,
    pub groups: Vec<(String, String)>,
}

impl Default for RecordingSetting {
    fn default() -> Self {
        Self {
            mode: "off".into(),
            retention_days: DEFAULT_RETENTION_DAYS,
            groups: Vec::new(),
        }
    }
}

impl Store {
    /// Every tenant's setting that differs from the default, by tenant.
    pub async fn recording_settings(&self) -> Result<Vec<(i64, RecordingSetting)>> {
        on_db!(self, |pool| {
            let mut out: std::collections::BTreeMap<i64, RecordingSetting> = Default::default();
            for r in sqlx::query("SELECT tenant_id, mode, retention_days FROM recording_policy")
                .fetch_all(pool)
                .await?
            {
                let e = out.entry(r.try_get("tenant_id")?).or_default();
                e.mode = r.try_get("mode")?;
                e.retention_days = r.try_get("retention_days")?;
            }
            for r in sqlx::query(
                "SELECT tenant_id, group_no, mode FROM recording_groups ORDER BY tenant_id, group_no",
            )
            .fetch_all(pool)
            .await?
            {
                out.entry(r.try_get("tenant_id")?)
                    .or_default()
                    .groups
                    .push((r.try_get("group_no")?, r.try_get("mode")?));
            }
            Ok(out.into_iter().collect())
        })
    }

    pub async fn recording_setting(&self, tenant_id: i64) -> Result<RecordingSetting> {
        Ok(self
            .recording_settings()
            .await?
            .into_iter()
            .find(|(t, _)| *t == tenant_id)
            .map(|(_, s)| s)
            .unwrap_or_default())
    }

    /// Replaces the tenant's setting, groups included, in one transaction.
    pub async fn set_recording_setting(&self, tenant_id: i64, s: &RecordingSetting) -> Result<()> {
        on_db!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO recording_policy (tenant_id, mode, retention_days) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id) DO UPDATE SET mode = excluded.mode,
                    retention_days = excluded.retention_days",
            )
            .bind(tenant_id)
            .bind(&s.mode)
            .bind(s.retention_days)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM recording_groups WHERE tenant_id = $1")
                .bind(tenant_id)
                .execute(&mut *tx)
                .await?;
            for (group_no, mode) in &s.groups {
                sqlx::query(
                    "INSERT INTO recording_groups (tenant_id, group_no, mode) VALUES ($1, $2, $3)",
                )
                .bind(tenant_id)
                .bind(group_no)
                .bind(mode)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The tenant's group numbers.
    pub async fn group_numbers(&self, tenant_id: i64) -> Result<Vec<String>> {
        on_db!(self, |pool| {
            let rows = sqlx::query("SELECT group_no FROM agent_groups WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_all(pool)
                .await?;
            rows.iter().map(|r| Ok(r.try_get("group_no")?)).collect()
        })
    }

    /// Recorded calls that ended longer ago than their tenant keeps
    /// recordings, at most `limit`: (tenant, call id).
    pub async fn expired_recordings(&self, now_ms: i64, limit: i64) -> Result<Vec<(i64, String)>> {
        on_db!(self, |pool| {
            let rows = sqlx::query(
                "SELECT c.tenant_id, c.id FROM calls c
                 LEFT JOIN recording_policy p ON p.tenant_id = c.tenant_id
                 WHERE c.recorded = 1 AND c.hangup_ms IS NOT NULL
                   AND c.hangup_ms < $1 - COALESCE(p.retention_days, $2) * 86400000
                 ORDER BY c.hangup_ms LIMIT $3",
            )
            .bind(now_ms)
            .bind(DEFAULT_RETENTION_DAYS)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("tenant_id")?, r.try_get("id")?)))
                .collect()
        })
    }

    /// The call's recording is gone (retention removed it).
    pub async fn forget_recording(&self, call_id: &str) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query("UPDATE calls SET recorded = 0 WHERE id = $1")
                .bind(call_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::{CallRow, Write};

    #[tokio::test]
    async fn settings_round_trip_and_retention_finds_what_is_too_old() {
        for store in crate::testing::stores().await {
            eprintln!("on {}", store.backend());
            store.seed_demo().await.unwrap();
            // The demo tenant records on demand; the others have no setting: off.
            assert_eq!(store.recording_setting(1).await.unwrap().mode, "onDemand");
            assert_eq!(
                store.recording_setting(2).await.unwrap(),
                RecordingSetting::default()
            );
            let s = RecordingSetting {
                mode: "onDemand".into(),
                retention_days: 2,
                groups: vec![("1001".into(), "all".into())],
            };
            store.set_recording_setting(1, &s).await.unwrap();
            assert_eq!(store.recording_setting(1).await.unwrap(), s);
            // Replaced whole: the group's own mode goes.
            let s2 = RecordingSetting {
                groups: vec![],
                ..s.clone()
            };
            store.set_recording_setting(1, &s2).await.unwrap();
            assert_eq!(store.recording_setting(1).await.unwrap(), s2);
            assert!(store
                .set_recording_setting(
                    1,
                    &RecordingSetting {
                        mode: "bad".into(),
                        ..s2.clone()
                    }
                )
                .await
                .is_err());

            const DAY: i64 = 86_400_000;
            let now = 100 * DAY;
            let call = |id: &str, ended: i64, recorded: bool| {
                Write::Call(Box::new(CallRow {
                    id: id.into(),
                    tenant_id: 1,
                    direction: 1,
                    start_ms: ended - 1000,
                    hangup_ms: Some(ended),
                    recorded,
                    ..Default::default()
                }))
            };
            store
                .save_all(&[
                    call("old", now - 3 * DAY, true),
                    call("new", now - DAY, true),
                    call("old-unrecorded", now - 3 * DAY, false),
                ])
                .await
                .unwrap();
            let expired = store.expired_recordings(now, 100).await.unwrap();
            assert_eq!(expired, vec![(1, "old".to_string())]);
            store.forget_recording("old").await.unwrap();
            assert!(store.expired_recordings(now, 100).await.unwrap().is_empty());
            assert!(!store.call("old").await.unwrap().unwrap().recorded);
            assert!(store.call("new").await.unwrap().unwrap().recorded);
        }
    }
}
