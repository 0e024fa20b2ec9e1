//! The TOML configuration of `seatline serve --config FILE`. Every setting has
//! a default, so an empty file (or none, for `seatline demo`) is valid.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the HTTP server (pages, API, WebSocket).
    pub listen: SocketAddr,
    /// Where the SQLite database lives (and recordings, music, prompts).
    pub data_dir: PathBuf,
    /// PostgreSQL instead of SQLite, for several nodes (`[store] url`).
    pub store: StoreConfig,
    /// This node among several sharing one PostgreSQL database.
    pub cluster: ClusterConfig,
    pub sessions: SessionsConfig,
    pub embed: EmbedConfig,
    pub demo: DemoConfig,
    pub sip: SipConfig,
    pub sandbox: SandboxConfig,
    pub media: MediaConfig,
    pub calls: CallsConfig,
    pub signin: SigninConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    pub webhooks: WebhooksConfig,
    /// The global single sign-on provider (`init` with `loginMethod: 1`).
    pub sso: SsoConfig,
    /// Carrier trunks (`[[trunk]]` tables), tried in this order. None: the
    /// sandbox carrier takes every call.
    #[serde(rename = "trunk")]
    pub trunks: Vec<TrunkConfig>,
}

/// Where the call center's state is kept: SQLite in `data_dir` (the
/// default), or a PostgreSQL database shared by several nodes.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://user:password@host:port/database`; none: SQLite.
    pub url: Option<String>,
}

impl std::fmt::Debug for StoreConfig {
    /// Never the URL itself: it may hold the database's password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = if self.url.is_some() {
            "postgres"
        } else {
            "sqlite"
        };
        f.debug_struct("StoreConfig")
            .field("backend", &backend)
            .finish()
    }
}

impl StoreConfig {
    fn validate(&self) -> anyhow::Result<()> {
        if let Some(url) = &self.url {
            anyhow::ensure!(
                url.starts_with("postgres://") || url.starts_with("postgresql://"),
                "store.url must be a postgres:// URL (without it, SQLite in data_dir is used)"
            );
        }
        Ok(())
    }
}

/// This node among several on one PostgreSQL database (issue 12). On
/// SQLite there is one node and none of this is used.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// The node's name, its own among the nodes sharing the database: the
    /// records of the calls it carries bear it, and a restart under the
    /// same name takes its calls back.
    pub node: String,
    /// How often the node notes in the database that it lives.
    pub heartbeat_ms: u64,
    /// A node silent this long is taken for dead by the others: one of them
    /// closes its calls (BYE to the carrier, the record ended with 800).
    pub dead_after_ms: u64,
    /// NATS (`nats://host:4222`), where the nodes tell each other what
    /// they changed (DID routes, sign-outs); none: nodes learn it only
    /// from the database, at their next read.
    pub nats: Option<String>,
    /// The host name or address the other nodes reach this one at: its
    /// WebSocket (tabs opened on other nodes are relayed to the node that
    /// holds the agent) and its SIP (inbound calls are redirected to the
    /// node that holds an idle agent). None: the address it listens on,
    /// which must then not be a wildcard one.
    pub advertise: Option<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node: "local".into(),
            heartbeat_ms: 1_000,
            dead_after_ms: 3_000,
            nats: None,
            advertise: None,
        }
    }
}

impl std::fmt::Debug for ClusterConfig {
    /// The NATS URL without its credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("node", &self.node)
            .field("heartbeat_ms", &self.heartbeat_ms)
            .field("dead_after_ms", &self.dead_after_ms)
            .field("nats", &self.nats.as_deref().map(crate::redact::url))
            .field("advertise", &self.advertise)
            .finish()
    }
}

impl ClusterConfig {
    /// The beat before which a node counts as silent, at `now_ms`.
    pub fn silent_since(&self, now_ms: i64) -> i64 {
        now_ms - i64::try_from(self.dead_after_ms).unwrap_or(60_000)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=64).contains(&self.node.len())
                && self
                    .node
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "cluster.node must be 1 to 64 letters, digits, '-', '_' or '.'"
        );
        anyhow::ensure!(
            (100..=10_000).contains(&self.heartbeat_ms),
            "cluster.heartbeat_ms must be 100 to 10000"
        );
        anyhow::ensure!(
            self.dead_after_ms >= 2 * self.heartbeat_ms && self.dead_after_ms <= 60_000,
            "cluster.dead_after_ms must be at least twice cluster.heartbeat_ms, at most 60000"
        );
        if let Some(url) = &self.nats {
            anyhow::ensure!(
                url.starts_with("nats://") || url.starts_with("tls://"),
                "cluster.nats must be a nats:// (or tls://) URL"
            );
        }
        if let Some(host) = &self.advertise {
            anyhow::ensure!(
                (1..=253).contains(&host.len())
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b)),
                "cluster.advertise must be a host name or an IP address"
            );
        }
        Ok(())
    }
}

