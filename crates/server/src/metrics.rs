//! `GET /metrics`: the operator's view in the Prometheus text format.
//!
//! The call path's figures are the switchboard's ([`Stats`]), read in one
//! snapshot per scrape; the carrier-side RTP counts are the media workers'
//! ([`RtpCounters`]), added per call every few seconds from what they
//! already count for RTCP, never per packet. This module only renders.
//!
//! The endpoint is open unless `[metrics] bearer_token` is set; then it
//! wants `Authorization: Bearer TOKEN` (compared in constant time, never
//! logged).

use crate::errors::api_error;
use crate::App;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use seatline_switchboard::{CallDirection, Stats};
use std::sync::atomic::{AtomicU64, Ordering};

/// Carrier-side RTP packets of every call, summed over the media workers.
/// Relaxed atomics: each worker adds a call's new packets every few
/// seconds; no order between them matters.
#[derive(Debug, Default)]
pub struct RtpCounters {
    packets_in: AtomicU64,
    packets_out: AtomicU64,
    lost: AtomicU64,
}

/// What of one stream's running totals is already in the [`RtpCounters`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    packets_in: u64,
    packets_out: u32,
    lost: u64,
}

impl RtpCounters {
    /// Adds what a stream counted since `tally` was last brought up to
    /// date. A total that went back (the receiver's statistics restarted on
    /// a new stream) adds nothing and starts the tally again from there:
    /// a counter never goes down.
    pub fn catch_up(&self, tally: &mut Tally, packets_in: u64, packets_out: u32, lost: u64) {
        let add = |c: &AtomicU64, n: u64| {
            if n > 0 {
                c.fetch_add(n, Ordering::Relaxed);
            }
        };
        add(
            &self.packets_in,
            packets_in.saturating_sub(tally.packets_in),
        );
        add(
            &self.packets_out,
            u64::from(packets_out.wrapping_sub(tally.packets_out)),
        );
        add(&self.lost, lost.saturating_sub(tally.lost));
        *tally = Tally {
            packets_in,
            packets_out,
            lost: if lost < tally.lost && packets_in >= tally.packets_in {
                // Late packets made up for some counted lost: keep the high mark.
                tally.lost
            } else {
                lost
            },
        };
    }

    /// Relayed packets (a forwarded call): each came in from one carrier
    /// leg and went out to the other.
    pub fn relayed(&self, packets: u64) {
        if packets > 0 {
            self.packets_in.fetch_add(packets, Ordering::Relaxed);
            self.packets_out.fetch_add(packets, Ordering::Relaxed);
        }
    }

    /// (in, out, lost).
    pub fn get(&self) -> (u64, u64, u64) {
        (
            self.packets_in.load(Ordering::Relaxed),
            self.packets_out.load(Ordering::Relaxed),
            self.lost.load(Ordering::Relaxed),
        )
    }
}

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn counter(value: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(value);
    c
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn gauge(value: u64) -> Gauge {
    let g = Gauge::default();
    g.set(as_i64(value));
    g
}

/// Everything the server shows at one instant.
pub struct Snapshot {
    pub calls: Stats,
    /// (in, out, lost) carrier-side RTP packets.
    pub rtp: (u64, u64, u64),
    /// Tabs connected now.
    pub tabs: u64,
    /// Recording frames dropped because the recorder was behind.
    pub recording_frames_dropped: u64,
}

/// The snapshot in the Prometheus text format (version 0.0.4), every
/// metric with its `# HELP` and `# TYPE`.
pub fn render(s: &Snapshot) -> String {
    let mut reg = Registry::with_prefix("seatline");

    let in_progress = Family::<Labels, Gauge>::default();
    let started = Family::<Labels, Counter>::default();
    for d in CallDirection::ALL {
        let l = labels(&[("direction", d.label())]);
        in_progress
            .get_or_create(&l)
            .set(as_i64(s.calls.in_progress.get(d)));
        started.get_or_create(&l).inc_by(s.calls.started.get(d));
    }
    reg.register(
        "calls_in_progress",
        "Calls in progress (placed, ringing or connected), by direction",
        in_progress,
    );
    reg.register(
        "calls",
        "Calls started, by direction (its rate is calls per second)",
        started,
    );

    let responses = Family::<Labels, Counter>::default();
    for (trunk, code, n) in &s.calls.responses {
        let code = code.to_string();
        responses
            .get_or_create(&labels(&[("trunk", trunk), ("code", &code)]))
            .inc_by(*n);
    }
    reg.register(
        "sip_responses",
        "Final responses of carriers to our INVITEs, by trunk and SIP status (no answer at all counts as 408)",
        responses,
    );

    let up = Family::<Labels, Gauge>::default();
    let registered = Family::<Labels, Gauge>::default();
    for t in &s.calls.trunks {
        // Two tenants may name their trunks alike.
        let tenant = t
            .tenant_id
            .map_or_else(|| "shared".to_string(), |id| id.to_string());
        let l = labels(&[("trunk", &t.name), ("tenant", &tenant)]);
        // A trunk with several addresses: up when any is.
        let g = up.get_or_create(&l);
        g.set(g.get().max(i64::from(t.up)));
        if let Some(r) = t.registered {
            registered.get_or_create(&l).set(i64::from(r));
        }
    }
    reg.register(
        "trunk_up",
        "1 when the trunk's OPTIONS keepalive finds it (always 1 without keepalive), else 0",
        up,
    );
    reg.register(
        "trunk_registered",
        "1 while the trunk's registration is bound, else 0 (trunks that register only)",
        registered,
    );

    let rtp = Family::<Labels, Counter>::default();
    rtp.get_or_create(&labels(&[("direction", "in")]))
        .inc_by(s.rtp.0);
    rtp.get_or_create(&labels(&[("direction", "out")]))
        .inc_by(s.rtp.1);
    reg.register(
        "rtp_packets",
        "RTP packets on the carrier side, received (in) and sent (out)",
        rtp,
    );
    reg.register(
        "rtp_packets_lost",
        "RTP packets from carriers that never arrived (sequence gaps, agents' calls)",
        counter(s.rtp.2),
    );

    let agents = Family::<Labels, Gauge>::default();
    for (status, n) in &s.calls.agents {
        let name = format!("{status:?}").to_lowercase();
        agents
            .get_or_create(&labels(&[("status", &name)]))
            .set(as_i64(*n));
    }
    reg.register(
        "agents",
        "Signed-in agents by the status their tabs show (busy while ringing, in a call or in wrap-up)",
        agents,
    );
    reg.register("tabs", "Softphone tabs connected", gauge(s.tabs));
    reg.register(
        "unknown_did_calls",
        "Inbound calls to numbers no tenant owns (answered 404)",
        counter(s.calls.unknown_dids),
    );
    reg.register(
        "sip_dropped_untrusted",
        "SIP datagrams dropped because their source is no trunk's",
        counter(s.calls.dropped_untrusted),
    );
    reg.register(
        "recording_frames_dropped",
        "20 ms frames of call recordings dropped because the recorder was behind (a gap in a recording, never in a call)",
        counter(s.recording_frames_dropped),
    );
    reg.register(
        "call_outs_refused",
        "Agents' calls refused before anything was placed (policy, number, no trunk up)",
        counter(s.calls.refused_call_outs),
    );

    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_text::encode(&mut out, &reg);
    out
}

/// Is the request allowed to read the metrics?
fn authorized(app: &App, headers: &HeaderMap) -> bool {
    let Some(want) = app.cfg.metrics.bearer_token.as_deref() else {
        return true;
    };
    // The scheme's case does not matter (RFC 9110 §11.1); the token's does.
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token);
    constant_time_eq(given.as_bytes(), want.as_bytes())
}

