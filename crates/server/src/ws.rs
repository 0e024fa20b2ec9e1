//! One tab's WebSocket: authenticate with the session token, then relay the
//! tab's commands to the hub and the hub's events to the tab.

use crate::hub::{encode, HubError, Outgoing, TAB_QUEUE};
use crate::media::MediaCmd;
use crate::App;
use axum::extract::ws::{Message, WebSocket};
use seatline_calls::policy::CallOut;
use seatline_protocol::{ClientOp, SeatInfo, ServerEvent};
use seatline_store::{now_ms, Owner, Seat, SessionCheck};
use seatline_switchboard::Control;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

async fn send(socket: &mut WebSocket, ev: &ServerEvent) -> bool {
    // Encoded before the await, so the event is not kept in the task's state.
    let text = encode(ev);
    socket.send(Message::Text(text)).await.is_ok()
}

async fn refuse(socket: &mut WebSocket, ev: ServerEvent) {
    let _ = send(socket, &ev).await;
    let _ = socket.send(Message::Close(None)).await;
}

fn error_event(code: &str, message: impl Into<String>) -> ServerEvent {
    ServerEvent::Error {
        code: code.to_string(),
        message: message.into(),
    }
}

/// A tab that signed in: its connection id, seat and event queue.
struct OpenTab {
    conn: u64,
    seat: Seat,
    rx: mpsc::Receiver<Outgoing>,
}

/// What opening a tab came to.
enum Opened {
    /// Signed in here.
    Here(OpenTab),
    /// The agent is held by another node: the tab is relayed there.
    Relay { url: String, token: String },
}

/// `relayed`: another node relays this tab (for an agent this node
/// holds); such a tab is never relayed on.
pub async fn run(mut socket: WebSocket, app: App, relayed: bool) {
    // Signing in runs once and has the biggest state (the store's queries,
    // the refusals): boxed, it is freed when done instead of staying in the
    // task of every open tab for as long as the tab is open.
    let opened = Box::pin(open(&mut socket, &app, !relayed)).await;
    let OpenTab { conn, seat, mut rx } = match opened {
        Some(Opened::Here(tab)) => tab,
        Some(Opened::Relay { url, token }) => {
            match crate::relay::connect(&app, &url).await {
                Some(upstream) => Box::pin(crate::relay::run(&mut socket, upstream, &token)).await,
                None => {
                    let ev = error_event("unavailable", "the agent's node cannot be reached now");
                    refuse(&mut socket, ev).await;
                }
            }
            return;
        }
        None => return,
    };
    serve(&mut socket, &app, conn, &seat, &mut rx).await;
    // Rule 10 (a call with no tab left ends after the grace time) is the
    // switchboard's: a reload within it keeps the call.
    app.hub.detach(conn, Instant::now());
    app.media.send(MediaCmd::RemoveLeg {
        seat_id: seat.id,
        leg: conn,
    });
}

/// Authenticates the tab; when another node holds the agent (and `may_relay`),
/// says where to relay it; else attaches it to the hub and sends `ready`.
async fn open(socket: &mut WebSocket, app: &App, may_relay: bool) -> Option<Opened> {
    let token = match tokio::time::timeout(AUTH_TIMEOUT, socket.recv()).await {
        Ok(Some(Ok(Message::Text(text)))) => match serde_json::from_str::<ClientOp>(&text) {
            Ok(ClientOp::Auth { token }) => token,
            _ => {
                let ev = error_event("authRequired", "the first message must be auth");
                refuse(socket, ev).await;
                return None;
            }
        },
        _ => return None,
    };
    let idle_ms = app.hub.idle_timeout().as_millis() as i64;
    let (session_id, user_id) = match app.store.check_session(&token, idle_ms, now_ms()).await {
        Ok(SessionCheck::Valid {
            session_id,
            user_id,
        }) => (session_id, user_id),
        Ok(_) => {
            refuse(socket, ServerEvent::TokenInvalid).await;
            return None;
        }
        Err(e) => {
            tracing::error!("session check failed: {e}");
            let ev = error_event("unavailable", "the server cannot check sessions now");
            refuse(socket, ev).await;
            return None;
        }
    };
    let (user, seat) = match (
        app.store.user_by_id(user_id).await,
        app.store.seat_of_user(user_id).await,
    ) {
        (Ok(user), Ok(Some(seat))) if seat.enabled => (user, seat),
        (Ok(_), Ok(_)) => {
            // The seat was removed or disabled since sign-in: the agent is out.
            let _ = app.store.revoke_session(&session_id).await;
            app.hub.logout(&session_id, Instant::now());
            refuse(socket, ServerEvent::LoggedOut).await;
            return None;
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!("account lookup failed: {e}");
            let ev = error_event("unavailable", "the server cannot read accounts now");
            refuse(socket, ev).await;
            return None;
        }
    };

    if may_relay {
        match crate::holder::claim(app, seat.id).await {
            Ok(Owner::Here) => {}
            Ok(Owner::There {
                ws_url: Some(url), ..
            }) => return Some(Opened::Relay { url, token }),
            Ok(Owner::There { node, ws_url: None }) => {
                tracing::error!(node, "the node holding an agent never said where it is");
                let ev = error_event("unavailable", "the agent's node cannot be reached now");
                refuse(socket, ev).await;
                return None;
            }
            Err(e) => {
                tracing::error!("cannot claim an agent: {e}");
                let ev = error_event("unavailable", "the server cannot read accounts now");
                refuse(socket, ev).await;
                return None;
            }
        }
    }
    let (tx, rx) = mpsc::channel(TAB_QUEUE);
    app.hub.label_agent(&seat, &user.email);
    let (conn, view) = app.hub.attach(&session_id, &seat, tx, Instant::now());
    // The user's sessions may have been ended (revoked, password changed)
    // between the check above and the attach, after the hub had told every
    // tab it had: look again, now that this tab is one the hub would tell.
    if !matches!(app.store.session_live(&session_id).await, Ok(true)) {
        app.hub.revoked(&session_id, Instant::now());
        refuse(socket, ServerEvent::TokenInvalid).await;
        return None;
    }
    let ready = ServerEvent::Ready {
        email: user.email.clone(),
        seat: SeatInfo {
            sip_num: seat.sip_num.clone(),
            group_no: seat.group_no.clone(),
        },
        agent: view.agent,
        idle_timeout_secs: app.hub.idle_timeout().as_secs(),
        call: view.call,
        audio: view.audio,
        recording: view.recording,
    };
    if !send(socket, &ready).await {
        app.hub.detach(conn, Instant::now());
        return None;
    }
    Some(Opened::Here(OpenTab { conn, seat, rx }))
}

