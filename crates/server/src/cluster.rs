//! This node among several on one PostgreSQL database (issue 12): it beats
//! in the database, and takes over a node whose beat stopped (closing the
//! calls that node carried: a BYE toward the carrier, the record ended).
//! Which node is dead, and who takes it over, the database decides (one
//! `UPDATE` each); the calls are closed by the switchboard, as after a
//! restart. It also applies here what the other nodes changed and told
//! over NATS ([`crate::bus`]).

use crate::bus::{self, Change, Reload};
use crate::App;
use std::time::{Duration, Instant};

/// Beats and looks for dead nodes every `cluster.heartbeat_ms`, as long as
/// the server runs.
pub(crate) fn spawn(app: App) {
    tokio::spawn(async move {
        let cfg = app.cfg.cluster.clone();
        let mut tick = tokio::time::interval(Duration::from_millis(cfg.heartbeat_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = seatline_store::now_ms();
            let draining = app.draining.load(std::sync::atomic::Ordering::Relaxed);
            match app.store.node_beat(now, draining).await {
                Ok(true) => {}
                Ok(false) => {
                    // Silent too long (a pause, a cut to the database): the
                    // others closed this node's calls. It lives on, with
                    // the calls it has left ending by themselves.
                    tracing::error!(
                        node = %cfg.node,
                        "the other nodes took this node for dead and closed its calls"
                    );
                    if let Err(e) = app.store.node_started(now).await {
                        tracing::error!("cluster: cannot register again: {e}");
                    }
                }
                Err(e) => tracing::error!("cluster: cannot beat: {e}"),
            }
            // What the other nodes took from the tenants' balances.
            match app.store.balances().await {
                Ok(stored) => app.hub.refresh_balances(&stored),
                Err(e) => tracing::error!("cluster: cannot read the balances: {e}"),
            }
            let dead = match app.store.take_dead_nodes(now, cfg.silent_since(now)).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!("cluster: cannot look for dead nodes: {e}");
                    continue;
                }
            };
            for node in dead {
                take_over(&app, &node).await;
            }
        }
    });
}

/// Closes the calls the dead node `node` carried.
async fn take_over(app: &App, node: &str) {
    match app.store.open_calls_of(node).await {
        Ok(open) => {
            tracing::warn!(
                node,
                calls = open.len(),
                "a node stopped beating: closing the calls it carried"
            );
            let open = open.iter().map(crate::open_call_of).collect();
            app.hub.recover_lost_node(open, Instant::now());
        }
        Err(e) => tracing::error!(node, "cluster: cannot read the calls of a dead node: {e}"),
    }
}

/// Listens to the other nodes' changes and applies them here, as long as
/// the server runs.
pub(crate) async fn listen(app: App) -> anyhow::Result<()> {
    let (Some(client), _) = app.bus.parts() else {
        return Ok(());
    };
    let client = client.clone();
    let mut sub = client
        .subscribe(bus::SUBJECT)
        .await
        .map_err(|e| anyhow::anyhow!("cannot subscribe to {}: {e}", bus::SUBJECT))?;
    tokio::spawn(async move {
        use futures_util::StreamExt;
        while let Some(msg) = sub.next().await {
            match bus::parse(&msg.payload, app.bus.parts().1) {
                Some(change) => apply(&app, change),
                None => tracing::debug!("bus: an event was ignored"),
            }
        }
        tracing::error!("bus: the NATS subscription ended");
    });
    Ok(())
}

fn apply(app: &App, change: Change) {
    let now = Instant::now();
    match change {
        Change::Reload { tenant_id, what } => {
            let app = app.clone();
            tokio::spawn(async move {
                if let Err(e) = reload(&app, tenant_id, what).await {
                    tracing::error!(tenant = tenant_id, ?what, "bus: cannot read again: {e}");
                }
            });
        }
        Change::DidRoutes => app.calls.dids.forget(),
        Change::UserSessions {
            user_id,
            keep,
            disabled,
        } => {
            if disabled {
                app.hub.sign_user_out(user_id, now);
            } else {
                app.hub
                    .end_user_sessions_except(user_id, keep.as_deref(), now);
            }
        }
        Change::SessionEnded { session_id } => app.hub.logout(&session_id, now),
        Change::SignedIn {
            user_id,
            session_id,
            holder,
        } => {
            if holder != app.cfg.cluster.node {
                return;
            }
            let app = app.clone();
            tokio::spawn(async move {
                match app.store.seat_of_user(user_id).await {
                    Ok(Some(seat)) => app.hub.signed_in(&session_id, &seat, Instant::now()),
                    Ok(None) => {}
                    Err(e) => tracing::error!(user = user_id, "bus: cannot read a seat: {e}"),
                }
            });
        }
        Change::SeatSignedOut { tenant_id, seat_id } => {
            // Not signed in here: nothing to do.
            let _ = app.hub.force_sign_out(tenant_id, seat_id, now);
        }
    }
}

/// Reads `what` of the tenant from the store again, as this node did at
/// its start.
async fn reload(app: &App, tenant_id: i64, what: Reload) -> anyhow::Result<()> {
    match what {
        Reload::Trunks => crate::trunks::install(app, crate::trunks::resolve_stored(app).await?),
        Reload::Balance => app
            .hub
            .set_balance(tenant_id, app.store.policy(tenant_id).await?.balance_cents),
        Reload::Rates => {
            let rows: Vec<(String, i64, i64, i64)> = app
                .store
                .all_rates()
                .await?
                .into_iter()
                .filter(|r| r.0 == tenant_id)
                .map(|(_, prefix, mc, first, next)| (prefix, mc, first, next))
                .collect();
            app.hub
                .know_balance(tenant_id, app.store.policy(tenant_id).await?.balance_cents);
            app.hub.set_rates(tenant_id, crate::admin::rates_of(&rows));
        }
        Reload::Recording => {
            let setting = app.store.recording_setting(tenant_id).await?;
            app.hub
                .set_recording(tenant_id, crate::recordings::policy_of(&setting));
        }
        Reload::GroupRouting => {
            for g in app.store.group_routings().await? {
                if g.tenant_id != tenant_id {
                    continue;
                }
                if let Some(routing) = crate::admin::group_routing_of(&g) {
                    app.hub.set_group_routing(tenant_id, &g.group_no, routing);
                }
            }
        }
        Reload::Music => {
            let samples = app
                .store
                .tenant_musics()
                .await?
                .into_iter()
                .find(|(t, _)| *t == tenant_id)
                .map(|(_, s)| s.into());
            app.hub.set_tenant_music(tenant_id, samples);
        }
        Reload::Prompts => {
            let mut prompts: std::collections::HashMap<String, Vec<i16>> = app
                .store
                .did_prompts()
                .await?
                .into_iter()
                .filter(|(t, _, _)| *t == tenant_id)
                .map(|(_, did, s)| (did, s))
                .collect();
            // Every DID of the tenant: a removed prompt is cleared too.
            for did in app.store.dids(tenant_id).await?.0 {
                let samples = prompts.remove(&did).map(Into::into);
                app.hub.set_did_prompt(tenant_id, &did, samples);
            }
        }
        Reload::Skills => {
            for u in app.store.users(Some(tenant_id)).await? {
                if let Some(seat) = app.store.seat_of_user(u.id).await? {
                    app.hub.set_agent_skills(seat.id, seat.skills);
                }
            }
        }
    }
    Ok(())
}