/// Equal, in a time that does not depend on where the two differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub async fn metrics(State(app): State<App>, headers: HeaderMap) -> Response {
    if !authorized(&app, &headers) {
        let mut resp = api_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send Authorization: Bearer <metrics bearer_token>",
        );
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return resp;
    }
    let snapshot = Snapshot {
        calls: app.hub.stats(),
        rtp: app.media.rtp_counters().get(),
        tabs: app.hub.tab_count() as u64,
        recording_frames_dropped: app.recorder.dropped_frames(),
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(prometheus_text::CONTENT_TYPE),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        render(&snapshot),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_s_totals_are_added_once_and_never_taken_back() {
        let c = RtpCounters::default();
        let mut t = Tally::default();
        c.catch_up(&mut t, 100, 90, 2);
        c.catch_up(&mut t, 150, 140, 3);
        assert_eq!(c.get(), (150, 140, 3));
        // The same totals again add nothing.
        c.catch_up(&mut t, 150, 140, 3);
        assert_eq!(c.get(), (150, 140, 3));
        // Late packets lowered the loss: nothing is taken back, nor counted twice.
        c.catch_up(&mut t, 152, 141, 1);
        c.catch_up(&mut t, 160, 150, 3);
        assert_eq!(c.get(), (160, 150, 3));
        // The receiver restarted on a new stream: counting goes on from there.
        c.catch_up(&mut t, 10, 160, 0);
        c.catch_up(&mut t, 30, 170, 1);
        assert_eq!(c.get(), (180, 170, 4));
        c.relayed(5);
        assert_eq!(c.get(), (185, 175, 4));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    #[test]
    fn every_metric_has_help_and_type_and_labels_are_escaped() {
        let calls = Stats {
            responses: vec![("a\"b\\c\nd".into(), 503, 2)],
            agents: vec![(seatline_agent::Status::Idle, 3)],
            ..Default::default()
        };
        let text = render(&Snapshot {
            calls,
            rtp: (5, 6, 1),
            tabs: 2,
            recording_frames_dropped: 0,
        });
        assert!(text.contains("# HELP seatline_calls_in_progress "));
        assert!(text.contains("# TYPE seatline_calls_total counter"));
        assert!(text.contains("seatline_calls_in_progress{direction=\"forwarded\"} 0"));
        assert!(text.contains("seatline_agents{status=\"idle\"} 3"));
        assert!(text.contains("seatline_rtp_packets_total{direction=\"out\"} 6"));
        assert!(text.contains("seatline_rtp_packets_lost_total 1"));
        assert!(
            text.contains(r#"seatline_sip_responses_total{trunk="a\"b\\c\nd",code="503"} 2"#),
            "{text}"
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert_eq!(line.lines().count(), 1);
            assert!(line.starts_with("seatline_"), "{line}");
        }
    }
}
