//! `seatline`: the call center in one binary.

use clap::{Parser, Subcommand};
use seatline_server::config::Config;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "seatline", version, about = "Seatline: a self-hosted contact center with an NXLink-compatible embeddable softphone")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    },
    /// Run for production from a TOML configuration file.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let (cfg, demo) = match cli.command {
        Command::Demo { listen, data_dir, config } => {
            let mut cfg = match config {
                Some(path) => Config::load(&path)?,
                None => Config::default(),
            };
            cfg.listen = listen;
            cfg.data_dir = data_dir;
            cfg.demo.seed = true;
            (cfg, true)
        }
        Command::Serve { config } => (Config::load(&config)?, false),
    };
    let running = seatline_server::start(cfg).await?;
    let base = format!("http://{}", running.addr);
    if demo {
        println!("Seatline demo is running.");
        println!("  Demo CRM page: {base}/demo");
        println!("  Softphone:     {base}/admin/#/nxcc");
        println!("  Sign in as agent1@demo.local / demo1234 (or agent2@demo.local).");
    } else {
        println!("Seatline is listening on {base}");
    }
    tokio::select! {
        res = running.task => { res??; }
        _ = tokio::signal::ctrl_c() => { println!("stopping"); }
    }
    Ok(())
}
