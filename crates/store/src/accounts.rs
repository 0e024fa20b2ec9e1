//! Tenants, users, agent groups and seats.

use crate::Get;
use crate::{now_ms, Result, Store, StoreError};
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::rngs::OsRng;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::Semaphore;

/// A person who signs in: an agent, or a tenant admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub tenant_id: i64,
    pub email: String,
    pub role: String,
    pub enabled: bool,
}

/// A seat: the phone line (sipNum) an agent works from, in one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    pub id: i64,
    pub tenant_id: i64,
    pub user_id: i64,
    pub sip_num: String,
    pub group_no: String,
    pub enabled: bool,
    pub acw_seconds: i64,
    pub initial_status: i64,
    pub agent_status: Option<i64>,
    /// The agent's skills and levels (1 to 10), by name.
    pub skills: Vec<(String, u8)>,
}

/// The longest skill name, and the most skills a seat may carry.
pub const SKILL_NAME_MAX: usize = 32;
pub const SKILLS_MAX: usize = 16;

/// Whether `name` may name a skill: 1 to 32 letters, digits, `-` or `_`.
pub fn skill_name_ok(name: &str) -> bool {
    (1..=SKILL_NAME_MAX).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Reads the stored form ("es:5,vip:2"); what does not parse is left out.
fn parse_skills(s: &str) -> Vec<(String, u8)> {
    s.split(',')
        .filter_map(|pair| {
            let (name, level) = pair.split_once(':')?;
            let level: u8 = level.parse().ok()?;
            (skill_name_ok(name) && (1..=10).contains(&level)).then(|| (name.to_string(), level))
        })
        .take(SKILLS_MAX)
        .collect()
}

/// Hashes a password with argon2id and a random salt (PHC string format).
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let params = Params::default();
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|_| StoreError::Hash)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    with_memory(params.block_count(), |blocks| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, blocks)
    })
    .map_err(|_| StoreError::Hash)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|_| StoreError::Hash)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|_| StoreError::Hash)?),
    };
    Ok(phc.to_string())
}

/// Checks a password against a stored hash; a malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let Ok(version) = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params.clone());
    let done = with_memory(params.block_count(), |blocks| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, blocks)
    });
    // `Output` compares in constant time.
    done.is_ok() && Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// Lends argon2 its working memory (19 MiB with the default parameters)
/// from a few kept buffers, at most one per hashing slot. Allocating and
/// freeing it per sign-in fragmented glibc's heaps: 200 sign-ins, even two
/// at a time, left the process 760 MB larger for good. Kept buffers make
/// the memory `slots x 19 MiB`, whatever the load and whatever the allocator.
/// (Every block is written before argon2 reads it: old contents never leak
/// into a result.)
fn with_memory<T>(blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    static SPARE: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());
    /// A buffer larger than this (64 MiB, a stored hash with odd parameters)
    /// is used once and given back.
    const KEEP_AT_MOST: usize = 64 * 1024;
    let spare = SPARE.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let mut buf = match spare {
        Some(buf) if buf.len() >= blocks => buf,
        _ => vec![Block::new(); blocks.max(Params::DEFAULT_M_COST as usize)],
    };
    let out = f(&mut buf[..blocks]);
    let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
    if buf.len() <= KEEP_AT_MOST && spare.len() < hashing_slots() {
        spare.push(buf);
    }
    out
}

/// A hash that no password is checked against successfully in practice;
/// verifying against it makes an unknown email cost as much as a known one.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never used").unwrap_or_default())
}

fn user_from_row(row: &impl Get) -> Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        email: row.try_get("email")?,
        role: row.try_get("role")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
    })
}

/// Emails compare without case and surrounding blanks.
pub(crate) fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

impl Store {
    pub async fn create_tenant(&self, name: &str) -> Result<i64> {
        on_db!(self, |pool| {
            let row =
                sqlx::query("INSERT INTO tenants (name, created_at) VALUES ($1, $2) RETURNING id")
                    .bind(name)
                    .bind(now_ms())
                    .fetch_one(pool)
                    .await?;
            Ok(row.try_get(0)?)
        })
    }

