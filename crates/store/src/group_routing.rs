//! Each agent group's queue settings: its strategy and how many offers in
//! a row an agent may let ring out (see the switchboard's `queue.rs`).

use crate::{Result, Store};
use sqlx::Row;

/// A group's queue settings as stored: `strategy` is `longestIdle`,
/// `roundRobin` or `fewestCalls` (the table's CHECK says so too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRoutingRow {
    pub tenant_id: i64,
    pub group_no: String,
    pub strategy: String,
    pub max_missed: i64,
}

impl Store {
    /// Every group's queue settings, by tenant and group number.
    pub async fn group_routings(&self) -> Result<Vec<GroupRoutingRow>> {
        let rows = sqlx::query(
            "SELECT tenant_id, group_no, strategy, max_missed FROM agent_groups
             ORDER BY tenant_id, group_no",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(GroupRoutingRow {
                    tenant_id: r.try_get("tenant_id")?,
                    group_no: r.try_get("group_no")?,
                    strategy: r.try_get("strategy")?,
                    max_missed: r.try_get("max_missed")?,
                })
            })
            .collect()
    }

    /// Sets a group's queue settings; `false` when the tenant has no such group.
    pub async fn set_group_routing(
        &self,
        tenant_id: i64,
        group_no: &str,
        strategy: &str,
        max_missed: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE agent_groups SET strategy = $1, max_missed = $2
             WHERE tenant_id = $3 AND group_no = $4",
        )
        .bind(strategy)
        .bind(max_missed)
        .bind(tenant_id)
        .bind(group_no)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn groups_start_longest_idle_with_three_and_keep_what_is_set() {
        let store = Store::open_memory().await.unwrap();
        store.seed_demo().await.unwrap();
        let all = store.group_routings().await.unwrap();
        let g = all.iter().find(|g| g.tenant_id == 1).expect("a demo group");
        assert_eq!((g.strategy.as_str(), g.max_missed), ("longestIdle", 3));
        let group_no = g.group_no.clone();
        assert!(store
            .set_group_routing(1, &group_no, "roundRobin", 0)
            .await
            .unwrap());
        let all = store.group_routings().await.unwrap();
        let g = all
            .iter()
            .find(|g| g.tenant_id == 1 && g.group_no == group_no)
            .unwrap();
        assert_eq!((g.strategy.as_str(), g.max_missed), ("roundRobin", 0));
        assert!(!store
            .set_group_routing(1, "nosuch", "roundRobin", 1)
            .await
            .unwrap());
        assert!(!store
            .set_group_routing(999, &group_no, "roundRobin", 1)
            .await
            .unwrap());
        // The schema refuses what the API would never send.
        assert!(store
            .set_group_routing(1, &group_no, "ringAll", 1)
            .await
            .is_err());
        assert!(store
            .set_group_routing(1, &group_no, "fewestCalls", -1)
            .await
            .is_err());
    }
}