/// How a trunk wants the caller ID written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallerFormat {
    #[default]
    E164,
    Plus,
    National,
}

/// How SIP reaches a trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
    Tls,
}

/// One carrier trunk.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// Unique; written in call records and logs.
    pub name: String,
    /// The carrier: `sip:HOST[:PORT]` (5060 by default) or `sips:` (5061).
    /// A host name is resolved when Seatline starts; without a port, with
    /// SRV first (RFC 3263, see `dns.rs`).
    pub uri: String,
    #[serde(default)]
    pub transport: Transport,
    /// TLS only: a PEM file of the certificates that may sign the
    /// carrier's; default: the Mozilla roots.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// Digest credentials, answering the carrier's 401/407 challenges.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Register `username` with the carrier (at the uri's address, for
    /// `sip:USERNAME@DOMAIN`); the trunk carries calls only while registered.
    #[serde(default)]
    pub register: bool,
    /// The registration's domain; default: the uri's host.
    #[serde(default)]
    pub domain: Option<String>,
    /// Seconds of registration asked for (refreshed at four fifths of what
    /// the carrier grants).
    #[serde(default = "default_register_expires")]
    pub register_expires_secs: u32,
    /// Who may send calls for this trunk: IPs, IP:ports or CIDR networks.
    /// Empty: the trunk's own address.
    #[serde(default)]
    pub inbound_from: Vec<String>,
    /// Stripped from the start of the called number (E.164 digits) when
    /// there, e.g. "1" for a carrier that wants US numbers national.
    #[serde(default)]
    pub strip_prefix: String,
    /// Then put in front of it, e.g. "00" or "+".
    #[serde(default)]
    pub add_prefix: String,
    /// Inbound: stripped from the start of the number this carrier calls
    /// (after a leading +) when there, e.g. "0" for a national trunk
    /// prefix.
    #[serde(default)]
    pub did_strip_prefix: String,
    /// Inbound: then put in front of it, making it the DID as stored
    /// (E.164 digits), e.g. "1" for a carrier that sends US DIDs national.
    #[serde(default)]
    pub did_add_prefix: String,
    /// The caller ID's format toward the carrier: "e164" (12025550170, the
    /// default), "plus" (+12025550170) or "national" (2025550170).
    #[serde(default)]
    pub caller_format: CallerFormat,
    /// Seconds between OPTIONS pings; a trunk whose ping goes unanswered is
    /// skipped until one is answered. 0 (the default): no pings.
    #[serde(default)]
    pub keepalive_secs: u64,
    /// "sdes": media to and from this carrier is SRTP keyed in the SDP
    /// (RFC 4568); "off" (the default): plain RTP offered.
    #[serde(default)]
    pub srtp: SrtpMode,
}

/// A trunk's `srtp` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SrtpMode {
    #[default]
    Off,
    Sdes,
}

/// A trunk uri taken apart (see [`TrunkConfig::uri_parts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriParts {
    pub host: String,
    /// The uri's port, if it gives one.
    pub port: Option<u16>,
    /// 5060, or 5061 for `sips:`.
    pub default_port: u16,
    pub sips: bool,
}

fn default_register_expires() -> u32 {
    3600
}

impl TrunkConfig {
    /// An unauthenticated UDP trunk to `uri`, trusting only its address:
    /// what `seatline demo --trunk URI` makes.
    pub fn udp(name: &str, uri: &str) -> Self {
        Self {
            name: name.into(),
            uri: uri.into(),
            transport: Transport::Udp,
            tls_ca: None,
            username: None,
            password: None,
            register: false,
            domain: None,
            register_expires_secs: default_register_expires(),
            inbound_from: Vec::new(),
            strip_prefix: String::new(),
            add_prefix: String::new(),
            did_strip_prefix: String::new(),
            did_add_prefix: String::new(),
            caller_format: CallerFormat::E164,
            keepalive_secs: 0,
            srtp: SrtpMode::Off,
        }
    }

