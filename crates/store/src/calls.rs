//! DIDs and call records.

use crate::Get;
use crate::{Result, Store};

/// One call record row, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallRow {
    pub id: String,
    pub tenant_id: i64,
    pub seat_id: Option<i64>,
    pub direction: i64,
    pub caller: String,
    pub callee: String,
    pub order_id: String,
    pub params: String,
    pub other: String,
    pub start_ms: i64,
    pub connected_ms: Option<i64>,
    pub hangup_ms: Option<i64>,
    pub hangup_code: Option<i64>,
    pub sip_code: Option<i64>,
    /// The carrier dialog (JSON) while the call is up; `None` otherwise.
    pub dialog: Option<String>,
    /// Quality, `None` when never measured: the last sample's packet loss
    /// (percent), jitter and round trip (milliseconds)...
    pub loss_pct: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub rtt_ms: Option<f64>,
    /// ...the mean MOS of the call's samples, and the worst one.
    pub mos: Option<f64>,
    pub mos_min: Option<f64>,
    /// The trunk that carried it (outbound), by name.
    pub trunk: Option<String>,
    /// A forwarded inbound call: the number it went to.
    pub forwarded_to: Option<String>,
    /// Who ended it: agent, customer, carrier or system.
    pub hung_up_by: Option<String>,
    /// Answered and rated: seconds billed and their price (millicents).
    pub billed_secs: Option<i64>,
    pub cost_millicents: Option<i64>,
    /// It has a recording (until retention removes it).
    pub recorded: bool,
}

/// One write of the call path's ordered writer.
#[derive(Debug, Clone)]
pub enum Write {
    /// An agent's chosen status (agentStatus code).
    Status {
        seat_id: i64,
        code: i64,
    },
    Call(Box<CallRow>),
    /// A tenant's balance (cents).
    Balance {
        tenant_id: i64,
        cents: i64,
    },
    /// Cents added to a tenant's balance (negative: taken), whatever other
    /// nodes wrote meanwhile.
    BalanceAdd {
        tenant_id: i64,
        cents: i64,
    },
}

/// Folds the rows of one statement that update the same call into one, as
/// the upsert would apply them one after the other (PostgreSQL refuses a
/// statement that updates a row twice): what the first inserted stays,
/// the later status wins, a later figure replaces an earlier one only when
/// it has one, and a recording once made stays. `None` when every call is
/// there once (the usual case, with nothing copied).
fn fold_repeats(rows: &[&CallRow]) -> Option<Vec<CallRow>> {
    if rows.len() < 2 {
        return None;
    }
    let mut seen = std::collections::HashSet::with_capacity(rows.len());
    if rows.iter().all(|c| seen.insert(c.id.as_str())) {
        return None;
    }
    let mut out: Vec<CallRow> = Vec::with_capacity(rows.len());
    let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for l in rows {
        let Some(&k) = at.get(l.id.as_str()) else {
            at.insert(l.id.as_str(), out.len());
            out.push((*l).clone());
            continue;
        };
        let e = &mut out[k];
        e.connected_ms = l.connected_ms;
        e.hangup_ms = l.hangup_ms;
        e.hangup_code = l.hangup_code;
        e.sip_code = l.sip_code;
        e.seat_id = l.seat_id;
        e.dialog.clone_from(&l.dialog);
        fn later<T: Clone>(e: &mut Option<T>, l: &Option<T>) {
            if l.is_some() {
                e.clone_from(l);
            }
        }
        later(&mut e.loss_pct, &l.loss_pct);
        later(&mut e.jitter_ms, &l.jitter_ms);
        later(&mut e.rtt_ms, &l.rtt_ms);
        later(&mut e.mos, &l.mos);
        later(&mut e.mos_min, &l.mos_min);
        later(&mut e.trunk, &l.trunk);
        later(&mut e.forwarded_to, &l.forwarded_to);
        later(&mut e.hung_up_by, &l.hung_up_by);
        later(&mut e.billed_secs, &l.billed_secs);
        later(&mut e.cost_millicents, &l.cost_millicents);
        e.recorded |= l.recorded;
    }
    Some(out)
}

per_backend! {
pub(crate) async fn write_with<'e, E>(e: E, node: &str, w: &Write) -> Result<()>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    match w {
        Write::Status { seat_id, code } => {
            sqlx::query("UPDATE seats SET agent_status = $1 WHERE id = $2")
                .bind(code)
                .bind(seat_id)
                .execute(e)
                .await?;
            Ok(())
        }
        Write::Call(c) => save_call_with(e, node, c).await,
        Write::BalanceAdd { tenant_id, cents } => {
            sqlx::query(
                "INSERT INTO tenant_policy (tenant_id, balance_cents) VALUES ($1, $2)
                 ON CONFLICT (tenant_id) DO UPDATE
                 SET balance_cents = tenant_policy.balance_cents + excluded.balance_cents",
            )
            .bind(tenant_id)
            .bind(cents)
            .execute(e)
            .await?;
            Ok(())
        }
        Write::Balance { tenant_id, cents } => {
            sqlx::query(
                "INSERT INTO tenant_policy (tenant_id, balance_cents) VALUES ($1, $2)
                 ON CONFLICT (tenant_id) DO UPDATE SET balance_cents = excluded.balance_cents",
            )
            .bind(tenant_id)
            .bind(cents)
            .execute(e)
            .await?;
            Ok(())
        }
    }
}

