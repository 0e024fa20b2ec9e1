//! `seatline admin ...`: administration from a script, on a data directory
//! (a running server's too: SQLite takes a second writer). Every answer is
//! one JSON object per line on standard output; a refusal is an error with
//! the reason. A new user's password is read from standard input, never
//! from the command line (where `ps` would show it).

use crate::directory::{add_group, add_user, group_json, user_json, NewGroup, NewUser};
use clap::Subcommand;
use seatline_store::Store;
use serde_json::{json, Value};
use std::path::Path;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// List the tenants.
    Tenants,
    /// Agent groups.
    Groups {
        #[command(subcommand)]
        command: GroupsCommand,
    },
    /// Users (agents and admins) and their seats.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// The tenant's DIDs and where each one's calls go.
    Dids {
        #[arg(long)]
        tenant: i64,
    },
    /// The trunks tenants added through the API (the config file's are in
    /// the config file); settings as stored, the password left out.
    Trunks {
        #[arg(long)]
        tenant: Option<i64>,
    },
}

#[derive(Subcommand)]
pub enum GroupsCommand {
    List {
        #[arg(long)]
        tenant: Option<i64>,
    },
    Add {
        #[arg(long)]
        tenant: i64,
        /// The group's number, as agents' `login` shows it (e.g. G002).
        #[arg(long)]
        group: String,
        #[arg(long)]
        name: String,
        /// After-call work, seconds.
        #[arg(long, default_value_t = 0)]
        acw_secs: i64,
    },
}

#[derive(Subcommand)]
pub enum UsersCommand {
    List {
        #[arg(long)]
        tenant: Option<i64>,
    },
    /// Add a user; the password is the first line of standard input.
    Add {
        #[arg(long)]
        tenant: i64,
        #[arg(long)]
        email: String,
        /// agent or admin.
        #[arg(long, default_value = "agent")]
        role: String,
        /// Give the user a seat with this SIP number (2 to 16 digits)...
        #[arg(long, requires = "group")]
        seat: Option<String>,
        /// ...in this group.
        #[arg(long, requires = "seat")]
        group: Option<String>,
    },
}

/// Runs one command on the data directory; the lines to print.
pub async fn run(
    data_dir: &Path,
    cmd: AdminCommand,
    password: impl FnOnce() -> String,
) -> anyhow::Result<Vec<Value>> {
    let store = Store::open_dir(data_dir).await?;
    let tenant_exists = |tenants: &[(i64, String)], id: i64| tenants.iter().any(|(t, _)| *t == id);
    let tenants = store.tenants().await?;
    let need_tenant = |id: i64| -> anyhow::Result<()> {
        anyhow::ensure!(
            tenant_exists(&tenants, id),
            "no tenant {id} (see `seatline admin tenants`)"
        );
        Ok(())
    };
    Ok(match cmd {
        AdminCommand::Tenants => tenants
            .iter()
            .map(|(id, name)| json!({"id": id, "name": name}))
            .collect(),
        AdminCommand::Groups {
            command: GroupsCommand::List { tenant },
        } => store
            .groups(tenant)
            .await?
            .into_iter()
            .map(|g| group_json(&g))
            .collect(),
        AdminCommand::Groups {
            command:
                GroupsCommand::Add {
                    tenant,
                    group,
                    name,
                    acw_secs,
                },
        } => {
            need_tenant(tenant)?;
            let g = NewGroup {
                group,
                name,
                acw_secs,
            };
            vec![add_group(&store, tenant, g).await?]
        }
        AdminCommand::Users {
            command: UsersCommand::List { tenant },
        } => store
            .users(tenant)
            .await?
            .into_iter()
            .map(|u| user_json(&u))
            .collect(),
        AdminCommand::Users {
            command:
                UsersCommand::Add {
                    tenant,
                    email,
                    role,
                    seat,
                    group,
                },
        } => {
            need_tenant(tenant)?;
            let u = NewUser {
                email,
                password: password(),
                role,
                seat,
                group,
            };
            vec![add_user(&store, tenant, u).await?]
        }
        AdminCommand::Dids { tenant } => {
            need_tenant(tenant)?;
            let (owned, pool) = store.dids(tenant).await?;
            let mut out = Vec::new();
            for number in owned {
                let route = match store.did_route(&number).await? {
                    Some(seatline_store::DidRoute::Group { group_no, skill: None, .. }) => json!({"group": group_no}),
                    Some(seatline_store::DidRoute::Group { group_no, skill: Some(k), .. }) => json!({"group": group_no, "skill": k}),
                    Some(seatline_store::DidRoute::Forward { number, .. }) => json!({"forwardTo": number}),
                    Some(seatline_store::DidRoute::Reject { code, .. }) => json!({"reject": code}),
                    None => Value::Null,
                };
                out.push(json!({"number": number, "pool": pool.contains(&number), "route": route}));
            }
            out
        }
        AdminCommand::Trunks { tenant } => store
            .all_trunks()
            .await?
            .into_iter()
            .filter(|t| tenant.is_none_or(|id| id == t.tenant_id))
            .map(|t| {
                let mut settings: Value = serde_json::from_str(&t.settings).unwrap_or(Value::Null);
                if let Some(o) = settings.as_object_mut() {
                    // A script's output may end up in a log: never the password.
                    if o.remove("password").is_some() {
                        o.insert("hasPassword".into(), true.into());
                    }
                }
                json!({"tenant": t.tenant_id, "name": t.name, "position": t.position, "settings": settings})
            })
            .collect(),
    })
}