    pub async fn create_group(
        &self,
        tenant_id: i64,
        group_no: &str,
        name: &str,
        acw_seconds: i64,
    ) -> Result<i64> {
        on_db!(self, |pool| {
            let row = sqlx::query(
                "INSERT INTO agent_groups (tenant_id, group_no, name, acw_seconds) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(tenant_id)
            .bind(group_no)
            .bind(name)
            .bind(acw_seconds)
            .fetch_one(pool)
            .await?;
            Ok(row.try_get(0)?)
        })
    }

    /// Renames the tenant's group and sets its after-call work; `false`
    /// when the tenant has no such group.
    pub async fn update_group(
        &self,
        tenant_id: i64,
        group_no: &str,
        name: &str,
        acw_seconds: i64,
    ) -> Result<bool> {
        on_db!(self, |pool| {
            let done = sqlx::query(
                "UPDATE agent_groups SET name = $1, acw_seconds = $2 WHERE tenant_id = $3 AND group_no = $4",
            )
            .bind(name)
            .bind(acw_seconds)
            .bind(tenant_id)
            .bind(group_no)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Creates a user; `password_hash` comes from [`hash_password`].
    pub async fn create_user(
        &self,
        tenant_id: i64,
        email: &str,
        password_hash: &str,
        role: &str,
    ) -> Result<i64> {
        on_db!(self, |pool| {
            let res = sqlx::query(
                "INSERT INTO users (tenant_id, email, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(tenant_id)
            .bind(normalize_email(email))
            .bind(password_hash)
            .bind(role)
            .bind(now_ms())
            .fetch_one(pool)
            .await;
            match res {
                Ok(row) => Ok(row.try_get(0)?),
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    Err(StoreError::Conflict(format!(
                        "a user with email {} exists",
                        normalize_email(email)
                    )))
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    pub async fn create_seat(
        &self,
        tenant_id: i64,
        user_id: i64,
        sip_num: &str,
        group_id: i64,
    ) -> Result<i64> {
        on_db!(self, |pool| {
            let row = sqlx::query(
                "INSERT INTO seats (tenant_id, user_id, sip_num, group_id) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(tenant_id)
            .bind(user_id)
            .bind(sip_num)
            .bind(group_id)
            .fetch_one(pool)
            .await?;
            Ok(row.try_get(0)?)
        })
    }

    pub async fn set_seat_enabled(&self, seat_id: i64, enabled: bool) -> Result<()> {
        on_db!(self, |pool| {
            let done = sqlx::query("UPDATE seats SET enabled = $1 WHERE id = $2")
                .bind(enabled as i64)
                .bind(seat_id)
                .execute(pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    pub async fn set_user_enabled(&self, user_id: i64, enabled: bool) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query("UPDATE users SET enabled = $1 WHERE id = $2")
                .bind(enabled as i64)
                .bind(user_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    pub async fn user_by_id(&self, user_id: i64) -> Result<User> {
        on_db!(self, |pool| {
            let row =
                sqlx::query("SELECT id, tenant_id, email, role, enabled FROM users WHERE id = $1")
                    .bind(user_id)
                    .fetch_optional(pool)
                    .await?
                    .ok_or(StoreError::NotFound)?;
            user_from_row(&row)
        })
    }

    /// The user with this email (normalized), enabled or not.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        on_db!(self, |pool| {
            let row = sqlx::query(
                "SELECT id, tenant_id, email, role, enabled FROM users WHERE email = $1",
            )
            .bind(normalize_email(email))
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(user_from_row).transpose()
        })
    }

    /// Replaces a user's password hash (from [`hash_password`]); false when
    /// there is no such user.
    pub async fn set_user_password(&self, user_id: i64, password_hash: &str) -> Result<bool> {
        on_db!(self, |pool| {
            let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(password_hash)
                .bind(user_id)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Checks an email and password. `None` for an unknown email, a wrong
    /// password or a disabled user alike: the caller must not tell them apart.
    pub async fn authenticate(&self, email: &str, password: &str) -> Result<Option<User>> {
        Ok(self
            .check_password(email, password)
            .await?
            .filter(|u| u.enabled))
    }

    /// Checks an email and password: the user, enabled or not, when the
    /// password is right (only then may a caller say the user is disabled);
    /// `None` for an unknown email or a wrong password alike.
    pub async fn check_password(&self, email: &str, password: &str) -> Result<Option<User>> {
        on_db!(self, |pool| {
            let row = sqlx::query(
                "SELECT id, tenant_id, email, role, enabled, password_hash FROM users WHERE email = $1",
            )
            .bind(normalize_email(email))
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else {
                let password = password.to_owned();
                tokio_block(move || verify_password(&password, decoy_hash())).await;
                return Ok(None);
            };
            let hash: String = row.try_get("password_hash")?;
            let user = user_from_row(&row)?;
            // argon2 is deliberately slow: keep it off the async workers.
            let password = password.to_owned();
            let ok = tokio_block(move || verify_password(&password, &hash)).await;
            Ok(ok.then_some(user))
        })
    }

    /// The user's seat with its group settings, enabled or not.
    pub async fn seat_of_user(&self, user_id: i64) -> Result<Option<Seat>> {
        on_db!(self, |pool| {
            let row = sqlx::query(
                "SELECT s.id, s.tenant_id, s.user_id, s.sip_num, s.enabled, s.agent_status, s.skills, g.group_no, g.acw_seconds, g.initial_status
                 FROM seats s JOIN agent_groups g ON g.id = s.group_id WHERE s.user_id = $1",
            )
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
            row.map(|row| {
                Ok(Seat {
                    id: row.try_get("id")?,
                    tenant_id: row.try_get("tenant_id")?,
                    user_id: row.try_get("user_id")?,
                    sip_num: row.try_get("sip_num")?,
                    group_no: row.try_get("group_no")?,
                    enabled: row.try_get::<i64, _>("enabled")? != 0,
                    acw_seconds: row.try_get("acw_seconds")?,
                    initial_status: row.try_get("initial_status")?,
                    agent_status: row.try_get("agent_status")?,
                    skills: parse_skills(&row.try_get::<String, _>("skills")?),
                })
            })
            .transpose()
        })
    }

    /// Sets the skills of the seat of user `user_id` in `tenant_id`
    /// (replacing them); false when the tenant has no such user with a
    /// seat. The caller checked names and levels ([`skill_name_ok`], 1-10).
    pub async fn set_seat_skills(
        &self,
        tenant_id: i64,
        user_id: i64,
        skills: &[(String, u8)],
    ) -> Result<bool> {
        on_db!(self, |pool| {
            let stored = skills
                .iter()
                .map(|(n, l)| format!("{n}:{l}"))
                .collect::<Vec<_>>()
                .join(",");
            let done =
                sqlx::query("UPDATE seats SET skills = $1 WHERE user_id = $2 AND tenant_id = $3")
                    .bind(stored)
                    .bind(user_id)
                    .bind(tenant_id)
                    .execute(pool)
                    .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Remembers the agent's chosen status so a server restart keeps it.
    pub async fn save_agent_status(&self, seat_id: i64, code: i64) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query("UPDATE seats SET agent_status = $1 WHERE id = $2")
                .bind(code)
                .bind(seat_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    pub async fn tenant_count(&self) -> Result<i64> {
        on_db!(self, |pool| {
            Ok(sqlx::query("SELECT COUNT(*) FROM tenants")
                .fetch_one(pool)
                .await?
                .try_get(0)?)
        })
    }

    /// Seeds the demo tenant when the database holds no tenant yet. Returns
    /// whether it seeded. Nodes starting at once on one PostgreSQL database
    /// seed it once: each holds an advisory lock while it looks and seeds.
    pub async fn seed_demo(&self) -> Result<bool> {
        let crate::Db::Postgres(pool) = &self.db else {
            return self.seed_demo_alone().await;
        };
        const SEED_LOCK: i64 = 0x5ea7_11e0;
        let mut held = pool.acquire().await?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(SEED_LOCK)
            .execute(&mut *held)
            .await?;
        let seeded = self.seed_demo_alone().await;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(SEED_LOCK)
            .execute(&mut *held)
            .await?;
        seeded
    }

    async fn seed_demo_alone(&self) -> Result<bool> {
        if self.tenant_count().await? > 0 {
            return Ok(false);
        }
        let tenant = self.create_tenant("Demo").await?;
        let group = self.create_group(tenant, "G001", "Demo agents", 0).await?;
        let hash = tokio_block(|| hash_password("demo1234")).await?;
        for (email, sip_num) in [
            ("agent1@demo.local", Some("8001")),
            ("agent2@demo.local", Some("8002")),
            ("noseat@demo.local", None),
        ] {
            let user = self.create_user(tenant, email, &hash, "agent").await?;
            if let Some(sip_num) = sip_num {
                self.create_seat(tenant, user, sip_num, group).await?;
            }
        }
        self.create_user(tenant, "admin@demo.local", &hash, "admin")
            .await?;
        // Credit; the countries of the demo's numbers (US and Canada, the UK,
        // Hong Kong, China, Mexico, Spain: others get 811); 12025550166 on
        // the blacklist (814); five attempts a minute per agent and number
        // (815).
        let policy = crate::Policy {
            balance_cents: 100_000,
            allowed_countries: ["1", "44", "852", "86", "52", "34"]
                .map(String::from)
                .to_vec(),
            max_calls_per_callee_per_minute: 5,
            ..Default::default()
        };
        self.set_policy(tenant, &policy).await?;
        self.set_blacklisted(tenant, "12025550166", true).await?;
        // Calls are recorded when the agent (or the host) asks; kept 30 days.
        let recording = crate::RecordingSetting {
            mode: "onDemand".into(),
            retention_days: 30,
            groups: Vec::new(),
        };
        self.set_recording_setting(tenant, &recording).await?;
        // Rates: US/Canada 1 cent a minute per started minute; the UK,
        // Hong Kong and China per started six seconds.
        self.set_rates(
            tenant,
            &[
                ("1".into(), 1_000, 60, 60),
                ("44".into(), 2_000, 6, 6),
                ("852".into(), 3_000, 6, 6),
                ("86".into(), 2_000, 6, 6),
            ],
        )
        .await?;
        // The demo DIDs; 12025550179 is one the sandbox carrier will not carry.
        for n in 170..=179 {
            self.add_did(tenant, &format!("12025550{n}"), n != 179)
                .await?;
            self.route_did(&format!("12025550{n}"), group).await?;
        }
        // Two more tenants that show a rule each: `broke` has no credit
        // (810), `trial` may place two calls a day (817).
        for (name, email, did, policy) in [
            (
                "broke",
                "broke@demo.local",
                "12025550180",
                crate::Policy {
                    balance_cents: 0,
                    ..Default::default()
                },
            ),
            (
                "trial",
                "trial@demo.local",
                "12025550181",
                crate::Policy {
                    balance_cents: 100_000,
                    trial: true,
                    trial_calls_per_day: 2,
                    ..Default::default()
                },
            ),
        ] {
            let t = self.create_tenant(name).await?;
            let g = self.create_group(t, "G001", "Agents", 0).await?;
            let user = self.create_user(t, email, &hash, "agent").await?;
            self.create_seat(t, user, "8001", g).await?;
            self.set_policy(t, &policy).await?;
            self.add_did(t, did, true).await?;
            self.route_did(did, g).await?;
        }
        Ok(true)
    }
}

/// How many argon2 computations may run at once: one per core. Each takes
/// 19 MiB and a core for tens of milliseconds, so more at once would only
/// add memory (200 at once once took 3.9 GB), never throughput.
fn hashing_slots() -> usize {
    static SLOTS: OnceLock<usize> = OnceLock::new();
    *SLOTS.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    })
}

fn hashing_gate() -> &'static Arc<Semaphore> {
    static GATE: OnceLock<Arc<Semaphore>> = OnceLock::new();
    GATE.get_or_init(|| Arc::new(Semaphore::new(hashing_slots())))
}

/// Runs CPU-heavy work (argon2) on the blocking pool when a runtime exists,
/// at most [`hashing_slots`] at a time; the rest wait here as small futures.
/// The slot travels with the work: a caller that gives up (a dropped request)
/// frees it only when the computation is over.
async fn tokio_block<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            let slot = hashing_gate()
                .clone()
                .acquire_owned()
                .await
                .expect("the hashing gate is never closed");
            let work = move || {
                let _slot = slot;
                f()
            };
            match handle.spawn_blocking(work).await {
                Ok(v) => v,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
        Err(_) => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_argon2id_and_verify() {
        let a = hash_password("s3cret").unwrap();
        let b = hash_password("s3cret").unwrap();
        assert_ne!(a, b, "a random salt each time");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("s3cret", &a));
        assert!(!verify_password("s3creT", &a));
        assert!(!verify_password("s3cret", "not a hash"));
    }

    #[test]
    fn hashes_of_the_argon2_crate_verify_and_ours_verify_there() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"s3cret", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("s3cret", &theirs));
        assert!(!verify_password("s3cre", &theirs));
        let ours = hash_password("s3cret").unwrap();
        assert!(Argon2::default()
            .verify_password(b"s3cret", &PasswordHash::new(&ours).unwrap())
            .is_ok());
        // Other parameters (a smaller memory cost) still verify, with a kept buffer.
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, 1, 1, None).unwrap(),
        );
        let small = small.hash_password(b"s3cret", &salt).unwrap().to_string();
        assert!(verify_password("s3cret", &small));
        assert!(!verify_password("S3cret", &small));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hashing_runs_at_most_one_per_core_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NOW: AtomicUsize = AtomicUsize::new(0);
        static MOST: AtomicUsize = AtomicUsize::new(0);
        let jobs: Vec<_> = (0..40)
            .map(|_| {
                tokio::spawn(tokio_block(|| {
                    let n = NOW.fetch_add(1, Ordering::SeqCst) + 1;
                    MOST.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    NOW.fetch_sub(1, Ordering::SeqCst);
                }))
            })
            .collect();
        // A caller that gives up does not free its slot before the work ends.
        for job in jobs.iter().step_by(3) {
            job.abort();
        }
        for job in jobs {
            let _ = job.await;
        }
        let most = MOST.load(Ordering::SeqCst);
        assert!(
            most >= 1 && most <= hashing_slots(),
            "{most} at once, {} cores",
            hashing_slots()
        );
    }

    #[tokio::test]
    async fn nodes_starting_at_once_seed_the_demo_once() {
        let pg = crate::testing::TestPostgres::shared().unwrap();
        let url = pg.url(&pg.new_schema().await.unwrap());
        let mut nodes = Vec::new();
        for _ in 0..3 {
            nodes.push(Store::open_postgres(&url).await.unwrap());
        }
        let (a, b, c) = tokio::join!(
            nodes[0].seed_demo(),
            nodes[1].seed_demo(),
            nodes[2].seed_demo()
        );
        let seeded = [a.unwrap(), b.unwrap(), c.unwrap()];
        assert_eq!(seeded.iter().filter(|s| **s).count(), 1, "{seeded:?}");
        assert_eq!(nodes[2].tenant_count().await.unwrap(), 3);
    }

    #[tokio::test]
    async fn demo_seed_gives_the_documented_accounts_once() {
        for store in crate::testing::stores().await {
            eprintln!("on {}", store.backend());
            assert!(store.seed_demo().await.unwrap());
            assert!(
                !store.seed_demo().await.unwrap(),
                "seeds only a new database"
            );
            let agent = store
                .authenticate("Agent1@Demo.Local ", "demo1234")
                .await
                .unwrap()
                .unwrap();
            let seat = store.seat_of_user(agent.id).await.unwrap().unwrap();
            assert_eq!(
                (seat.sip_num.as_str(), seat.group_no.as_str(), seat.enabled),
                ("8001", "G001", true)
            );
            let agent2 = store
                .authenticate("agent2@demo.local", "demo1234")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                store
                    .seat_of_user(agent2.id)
                    .await
                    .unwrap()
                    .unwrap()
                    .group_no,
                "G001"
            );
            let noseat = store
                .authenticate("noseat@demo.local", "demo1234")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(store.seat_of_user(noseat.id).await.unwrap(), None);
            let admin = store
                .authenticate("admin@demo.local", "demo1234")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(admin.role, "admin");
        }
    }

    #[tokio::test]
    async fn wrong_password_unknown_email_and_disabled_user_all_fail() {
        for store in crate::testing::stores().await {
            eprintln!("on {}", store.backend());
            store.seed_demo().await.unwrap();
            assert_eq!(
                store
                    .authenticate("agent1@demo.local", "wrong")
                    .await
                    .unwrap(),
                None
            );
            assert_eq!(
                store
                    .authenticate("nobody@demo.local", "demo1234")
                    .await
                    .unwrap(),
                None
            );
            let u = store
                .authenticate("agent1@demo.local", "demo1234")
                .await
                .unwrap()
                .unwrap();
            store.set_user_enabled(u.id, false).await.unwrap();
            assert_eq!(
                store
                    .authenticate("agent1@demo.local", "demo1234")
                    .await
                    .unwrap(),
                None
            );
        }
    }

    #[tokio::test]
    async fn duplicate_email_is_a_conflict_and_status_is_remembered() {
        for store in crate::testing::stores().await {
            eprintln!("on {}", store.backend());
            store.seed_demo().await.unwrap();
            let err = store
                .create_user(1, "AGENT1@demo.local", "x", "agent")
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::Conflict(_)));
            let u = store
                .authenticate("agent1@demo.local", "demo1234")
                .await
                .unwrap()
                .unwrap();
            let seat = store.seat_of_user(u.id).await.unwrap().unwrap();
            assert_eq!(seat.agent_status, None);
            store.save_agent_status(seat.id, 4).await.unwrap();
            store.set_seat_enabled(seat.id, false).await.unwrap();
            let seat = store.seat_of_user(u.id).await.unwrap().unwrap();
            assert_eq!((seat.agent_status, seat.enabled), (Some(4), false));
            assert!(matches!(
                store.set_seat_enabled(999, true).await,
                Err(StoreError::NotFound)
            ));
        }
    }
}
