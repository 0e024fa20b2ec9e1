//! Each agent group's queue settings: its strategy, how many offers in a
//! row an agent may let ring out, how long a caller may wait and where it
//! goes after (see the switchboard's `queue.rs`).

use crate::Get;
use crate::{Result, Store};

/// A group's queue settings as stored: `strategy` is `longestIdle`,
/// `roundRobin`, `fewestCalls` or `ringAll` (the table's CHECK says so too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRoutingRow {
    pub tenant_id: i64,
    pub group_no: String,
    pub strategy: String,
    pub max_missed: i64,
    /// 0: no queue.
    pub max_wait_secs: i64,
    /// The tenant's group a caller moves to when the wait runs out.
    pub overflow_group: Option<String>,
    /// The number (E.164 digits) a caller is placed to when the wait runs
    /// out (never with `overflow_group`).
    pub overflow_number: Option<String>,
    /// How long an offer rings an agent; 0: the server's default.
    pub ring_timeout_secs: i64,
    /// The language waiting callers are told their place in; none: music only.
    pub announce_lang: Option<String>,
}

const COLUMNS: &str =
    "tenant_id, group_no, strategy, max_missed, max_wait_secs, overflow_group, ring_timeout_secs,
     announce_lang, overflow_number";

fn row_of(r: &impl Get) -> Result<GroupRoutingRow> {
    Ok(GroupRoutingRow {
        tenant_id: r.try_get("tenant_id")?,
        group_no: r.try_get("group_no")?,
        strategy: r.try_get("strategy")?,
        max_missed: r.try_get("max_missed")?,
        max_wait_secs: r.try_get("max_wait_secs")?,
        overflow_group: r.try_get("overflow_group")?,
        overflow_number: r.try_get("overflow_number")?,
        ring_timeout_secs: r.try_get("ring_timeout_secs")?,
        announce_lang: r.try_get("announce_lang")?,
    })
}

impl Store {
    /// Every group's queue settings, by tenant and group number.
    pub async fn group_routings(&self) -> Result<Vec<GroupRoutingRow>> {
        on_db!(self, |pool| {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM agent_groups ORDER BY tenant_id, group_no"
            ))
            .fetch_all(pool)
            .await?;
            rows.iter().map(row_of).collect()
        })
    }

    /// One group's queue settings; `None` when the tenant has no such group.
    pub async fn group_routing(
        &self,
        tenant_id: i64,
        group_no: &str,
    ) -> Result<Option<GroupRoutingRow>> {
        on_db!(self, |pool| {
            let row = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM agent_groups WHERE tenant_id = $1 AND group_no = $2"
            ))
            .bind(tenant_id)
            .bind(group_no)
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(row_of).transpose()
        })
    }

    /// Sets a group's queue settings (the row's tenant and group say
    /// which); `false` when the tenant has no such group.
    pub async fn set_group_routing(&self, r: &GroupRoutingRow) -> Result<bool> {
        on_db!(self, |pool| {
            let done = sqlx::query(
                "UPDATE agent_groups SET strategy = $1, max_missed = $2, max_wait_secs = $3,
                     overflow_group = $4, ring_timeout_secs = $7, announce_lang = $8,
                     overflow_number = $9
                 WHERE tenant_id = $5 AND group_no = $6",
            )
            .bind(&r.strategy)
            .bind(r.max_missed)
            .bind(r.max_wait_secs)
            .bind(&r.overflow_group)
            .bind(r.tenant_id)
            .bind(&r.group_no)
            .bind(r.ring_timeout_secs)
            .bind(&r.announce_lang)
            .bind(&r.overflow_number)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing(tenant_id: i64, group_no: &str, strategy: &str, max_missed: i64) -> GroupRoutingRow {
        GroupRoutingRow {
            tenant_id,
            group_no: group_no.into(),
            strategy: strategy.into(),
            max_missed,
            max_wait_secs: 0,
            overflow_group: None,
            overflow_number: None,
            ring_timeout_secs: 0,
            announce_lang: None,
        }
    }

    #[tokio::test]
    async fn groups_start_longest_idle_with_three_and_keep_what_is_set() {
        for store in crate::testing::stores().await {
            eprintln!("on {}", store.backend());
            store.seed_demo().await.unwrap();
            let all = store.group_routings().await.unwrap();
            let g = all.iter().find(|g| g.tenant_id == 1).expect("a demo group");
            assert_eq!((g.strategy.as_str(), g.max_missed), ("longestIdle", 3));
            assert_eq!((g.max_wait_secs, g.overflow_group.as_deref()), (0, None));
            let group_no = g.group_no.clone();
            let mut set = routing(1, &group_no, "roundRobin", 0);
            set.max_wait_secs = 90;
            set.overflow_group = Some("G9".into());
            set.ring_timeout_secs = 12;
            set.announce_lang = Some("es-MX".into());
            assert!(store.set_group_routing(&set).await.unwrap());
            assert_eq!(store.group_routing(1, &group_no).await.unwrap(), Some(set));
            assert_eq!(store.group_routing(1, "nosuch").await.unwrap(), None);
            assert!(!store
                .set_group_routing(&routing(1, "nosuch", "roundRobin", 1))
                .await
                .unwrap());
            assert!(!store
                .set_group_routing(&routing(999, &group_no, "roundRobin", 1))
                .await
                .unwrap());
            let ring_all = routing(1, &group_no, "ringAll", 2);
            assert!(store.set_group_routing(&ring_all).await.unwrap());
            assert_eq!(
                store.group_routing(1, &group_no).await.unwrap(),
                Some(ring_all)
            );
            // The schema refuses what the API would never send.
            assert!(store
                .set_group_routing(&routing(1, &group_no, "everyone", 1))
                .await
                .is_err());
            assert!(store
                .set_group_routing(&routing(1, &group_no, "fewestCalls", -1))
                .await
                .is_err());
            let mut long = routing(1, &group_no, "fewestCalls", 1);
            long.max_wait_secs = 3_601;
            assert!(store.set_group_routing(&long).await.is_err());
            // A number to overflow to: digits only, and never with a group.
            let mut to_number = routing(1, &group_no, "longestIdle", 3);
            to_number.max_wait_secs = 60;
            to_number.overflow_number = Some("14155550100".into());
            assert!(store.set_group_routing(&to_number).await.unwrap());
            assert_eq!(
                store.group_routing(1, &group_no).await.unwrap(),
                Some(to_number.clone())
            );
            let mut both = to_number.clone();
            both.overflow_group = Some("G9".into());
            assert!(store.set_group_routing(&both).await.is_err());
            let mut letters = to_number;
            letters.overflow_number = Some("+1415".into());
            assert!(store.set_group_routing(&letters).await.is_err());
        }
    }
}