    /// The host and port of `uri` (the default port when it gives none).
    pub fn host_port(&self) -> anyhow::Result<(String, u16)> {
        let uri = self.uri_parts()?;
        Ok((uri.host, uri.port.unwrap_or(uri.default_port)))
    }

    /// What `uri` says about where to send: its host (no brackets), its
    /// port if it gives one (no port: a host name is looked up with SRV),
    /// and the scheme's default port.
    pub fn uri_parts(&self) -> anyhow::Result<UriParts> {
        let bad = || {
            anyhow::anyhow!(
                "trunk {:?}: uri must be sip:HOST[:PORT] or sips:HOST[:PORT], got {:?}",
                self.name,
                self.uri
            )
        };
        let (rest, sips) = if let Some(r) = self.uri.strip_prefix("sip:") {
            (r, false)
        } else if let Some(r) = self.uri.strip_prefix("sips:") {
            (r, true)
        } else {
            return Err(bad());
        };
        let parts = |host: &str, port| UriParts {
            host: host.to_string(),
            port,
            default_port: if sips { 5061 } else { 5060 },
            sips,
        };
        // A user part and URI parameters say nothing about where to send.
        let rest = rest.rsplit('@').next().unwrap_or(rest);
        let rest = rest.split(';').next().unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', ' ']) {
            return Err(bad());
        }
        if let Some(v6) = rest.strip_prefix('[') {
            let (host, tail) = v6.split_once(']').ok_or_else(bad)?;
            let port = match tail.strip_prefix(':') {
                Some(p) => Some(p.parse().map_err(|_| bad())?),
                None if tail.is_empty() => None,
                None => return Err(bad()),
            };
            return Ok(parts(host, port));
        }
        match rest.split_once(':') {
            Some((h, p)) if !h.is_empty() => Ok(parts(h, Some(p.parse().map_err(|_| bad())?))),
            Some(_) => Err(bad()),
            None => Ok(parts(rest, None)),
        }
    }

    /// What can be checked without the network.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.name.trim().is_empty() || self.name.len() > 64 {
            anyhow::bail!("a trunk needs a name of 1 to 64 characters");
        }
        self.host_port()?;
        if self.tls_ca.is_some() && self.transport != Transport::Tls {
            anyhow::bail!("trunk {:?}: tls_ca is for transport = \"tls\"", self.name);
        }
        if self.register && self.username.is_none() {
            anyhow::bail!(
                "trunk {:?}: register = true needs a username (and password)",
                self.name
            );
        }
        if !(60..=86_400).contains(&self.register_expires_secs) && self.register {
            anyhow::bail!(
                "trunk {:?}: register_expires_secs must be 60 to 86400",
                self.name
            );
        }
        if self.username.is_some() != self.password.is_some() {
            anyhow::bail!("trunk {:?}: username and password go together", self.name);
        }
        let digits = |p: &str| p.len() <= 8 && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(&self.strip_prefix) {
            anyhow::bail!("trunk {:?}: strip_prefix is up to 8 digits", self.name);
        }
        if !digits(&self.did_strip_prefix) || !digits(&self.did_add_prefix) {
            anyhow::bail!(
                "trunk {:?}: did_strip_prefix and did_add_prefix are up to 8 digits",
                self.name
            );
        }
        if !digits(
            self.add_prefix
                .strip_prefix('+')
                .unwrap_or(&self.add_prefix),
        ) {
            anyhow::bail!(
                "trunk {:?}: add_prefix is up to 8 digits, or + and digits",
                self.name
            );
        }
        for s in &self.inbound_from {
            seatline_sip::TrustedSource::parse(s)
                .map_err(|e| anyhow::anyhow!("trunk {:?}: inbound_from: {e}", self.name))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SigninConfig {
    /// Failed sign-ins allowed per account (email, known or not) in a window;
    /// beyond, the account's sign-ins get 429 until the window ends. 0: no limit.
    pub max_failures_per_account: u32,
    /// Failed sign-ins allowed per client address (IPv6: per /64) in a window.
    /// 0: no limit (behind a reverse proxy every client has its address).
    pub max_failures_per_address: u32,
    /// The counting window, in seconds; a successful sign-in clears its account.
    pub window_secs: u64,
    /// Sign-ins allowed to wait for a password-hashing slot (there is one per
    /// core); beyond, 503 `busy` at once.
    pub max_waiting: usize,
}

impl Default for SigninConfig {
    fn default() -> Self {
        Self {
            max_failures_per_account: 5,
            max_failures_per_address: 20,
            window_secs: 60,
            max_waiting: 64,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallsConfig {
    /// When every tab of an agent is gone (closed, not reloaded) for this
    /// long, the agent's call ends (agent-states rule 10). A reload comes
    /// back well within it and keeps the call.
    pub no_tab_grace_secs: u64,
    /// A connected call whose carrier sends no RTP for this long ends with
    /// dialStatus 800 and a BYE (the carrier is gone).
    pub rtp_timeout_secs: u64,
    /// How long an inbound call rings at one agent before the next is tried.
    pub ring_timeout_secs: u64,
    /// Refused `callOut`s recorded per agent per minute; more are refused
    /// the same way but only counted.
    pub refusals_per_minute: u32,
}

impl Default for CallsConfig {
    fn default() -> Self {
        Self {
            no_tab_grace_secs: 10,
            rtp_timeout_secs: 30,
            ring_timeout_secs: 20,
            refusals_per_minute: 30,
        }
    }
}

/// How call records are delivered to the tenants' webhooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// The wait after a failed first attempt; it doubles at each failure...
    pub first_retry_ms: u64,
    /// ...up to this.
    pub max_retry_ms: u64,
    /// Retries stop this long after the call ended (the delivery is marked
    /// failed in the log).
    pub give_up_after_secs: u64,
    /// An attempt without an answer this long has failed.
    pub timeout_ms: u64,
    /// Attempts in flight at once, over every tenant.
    pub concurrency: usize,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            first_retry_ms: 2_000,
            max_retry_ms: 3_600_000,
            give_up_after_secs: 3 * 86_400,
            timeout_ms: 10_000,
            concurrency: 16,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// UDP address for every agent's WebRTC audio (one port for all).
    pub listen: SocketAddr,
    /// The address browsers reach that port at (the ICE candidate), when
    /// it differs from `listen`'s, e.g. the server's public IP.
    pub public_ip: Option<std::net::IpAddr>,
    /// Media worker threads, each with its own WebRTC port (`listen`'s port
    /// plus its index, when that is not 0). 0: one per core.
    pub workers: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_ip: None,
            workers: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// UDP address of our SIP trunk side (port 0: any free port).
    pub listen: SocketAddr,
    /// DNS servers (`IP:PORT`, or `IP` for port 53) that resolve trunk host
    /// names. Empty (the default): the ones in `/etc/resolv.conf`.
    pub dns_servers: Vec<String>,
    /// TCP address where carriers may connect over TLS (`sips:`); needs
    /// `tls_cert` and `tls_key`. None (the default): no TLS listener.
    pub tls_listen: Option<SocketAddr>,
    /// PEM file of our certificate chain for `tls_listen`, leaf first.
    pub tls_cert: Option<PathBuf>,
    /// PEM file of the private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5060)),
            dns_servers: Vec::new(),
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl SipConfig {
    /// The TLS listener's settings are all given or none is.
    pub fn validate_tls(&self) -> anyhow::Result<()> {
        match (&self.tls_listen, &self.tls_cert, &self.tls_key) {
            (None, None, None) | (Some(_), Some(_), Some(_)) => Ok(()),
            (Some(_), _, _) => anyhow::bail!("sip.tls_listen needs sip.tls_cert and sip.tls_key"),
            (None, _, _) => anyhow::bail!("sip.tls_cert and sip.tls_key are for sip.tls_listen"),
        }
    }

    /// `dns_servers` read: each an IP and port (53 unless given), at most 8.
    pub fn dns_servers(&self) -> anyhow::Result<Vec<SocketAddr>> {
        if self.dns_servers.len() > 8 {
            anyhow::bail!("sip.dns_servers: at most 8 servers");
        }
        self.dns_servers
            .iter()
            .map(|s| {
                let addr = s
                    .parse::<SocketAddr>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(|ip| (ip, 53).into()))
                    .map_err(|_| {
                        anyhow::anyhow!("sip.dns_servers: {s:?} is not IP:PORT or an IP")
                    })?;
                if addr.port() == 0 {
                    anyhow::bail!("sip.dns_servers: {s:?} has port 0");
                }
                Ok(addr)
            })
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// UDP address of the sandbox carrier, started when no trunk is set.
    pub listen: SocketAddr,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5070)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsConfig {
    /// A softphone session ends after this long without activity (sign-in,
    /// page load, a command). Default 5 hours.
    pub idle_timeout_secs: u64,
    /// How often idle sessions are looked for, in ms. Unset: a 200th of the
    /// idle timeout, between 250 ms and 5 s. (Tests set it to catch a
    /// session that has expired but not been swept yet.)
    pub sweep_interval_ms: Option<u64>,
}

/// `GET /metrics` (Prometheus).
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// When set, `/metrics` wants `Authorization: Bearer <this>` (401
    /// otherwise). Unset: open to anyone who reaches the HTTP listener,
    /// so firewall it.
    pub bearer_token: Option<String>,
}

/// Never prints the token (a config may end up in a log line).
impl std::fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsConfig")
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl MetricsConfig {
    fn validate(&self) -> anyhow::Result<()> {
        if let Some(t) = &self.bearer_token {
            if !(16..=512).contains(&t.len()) || !t.bytes().all(|b| b.is_ascii_graphic()) {
                anyhow::bail!(
                    "metrics.bearer_token must be 16 to 512 visible ASCII characters (no spaces)"
                );
            }
        }
        Ok(())
    }
}

/// How log lines are written (to standard output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, its fields at the top level (`call_id` ...).
    Json,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// "text" (the default) or "json"; `seatline --log-format` overrides it.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedConfig {
    /// Origins of the CRM pages allowed to embed and drive the softphone,
    /// e.g. `["https://crm.example.com"]`. Empty: any origin (the vendor's
    /// behaviour). When set, the softphone ignores messages from other
    /// origins, posts only to the embedding one, and the page may be framed
    /// only by them (CSP `frame-ancestors`).
    pub allowed_origins: Vec<String>,
}

/// The global OpenID Connect provider: used by the softphone's single
/// sign-on when the iframe names no tenant, or a tenant with no provider of
/// its own (`PUT /api/v1/admin/sso`). No `client_id`: single sign-on is off.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SsoConfig {
    /// The issuer; its discovery document is at
    /// `ISSUER/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Email domains whose users may sign in (`["example.com"]`); empty: any.
    pub allowed_domains: Vec<String>,
    /// Where browsers reach Seatline (`https://phone.example.com`): the
    /// redirect URI registered with the provider is `PUBLIC_URL/sso/callback`.
    /// Unset: taken from the request's `Host` (`http` for a loopback host,
    /// else `https`).
    pub public_url: Option<String>,
}

impl Default for SsoConfig {
    fn default() -> Self {
        Self {
            issuer: "https://accounts.google.com".into(),
            client_id: None,
            client_secret: None,
            allowed_domains: Vec::new(),
            public_url: None,
        }
    }
}

/// Never the secret, which `Debug` would otherwise print.
impl std::fmt::Debug for SsoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret_set", &self.client_secret.is_some())
            .field("allowed_domains", &self.allowed_domains)
            .field("public_url", &self.public_url)
            .finish()
    }
}