/// Writes a call record, or updates it when it exists. Quality figures
/// already stored are kept when the update has none (a record closed
/// after a restart carries no samples).
pub(crate) async fn save_call_with<'e, E>(e: E, node: &str, c: &CallRow) -> Result<()>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    save_calls_with(e, node, &[c]).await
}

/// Rows of one multi-row upsert at most (26 parameters a row, well under
/// SQLite's limit of 32,766).
const CALLS_PER_STATEMENT: usize = 256;

/// Writes call records in one statement, in their order: a later row for
/// the same call updates the earlier one as it would one at a time
/// ([`fold_repeats`]). One
/// statement is one round trip to the SQLite thread, the main cost of a
/// burst of small writes.
async fn save_calls_with<'e, E>(e: E, node: &str, rows: &[&CallRow]) -> Result<()>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    let folded = fold_repeats(rows);
    let refs: Vec<&CallRow>;
    let rows = match &folded {
        Some(f) => {
            refs = f.iter().collect();
            &refs[..]
        }
        None => rows,
    };
    let mut q = sqlx::QueryBuilder::<Db>::new(
        "INSERT INTO calls (id, tenant_id, seat_id, direction, caller, callee, order_id, params, other,
                            start_ms, connected_ms, hangup_ms, hangup_code, sip_code, dialog,
                            loss_pct, jitter_ms, rtt_ms, mos, mos_min, trunk, forwarded_to, hung_up_by,
                            billed_secs, cost_millicents, recorded, node) ",
    );
    q.push_values(rows, |mut b, c| {
        b.push_bind(&c.id)
            .push_bind(c.tenant_id)
            .push_bind(c.seat_id)
            .push_bind(c.direction)
            .push_bind(&c.caller)
            .push_bind(&c.callee)
            .push_bind(&c.order_id)
            .push_bind(&c.params)
            .push_bind(&c.other)
            .push_bind(c.start_ms)
            .push_bind(c.connected_ms)
            .push_bind(c.hangup_ms)
            .push_bind(c.hangup_code)
            .push_bind(c.sip_code)
            .push_bind(&c.dialog)
            .push_bind(c.loss_pct)
            .push_bind(c.jitter_ms)
            .push_bind(c.rtt_ms)
            .push_bind(c.mos)
            .push_bind(c.mos_min)
            .push_bind(&c.trunk)
            .push_bind(&c.forwarded_to)
            .push_bind(&c.hung_up_by)
            .push_bind(c.billed_secs)
            .push_bind(c.cost_millicents)
            .push_bind(i64::from(c.recorded))
            .push_bind(node);
    });
    q.push(
        " ON CONFLICT(id) DO UPDATE SET connected_ms = excluded.connected_ms, hangup_ms = excluded.hangup_ms,
            hangup_code = excluded.hangup_code, sip_code = excluded.sip_code, seat_id = excluded.seat_id,
            dialog = excluded.dialog,
            loss_pct = COALESCE(excluded.loss_pct, calls.loss_pct),
            jitter_ms = COALESCE(excluded.jitter_ms, calls.jitter_ms),
            rtt_ms = COALESCE(excluded.rtt_ms, calls.rtt_ms),
            mos = COALESCE(excluded.mos, calls.mos),
            mos_min = COALESCE(excluded.mos_min, calls.mos_min),
            trunk = COALESCE(excluded.trunk, calls.trunk),
            forwarded_to = COALESCE(excluded.forwarded_to, calls.forwarded_to),
            hung_up_by = COALESCE(excluded.hung_up_by, calls.hung_up_by),
            billed_secs = COALESCE(excluded.billed_secs, calls.billed_secs),
            cost_millicents = COALESCE(excluded.cost_millicents, calls.cost_millicents),
            recorded = CASE WHEN excluded.recorded > calls.recorded
                THEN excluded.recorded ELSE calls.recorded END",
    );
    q.build().execute(e).await?;
    Ok(())
}

