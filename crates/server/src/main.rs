//! `seatline`: the call center in one binary.

use clap::{Parser, Subcommand, ValueEnum};
use seatline_server::config::{Config, LogFormat, TrunkConfig};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "seatline",
    version,
    about = "Seatline: a self-hosted contact center with an NXLink-compatible embeddable softphone"
)]
struct Cli {
    /// How log lines are written: text, or one JSON object per line.
    /// Overrides the config file's `[log] format`.
    #[arg(long, global = true, value_name = "FORMAT")]
    log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(a: LogFormatArg) -> Self {
        match a {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

/// What the command line asks for, once its config is read.
enum Plan {
    /// Run the server (`true`: the demo).
    Serve(Box<Config>, bool),
    /// `seatline admin ...`.
    Admin(
        PathBuf,
        Option<String>,
        Option<String>,
        seatline_server::admin_cli::AdminCommand,
    ),
    /// `seatline sandbox call`.
    SandboxCall {
        to: String,
        from: String,
        other: String,
        server: String,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run everything on embedded defaults, with the demo tenant, and print the demo page's URL.
    Demo {
        /// HTTP address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Data directory (SQLite).
        #[arg(long, default_value = "./seatline-data")]
        data_dir: PathBuf,
        /// Optional TOML file for the other settings (see seatline.example.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Send calls to this carrier instead of the sandbox: one
        /// unauthenticated UDP trunk, trusted for inbound calls from that
        /// host:port. Replaces the config file's trunks.
        #[arg(long, value_name = "sip:HOST:PORT")]
        trunk: Option<String>,
        /// Where Seatline takes SIP (UDP) [default: 127.0.0.1:5060, or the
        /// config file's sip.listen].
        #[arg(long, value_name = "ADDR")]
        sip_listen: Option<SocketAddr>,
    },
    /// Run for production from a TOML configuration file.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Administration for scripts, on a data directory or through a running
    /// server (--server, the token in SEATLINE_TOKEN): tenants, groups,
    /// users and seats, DIDs, trunks, queues, skills. One JSON object per line.
    Admin {
        /// Data directory (SQLite).
        #[arg(long, default_value = "./seatline-data")]
        data_dir: PathBuf,
        /// The server's configuration file: its store (`data_dir`, or
        /// `[store] url` for PostgreSQL) instead of --data-dir.
        #[arg(long, conflicts_with = "data_dir")]
        config: Option<PathBuf>,
        /// A running server's URL (e.g. http://127.0.0.1:8080): the
        /// commands go through its admin API instead.
        #[arg(long)]
        server: Option<String>,
        #[command(subcommand)]
        command: seatline_server::admin_cli::AdminCommand,
    },
    /// The sandbox carrier of a running Seatline.
    Sandbox {
        #[command(subcommand)]
        command: SandboxCommand,
    },
}

#[derive(Subcommand)]
enum SandboxCommand {
    /// Place an inbound call from the sandbox carrier to one of the tenant's DIDs.
    Call {
        /// The DID called, e.g. 12025550170.
        #[arg(long)]
        to: String,
        /// The customer's number.
        #[arg(long, default_value = "12025550199")]
        from: String,
        /// Custom data the agent receives as `other` (often JSON).
        #[arg(long, default_value = "")]
        other: String,
        /// The running Seatline.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        server: String,
    },
}

/// POSTs JSON to a plain-HTTP Seatline on loopback; returns status and body.
async fn post_json(
    server: &str,
    path: &str,
    body: &serde_json::Value,
) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = server
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("--server must be http://host:port"))?;
    let host = host.trim_end_matches('/');
    let mut s = tokio::net::TcpStream::connect(host).await?;
    let body = body.to_string();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).await?;
    let code = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((code, body))
}

/// Sets up the log lines: `RUST_LOG` filters (default: info), `format`
/// shapes them. Every line goes to standard output.
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn".into())
        // At trace, the WebSocket library logs every frame it receives, and
        // a tab's first frame carries its session token: never below debug,
        // whatever RUST_LOG says (no secret in any log line).
        .add_directive("tungstenite=debug".parse().expect("a valid directive"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => logs.init(),
        // One object per line, the event's fields (call_id ...) at its top
        // level, where a log shipper looks for them.
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// The command line and its config file, read before anything logs (the
/// config may choose the log format).
fn plan(command: Command) -> anyhow::Result<Plan> {
    Ok(match command {
        Command::Demo {
            listen,
            data_dir,
            config,
            trunk,
            sip_listen,
        } => {
            let mut cfg = match config {
                Some(path) => Config::load(&path)?,
                None => Config::default(),
            };
            if let Some(uri) = trunk {
                cfg.trunks = vec![TrunkConfig::udp("trunk", &uri)];
            }
            if let Some(addr) = sip_listen {
                cfg.sip.listen = addr;
            }
            cfg.validate()?;
            cfg.listen = listen;
            cfg.data_dir = data_dir;
            cfg.demo.seed = true;
            Plan::Serve(Box::new(cfg), true)
        }
        Command::Serve { config } => Plan::Serve(Box::new(Config::load(&config)?), false),
        Command::Admin {
            data_dir,
            config,
            server,
            command,
        } => match config {
            Some(path) => {
                let cfg = Config::load(&path)?;
                Plan::Admin(cfg.data_dir, cfg.store.url, server, command)
            }
            None => Plan::Admin(data_dir, None, server, command),
        },
        Command::Sandbox {
            command:
                SandboxCommand::Call {
                    to,
                    from,
                    other,
                    server,
                },
        } => Plan::SandboxCall {
            to,
            from,
            other,
            server,
        },
    })
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let plan = match plan(cli.command) {
        // Administration prints JSON lines only: no log lines among them.
        Ok(Plan::Admin(dir, url, server, command)) => {
            return admin(&dir, url.as_deref(), server, command)
        }
        other => other,
    };
    let format = cli
        .log_format
        .map(LogFormat::from)
        .or(match &plan {
            Ok(Plan::Serve(cfg, _)) => Some(cfg.log.format),
            _ => None,
        })
        .unwrap_or_default();
    init_logs(format);
    let result = plan.and_then(|plan| {
        tokio::runtime::Runtime::new()?.block_on(run(plan, format == LogFormat::Json))
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // In the logs' own format: a JSON log stays all JSON.
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `seatline admin ...`: its lines on standard output, or the reason it
/// was refused on standard error (exit status 1).
fn admin(
    dir: &std::path::Path,
    url: Option<&str>,
    server: Option<String>,
    command: seatline_server::admin_cli::AdminCommand,
) -> std::process::ExitCode {
    let password = || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|rt| {
            rt.block_on(async {
                match server {
                    Some(server) => {
                        let token = std::env::var("SEATLINE_TOKEN").unwrap_or_default();
                        seatline_server::admin_cli::run_remote(&server, &token, command, password)
                            .await
                    }
                    None => seatline_server::admin_cli::run(url, dir, command, password).await,
                }
            })
        });
    match result {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("seatline admin: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(plan: Plan, json: bool) -> anyhow::Result<()> {
    // What a person at the terminal reads; with JSON logs, a log line too.
    let say = |what: &str| {
        if json {
            tracing::info!("{what}");
        } else {
            println!("{what}");
        }
    };
    let (cfg, demo) = match plan {
        Plan::Serve(cfg, demo) => (*cfg, demo),
        Plan::Admin(..) => anyhow::bail!("administration runs without a server"),
        Plan::SandboxCall {
            to,
            from,
            other,
            server,
        } => {
            let body = serde_json::json!({"to": to, "from": from, "other": other});
            let (code, text) = post_json(&server, "/api/v1/sandbox/calls", &body).await?;
            if code == 202 {
                say(&format!("the sandbox carrier is calling {to} from {from}"));
                return Ok(());
            }
            anyhow::bail!("the server answered {code}: {text}");
        }
    };
    let running = seatline_server::start(cfg).await?;
    let base = format!("http://{}", running.addr);
    if demo {
        say("Seatline demo is running.");
        say(&format!("  Demo CRM page: {base}/demo"));
        say(&format!("  Softphone:     {base}/admin/#/nxcc"));
        if json {
            // A log line never carries a password, not even the demo's.
            say("  Sign in as agent1@demo.local (or agent2@demo.local), password in the README.");
        } else {
            say("  Sign in as agent1@demo.local / demo1234 (or agent2@demo.local).");
        }
    } else {
        say(&format!("Seatline is listening on {base}"));
    }
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut task = running.task;
    tokio::select! {
        res = &mut task => { res??; }
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = usr1.recv() => {
            // Drain: the calls in progress run to their end, then exit
            // (SIGTERM meanwhile ends them at once).
            say("draining: no new calls; stopping when the calls in progress have ended");
            tokio::select! {
                _ = seatline_server::drain(&running.app) => {
                    say("drained");
                    return Ok(());
                }
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
    }
    // No call outlives the server: every call ends with a BYE to the carrier
    // and code 5 to the tabs, and every record and status is written first.
    say("stopping");
    seatline_server::stop(&running.app).await;
    Ok(())
}
