//! Sign-in throttling and admission: failed sign-ins are counted per account
//! and per client address, and refused with 429 over a limit *before* any
//! password is hashed; sign-ins waiting for a hashing slot are bounded, and
//! refused with 503 beyond.
//!
//! An account is its normalized email, whether it exists or not: an unknown
//! email is counted, refused and answered exactly like a known one. Keys are
//! kept as keyed 64-bit digests, so the tables hold no email and a long
//! "email" costs no more memory than a short one. Each table holds at most
//! [`TABLE_CAPACITY`] entries; past that the oldest window is forgotten.

use crate::config::SigninConfig;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Entries per table (accounts, addresses): about 64 bytes each.
pub const TABLE_CAPACITY: usize = 100_000;

/// Failures of one key within its current window.
#[derive(Clone, Copy)]
struct Entry {
    start: Instant,
    count: u32,
}

/// Fixed-window failure counts, with the windows in start order so expired
/// and oldest entries go first at O(1) each.
struct Table<K> {
    map: HashMap<K, Entry>,
    /// `(window start, key)`, oldest first; a record whose key has since
    /// started another window (or was dropped) is stale and skipped.
    order: VecDeque<(Instant, K)>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Forgets every window over at `now`.
    fn expire(&mut self, now: Instant, window: Duration) {
        while let Some((start, _)) = self.order.front() {
            if now.saturating_duration_since(*start) < window {
                break;
            }
            let (start, key) = self.order.pop_front().expect("front exists");
            if self.map.get(&key).is_some_and(|e| e.start == start) {
                self.map.remove(&key);
            }
        }
    }

