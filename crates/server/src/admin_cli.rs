//! `seatline admin ...`: administration from a script, on a data directory
//! (a running server's too: SQLite takes a second writer), or through a
//! running server's admin API (`--server URL`, the token in the
//! `SEATLINE_TOKEN` environment variable, never on the command line): the
//! same commands, plus a group's queue and an agent's skills, which a
//! running server must hear at once. Every answer is one JSON object per
//! line on standard output; a refusal is an error with the reason. A new
//! user's password is read from standard input, never from the command
//! line (where `ps` would show it).

use crate::directory::{
    add_group, add_user, change_group, group_json, user_json, GroupChange, NewGroup, NewUser,
};
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
        /// Required with --data-dir; with --server, the token's tenant.
        #[arg(long)]
        tenant: Option<i64>,
    },
    /// The trunks tenants added through the API (the config file's are in
    /// the config file); settings as stored, the password left out.
    Trunks {
        #[arg(long)]
        tenant: Option<i64>,
    },
    /// A group's queue (with --server): shown, or changed by the flags given.
    Routing {
        #[arg(long)]
        group: String,
        /// longestIdle, roundRobin, fewestCalls, ringAll or skills.
        #[arg(long)]
        strategy: Option<String>,
        #[arg(long)]
        max_missed: Option<i64>,
        #[arg(long)]
        max_wait_secs: Option<i64>,
        /// The group a caller moves to when the wait runs out; "" for none.
        #[arg(long)]
        overflow_group: Option<String>,
        /// The number (E.164 digits) a caller is placed to when the wait
        /// runs out, instead of a group; "" for none.
        #[arg(long)]
        overflow_number: Option<String>,
        /// Seconds each offer rings an agent; 0: the server's default.
        #[arg(long)]
        ring_timeout_secs: Option<i64>,
        /// en-US, es-MX or zh-CN: waiting callers are told their place in
        /// it; "" for music only.
        #[arg(long)]
        announce_lang: Option<String>,
    },
    /// An agent's skills (with --server): shown, or replaced by `--set
    /// es:5,vip:2` ("" clears them).
    Skills {
        /// The agent's user id (`users list`).
        #[arg(long)]
        agent: i64,
        #[arg(long)]
        set: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum GroupsCommand {
    List {
        #[arg(long)]
        tenant: Option<i64>,
    },
    Add {
        /// Required with --data-dir; with --server, the token's tenant.
        #[arg(long)]
        tenant: Option<i64>,
        /// The group's number, as agents' `login` shows it (e.g. G002).
        #[arg(long)]
        group: String,
        #[arg(long)]
        name: String,
        /// After-call work, seconds.
        #[arg(long, default_value_t = 0)]
        acw_secs: i64,
    },
    /// Rename a group and set its after-call work. Through --server its
    /// agents signed in use the new time at once; on a data directory, at
    /// their next sign-in.
    Set {
        /// Required with --data-dir; with --server, the token's tenant.
        #[arg(long)]
        tenant: Option<i64>,
        #[arg(long)]
        group: String,
        #[arg(long)]
        name: String,
        /// After-call work, seconds.
        #[arg(long)]
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
        /// Required with --data-dir; with --server, the token's tenant.
        #[arg(long)]
        tenant: Option<i64>,
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

/// Runs one command on the store (PostgreSQL at `url`, else SQLite in
/// `data_dir`); the lines to print.
pub async fn run(
    url: Option<&str>,
    data_dir: &Path,
    cmd: AdminCommand,
    password: impl FnOnce() -> String,
) -> anyhow::Result<Vec<Value>> {
    let store = Store::open(url, data_dir).await?;
    let tenant_exists = |tenants: &[(i64, String)], id: i64| tenants.iter().any(|(t, _)| *t == id);
    let tenants = store.tenants().await?;
    let need_tenant = |id: Option<i64>| -> anyhow::Result<i64> {
        let id = id.ok_or_else(|| anyhow::anyhow!("--tenant is needed with --data-dir"))?;
        anyhow::ensure!(
            tenant_exists(&tenants, id),
            "no tenant {id} (see `seatline admin tenants`)"
        );
        Ok(id)
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
            let tenant = need_tenant(tenant)?;
            let g = NewGroup {
                group,
                name,
                acw_secs,
            };
            vec![add_group(&store, tenant, g).await?]
        }
        AdminCommand::Groups {
            command:
                GroupsCommand::Set {
                    tenant,
                    group,
                    name,
                    acw_secs,
                },
        } => {
            let tenant = need_tenant(tenant)?;
            let change = GroupChange { name, acw_secs };
            match change_group(&store, tenant, &group, change).await? {
                Some(v) => vec![v],
                None => anyhow::bail!("tenant {tenant} has no group {group}"),
            }
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
            let tenant = need_tenant(tenant)?;
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
            let tenant = need_tenant(tenant)?;
            let (owned, pool) = store.dids(tenant).await?;
            let mut out = Vec::new();
            for number in owned {
                let route = match store.did_route(&number).await? {
                    Some(seatline_store::DidRoute::Group { group_no, skill: None, .. }) => json!({"group": group_no}),
                    Some(seatline_store::DidRoute::Group { group_no, skill: Some(k), .. }) => json!({"group": group_no, "skill": k}),
                    Some(seatline_store::DidRoute::Forward { number, .. }) => json!({"forwardTo": number}),
                    Some(seatline_store::DidRoute::Reject { code, .. }) => json!({"reject": code}),
                    Some(seatline_store::DidRoute::Menu { menu, .. }) => json!({"menu": menu}),
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
        AdminCommand::Routing { .. } | AdminCommand::Skills { .. } => anyhow::bail!(
            "a running server must hear this at once: use --server URL (token in SEATLINE_TOKEN)"
        ),
    })
}

/// Runs one command through a running server's admin API as the holder of
/// `token` (a tenant admin's session); the lines to print.
pub async fn run_remote(
    server: &str,
    token: &str,
    cmd: AdminCommand,
    password: impl FnOnce() -> String,
) -> anyhow::Result<Vec<Value>> {
    let api = Remote::new(server, token)?;
    let no_tenant = |t: Option<i64>| {
        anyhow::ensure!(
            t.is_none(),
            "--tenant goes with --data-dir; with --server the token's tenant is used"
        );
        Ok(())
    };
    Ok(match cmd {
        AdminCommand::Tenants => anyhow::bail!("tenants: with --data-dir only"),
        AdminCommand::Groups {
            command: GroupsCommand::List { tenant },
        } => {
            no_tenant(tenant)?;
            api.list("/api/v1/admin/groups", "groups").await?
        }
        AdminCommand::Groups {
            command:
                GroupsCommand::Add {
                    tenant,
                    group,
                    name,
                    acw_secs,
                },
        } => {
            no_tenant(tenant)?;
            let body = json!({"group": group, "name": name, "acwSecs": acw_secs});
            vec![
                api.send(reqwest::Method::POST, "/api/v1/admin/groups", body)
                    .await?,
            ]
        }
        AdminCommand::Groups {
            command:
                GroupsCommand::Set {
                    tenant,
                    group,
                    name,
                    acw_secs,
                },
        } => {
            no_tenant(tenant)?;
            let body = json!({"name": name, "acwSecs": acw_secs});
            let path = format!("/api/v1/admin/groups/{group}");
            vec![api.send(reqwest::Method::PUT, &path, body).await?]
        }
        AdminCommand::Users {
            command: UsersCommand::List { tenant },
        } => {
            no_tenant(tenant)?;
            api.list("/api/v1/admin/users", "users").await?
        }
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
            no_tenant(tenant)?;
            let mut body = json!({"email": email, "password": password(), "role": role});
            if let (Some(seat), Some(group)) = (seat, group) {
                body["seat"] = seat.into();
                body["group"] = group.into();
            }
            vec![
                api.send(reqwest::Method::POST, "/api/v1/admin/users", body)
                    .await?,
            ]
        }
        AdminCommand::Dids { tenant } => {
            no_tenant(tenant)?;
            api.list("/api/v1/admin/dids", "dids").await?
        }
        AdminCommand::Trunks { tenant } => {
            no_tenant(tenant)?;
            api.list("/api/v1/admin/trunks", "trunks").await?
        }
        AdminCommand::Routing {
            group,
            strategy,
            max_missed,
            max_wait_secs,
            overflow_group,
            overflow_number,
            ring_timeout_secs,
            announce_lang,
        } => {
            let path = format!("/api/v1/admin/groups/{group}/routing");
            let mut r = api.get(&path).await?;
            let change = strategy.is_some()
                || max_missed.is_some()
                || max_wait_secs.is_some()
                || overflow_group.is_some()
                || overflow_number.is_some()
                || ring_timeout_secs.is_some()
                || announce_lang.is_some();
            if change {
                if let Some(s) = strategy {
                    r["strategy"] = s.into();
                }
                if let Some(m) = max_missed {
                    r["maxMissed"] = m.into();
                }
                if let Some(w) = max_wait_secs {
                    r["maxWaitSecs"] = w.into();
                }
                if let Some(t) = ring_timeout_secs {
                    r["ringTimeoutSecs"] = t.into();
                }
                if let Some(l) = announce_lang {
                    r["announceLang"] = if l.is_empty() { Value::Null } else { l.into() };
                }
                // Overflow goes to a group or a number: naming one clears
                // the other.
                if let Some(o) = overflow_group {
                    if !o.is_empty() {
                        r["overflowNumber"] = Value::Null;
                    }
                    r["overflowGroup"] = if o.is_empty() { Value::Null } else { o.into() };
                }
                if let Some(n) = overflow_number {
                    if !n.is_empty() {
                        r["overflowGroup"] = Value::Null;
                    }
                    r["overflowNumber"] = if n.is_empty() { Value::Null } else { n.into() };
                }
                api.send(reqwest::Method::PUT, &path, r).await?;
                r = api.get(&path).await?;
            }
            vec![json!({"group": group, "routing": r})]
        }
        AdminCommand::Skills { agent, set } => {
            let path = format!("/api/v1/admin/users/{agent}/skills");
            if let Some(set) = set {
                let mut skills = serde_json::Map::new();
                for pair in set.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let (name, level) = pair.split_once(':').ok_or_else(|| {
                        anyhow::anyhow!("skills are name:level pairs, e.g. es:5,vip:2")
                    })?;
                    let level: i64 = level
                        .trim()
                        .parse()
                        .map_err(|_| anyhow::anyhow!("{name}: a level is a number from 1 to 10"))?;
                    skills.insert(name.trim().to_string(), level.into());
                }
                api.send(reqwest::Method::PUT, &path, json!({"skills": skills}))
                    .await?;
            }
            let shown = api.get(&path).await?;
            vec![json!({"agent": agent, "skills": shown["skills"]})]
        }
    })
}

/// A running server's admin API, as one token holder.
struct Remote {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Remote {
    fn new(server: &str, token: &str) -> anyhow::Result<Self> {
        let base = server.trim_end_matches('/').to_string();
        anyhow::ensure!(
            base.starts_with("http://") || base.starts_with("https://"),
            "--server is the server's URL, e.g. http://127.0.0.1:8080"
        );
        anyhow::ensure!(
            !token.is_empty(),
            "put a tenant admin's session token in SEATLINE_TOKEN"
        );
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        Ok(Self {
            base,
            token: token.to_string(),
            http,
        })
    }

    /// The answer's JSON, or the server's refusal as an error.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if method != reqwest::Method::GET {
            req = req.json(&body);
        }
        let r = req.send().await?;
        let status = r.status();
        let text = r.text().await?;
        let json: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        if !status.is_success() {
            let error = json["error"].as_str().unwrap_or("refused");
            let message = json["message"].as_str().unwrap_or("");
            anyhow::bail!("{} {error}: {message}", status.as_u16());
        }
        Ok(json)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(reqwest::Method::GET, path, Value::Null).await
    }

    /// One line per item of the list `key` of the answer.
    async fn list(&self, path: &str, key: &str) -> anyhow::Result<Vec<Value>> {
        let v = self.get(path).await?;
        Ok(v[key].as_array().cloned().unwrap_or_default())
    }
}
