//! A throw-away PostgreSQL for tests: a cluster of its own made with the
//! system's `initdb` in a temporary directory, started on a free loopback
//! port, and stopped when the test process ends. Every store asked of it
//! lives in a schema of its own, so tests run side by side.
//!
//! Run as root (as CI does), the server runs as the `postgres` user, which
//! Debian's `postgresql` package creates: PostgreSQL refuses to run as root.

use crate::{Result, Store, StoreError};
use sqlx::postgres::PgConnectOptions;
use sqlx::Connection;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running throw-away cluster.
#[derive(Debug)]
pub struct TestPostgres {
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

/// Schemas handed out so far by this process.
static SCHEMAS: AtomicU32 = AtomicU32::new(0);

fn io(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(sqlx::Error::Io(std::io::Error::other(format!(
        "{what}: {e}"
    ))))
}

/// The newest PostgreSQL's programs Debian installed.
fn bin_dir() -> Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| {
            io(
                "PostgreSQL is not installed (apt-get install postgresql)",
                e,
            )
        })?
        .filter_map(|d| d.ok())
        .filter_map(|d| {
            let v = d.file_name().to_str()?.parse().ok()?;
            Some((v, d.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| io("no initdb under /usr/lib/postgresql", "missing"))
}

/// `(uid, gid)` of the `postgres` user when this process is root.
fn run_as() -> Result<Option<(u32, u32)>> {
    let me = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| io("id", e))?;
    if String::from_utf8_lossy(&me.stdout).trim() != "0" {
        return Ok(None);
    }
    let id = |flag: &str| -> Result<u32> {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .map_err(|e| io("id postgres", e))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|e| io("no postgres user (apt-get install postgresql)", e))
    };
    Ok(Some((id("-u")?, id("-g")?)))
}

/// A command run as the cluster's owner, killed (SIGINT: PostgreSQL's fast
/// shutdown) when the thread that starts it ends.
fn command(prog: &Path, owner: Option<(u32, u32)>) -> Command {
    let mut c = Command::new("setpriv");
    if let Some((uid, gid)) = owner {
        c.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups");
    }
    c.args(["--pdeathsig", "SIGINT", "--"]).arg(prog);
    c
}

/// Removes clusters of earlier test processes that are gone.
fn remove_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("seatline-pg-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| io("bind", e))?;
    Ok(l.local_addr().map_err(|e| io("bind", e))?.port())
}

fn start() -> Result<TestPostgres> {
    let bin = bin_dir()?;
    let owner = run_as()?;
    let base = std::env::temp_dir();
    remove_stale(&base);
    let dir = base.join(format!("seatline-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| io("mkdir", e))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(|e| io("chown", e))?;
    }
    let data = dir.join("data");
    let out = command(&bin.join("initdb"), owner)
        .arg("-D")
        .arg(&data)
        .args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .output()
        .map_err(|e| io("initdb", e))?;
    if !out.status.success() {
        return Err(io("initdb", String::from_utf8_lossy(&out.stderr)));
    }
    let port = free_port()?;
    let mut server = command(&bin.join("postgres"), owner);
    server
        .arg("-D")
        .arg(&data)
        .arg("-p")
        .arg(port.to_string())
        .arg("-k")
        .arg(&dir)
        .args(["-c", "listen_addresses=127.0.0.1"])
        .args(["-c", "max_connections=300"])
        // Nothing here outlives the test process: no need to survive a crash.
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
        .args(["-c", "full_page_writes=off"])
        .stdout(std::process::Stdio::null())
        .stderr(
            std::fs::File::create(dir.join("log"))
                .map(std::process::Stdio::from)
                .unwrap_or_else(|_| std::process::Stdio::null()),
        );
    // The server's parent is a thread that waits for it as long as the
    // process lives: when the process ends, so does the server.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("test-postgres".into())
        .spawn(move || match server.spawn() {
            Ok(mut child) => {
                let _ = tx.send(Ok(()));
                let _ = child.wait();
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        })
        .map_err(|e| io("thread", e))?;
    rx.recv()
        .map_err(|e| io("postgres", e))?
        .map_err(|e| io("postgres", e))?;
    Ok(TestPostgres { port, dir })
}

impl TestPostgres {
    /// This process's cluster, started by the first caller.
    pub fn shared() -> Result<&'static TestPostgres> {
        static CLUSTER: OnceLock<std::result::Result<TestPostgres, String>> = OnceLock::new();
        CLUSTER
            .get_or_init(|| start().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| io("test PostgreSQL", e))
    }

    /// Options for the cluster's `postgres` database.
    pub fn options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username("postgres")
            .database("postgres")
    }

    /// The URL of the cluster's `postgres` database, with `schema` first
    /// on the search path.
    pub fn url(&self, schema: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?options=-c%20search_path%3D{schema}",
            self.port
        )
    }

    /// Makes a new empty schema and returns its name; waits (up to 30 s)
    /// for the server to accept connections.
    pub async fn new_schema(&self) -> Result<String> {
        let n = SCHEMAS.fetch_add(1, Ordering::Relaxed);
        let schema = format!("t{}_{n}", std::process::id());
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut conn = loop {
            match sqlx::PgConnection::connect_with(&self.options()).await {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => {
                    let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
                    return Err(io("test PostgreSQL did not start", format!("{e}\n{log}")));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        // The name is ours (digits and an underscore): no injection.
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(schema)
    }

    /// A migrated store in a schema of its own.
    pub async fn store(&self) -> Result<Store> {
        let schema = self.new_schema().await?;
        Store::open_postgres_with(self.options().options([("search_path", schema.as_str())])).await
    }
}

/// The stores a store test runs on: SQLite in memory, then PostgreSQL.
pub async fn stores() -> Vec<Store> {
    let pg = TestPostgres::shared().expect("a throw-away PostgreSQL");
    vec![
        Store::open_memory().await.expect("SQLite in memory"),
        pg.store().await.expect("a PostgreSQL schema"),
    ]
}