impl SsoConfig {
    fn validate(&self) -> anyhow::Result<()> {
        if self.client_id.is_none() {
            return Ok(());
        }
        let settings = crate::sso::Settings {
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone().unwrap_or_default(),
            client_secret: self.client_secret.clone(),
            allowed_domains: self.allowed_domains.clone(),
        };
        settings
            .check()
            .map_err(|e| anyhow::anyhow!("[sso]: {e}"))?;
        if let Some(u) = &self.public_url {
            crate::sso::check_public_url(u)
                .map_err(|e| anyhow::anyhow!("[sso] public_url: {e}"))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoConfig {
    /// Seed the demo tenant when the database is new.
    pub seed: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./seatline-data"),
            store: StoreConfig::default(),
            cluster: ClusterConfig::default(),
            sessions: SessionsConfig::default(),
            embed: EmbedConfig::default(),
            demo: DemoConfig::default(),
            sip: SipConfig::default(),
            sandbox: SandboxConfig::default(),
            media: MediaConfig::default(),
            calls: CallsConfig::default(),
            signin: SigninConfig::default(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
            webhooks: WebhooksConfig::default(),
            sso: SsoConfig::default(),
            trunks: Vec::new(),
        }
    }
}

impl Default for SessionsConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 5 * 3600,
            sweep_interval_ms: None,
        }
    }
}

