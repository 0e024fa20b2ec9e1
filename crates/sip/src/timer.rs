//! A set of per-key deadlines with O(log n) updates: the next wake-up of
//! thousands of transactions or dialogs without scanning them all.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::time::Instant;

#[derive(Debug)]
pub(crate) struct TimerSet<K: Ord + Hash + Clone> {
    by_time: BTreeSet<(Instant, K)>,
    at: HashMap<K, Instant>,
}

impl<K: Ord + Hash + Clone> Default for TimerSet<K> {
    fn default() -> Self {
        Self {
            by_time: BTreeSet::new(),
            at: HashMap::new(),
        }
    }
}

impl<K: Ord + Hash + Clone> TimerSet<K> {
    /// Sets (or with `None` clears) the one deadline of `key`.
    pub fn set(&mut self, key: &K, when: Option<Instant>) {
        if let Some(old) = self.at.get(key) {
            if Some(*old) == when {
                return;
            }
            self.by_time.remove(&(*old, key.clone()));
            self.at.remove(key);
        }
        if let Some(w) = when {
            self.by_time.insert((w, key.clone()));
            self.at.insert(key.clone(), w);
        }
    }

    pub fn next(&self) -> Option<Instant> {
        self.by_time.first().map(|(t, _)| *t)
    }

    /// Removes and returns every key whose deadline is at or before `now`.
    pub fn take_due(&mut self, now: Instant) -> Vec<K> {
        let mut due = Vec::new();
        while let Some((t, _)) = self.by_time.first() {
            if *t > now {
                break;
            }
            let (_, k) = self.by_time.pop_first().expect("not empty");
            self.at.remove(&k);
            due.push(k);
        }
        due
    }

    /// Gives back the room of a drained index; true if it did.
    pub fn shrink(&mut self) -> bool {
        shrink_map(&mut self.at)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.at.len()
    }
}

/// Tables this small are never shrunk.
pub(crate) const COMPACT_FLOOR: usize = 64;

/// Shrinks a map that is down to a quarter of its room, to twice its size.
pub(crate) fn shrink_map<K: std::hash::Hash + Eq, V>(m: &mut HashMap<K, V>) -> bool {
    if m.capacity() > COMPACT_FLOOR && m.len() * 4 < m.capacity() {
        m.shrink_to((m.len() * 2).max(COMPACT_FLOOR / 2));
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn keeps_one_deadline_per_key_and_pops_in_order() {
        let t0 = Instant::now();
        let mut s: TimerSet<u32> = TimerSet::default();
        s.set(&1, Some(t0 + Duration::from_secs(5)));
        s.set(&2, Some(t0 + Duration::from_secs(1)));
        s.set(&1, Some(t0 + Duration::from_secs(3)));
        assert_eq!(s.len(), 2);
        assert_eq!(s.next(), Some(t0 + Duration::from_secs(1)));
        s.set(&2, None);
        assert_eq!(s.next(), Some(t0 + Duration::from_secs(3)));
        assert!(s.take_due(t0 + Duration::from_secs(2)).is_empty());
        assert_eq!(s.take_due(t0 + Duration::from_secs(3)), vec![1]);
        assert_eq!((s.len(), s.next()), (0, None));
    }
}
