//! The TOML configuration of `seatline serve --config FILE`. Every setting has
//! a default, so an empty file (or none, for `seatline demo`) is valid.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the HTTP server (pages, API, WebSocket).
    pub listen: SocketAddr,
    /// Where the SQLite database lives.
    pub data_dir: PathBuf,
    pub sessions: SessionsConfig,
    pub embed: EmbedConfig,
    pub demo: DemoConfig,
    pub sip: SipConfig,
    pub sandbox: SandboxConfig,
    pub media: MediaConfig,
    pub calls: CallsConfig,
    pub signin: SigninConfig,
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
    /// The carrier's SIP address. Unset: calls go to the sandbox carrier.
    pub trunk: Option<SocketAddr>,
}

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5060)),
            trunk: None,
        }
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
            sessions: SessionsConfig::default(),
            embed: EmbedConfig::default(),
            demo: DemoConfig::default(),
            sip: SipConfig::default(),
            sandbox: SandboxConfig::default(),
            media: MediaConfig::default(),
            calls: CallsConfig::default(),
            signin: SigninConfig::default(),
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
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        let cfg: Config = toml::from_str(text)?;
        Ok(cfg)
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
}