/// Writes a batch on `conn`, in order, in one transaction; a batch of call
/// records only is one statement, atomic without a transaction (one trip
/// to SQLite's thread instead of three).
pub(crate) async fn save_batch(
    conn: &mut <Db as sqlx::Database>::Connection,
    node: &str,
    writes: &[Write],
) -> Result<()> {
    let calls_only =
        writes.len() <= CALLS_PER_STATEMENT && writes.iter().all(|w| matches!(w, Write::Call(_)));
    if calls_only {
        let rows: Vec<&CallRow> = writes
            .iter()
            .filter_map(|w| match w {
                Write::Call(c) => Some(&**c),
                _ => None,
            })
            .collect();
        if !rows.is_empty() {
            save_calls_with(&mut *conn, node, &rows).await?;
        }
        return Ok(());
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    // Consecutive call records go in one statement each run (the
    // order of everything else is kept around them).
    let mut run: Vec<&CallRow> = Vec::new();
    for w in writes {
        if let Write::Call(c) = w {
            run.push(c);
            if run.len() < CALLS_PER_STATEMENT {
                continue;
            }
        }
        if !run.is_empty() {
            save_calls_with(&mut *tx, node, &run).await?;
            run.clear();
        }
        if !matches!(w, Write::Call(_)) {
            write_with(&mut *tx, node, w).await?;
        }
    }
    if !run.is_empty() {
        save_calls_with(&mut *tx, node, &run).await?;
    }
    tx.commit().await?;
    Ok(())
}
}

/// Where a DID's inbound calls go, as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DidRoute {
    Group {
        tenant_id: i64,
        group_no: String,
        /// The skill an agent must have to be offered the call.
        skill: Option<String>,
    },
    Forward {
        tenant_id: i64,
        number: String,
    },
    Reject {
        tenant_id: i64,
        code: u16,
    },
    /// A menu (IVR), as the admin API shows it; the caller checks it.
    Menu {
        tenant_id: i64,
        menu: serde_json::Value,
    },
}

/// A new route for a DID (the tenant is the caller's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DidRouteSet {
    /// The group, and the skill its agents must have for these calls.
    Group(String, Option<String>),
    Forward(String),
    Reject(u16),
    /// A menu (IVR) in the admin API's form, checked by the caller.
    Menu(serde_json::Value),
}

/// A stored menu's text read back (a broken one reads as an empty menu,
/// which callers refuse).
fn menu_of(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::json!({}))
}

impl Store {
    pub async fn add_did(&self, tenant_id: i64, number: &str, in_pool: bool) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query("INSERT INTO dids (number, tenant_id, pool) VALUES ($1, $2, $3)")
                .bind(number)
                .bind(tenant_id)
                .bind(i64::from(in_pool))
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Inbound calls to this DID ring the agents of this group.
    pub async fn route_did(&self, number: &str, group_id: i64) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query("UPDATE dids SET group_id = $1 WHERE number = $2")
                .bind(group_id)
                .bind(number)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Where an inbound call to `number` goes; `None` when no tenant owns
    /// it, or it is routed nowhere.
    pub async fn did_route(&self, number: &str) -> Result<Option<DidRoute>> {
        on_db!(self, |pool| {
            let r = sqlx::query(
                "SELECT d.tenant_id, g.group_no, d.forward_to, d.reject_code, d.skill, d.menu
                 FROM dids d LEFT JOIN agent_groups g ON g.id = d.group_id WHERE d.number = $1",
            )
            .bind(number)
            .fetch_optional(pool)
            .await?;
            let Some(r) = r else { return Ok(None) };
            let tenant_id: i64 = r.try_get("tenant_id")?;
            let group_no: Option<String> = r.try_get("group_no")?;
            let forward_to: Option<String> = r.try_get("forward_to")?;
            let reject_code: Option<i64> = r.try_get("reject_code")?;
            let skill: Option<String> = r.try_get("skill")?;
            let menu: Option<String> = r.try_get("menu")?;
            Ok(if let Some(code) = reject_code {
                Some(DidRoute::Reject {
                    tenant_id,
                    code: u16::try_from(code).unwrap_or(403),
                })
            } else if let Some(number) = forward_to {
                Some(DidRoute::Forward { tenant_id, number })
            } else if let Some(menu) = menu {
                Some(DidRoute::Menu {
                    tenant_id,
                    menu: menu_of(&menu),
                })
            } else {
                group_no.map(|group_no| DidRoute::Group {
                    tenant_id,
                    group_no,
                    skill,
                })
            })
        })
    }

