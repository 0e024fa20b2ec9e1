//! Which node holds an agent (issue 12): the node its first tab or
//! sign-in reached, as the database records it. Tabs and sign-ins on
//! other nodes are sent there (`relay.rs`, the bus).

use crate::App;
use seatline_store::Owner;

/// Which node holds the agent of `seat_id`, taking it for this node when
/// no other live node does. A single node holds every agent.
pub(crate) async fn claim(app: &App, seat_id: i64) -> seatline_store::Result<Owner> {
    if app.store.backend() != "postgres" {
        return Ok(Owner::Here);
    }
    let now = seatline_store::now_ms();
    let silent_since = app.cfg.cluster.silent_since(now);
    app.store.claim_seat(seat_id, now, silent_since).await
}

/// The other node that holds the agent of `seat_id`; none when it is
/// this one (or the database cannot say: then this node serves it).
pub(crate) async fn holder(app: &App, seat_id: i64) -> Option<String> {
    match claim(app, seat_id).await {
        Ok(Owner::Here) => None,
        Ok(Owner::There { node, .. }) => Some(node),
        Err(e) => {
            tracing::error!("cluster: cannot claim an agent: {e}");
            None
        }
    }
}

/// The HTTP base (`http://host:port`) of the other live node that holds
/// the agent of `seat_id`, if one does (a supervisor's action on the agent
/// is sent there). Claims nothing.
pub(crate) async fn elsewhere(app: &App, seat_id: i64) -> Option<String> {
    if app.store.backend() != "postgres" {
        return None;
    }
    let silent_since = app.cfg.cluster.silent_since(seatline_store::now_ms());
    match app.store.holder_of(seat_id, silent_since).await {
        Ok(Some((_, ws_url))) => http_base(&ws_url),
        Ok(None) => None,
        Err(e) => {
            tracing::error!("cluster: cannot look up an agent's node: {e}");
            None
        }
    }
}

/// `ws://host:port/ws` (a node's WebSocket URL) as `http://host:port`.
fn http_base(ws_url: &str) -> Option<String> {
    let rest = ws_url.strip_prefix("ws://")?.strip_suffix("/ws")?;
    Some(format!("http://{rest}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_node_s_http_base_comes_from_its_websocket_url() {
        assert_eq!(
            super::http_base("ws://10.0.0.5:8080/ws").as_deref(),
            Some("http://10.0.0.5:8080")
        );
        assert_eq!(
            super::http_base("ws://[::1]:80/ws").as_deref(),
            Some("http://[::1]:80")
        );
        assert_eq!(super::http_base("wss://h/ws"), None);
        assert_eq!(super::http_base("ws://h/other"), None);
    }
}
