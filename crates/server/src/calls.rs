//! The call path's sockets and store reads. Every decision is the
//! switchboard's (through [`crate::hub::Hub`]); this file only moves bytes
//! and time: the SIP socket (one reader, one ordered sender), the timer
//! that wakes the switchboard, the store reads a `callOut` or an inbound
//! call needs, and the RTP sockets bound for calls.

use crate::hub::SipOut;
use crate::media::RtpPair;
use crate::App;
use seatline_calls::policy::{check_callee, CallOut, PolicyFacts};
use seatline_store::{now_ms, DidRoute, Seat};
use seatline_switchboard::{CallOutFacts, Control, Route};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

#[derive(Clone)]
pub struct Calls {
    pub sip_addr: SocketAddr,
    /// Each DID's route as last read, so that an inbound call costs no
    /// store read.
    pub dids: Arc<DidRoutes>,
}

/// The routes of the DIDs that took calls, as the store held them when
/// read. A DID's route changes only through the admin API, which calls
/// [`DidRoutes::forget`] once the store has the new one. A look-up that
/// read the store before that and ends after it is not kept (the
/// generation moved on), so a stale route never stays. Only routes of owned
/// DIDs are kept, so the map is as large as the store's DIDs at most.
#[derive(Default)]
pub struct DidRoutes {
    inner: std::sync::Mutex<(u64, std::collections::HashMap<String, Route>)>,
}

impl DidRoutes {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, std::collections::HashMap<String, Route>)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, did: &str) -> Option<Route> {
        self.lock().1.get(did).cloned()
    }

    /// The generation a store read starts in.
    pub fn generation(&self) -> u64 {
        self.lock().0
    }

    /// Keeps a route read from the store in `generation`, unless a change
    /// came since.
    pub fn keep(&self, did: &str, generation: u64, route: &Route) {
        let known = matches!(
            route,
            Route::Group { .. } | Route::Menu { .. } | Route::Forward { .. } | Route::Reject { .. }
        );
        let mut g = self.lock();
        if known && g.0 == generation {
            g.1.insert(did.to_owned(), route.clone());
        }
    }

    /// A DID's route changed in the store: every route is read again.
    pub fn forget(&self) {
        let mut g = self.lock();
        g.0 += 1;
        g.1.clear();
    }
}

/// The SIP socket, bound before the switchboard exists (its address goes
/// into every Via and Contact).
pub struct SipSocket {
    pub sock: Arc<UdpSocket>,
    pub addr: SocketAddr,
    /// TCP on the same address, for carriers that connect to us.
    pub tcp: Option<tokio::net::TcpListener>,
}

/// Binds SIP over UDP and TCP on one address. With port 0, a port free
/// for both is found (another process may hold the TCP port of the UDP
/// port the system picked: that one is let go and another tried).
pub async fn bind_sip(listen: SocketAddr) -> anyhow::Result<SipSocket> {
    let tries = if listen.port() == 0 { 20 } else { 1 };
    let mut last = None;
    for _ in 0..tries {
        let sock = Arc::new(UdpSocket::bind(listen).await?);
        let addr = sock.local_addr()?;
        match tokio::net::TcpListener::bind(addr).await {
            Ok(tcp) => {
                return Ok(SipSocket {
                    sock,
                    addr,
                    tcp: Some(tcp),
                })
            }
            Err(e) => last = Some(anyhow::anyhow!("SIP over TCP on {addr}: {e}")),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("SIP over TCP on {listen}: no port")))
}