async fn serve(
    socket: &mut WebSocket,
    app: &App,
    conn: u64,
    seat: &Seat,
    rx: &mut mpsc::Receiver<Outgoing>,
) {
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => continue,
                };
                let reply = match serde_json::from_str::<ClientOp>(&text) {
                    Ok(ClientOp::SetStatus { code }) => {
                        let now = Instant::now();
                        if let Some(session) = app.hub.touch(conn, now) {
                            let _ = app.store.touch_session(&session, now_ms()).await;
                        }
                        app.hub.set_status(conn, code, now).err().map(|e: HubError| error_event(e.code(), e.to_string()))
                    }
                    Ok(ClientOp::CallOut { caller, callee, country_code, order_id, params }) => {
                        let now = Instant::now();
                        let alive = app.hub.session_alive(conn, now);
                        if alive {
                            if let Some(session) = app.hub.touch(conn, now) {
                                let _ = app.store.touch_session(&session, now_ms()).await;
                            }
                        }
                        let op = CallOut { caller, callee, country_code, order_id, params };
                        // Boxed: the policy checks' state is needed only while they run.
                        Box::pin(app.calls.call_out(app, seat.clone(), op, alive)).await;
                        None
                    }
                    Ok(ClientOp::HangUp) => {
                        app.calls.hang_up(app, seat.id);
                        None
                    }
                    Ok(ClientOp::Answer) => {
                        app.calls.answer(app, seat.id, true);
                        None
                    }
                    Ok(ClientOp::Reject) => {
                        app.calls.answer(app, seat.id, false);
                        None
                    }
                    Ok(ClientOp::RtcOffer { sdp }) => {
                        if !app.hub.holds_audio(conn) {
                            Some(error_event("notAudioTab", "another tab holds the audio"))
                        } else {
                            match app.media.add_leg(seat.id, conn, sdp).await {
                                Ok(sdp) => Some(ServerEvent::RtcAnswer { sdp }),
                                Err(e) => Some(error_event("rtcFailed", e)),
                            }
                        }
                    }
                    Ok(ClientOp::Dtmf { digits }) => {
                        let digits: String = digits.chars().filter(|c| seatline_media::dtmf::event_of(*c).is_some()).take(32).collect();
                        app.calls.control(app, seat.id, Control::Dtmf(digits));
                        None
                    }
                    Ok(ClientOp::Mute { on }) => {
                        app.calls.control(app, seat.id, Control::Mute(on));
                        None
                    }
                    Ok(ClientOp::Hold { on }) => {
                        app.calls.control(app, seat.id, Control::Hold(on));
                        None
                    }
                    Ok(ClientOp::Record { on }) => app
                        .hub
                        .record(seat.id, on)
                        .err()
                        .map(|e| error_event(e.code(), e.to_string())),
                    // Liveness only: a ping does not renew the session.
                    Ok(ClientOp::Ping) => Some(ServerEvent::Pong),
                    Ok(ClientOp::Auth { .. }) => Some(error_event("alreadyAuthenticated", "this connection is signed in")),
                    Err(e) => Some(error_event("badMessage", format!("cannot read the message: {e}"))),
                };
                // Encoded first, so the event is not kept across the await.
                if let Some(text) = reply.map(|ev| encode(&ev)) {
                    if socket.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
            }
            out = rx.recv() => match out {
                Some(Outgoing::Text(text)) => {
                    if socket.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                Some(Outgoing::Close) | None => {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
            },
        }
    }
}