    /// `Err(wait)` when the key is at `max` failures in its window (`max` 0:
    /// no limit).
    fn check(&mut self, key: &K, now: Instant, window: Duration, max: u32) -> Result<(), Duration> {
        self.expire(now, window);
        match self.map.get(key) {
            Some(e) if max > 0 && e.count >= max => {
                Err((e.start + window).saturating_duration_since(now))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure (after `check` said yes, under the same lock); returns
    /// the window it went to.
    fn count(&mut self, key: &K, now: Instant) -> Instant {
        if let Some(e) = self.map.get_mut(key) {
            e.count += 1;
            return e.start;
        }
        while self.map.len() >= self.capacity {
            let Some((start, old)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&old).is_some_and(|e| e.start == start) {
                self.map.remove(&old);
            }
        }
        if self.order.len() >= 2 * self.capacity {
            // Records left stale by successes: drop them all at once.
            let map = &self.map;
            self.order
                .retain(|(start, k)| map.get(k).is_some_and(|e| e.start == *start));
        }
        self.map.insert(
            key.clone(),
            Entry {
                start: now,
                count: 1,
            },
        );
        self.order.push_back((now, key.clone()));
        now
    }

    /// Takes back one failure counted in the window that began at `start`.
    fn uncount(&mut self, key: &K, start: Instant) {
        if let Some(e) = self.map.get_mut(key) {
            if e.start == start && e.count > 0 {
                e.count -= 1;
            }
        }
    }

    fn clear(&mut self, key: &K) {
        // Its record in `order` goes stale and is skipped later.
        self.map.remove(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// The address a client is counted under: IPv4 as is, IPv6 by its /64 (one
/// host usually holds a whole /64).
fn address_key(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => u64::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u64::from(u32::from(v4)),
            None => (u128::from(v6) >> 64) as u64 | (1 << 63),
        },
    }
}

/// Sign-in throttling and the bound on sign-ins waiting to be hashed.
pub struct Signin {
    max_per_account: u32,
    max_per_address: u32,
    window: Duration,
    /// Sign-ins being hashed or waiting for a slot, and their limit.
    hashing: AtomicUsize,
    max_hashing: usize,
    keys: RandomState,
    accounts: Mutex<Table<u64>>,
    addresses: Mutex<Table<u64>>,
}

/// Why a sign-in is refused before its password is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Whole seconds until the attempt can succeed (at least 1).
    pub retry_after_secs: u64,
}

/// One counted attempt. It stays counted as a failure unless it is settled
/// otherwise, so an attempt whose client went away still counts.
#[must_use]
pub struct Attempt {
    signin: Arc<Signin>,
    account: u64,
    address: u64,
    account_window: Instant,
    address_window: Instant,
}

/// A place among the sign-ins being hashed; freed on drop.
pub struct HashingPlace(Arc<Signin>);

impl Drop for HashingPlace {
    fn drop(&mut self) {
        self.0.hashing.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Signin {
    pub fn new(cfg: &SigninConfig) -> Arc<Self> {
        Self::with_capacity(cfg, TABLE_CAPACITY)
    }

    fn with_capacity(cfg: &SigninConfig, capacity: usize) -> Arc<Self> {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Arc::new(Self {
            max_per_account: cfg.max_failures_per_account,
            max_per_address: cfg.max_failures_per_address,
            window: Duration::from_secs(cfg.window_secs.max(1)),
            hashing: AtomicUsize::new(0),
            max_hashing: cores + cfg.max_waiting,
            keys: RandomState::new(),
            accounts: Mutex::new(Table::new(capacity)),
            addresses: Mutex::new(Table::new(capacity)),
        })
    }

    /// Checks the account (email, normalized here) and the address, and
    /// counts the attempt against both as a failure until it is settled.
    pub fn begin(
        self: &Arc<Self>,
        email: &str,
        ip: IpAddr,
        now: Instant,
    ) -> Result<Attempt, Throttled> {
        let account = self.keys.hash_one(email.trim().to_lowercase());
        let address = address_key(ip);
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let mut addresses = self.addresses.lock().unwrap_or_else(|e| e.into_inner());
        let by_account = accounts.check(&account, now, self.window, self.max_per_account);
        let by_address = addresses.check(&address, now, self.window, self.max_per_address);
        if by_account.is_err() || by_address.is_err() {
            let wait = by_account
                .err()
                .unwrap_or_default()
                .max(by_address.err().unwrap_or_default());
            // Whole seconds, rounded up: retrying after it always finds the window over.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(Throttled {
                retry_after_secs: secs.max(1),
            });
        }
        let account_window = accounts.count(&account, now);
        let address_window = addresses.count(&address, now);
        Ok(Attempt {
            signin: self.clone(),
            account,
            address,
            account_window,
            address_window,
        })
    }

    /// A place among the sign-ins hashing or waiting to, or `None` when
    /// `cores + max_waiting` are already there.
    pub fn enter_hashing(self: &Arc<Self>) -> Option<HashingPlace> {
        let taken = self.hashing.fetch_add(1, Ordering::SeqCst);
        let place = HashingPlace(self.clone());
        (taken < self.max_hashing).then_some(place)
    }
}

impl Attempt {
    /// The password was right: the account starts afresh; the address keeps
    /// its other failures but not this attempt.
    pub fn succeeded(self) {
        self.signin
            .accounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear(&self.account);
        self.signin
            .addresses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .uncount(&self.address, self.address_window);
    }

    /// The attempt was never judged (the server was busy or failed): it does
    /// not count.
    pub fn not_judged(self) {
        self.signin
            .accounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .uncount(&self.account, self.account_window);
        self.signin
            .addresses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .uncount(&self.address, self.address_window);
    }

    /// The password was wrong (or the account unknown or disabled): it stays
    /// counted.
    pub fn failed(self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(account: u32, address: u32, window_secs: u64) -> SigninConfig {
        SigninConfig {
            max_failures_per_account: account,
            max_failures_per_address: address,
            window_secs,
            ..SigninConfig::default()
        }
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn an_account_is_refused_after_its_failures_until_the_window_ends() {
        let s = Signin::new(&cfg(3, 100, 60));
        let t0 = Instant::now();
        for _ in 0..3 {
            s.begin("Agent1@Demo.Local ", A, t0).unwrap().failed();
        }
        // The same account, normalized, from anywhere.
        let refused = s
            .begin("agent1@demo.local", B, t0 + Duration::from_millis(500))
            .err()
            .unwrap();
        assert_eq!(refused.retry_after_secs, 60, "rounded up");
        assert!(
            s.begin("agent2@demo.local", A, t0).is_ok(),
            "other accounts are not affected"
        );
        assert!(
            s.begin("agent1@demo.local", A, t0 + Duration::from_secs(60))
                .is_ok(),
            "a new window"
        );
    }

    #[test]
    fn a_success_resets_the_account_and_unjudged_attempts_do_not_count() {
        let s = Signin::new(&cfg(3, 100, 60));
        let t0 = Instant::now();
        s.begin("a@x", A, t0).unwrap().failed();
        s.begin("a@x", A, t0).unwrap().failed();
        s.begin("a@x", A, t0).unwrap().succeeded();
        s.begin("a@x", A, t0).unwrap().failed();
        s.begin("a@x", A, t0).unwrap().failed();
        s.begin("a@x", A, t0).unwrap().not_judged();
        s.begin("a@x", A, t0).unwrap().failed();
        assert!(s.begin("a@x", A, t0).is_err());
    }

    #[test]
    fn an_address_is_refused_across_accounts_and_ipv6_counts_by_its_64() {
        let s = Signin::new(&cfg(100, 2, 60));
        let t0 = Instant::now();
        s.begin("a@x", A, t0).unwrap().failed();
        s.begin("b@x", A, t0).unwrap().failed();
        assert!(s.begin("c@x", A, t0).is_err());
        assert!(s.begin("c@x", B, t0).is_ok());
        let unlimited = Signin::new(&cfg(0, 0, 60));
        for _ in 0..100 {
            unlimited.begin("a@x", A, t0).unwrap().failed();
        }
        let v6 =
            |last: u16| IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, last));
        s.begin("a@x", v6(1), t0).unwrap().failed();
        s.begin("b@x", v6(2), t0).unwrap().failed();
        assert!(s.begin("c@x", v6(3), t0).is_err());
        let mapped = IpAddr::V6(std::net::Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert!(
            s.begin("d@x", mapped, t0).is_err(),
            "IPv4-mapped is the IPv4 address"
        );
    }

    #[test]
    fn the_tables_stay_within_their_capacity_forgetting_the_oldest() {
        let s = Signin::with_capacity(&cfg(1, 1_000_000, 60), 100);
        let t0 = Instant::now();
        for i in 0..1000u32 {
            s.begin(
                &format!("user{i}@x"),
                A,
                t0 + Duration::from_millis(i.into()),
            )
            .unwrap()
            .failed();
        }
        assert_eq!(s.accounts.lock().unwrap().len(), 100);
        assert!(s.accounts.lock().unwrap().order.len() <= 100);
        let late = t0 + Duration::from_millis(1000);
        assert!(
            s.begin("user0@x", A, late).is_ok(),
            "the oldest were forgotten"
        );
        assert!(
            s.begin("user999@x", A, late).is_err(),
            "the newest are kept"
        );
        // Expired windows go on their own.
        s.begin("user5000@x", A, t0 + Duration::from_secs(3600))
            .unwrap()
            .failed();
        assert_eq!(s.accounts.lock().unwrap().len(), 1);
    }

    #[test]
    fn hashing_places_are_bounded_and_given_back() {
        let s = Signin::new(&SigninConfig {
            max_waiting: 3,
            ..SigninConfig::default()
        });
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let places: Vec<_> = (0..cores + 3)
            .map(|_| s.enter_hashing().expect("a place"))
            .collect();
        assert!(s.enter_hashing().is_none());
        drop(places);
        assert!(s.enter_hashing().is_some());
    }
}