impl Config {
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        let cfg: Config = toml::from_str(text)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what the types cannot: every trunk, unique trunk names, the
    /// DNS servers.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.sip.dns_servers()?;
        self.sip.validate_tls()?;
        self.metrics.validate()?;
        self.sso.validate()?;
        self.store.validate()?;
        self.cluster.validate()?;
        let mut names = std::collections::HashSet::new();
        for t in &self.trunks {
            t.validate()?;
            if !names.insert(t.name.as_str()) {
                anyhow::bail!("two trunks are named {:?}", t.name);
            }
        }
        Ok(())
    }

    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        Self::from_toml(&text)
            .map_err(|e| anyhow::anyhow!("invalid config {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_gives_the_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.sessions.idle_timeout_secs, 18_000);
        assert!(c.embed.allowed_origins.is_empty());
        assert!(!c.demo.seed);
        assert_eq!(c.log.format, LogFormat::Text);
        assert!(c.metrics.bearer_token.is_none());
    }

    #[test]
    fn metrics_and_log_options_parse_and_bad_ones_are_refused() {
        let c = Config::from_toml(
            "[metrics]\nbearer_token = \"0123456789abcdef-x\"\n[log]\nformat = \"json\"\n",
        )
        .unwrap();
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(
            c.metrics.bearer_token.as_deref(),
            Some("0123456789abcdef-x")
        );
        assert!(
            !format!("{c:?}").contains("0123456789abcdef"),
            "the token never shows in Debug"
        );
        for (bad, says) in [
            ("[log]\nformat = \"xml\"", "unknown variant"),
            ("[log]\nlevel = \"debug\"", "unknown field"),
            ("[metrics]\nbearer_token = \"short\"", "16 to 512"),
            (
                "[metrics]\nbearer_token = \"with a space in it 0123\"",
                "16 to 512",
            ),
        ] {
            let err = Config::from_toml(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn the_example_file_parses_and_unknown_keys_are_refused() {
        let c = Config::from_toml(include_str!("../../../seatline.example.toml")).unwrap();
        assert_eq!(
            c.embed.allowed_origins,
            vec!["https://crm.example.com".to_string()]
        );
        assert!(Config::from_toml("lisen = \"1.2.3.4:1\"").is_err());
    }

    #[test]
    fn trunks_parse_in_order_and_bad_ones_are_refused_with_their_name() {
        let c = Config::from_toml(
            r#"
[[trunk]]
name = "primary"
uri = "sip:127.0.0.1:5080"
username = "acme"
password = "pw"
inbound_from = ["127.0.0.1", "10.0.0.0/8"]
keepalive_secs = 30

[[trunk]]
name = "backup"
uri = "sips:carrier.example"
srtp = "sdes"
"#,
        )
        .unwrap();
        assert_eq!(c.trunks.len(), 2);
        assert_eq!(c.trunks[0].name, "primary");
        assert_eq!(c.trunks[0].transport, Transport::Udp);
        assert_eq!(
            (c.trunks[0].srtp, c.trunks[1].srtp),
            (SrtpMode::Off, SrtpMode::Sdes)
        );
        assert_eq!(c.trunks[0].host_port().unwrap(), ("127.0.0.1".into(), 5080));
        assert_eq!(
            c.trunks[1].host_port().unwrap(),
            ("carrier.example".into(), 5061)
        );
        assert_eq!(
            TrunkConfig::udp("t", "sip:12025550100@[::1]:5070;transport=udp")
                .host_port()
                .unwrap(),
            ("::1".into(), 5070)
        );
        for (bad, says) in [
            ("name = \"x\"\nuri = \"http://a\"", "uri must be"),
            ("name = \"x\"\nuri = \"sip:a:notaport\"", "uri must be"),
            (
                "name = \"x\"\nuri = \"sip:a\"\ntls_ca = \"/x.pem\"",
                "is for transport",
            ),
            (
                "name = \"x\"\nuri = \"sip:a\"\nsrtp = \"dtls\"",
                "unknown variant",
            ),
            (
                "name = \"x\"\nuri = \"sip:a\"\ntransport = \"sctp\"",
                "unknown variant",
            ),
            (
                "name = \"x\"\nuri = \"sip:a\"\nusername = \"u\"",
                "go together",
            ),
            (
                "name = \"x\"\nuri = \"sip:a\"\ninbound_from = [\"nope\"]",
                "inbound_from",
            ),
            ("name = \"\"\nuri = \"sip:a\"", "needs a name"),
            (
                "name = \"x\"\nuri = \"sip:a\"\nregister = true",
                "needs a username",
            ),
            ("name = \"x\"\nuri = \"sip:a\"\nport = 5", "unknown field"),
            (
                "name = \"x\"\nuri = \"sip:a\"\nadd_prefix = \"0x\"",
                "add_prefix",
            ),
            (
                "name = \"x\"\nuri = \"sip:a\"\nstrip_prefix = \"+1\"",
                "strip_prefix",
            ),
            (
                "name = \"x\"\nuri = \"sip:a\"\ndid_add_prefix = \"+1\"",
                "did_add_prefix",
            ),
            (
                "name = \"x\"\nuri = \"sip:a\"\ndid_strip_prefix = \"123456789\"",
                "did_strip_prefix",
            ),
            (
                "name = \"x\"\nuri = \"sip:a\"\ncaller_format = \"intl\"",
                "unknown variant",
            ),
        ] {
            let err = Config::from_toml(&format!("[[trunk]]\n{bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let twice =
            "[[trunk]]\nname = \"a\"\nuri = \"sip:h\"\n[[trunk]]\nname = \"a\"\nuri = \"sip:i\"\n";
        assert!(Config::from_toml(twice)
            .unwrap_err()
            .to_string()
            .contains("two trunks"));
    }

    #[test]
    fn dns_servers_are_ip_and_port_and_a_bad_one_is_refused_at_load() {
        let c = Config::from_toml("[sip]\ndns_servers = [\"127.0.0.1:5353\", \"::1\"]").unwrap();
        assert_eq!(
            c.sip.dns_servers().unwrap(),
            vec![
                "127.0.0.1:5353".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        assert!(Config::default().sip.dns_servers().unwrap().is_empty());
        let nine: Vec<String> = (1..=9).map(|i| format!("\"10.0.0.{i}\"")).collect();
        let nine = format!("[{}]", nine.join(", "));
        for (bad, says) in [
            ("[\"ns.example:53\"]", "is not IP:PORT"),
            ("[\"127.0.0.1:0\"]", "port 0"),
            (nine.as_str(), "at most 8"),
            ("\"127.0.0.1:53\"", "invalid type"),
        ] {
            let err = Config::from_toml(&format!("[sip]\ndns_servers = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn a_tls_listener_needs_its_certificate_and_key_and_they_need_it() {
        let c = Config::from_toml(
            "[sip]\ntls_listen = \"127.0.0.1:5061\"\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"",
        )
        .unwrap();
        assert_eq!(c.sip.tls_listen, Some("127.0.0.1:5061".parse().unwrap()));
        assert!(Config::default().sip.tls_listen.is_none());
        for (bad, says) in [
            ("tls_listen = \"127.0.0.1:5061\"", "needs sip.tls_cert"),
            (
                "tls_listen = \"127.0.0.1:5061\"\ntls_cert = \"/c.pem\"",
                "needs sip.tls_cert",
            ),
            (
                "tls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"",
                "are for sip.tls_listen",
            ),
            ("tls_listen = \"nowhere\"", "invalid socket address"),
        ] {
            let err = Config::from_toml(&format!("[sip]\n{bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn uri_parts_say_whether_the_uri_gave_a_port() {
        let parts = |uri: &str| TrunkConfig::udp("t", uri).uri_parts().unwrap();
        let p = parts("sip:carrier.test");
        assert_eq!(
            (p.host.as_str(), p.port, p.default_port, p.sips),
            ("carrier.test", None, 5060, false)
        );
        let p = parts("sips:carrier.test");
        assert_eq!((p.port, p.default_port, p.sips), (None, 5061, true));
        assert_eq!(
            parts("sip:acme@carrier.test:5080;transport=udp").port,
            Some(5080)
        );
        assert_eq!(parts("sip:[2001:db8::1]").host, "2001:db8::1");
        assert_eq!(parts("sip:[2001:db8::1]").port, None);
    }
}
