//! `seatline admin ...`: administration from a script, on a data directory
//! (a running server's too: SQLite takes a second writer). Every answer is
//! one JSON object per line on standard output; a refusal is an error with
//! the reason. A new user's password is read from standard input, never
//! from the command line (where `ps` would show it).

use clap::Subcommand;
use seatline_store::{hash_password, Store};
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
            .map(|g| json!({"id": g.id, "tenant": g.tenant_id, "group": g.group_no, "name": g.name, "acwSecs": g.acw_seconds}))
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
            anyhow::ensure!(
                !group.is_empty() && group.len() <= 32 && group.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "a group number is 1 to 32 letters, digits, - or _"
            );
            let name = name.trim();
            anyhow::ensure!(!name.is_empty() && name.len() <= 100, "a group name is 1 to 100 characters");
            anyhow::ensure!((0..=3600).contains(&acw_secs), "--acw-secs is 0 to 3600");
            anyhow::ensure!(store.group_id(tenant, &group).await?.is_none(), "tenant {tenant} has a group {group} already");
            let id = store.create_group(tenant, &group, name, acw_secs).await?;
            vec![json!({"id": id, "tenant": tenant, "group": group, "name": name, "acwSecs": acw_secs})]
        }
        AdminCommand::Users {
            command: UsersCommand::List { tenant },
        } => store
            .users(tenant)
            .await?
            .into_iter()
            .map(|u| json!({"id": u.id, "tenant": u.tenant_id, "email": u.email, "role": u.role, "enabled": u.enabled, "seat": u.sip_num, "group": u.group_no}))
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
            let email = email.trim().to_string();
            anyhow::ensure!(
                email.len() <= 254 && email.split_once('@').is_some_and(|(a, b)| !a.is_empty() && b.contains('.')),
                "--email is an email address"
            );
            anyhow::ensure!(role == "agent" || role == "admin", "--role is agent or admin");
            let group_id = match (&seat, &group) {
                (Some(sip), Some(g)) => {
                    anyhow::ensure!(
                        (2..=16).contains(&sip.len()) && sip.bytes().all(|b| b.is_ascii_digit()),
                        "--seat is a SIP number of 2 to 16 digits"
                    );
                    // Checked before the user is made: a user is not left without the seat asked for.
                    let taken = store.users(Some(tenant)).await?;
                    anyhow::ensure!(
                        !taken.iter().any(|u| u.sip_num.as_deref() == Some(sip.as_str())),
                        "tenant {tenant} has a seat {sip} already"
                    );
                    Some(
                        store
                            .group_id(tenant, g)
                            .await?
                            .ok_or_else(|| anyhow::anyhow!("tenant {tenant} has no group {g}"))?,
                    )
                }
                _ => None,
            };
            let password = password();
            anyhow::ensure!(
                (8..=256).contains(&password.chars().count()),
                "the password (first line of standard input) is 8 to 256 characters"
            );
            let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await??;
            let id = store.create_user(tenant, &email, &hash, &role).await?;
            if let (Some(sip), Some(group_id)) = (&seat, group_id) {
                store.create_seat(tenant, id, sip, group_id).await?;
            }
            vec![json!({"id": id, "tenant": tenant, "email": email, "role": role, "seat": seat, "group": group})]
        }
        AdminCommand::Dids { tenant } => {
            need_tenant(tenant)?;
            let (owned, pool) = store.dids(tenant).await?;
            let mut out = Vec::new();
            for number in owned {
                let route = match store.did_route(&number).await? {
                    Some(seatline_store::DidRoute::Group { group_no, .. }) => json!({"group": group_no}),
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
