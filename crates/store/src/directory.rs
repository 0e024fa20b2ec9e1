//! Listing a data directory's tenants, groups and users (for the admin
//! command line), and finding a group by its number.

use crate::Get;
use crate::{Result, Store};

/// A user as the admin command line lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: i64,
    pub tenant_id: i64,
    pub email: String,
    pub role: String,
    pub enabled: bool,
    /// The seat's SIP number and group, when the user has a seat.
    pub sip_num: Option<String>,
    pub group_no: Option<String>,
}

/// An agent group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    pub id: i64,
    pub tenant_id: i64,
    pub group_no: String,
    pub name: String,
    pub acw_seconds: i64,
}

impl Store {
    /// Every tenant: (id, name).
    pub async fn tenants(&self) -> Result<Vec<(i64, String)>> {
        on_db!(self, |pool| {
            let rows = sqlx::query("SELECT id, name FROM tenants ORDER BY id")
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("id")?, r.try_get("name")?)))
                .collect()
        })
    }

    /// The users of one tenant, or of all (`None`), by id.
    pub async fn users(&self, tenant_id: Option<i64>) -> Result<Vec<UserRow>> {
        on_db!(self, |pool| {
            let rows = sqlx::query(
                "SELECT u.id, u.tenant_id, u.email, u.role, u.enabled, s.sip_num, g.group_no
                 FROM users u
                 LEFT JOIN seats s ON s.user_id = u.id
                 LEFT JOIN agent_groups g ON g.id = s.group_id
                 WHERE $1 IS NULL OR u.tenant_id = $1
                 ORDER BY u.id",
            )
            .bind(tenant_id)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(UserRow {
                        id: r.try_get("id")?,
                        tenant_id: r.try_get("tenant_id")?,
                        email: r.try_get("email")?,
                        role: r.try_get("role")?,
                        enabled: r.try_get::<i64, _>("enabled")? != 0,
                        sip_num: r.try_get("sip_num")?,
                        group_no: r.try_get("group_no")?,
                    })
                })
                .collect()
        })
    }

    /// The groups of one tenant, or of all (`None`), by id.
    pub async fn groups(&self, tenant_id: Option<i64>) -> Result<Vec<GroupRow>> {
        on_db!(self, |pool| {
            let rows = sqlx::query(
                "SELECT id, tenant_id, group_no, name, acw_seconds FROM agent_groups
                 WHERE $1 IS NULL OR tenant_id = $1 ORDER BY id",
            )
            .bind(tenant_id)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(GroupRow {
                        id: r.try_get("id")?,
                        tenant_id: r.try_get("tenant_id")?,
                        group_no: r.try_get("group_no")?,
                        name: r.try_get("name")?,
                        acw_seconds: r.try_get("acw_seconds")?,
                    })
                })
                .collect()
        })
    }

    /// The id of the tenant's group `group_no`.
    pub async fn group_id(&self, tenant_id: i64, group_no: &str) -> Result<Option<i64>> {
        on_db!(self, |pool| {
            let row =
                sqlx::query("SELECT id FROM agent_groups WHERE tenant_id = $1 AND group_no = $2")
                    .bind(tenant_id)
                    .bind(group_no)
                    .fetch_optional(pool)
                    .await?;
            row.map(|r| Ok(r.try_get("id")?)).transpose()
        })
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_demo_directory_lists_its_tenants_groups_and_users() {
        for store in crate::testing::stores().await {
            eprintln!("on {}", store.backend());
            store.seed_demo().await.unwrap();
            let tenants = store.tenants().await.unwrap();
            assert_eq!(tenants[0], (1, "Demo".to_string()));
            let groups = store.groups(Some(1)).await.unwrap();
            assert_eq!(groups.len(), 1);
            assert_eq!(store.group_id(1, "G001").await.unwrap(), Some(groups[0].id));
            assert_eq!(store.group_id(1, "nope").await.unwrap(), None);
            let users = store.users(Some(1)).await.unwrap();
            let agent = users
                .iter()
                .find(|u| u.email == "agent1@demo.local")
                .unwrap();
            assert_eq!(
                (
                    agent.sip_num.as_deref(),
                    agent.group_no.as_deref(),
                    agent.role.as_str()
                ),
                (Some("8001"), Some("G001"), "agent")
            );
            let noseat = users
                .iter()
                .find(|u| u.email == "noseat@demo.local")
                .unwrap();
            assert_eq!(noseat.sip_num, None);
            assert!(
                store.users(None).await.unwrap().len() > users.len(),
                "other tenants' too"
            );
        }
    }
}
