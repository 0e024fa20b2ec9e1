//! A tab opened on a node that does not hold its agent (issue 12): the
//! node passes the tab's messages, unchanged, to the node that holds the
//! agent, over a WebSocket of its own, and that node's events back. So
//! every tab of an agent meets at one node, and one node decides for the
//! agent (status, calls, the ACD), wherever the proxy sent each tab; the
//! audio tab's media goes straight to that node (its ICE candidates).
//!
//! Why a WebSocket and not NATS: a tab is an ordered stream with its own
//! life and back-pressure, which is what a WebSocket is; NATS carries the
//! events every node must hear ([`crate::bus`]).

use crate::App;
use axum::extract::ws::{Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

/// The header a relaying node sends with its own name: the node holding
/// the agent serves such a tab itself, even while draining, and never
/// relays it again.
pub const HEADER: &str = "x-seatline-relay";
/// The largest message either way, as for a tab connected directly.
const MAX_MESSAGE: usize = 64 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Relays the tab on `socket` to the node on the other end of `upstream`
/// ([`connect`]), signing in there with `token`, until either side closes.
pub async fn run(socket: &mut WebSocket, mut upstream: Upstream, token: &str) {
    let auth = serde_json::to_string(&seatline_protocol::ClientOp::Auth {
        token: token.to_string(),
    })
    .unwrap_or_default();
    if upstream
        .send(tungstenite::Message::text(auth))
        .await
        .is_err()
    {
        let _ = socket.send(Message::Close(None)).await;
        return;
    }
    loop {
        tokio::select! {
            from_tab = socket.recv() => match from_tab {
                Some(Ok(Message::Text(text))) => {
                    if upstream.send(tungstenite::Message::text(text.as_str())).await.is_err() {
                        let _ = socket.send(Message::Close(None)).await;
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    let _ = upstream.close(None).await;
                    return;
                }
                Some(Ok(_)) => {}
            },
            from_node = upstream.next() => match from_node {
                Some(Ok(tungstenite::Message::Text(text))) => {
                    if socket.send(Message::Text(text.as_str().into())).await.is_err() {
                        let _ = upstream.close(None).await;
                        return;
                    }
                }
                // The holding node closed the tab (a sign-out, its drain,
                // its end): so is the tab, which reconnects if it may.
                Some(Ok(tungstenite::Message::Close(_))) | None | Some(Err(_)) => {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

pub type Upstream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket to the node at `url` that holds the tab's agent; none when
/// it cannot be reached (logged).
pub async fn connect(app: &App, url: &str) -> Option<Upstream> {
    let mut req = match url.into_client_request() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(url, "relay: a node's WebSocket URL is not one: {e}");
            return None;
        }
    };
    let node = app.cfg.cluster.node.parse().ok()?;
    req.headers_mut().insert(HEADER, node);
    // Small buffers, as for a tab's own socket (the library's are 128 KiB
    // each way): a relayed tab costs its node two sockets, not 256 KiB.
    let config = tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(req, Some(config), true),
    )
    .await
    {
        Ok(Ok((ws, _))) => Some(ws),
        Ok(Err(e)) => {
            tracing::warn!(url, "relay: cannot reach the agent's node: {e}");
            None
        }
        Err(_) => {
            tracing::warn!(url, "relay: the agent's node did not answer in time");
            None
        }
    }
}
