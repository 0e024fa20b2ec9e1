//! This node among several on one PostgreSQL database (issue 12): it beats
//! in the database, and takes over a node whose beat stopped (closing the
//! calls that node carried: a BYE toward the carrier, the record ended).
//! Which node is dead, and who takes it over, the database decides (one
//! `UPDATE` each); the calls are closed by the switchboard, as after a
//! restart.

use crate::App;
use std::time::{Duration, Instant};

/// Beats and looks for dead nodes every `cluster.heartbeat_ms`, as long as
/// the server runs.
pub(crate) fn spawn(app: App) {
    tokio::spawn(async move {
        let cfg = app.cfg.cluster.clone();
        let mut tick = tokio::time::interval(Duration::from_millis(cfg.heartbeat_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let dead_after = i64::try_from(cfg.dead_after_ms).unwrap_or(60_000);
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
            let dead = match app.store.take_dead_nodes(now, now - dead_after).await {
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
            app.hub.recover(open, Instant::now());
        }
        Err(e) => tracing::error!(node, "cluster: cannot read the calls of a dead node: {e}"),
    }
}