/// Starts the SIP reader and sender, the switchboard's timer, and the DID
/// look-ups, once the app exists.
pub fn start(
    app: App,
    sip: SipSocket,
    mut sip_rx: mpsc::UnboundedReceiver<SipOut>,
    mut routes: mpsc::UnboundedReceiver<(seatline_sip::CallRef, String)>,
) {
    let sock = sip.sock.clone();
    let sender = app.clone();
    tokio::spawn(async move {
        while let Some(out) = sip_rx.recv().await {
            match out {
                SipOut::Send(t) => {
                    // Over the peer's connection if it has one, else UDP.
                    if let Err(bytes) = sender.streams.send(&sender, t.to, t.bytes) {
                        let _ = sock.send_to(&bytes, t.to).await;
                    }
                }
                SipOut::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    });
    let reader = app.clone();
    let sock = sip.sock.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        loop {
            match sock.recv_from(&mut buf).await {
                Ok((n, from)) => reader.hub.sip_datagram(&buf[..n], from, Instant::now()),
                Err(e) => {
                    // ICMP errors surface here on some systems: not fatal.
                    tracing::debug!("SIP socket: {e}");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    });
    let timer = app.clone();
    tokio::spawn(async move {
        // Every input may set an earlier deadline, and looking for the next
        // one walks every call: after an input the timer waits a
        // millisecond, gathering the inputs that come meanwhile, and looks
        // once for all of them. Under load that is a look per millisecond,
        // not one per SIP message; a deadline is kept to within it.
        const GATHER: Duration = Duration::from_millis(1);
        loop {
            let next = timer
                .hub
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = tokio::time::sleep_until(next.into()) => {
                    timer.hub.handle_timeout(Instant::now());
                }
                _ = timer.hub.timer.notified() => {
                    tokio::time::sleep(GATHER).await;
                    if next <= Instant::now() {
                        timer.hub.handle_timeout(Instant::now());
                    }
                }
            }
        }
    });
    let router = app.clone();
    tokio::spawn(async move {
        while let Some((call, did)) = routes.recv().await {
            // A DID that took calls before is routed here and now; another
            // is read from the store in a task of its own.
            if let Some(route) = router.calls.dids.get(&did) {
                routed(&router, call, route);
                continue;
            }
            let app = router.clone();
            tokio::spawn(async move {
                let generation = app.calls.dids.generation();
                let route = stored_route(&app, &did).await;
                app.calls.dids.keep(&did, generation, &route);
                routed(&app, call, route);
            });
        }
    });
}

/// A DID's route as the store holds it.
async fn stored_route(app: &App, did: &str) -> Route {
    match app.store.did_route(did).await {
        Ok(Some(DidRoute::Group {
            tenant_id,
            group_no,
            skill,
        })) => Route::Group {
            tenant_id,
            group_no,
            skill,
        },
        Ok(Some(DidRoute::Forward { tenant_id, number })) => Route::Forward { tenant_id, number },
        Ok(Some(DidRoute::Reject { code, .. })) => Route::Reject { code },
        Ok(Some(DidRoute::Menu { tenant_id, menu })) => Route::Menu {
            tenant_id,
            menu: crate::menus::stored_menu(&menu),
        },
        Ok(None) => Route::Unknown,
        Err(e) => {
            tracing::error!("cannot route an inbound call: {e}");
            Route::Unavailable
        }
    }
}

/// Binds the RTP ports the route needs and gives the call its route. With
/// several nodes, a group call no agent here can take now is given the
/// node that holds idle agents of the group (the switchboard moves it
/// there), which the store is asked for in a task of its own.
fn routed(app: &App, call: seatline_sip::CallRef, route: Route) {
    if let Route::Group {
        tenant_id,
        group_no,
        skill,
    } = &route
    {
        if app.store.backend() == "postgres"
            && !app.hub.can_take(*tenant_id, group_no, skill.as_deref())
        {
            let (app, tenant_id, group_no) = (app.clone(), *tenant_id, group_no.clone());
            tokio::spawn(async move {
                let silent_since = app.cfg.cluster.silent_since(seatline_store::now_ms());
                let elsewhere = match app
                    .store
                    .node_for_group(tenant_id, &group_no, silent_since)
                    .await
                {
                    Ok(node) => node,
                    Err(e) => {
                        tracing::error!("cannot look for another node's agents: {e}");
                        None
                    }
                };
                routed_to(&app, call, route, elsewhere.as_deref());
            });
            return;
        }
    }
    routed_to(app, call, route, None)
}

fn routed_to(app: &App, call: seatline_sip::CallRef, route: Route, elsewhere: Option<&str>) {
    let ports = match route {
        Route::Group { .. } | Route::Menu { .. } => 1,
        Route::Forward { .. } => 2,
        _ => 0,
    };
    let mut rtp = Vec::with_capacity(ports);
    for _ in 0..ports {
        rtp.extend(bind_rtp(app.calls.sip_addr));
    }
    app.hub
        .route_inbound(call, route, rtp, elsewhere, Instant::now());
}

fn bind_rtp(sip: SocketAddr) -> Option<RtpPair> {
    match RtpPair::bind(sip.ip()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!("no RTP port: {e}");
            None
        }
    }
}

impl Calls {
    /// A `callOut` from a tab of this agent: reads what the policy needs and
    /// binds an RTP port; the switchboard decides. Every outcome reaches
    /// every tab as `dialStatus`.
    pub async fn call_out(&self, app: &App, seat: Seat, op: CallOut, session_ok: bool) {
        let facts = match check_callee(&op.callee, &op.country_code) {
            Ok(callee) => facts(app, seat.tenant_id, &callee).await.map_err(|e| {
                tracing::error!("cannot read the call policy: {e}");
            }),
            // The switchboard refuses it; no store read is owed.
            Err(_) => Ok(CallOutFacts::default()),
        };
        let rtp = if session_ok && facts.is_ok() {
            bind_rtp(self.sip_addr)
        } else {
            None
        };
        app.hub
            .call_out(seat.id, op, session_ok, facts, rtp, Instant::now());
    }

    pub fn hang_up(&self, app: &App, seat_id: i64) {
        app.hub.hang_up(seat_id, Instant::now());
    }

    pub fn answer(&self, app: &App, seat_id: i64, accept: bool) {
        app.hub.answer(seat_id, accept, Instant::now());
    }

    pub fn control(&self, app: &App, seat_id: i64, control: Control) {
        app.hub.control(seat_id, control, Instant::now());
    }
}

async fn facts(
    app: &App,
    tenant_id: i64,
    callee: &str,
) -> Result<CallOutFacts, seatline_store::StoreError> {
    // The counts below must see every call placed so far: the records of
    // calls the tabs already heard about may still be queued for the writer.
    app.hub.flush_writes().await;
    let p = app.store.policy(tenant_id).await?;
    // "Today" is the UTC day.
    let day_start = now_ms() - now_ms().rem_euclid(86_400_000);
    let policy = PolicyFacts {
        balance_cents: p.balance_cents,
        allowed_countries: p.allowed_countries,
        trial: p.trial,
        trial_calls_per_day: p.trial_calls_per_day,
        calls_today: if p.trial {
            app.store
                .outbound_calls_since(tenant_id, None, day_start)
                .await?
        } else {
            0
        },
        max_calls_per_callee_per_day: p.max_calls_per_callee_per_day,
        max_calls_per_callee_per_minute: p.max_calls_per_callee_per_minute,
        callee_calls_today: if p.max_calls_per_callee_per_day > 0 {
            app.store
                .outbound_calls_since(tenant_id, Some(callee), day_start)
                .await?
        } else {
            0
        },
        blacklisted: app.store.is_blacklisted(tenant_id, callee).await?,
    };
    let (owned_dids, pool_dids) = app.store.dids(tenant_id).await?;
    Ok(CallOutFacts {
        policy,
        owned_dids,
        pool_dids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forward(number: &str) -> Route {
        Route::Forward {
            tenant_id: 1,
            number: number.into(),
        }
    }

    #[test]
    fn a_did_route_read_before_a_change_is_not_kept_after_it() {
        let dids = DidRoutes::default();
        let g = dids.generation();
        dids.keep("1202", g, &forward("1"));
        assert_eq!(dids.get("1202"), Some(forward("1")));
        // A read starts, the route changes, the read ends: not kept.
        let g = dids.generation();
        dids.forget();
        assert_eq!(dids.get("1202"), None);
        dids.keep("1202", g, &forward("1"));
        assert_eq!(dids.get("1202"), None);
        // Unknown DIDs and failed reads are never kept.
        let g = dids.generation();
        dids.keep("999", g, &Route::Unknown);
        dids.keep("998", g, &Route::Unavailable);
        assert_eq!(dids.get("999"), None);
        assert_eq!(dids.get("998"), None);
        dids.keep("1202", g, &Route::Reject { code: 603 });
        assert_eq!(dids.get("1202"), Some(Route::Reject { code: 603 }));
    }
}