    /// Routes a tenant's DID; false when the tenant does not own it (or
    /// the group is not the tenant's). The caller checked the values.
    pub async fn set_did_route(
        &self,
        tenant_id: i64,
        number: &str,
        route: &DidRouteSet,
    ) -> Result<bool> {
        on_db!(self, |pool| {
            let skill = match route {
                DidRouteSet::Group(_, skill) => skill.as_deref(),
                _ => None,
            };
            let menu = match route {
                DidRouteSet::Menu(m) => Some(m.to_string()),
                _ => None,
            };
            let (group_id, forward_to, reject_code): (Option<i64>, Option<&str>, Option<i64>) =
                match route {
                    DidRouteSet::Group(no, _) => {
                        let g = sqlx::query(
                            "SELECT id FROM agent_groups WHERE tenant_id = $1 AND group_no = $2",
                        )
                        .bind(tenant_id)
                        .bind(no)
                        .fetch_optional(pool)
                        .await?;
                        let Some(g) = g else { return Ok(false) };
                        (Some(g.try_get("id")?), None, None)
                    }
                    DidRouteSet::Forward(n) => (None, Some(n.as_str()), None),
                    DidRouteSet::Reject(code) => (None, None, Some(i64::from(*code))),
                    DidRouteSet::Menu(_) => (None, None, None),
                };
            let done = sqlx::query(
                "UPDATE dids SET group_id = $1, forward_to = $2, reject_code = $3, skill = $6, menu = $7
                 WHERE number = $4 AND tenant_id = $5",
            )
            .bind(group_id)
            .bind(forward_to)
            .bind(reject_code)
            .bind(number)
            .bind(tenant_id)
            .bind(skill)
            .bind(menu)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// The tenant's numbers: (all owned, the caller-ID pool).
    pub async fn dids(&self, tenant_id: i64) -> Result<(Vec<String>, Vec<String>)> {
        on_db!(self, |pool| {
            let rows =
                sqlx::query("SELECT number, pool FROM dids WHERE tenant_id = $1 ORDER BY number")
                    .bind(tenant_id)
                    .fetch_all(pool)
                    .await?;
            let mut owned = Vec::new();
            let mut pool = Vec::new();
            for r in rows {
                let n: String = r.try_get("number")?;
                if r.try_get::<i64, _>("pool")? != 0 {
                    pool.push(n.clone());
                }
                owned.push(n);
            }
            Ok((owned, pool))
        })
    }

    /// The tenant's DIDs with where each goes, by number: (number, in the
    /// caller-ID pool, route; `None` when routed nowhere).
    pub async fn did_routes(
        &self,
        tenant_id: i64,
    ) -> Result<Vec<(String, bool, Option<DidRouteSet>)>> {
        on_db!(self, |pool| {
            let rows = sqlx::query(
                "SELECT d.number, d.pool, g.group_no, d.forward_to, d.reject_code, d.skill, d.menu
                 FROM dids d LEFT JOIN agent_groups g ON g.id = d.group_id
                 WHERE d.tenant_id = $1 ORDER BY d.number",
            )
            .bind(tenant_id)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let reject_code: Option<i64> = r.try_get("reject_code")?;
                let forward_to: Option<String> = r.try_get("forward_to")?;
                let group_no: Option<String> = r.try_get("group_no")?;
                let skill: Option<String> = r.try_get("skill")?;
                let menu: Option<String> = r.try_get("menu")?;
                // The same order of precedence as `did_route`, which calls follow.
                let route = if let Some(code) = reject_code {
                    Some(DidRouteSet::Reject(u16::try_from(code).unwrap_or(403)))
                } else if let Some(n) = forward_to {
                    Some(DidRouteSet::Forward(n))
                } else if let Some(m) = menu {
                    Some(DidRouteSet::Menu(menu_of(&m)))
                } else {
                    group_no.map(|g| DidRouteSet::Group(g, skill))
                };
                out.push((
                    r.try_get("number")?,
                    r.try_get::<i64, _>("pool")? != 0,
                    route,
                ));
            }
            Ok(out)
        })
    }

    /// Writes a call record, or updates it when it exists. Quality figures
    /// already stored are kept when the update has none (a record closed
    /// after a restart carries no samples).
    pub async fn save_call(&self, c: &CallRow) -> Result<()> {
        on_db!(self, |pool, be| be::save_call_with(pool, &self.node, c)
            .await)
    }

    /// Stores several writes in one transaction, in their order (one
    /// commit for a burst instead of one each). If that fails, each is
    /// tried alone, so one bad write loses no other; the first error is
    /// returned.
    pub async fn save_all(&self, writes: &[Write]) -> Result<()> {
        on_db!(self, |pool, be| {
            let batch = match pool.acquire().await {
                Ok(mut conn) => be::save_batch(&mut conn, &self.node, writes).await,
                Err(e) => Err(e.into()),
            };
            // The connection is back in the pool before the writes go alone.
            match batch {
                Ok(()) => Ok(()),
                Err(_) => self.save_one_by_one(writes).await,
            }
        })
    }

    /// Every write alone, through the pool: one bad record (or a broken
    /// connection) loses no other. The first error is returned.
    pub(crate) async fn save_one_by_one(&self, writes: &[Write]) -> Result<()> {
        on_db!(self, |pool, be| {
            let mut first = Ok(());
            for w in writes {
                if let Err(e) = be::write_with(pool, &self.node, w).await {
                    if first.is_ok() {
                        first = Err(e);
                    }
                }
            }
            first
        })
    }

    pub async fn call(&self, id: &str) -> Result<Option<CallRow>> {
        on_db!(self, |pool| {
            let r = sqlx::query("SELECT * FROM calls WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
            r.map(|r| row_of(&r)).transpose()
        })
    }

    /// Calls a previous process left open (it stopped without ending them).
    /// This node's, and those written before nodes had names.
    pub async fn open_calls(&self) -> Result<Vec<CallRow>> {
        on_db!(self, |pool| {
            let rows = sqlx::query(
                "SELECT * FROM calls WHERE hangup_ms IS NULL AND (node = $1 OR node IS NULL)
                 ORDER BY start_ms, id",
            )
            .bind(&*self.node)
            .fetch_all(pool)
            .await?;
            rows.iter().map(row_of).collect()
        })
    }

    /// The calls the node `node` carried and left open (it died).
    pub async fn open_calls_of(&self, node: &str) -> Result<Vec<CallRow>> {
        on_db!(self, |pool| {
            let rows = sqlx::query(
                "SELECT * FROM calls WHERE hangup_ms IS NULL AND node = $1 ORDER BY start_ms, id",
            )
            .bind(node)
            .fetch_all(pool)
            .await?;
            rows.iter().map(row_of).collect()
        })
    }

    /// The tenant's latest call records, newest first.
    pub async fn recent_calls(&self, tenant_id: i64, limit: i64) -> Result<Vec<CallRow>> {
        on_db!(self, |pool| {
            let rows = sqlx::query(
                "SELECT * FROM calls WHERE tenant_id = $1 ORDER BY start_ms DESC, id LIMIT $2",
            )
            .bind(tenant_id)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter().map(row_of).collect()
        })
    }
}

fn row_of(r: &impl Get) -> Result<CallRow> {
    Ok(CallRow {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        seat_id: r.try_get("seat_id")?,
        direction: r.try_get("direction")?,
        caller: r.try_get("caller")?,
        callee: r.try_get("callee")?,
        order_id: r.try_get("order_id")?,
        params: r.try_get("params")?,
        other: r.try_get("other")?,
        start_ms: r.try_get("start_ms")?,
        connected_ms: r.try_get("connected_ms")?,
        hangup_ms: r.try_get("hangup_ms")?,
        hangup_code: r.try_get("hangup_code")?,
        sip_code: r.try_get("sip_code")?,
        dialog: r.try_get("dialog")?,
        loss_pct: r.try_get("loss_pct")?,
        jitter_ms: r.try_get("jitter_ms")?,
        rtt_ms: r.try_get("rtt_ms")?,
        mos: r.try_get("mos")?,
        mos_min: r.try_get("mos_min")?,
        trunk: r.try_get("trunk")?,
        forwarded_to: r.try_get("forwarded_to")?,
        hung_up_by: r.try_get("hung_up_by")?,
        billed_secs: r.try_get("billed_secs")?,
        cost_millicents: r.try_get("cost_millicents")?,
        recorded: r.try_get::<i64, _>("recorded")? != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dids_and_call_records() {
        for store in crate::testing::stores().await {
            eprintln!("on {}", store.backend());
            store.seed_demo().await.unwrap();
            let (owned, pool) = store.dids(1).await.unwrap();
            assert_eq!(owned.len(), 10);
            assert!(owned.contains(&"12025550179".to_string()));
            assert!(
                !pool.contains(&"12025550179".to_string()),
                "the DID the sandbox refuses is not in the pool"
            );
            let mut c = CallRow {
                id: "c1".into(),
                tenant_id: 1,
                direction: 1,
                caller: "a".into(),
                callee: "b".into(),
                start_ms: 5,
                ..Default::default()
            };
            store.save_call(&c).await.unwrap();
            c.hangup_ms = Some(9);
            c.sip_code = Some(486);
            c.trunk = Some("carrier-b".into());
            store.save_call(&c).await.unwrap();
            assert_eq!(store.call("c1").await.unwrap(), Some(c.clone()));
            assert!(
                store.open_calls().await.unwrap().is_empty(),
                "an ended call is not open"
            );
            c.id = "c2".into();
            c.hangup_ms = None;
            c.dialog = Some("{}".into());
            store.save_call(&c).await.unwrap();
            assert_eq!(store.open_calls().await.unwrap(), vec![c.clone()]);
            assert_eq!(store.call("nope").await.unwrap(), None);
            assert_eq!(
                store.did_route("12025550170").await.unwrap(),
                Some(DidRoute::Group {
                    tenant_id: 1,
                    group_no: "G001".to_string(),
                    skill: None,
                })
            );
            assert_eq!(store.did_route("19999999999").await.unwrap(), None);
            let fwd = DidRouteSet::Forward("14155550100".into());
            assert!(store.set_did_route(1, "12025550171", &fwd).await.unwrap());
            assert_eq!(
                store.did_route("12025550171").await.unwrap(),
                Some(DidRoute::Forward {
                    tenant_id: 1,
                    number: "14155550100".into()
                })
            );
            let reject = DidRouteSet::Reject(486);
            assert!(store
                .set_did_route(1, "12025550171", &reject)
                .await
                .unwrap());
            assert_eq!(
                store.did_route("12025550171").await.unwrap(),
                Some(DidRoute::Reject {
                    tenant_id: 1,
                    code: 486
                })
            );
            let back = DidRouteSet::Group("G001".into(), Some("es".into()));
            assert!(store.set_did_route(1, "12025550171", &back).await.unwrap());
            assert_eq!(
                store.did_route("12025550171").await.unwrap(),
                Some(DidRoute::Group {
                    tenant_id: 1,
                    group_no: "G001".into(),
                    skill: Some("es".into())
                })
            );
            let listed = store.did_routes(1).await.unwrap();
            assert!(listed
                .iter()
                .any(|(n, _, r)| n == "12025550171" && r == &Some(back.clone())));
            // A route that is not a group's keeps no skill.
            assert!(store.set_did_route(1, "12025550171", &fwd).await.unwrap());
            assert!(store
                .set_did_route(1, "12025550171", &DidRouteSet::Group("G001".into(), None))
                .await
                .unwrap());
            assert!(matches!(
                store.did_route("12025550171").await.unwrap(),
                Some(DidRoute::Group { skill: None, .. })
            ));
            // Another tenant's DID, or a group that is not theirs: refused.
            assert!(!store.set_did_route(2, "12025550171", &fwd).await.unwrap());
            let nogroup = DidRouteSet::Group("G999".into(), None);
            assert!(!store
                .set_did_route(1, "12025550171", &nogroup)
                .await
                .unwrap());
        }
    }

    /// A call record of `tenant_id`, ended at `hangup` when given.
    fn row(id: &str, tenant_id: i64, hangup: Option<i64>) -> CallRow {
        CallRow {
            id: id.into(),
            tenant_id,
            direction: 1,
            caller: "a".into(),
            callee: "b".into(),
            start_ms: 5,
            hangup_ms: hangup,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn one_statement_may_carry_a_call_twice_on_either_backend() {
        for store in crate::testing::stores().await {
            eprintln!("on {}", store.backend());
            store.seed_demo().await.unwrap();
            let mut first = row("d1", 1, None);
            first.loss_pct = Some(1.5);
            first.recorded = true;
            let mut later = row("d1", 1, Some(9));
            later.caller = "not kept".into();
            later.mos = Some(4.1);
            let mut other = row("d2", 1, None);
            other.trunk = Some("t".into());
            let writes = [first, other, later].map(|c| Write::Call(Box::new(c)));
            // The batch itself must succeed: a failure would be hidden by
            // the writer's one-by-one retry.
            match &store.db {
                crate::Db::Sqlite(p) => {
                    sqlite::save_batch(&mut p.acquire().await.unwrap(), "n", &writes).await
                }
                crate::Db::Postgres(p) => {
                    pg::save_batch(&mut p.acquire().await.unwrap(), "n", &writes).await
                }
            }
            .unwrap();
            let d1 = store.call("d1").await.unwrap().unwrap();
            assert_eq!(
                (
                    d1.caller.as_str(),
                    d1.hangup_ms,
                    d1.loss_pct,
                    d1.mos,
                    d1.recorded
                ),
                ("a", Some(9), Some(1.5), Some(4.1), true),
                "inserted by the first, ended by the later, figures of both"
            );
            assert_eq!(
                store.call("d2").await.unwrap().unwrap().trunk.as_deref(),
                Some("t")
            );
        }
    }

    #[test]
    fn repeats_fold_as_the_upsert_would_apply_them() {
        let a = row("x", 1, None);
        let b = row("y", 1, None);
        assert!(fold_repeats(&[&a, &b]).is_none(), "nothing copied");
        let mut a2 = row("x", 1, Some(3));
        a2.recorded = false;
        a2.trunk = Some("t2".into());
        let mut a1 = a.clone();
        a1.recorded = true;
        a1.trunk = Some("t1".into());
        a1.billed_secs = Some(60);
        let folded = fold_repeats(&[&a1, &b, &a2]).unwrap();
        assert_eq!(folded.len(), 2);
        assert_eq!(folded[1], b);
        let x = &folded[0];
        assert_eq!(
            (x.hangup_ms, x.recorded, x.trunk.as_deref(), x.billed_secs),
            (Some(3), true, Some("t2"), Some(60))
        );
    }

    #[tokio::test]
    async fn a_batch_is_stored_in_order_and_one_bad_write_loses_no_other() {
        for store in crate::testing::stores().await {
            eprintln!("on {}", store.backend());
            store.seed_demo().await.unwrap();
            // Consecutive records go in one statement: the later row of a call
            // updates the earlier one as it would alone (a figure it lacks is
            // kept), and a write between two runs keeps its place.
            let mut first = row("b1", 1, None);
            first.mos = Some(4.1);
            let writes = vec![
                Write::Call(Box::new(first)),
                Write::Call(Box::new(row("b1", 1, Some(9)))),
                Write::Status {
                    seat_id: 1,
                    code: 3,
                },
                Write::Call(Box::new(row("b4", 1, Some(11)))),
            ];
            store.save_all(&writes).await.unwrap();
            let b1 = store.call("b1").await.unwrap().unwrap();
            assert_eq!(b1.hangup_ms, Some(9), "the last write wins");
            assert_eq!(b1.mos, Some(4.1), "a figure the later row lacks is kept");
            assert_eq!(store.call("b4").await.unwrap().unwrap().hangup_ms, Some(11));
            // A record of a tenant that does not exist breaks the batch; the
            // others are stored one by one.
            let writes = vec![
                Write::Call(Box::new(row("b2", 1, None))),
                Write::Call(Box::new(row("bad", 999, None))),
                Write::Call(Box::new(row("b3", 1, Some(7)))),
            ];
            assert!(store.save_all(&writes).await.is_err());
            assert!(store.call("b2").await.unwrap().is_some());
            assert!(store.call("bad").await.unwrap().is_none());
            assert_eq!(store.call("b3").await.unwrap().unwrap().hangup_ms, Some(7));
        }
    }

    /// Two nodes' writers add what their calls took to one balance: the
    /// store keeps both; an admin's figure is set as it is.
    #[tokio::test]
    async fn balance_differences_from_two_writers_add_up() {
        for store in crate::testing::stores().await {
            store.seed_demo().await.unwrap();
            let tenant = store
                .user_by_email("admin@demo.local")
                .await
                .unwrap()
                .unwrap()
                .tenant_id;
            let (mut a, mut b) = (store.writer(), store.writer());
            a.save_all(&[Write::Balance {
                tenant_id: tenant,
                cents: 100,
            }])
            .await
            .unwrap();
            let take = |cents| {
                [Write::BalanceAdd {
                    tenant_id: tenant,
                    cents,
                }]
            };
            let (seven, five) = (take(-7), take(-5));
            let (x, y) = tokio::join!(a.save_all(&seven), b.save_all(&five));
            x.unwrap();
            y.unwrap();
            assert_eq!(
                store.policy(tenant).await.unwrap().balance_cents,
                88,
                "{}",
                store.backend()
            );
            assert!(store.balances().await.unwrap().contains(&(tenant, 88)));
        }
    }

    #[tokio::test]
    async fn the_writer_keeps_order_on_its_own_connection_and_recovers_from_a_bad_batch() {
        let dir = std::env::temp_dir().join(format!(
            "seatline-writer-{}-{}",
            std::process::id(),
            crate::now_ms()
        ));
        let pg = crate::testing::TestPostgres::shared().unwrap();
        let stores = [
            Store::open_dir(&dir).await.unwrap(),
            pg.store().await.unwrap(),
        ];
        for store in stores {
            eprintln!("on {}", store.backend());
            store.seed_demo().await.unwrap();
            let mut writer = store.writer();
            // Call records only: one statement, no transaction.
            let writes = vec![
                Write::Call(Box::new(row("w1", 1, None))),
                Write::Call(Box::new(row("w1", 1, Some(9)))),
            ];
            writer.save_all(&writes).await.unwrap();
            assert_eq!(store.call("w1").await.unwrap().unwrap().hangup_ms, Some(9));
            // Mixed: one transaction, in order.
            let writes = vec![
                Write::Call(Box::new(row("w2", 1, None))),
                Write::Status {
                    seat_id: 1,
                    code: 3,
                },
                Write::Call(Box::new(row("w2", 1, Some(12)))),
            ];
            writer.save_all(&writes).await.unwrap();
            assert_eq!(store.call("w2").await.unwrap().unwrap().hangup_ms, Some(12));
            // A bad record in either kind of batch: the others are stored.
            for (n, mixed) in [(3, false), (5, true)] {
                let good = format!("w{n}");
                let after = format!("w{}", n + 1);
                let mut writes = vec![
                    Write::Call(Box::new(row(&good, 1, None))),
                    Write::Call(Box::new(row("bad", 999, None))),
                    Write::Call(Box::new(row(&after, 1, Some(7)))),
                ];
                if mixed {
                    writes.push(Write::Balance {
                        tenant_id: 1,
                        cents: 4_200,
                    });
                }
                assert!(writer.save_all(&writes).await.is_err());
                assert!(store.call(&good).await.unwrap().is_some(), "{good}");
                assert!(store.call("bad").await.unwrap().is_none());
                assert_eq!(
                    store.call(&after).await.unwrap().unwrap().hangup_ms,
                    Some(7)
                );
            }
            // And the writer goes on after it (a fresh connection).
            writer
                .save_all(&[Write::Call(Box::new(row("w9", 1, Some(1))))])
                .await
                .unwrap();
            assert!(store.call("w9").await.unwrap().is_some());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn quality_figures_round_trip_and_are_null_when_unmeasured() {
        for store in crate::testing::stores().await {
            eprintln!("on {}", store.backend());
            store.seed_demo().await.unwrap();
            let mut c = CallRow {
                id: "q1".into(),
                tenant_id: 1,
                direction: 1,
                caller: "a".into(),
                callee: "b".into(),
                start_ms: 5,
                connected_ms: Some(6),
                ..Default::default()
            };
            store.save_call(&c).await.unwrap();
            let up = store.call("q1").await.unwrap().unwrap();
            assert_eq!(
                (up.loss_pct, up.jitter_ms, up.rtt_ms, up.mos, up.mos_min),
                (None, None, None, None, None),
                "unmeasured: NULL"
            );
            c.hangup_ms = Some(9);
            c.loss_pct = Some(3.25);
            c.jitter_ms = Some(17.5);
            c.rtt_ms = Some(142.0);
            c.mos = Some(4.0 + 1.0 / 3.0);
            c.mos_min = Some(3.1);
            store.save_call(&c).await.unwrap();
            assert_eq!(
                store.call("q1").await.unwrap(),
                Some(c.clone()),
                "every figure, exactly"
            );
            // An update with no figures (a record closed after a restart) keeps them.
            let mut closed = c.clone();
            (closed.loss_pct, closed.jitter_ms, closed.rtt_ms) = (None, None, None);
            (closed.mos, closed.mos_min) = (None, None);
            closed.hangup_code = Some(801);
            store.save_call(&closed).await.unwrap();
            let got = store.call("q1").await.unwrap().unwrap();
            assert_eq!(got.hangup_code, Some(801));
            assert_eq!((got.mos, got.mos_min), (c.mos, c.mos_min));
            assert_eq!(store.recent_calls(1, 10).await.unwrap(), vec![got]);
        }
    }
}

/// How a call ended, as the records API filters by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// It was connected.
    Answered,
    /// It ended unconnected with no reason code of ours: busy, declined,
    /// not answered, cancelled.
    Unanswered,
    /// It ended with one of our reason codes (800, 801, 810-819).
    Failed,
    /// It has not ended.
    InProgress,
}

/// Which call records to find, newest first.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    pub tenant_id: i64,
    /// Started at or after / before, in milliseconds.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// The agent's email.
    pub agent: Option<String>,
    pub order_id: Option<String>,
    pub call_id: Option<String>,
    pub direction: Option<i64>,
    pub outcome: Option<CallOutcome>,
    /// Only records after this one in the order (its start and id): the
    /// cursor of the page before.
    pub after: Option<(i64, String)>,
    pub limit: i64,
}

/// A call record with its agent's email and group.
#[derive(Debug, Clone, PartialEq)]
pub struct CallListRow {
    pub call: CallRow,
    pub agent: Option<String>,
    pub group_no: Option<String>,
}

impl Store {
    /// The tenant's call records that match `f`, newest first, at most
    /// `f.limit` (1 to 10,000).
    pub async fn find_calls(&self, f: &CallFilter) -> Result<Vec<CallListRow>> {
        on_db!(self, |pool| {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT c.*, u.email AS agent_email, g.group_no AS agent_group
                 FROM calls c
                 LEFT JOIN seats s ON s.id = c.seat_id
                 LEFT JOIN users u ON u.id = s.user_id
                 LEFT JOIN agent_groups g ON g.id = s.group_id
                 WHERE c.tenant_id = ",
            );
            q.push_bind(f.tenant_id);
            if let Some(v) = f.from_ms {
                q.push(" AND c.start_ms >= ").push_bind(v);
            }
            if let Some(v) = f.to_ms {
                q.push(" AND c.start_ms < ").push_bind(v);
            }
            if let Some(v) = &f.agent {
                q.push(" AND u.email = ").push_bind(v.clone());
            }
            if let Some(v) = &f.order_id {
                q.push(" AND c.order_id = ").push_bind(v.clone());
            }
            if let Some(v) = &f.call_id {
                q.push(" AND c.id = ").push_bind(v.clone());
            }
            if let Some(v) = f.direction {
                q.push(" AND c.direction = ").push_bind(v);
            }
            q.push(match f.outcome {
                None => "",
                Some(CallOutcome::Answered) => " AND c.connected_ms IS NOT NULL",
                Some(CallOutcome::Unanswered) => {
                    " AND c.hangup_ms IS NOT NULL AND c.connected_ms IS NULL AND c.hangup_code IS NULL"
                }
                Some(CallOutcome::Failed) => " AND c.hangup_code IS NOT NULL",
                Some(CallOutcome::InProgress) => " AND c.hangup_ms IS NULL",
            });
            if let Some((start, id)) = &f.after {
                q.push(" AND (c.start_ms < ")
                    .push_bind(*start)
                    .push(" OR (c.start_ms = ")
                    .push_bind(*start)
                    .push(" AND c.id < ")
                    .push_bind(id.clone())
                    .push("))");
            }
            q.push(" ORDER BY c.start_ms DESC, c.id DESC LIMIT ")
                .push_bind(f.limit.clamp(1, 10_000));
            let rows = q.build().fetch_all(pool).await?;
            rows.iter()
                .map(|r| {
                    Ok(CallListRow {
                        call: row_of(r)?,
                        agent: r.try_get("agent_email")?,
                        group_no: r.try_get("agent_group")?,
                    })
                })
                .collect()
        })
    }
}
