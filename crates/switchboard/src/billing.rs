//! Billing: each tenant's balance, held in the switchboard (the store only
//! keeps what it is told, through the ordered writer), and its rates by
//! destination. An outbound call takes its first billing block before it
//! is dialed (refused 810 when the balance cannot pay it), the next block
//! each time the one before runs out while it is connected (cut with 810
//! when the balance cannot pay it), and gives the first block back if it
//! was never answered. Because every `callOut` of a tenant passes through
//! this one core, one at a time, a balance is never spent twice. With
//! several nodes, each core stores what it took as a difference (so the
//! store's balance is what all of them left) and reads the store's figure
//! again every heartbeat: a tenant can overspend by what the other nodes
//! took within one heartbeat.

use crate::{Call, CallRef, Output, Switchboard};
use seatline_calls::record::CallRecord;
use seatline_protocol::HangupReason;
use std::time::{Duration, Instant};

/// The price of calls to one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    /// The start of the E.164 numbers it applies to (a calling code such as
    /// "1" or "44", or longer); the longest match wins.
    pub prefix: String,
    /// Thousandths of a cent per minute.
    pub millicents_per_minute: i64,
    /// The first block billed, then each next one (60/60: per started
    /// minute; 6/6: per started six seconds).
    pub first_secs: u32,
    pub next_secs: u32,
}

impl Rate {
    /// The price of a block of `secs`, rounded up to a millicent.
    pub fn block(&self, secs: u32) -> i64 {
        (self.millicents_per_minute.max(0) * i64::from(secs) + 59) / 60
    }
}

/// How a tenant's stored balance changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BalanceChange {
    /// Becomes this many cents (an admin set it).
    Set(i64),
    /// Gains this many cents (negative: calls took them).
    Add(i64),
}

/// What a billed call has taken so far.
#[derive(Debug, Clone)]
pub(crate) struct Billing {
    rate: Rate,
    /// Millicents taken from the balance.
    taken: i64,
    /// Seconds billed.
    secs: u32,
    connected: bool,
    /// While connected: when the next block is due.
    next_at: Option<Instant>,
    settled: bool,
}

impl Billing {
    pub(crate) fn next_at(&self) -> Option<Instant> {
        self.next_at
    }

    /// The call was answered: its clock starts (the first block is paid).
    pub(crate) fn start(&mut self, now: Instant) {
        if !self.connected {
            self.connected = true;
            self.next_at = Some(now + Duration::from_secs(u64::from(self.rate.first_secs.max(1))));
        }
    }

    /// Writes what was billed into the record (nothing when unanswered).
    pub(crate) fn fill(&self, r: &mut CallRecord) {
        if self.connected {
            r.billed_secs = Some(self.secs);
            r.cost_millicents = Some(self.taken);
        }
    }
}

/// The rate for `number` (E.164 digits) among `rates`.
pub fn rate_for<'a>(rates: &'a [Rate], number: &str) -> Option<&'a Rate> {
    rates
        .iter()
        .filter(|r| number.starts_with(&r.prefix))
        .max_by_key(|r| r.prefix.len())
}

impl Switchboard {
    /// The tenant's balance in millicents, as this core knows it; the
    /// store's figure (`stored_cents`) the first time the tenant is seen.
    pub(crate) fn balance(&mut self, tenant_id: i64, stored_cents: i64) -> i64 {
        self.know_balance(tenant_id, stored_cents);
        self.balances[&tenant_id]
    }

    /// The tenant's balance as the store has it (cents), unless this core
    /// already holds it: read at start for tenants with rates, so that a
    /// call no agent placed (a forwarded DID) is billed from the start.
    pub fn know_balance(&mut self, tenant_id: i64, cents: i64) {
        if let std::collections::hash_map::Entry::Vacant(e) = self.balances.entry(tenant_id) {
            e.insert(cents.saturating_mul(1000));
            self.stored_balances.insert(tenant_id, cents);
        }
    }

    /// The store's balance, read again (several nodes bill one tenant,
    /// each storing what it took as a difference): this core's figure
    /// becomes the store's, keeping its fraction of a cent.
    pub fn refresh_balance(&mut self, tenant_id: i64, cents: i64) {
        let Some(mc) = self.balances.get_mut(&tenant_id) else {
            return self.know_balance(tenant_id, cents);
        };
        *mc = cents
            .saturating_mul(1000)
            .saturating_add(mc.rem_euclid(1000));
        self.stored_balances.insert(tenant_id, cents);
    }

    /// An admin set the tenant's balance (cents).
    pub fn set_balance(&mut self, tenant_id: i64, cents: i64) {
        self.balances.insert(tenant_id, cents.saturating_mul(1000));
        self.stored_balances.insert(tenant_id, cents);
        self.out.push_back(Output::SaveBalance {
            tenant_id,
            change: BalanceChange::Set(cents),
        });
    }

    /// The tenant's rates from now on (calls in progress keep theirs).
    pub fn set_rates(&mut self, tenant_id: i64, rates: Vec<Rate>) {
        if rates.is_empty() {
            self.rates.remove(&tenant_id);
        } else {
            self.rates.insert(tenant_id, rates);
        }
    }

    /// The tenant's balance in cents, once this core has seen it.
    pub fn balance_cents(&self, tenant_id: i64) -> Option<i64> {
        self.balances.get(&tenant_id).map(|mc| mc.div_euclid(1000))
    }

    /// Stores what changed since the store was last told: a difference,
    /// so that what other nodes took from the same balance meanwhile stays
    /// taken.
    fn save_balance(&mut self, tenant_id: i64) {
        let Some(cents) = self.balance_cents(tenant_id) else {
            return;
        };
        let change = match self.stored_balances.insert(tenant_id, cents) {
            Some(before) if before == cents => return,
            Some(before) => BalanceChange::Add(cents - before),
            // Never read from the store: this core's figure is the truth.
            None => BalanceChange::Set(cents),
        };
        self.out
            .push_back(Output::SaveBalance { tenant_id, change });
    }

    /// Can the tenant pay the first block of a call to `callee`? `Ok` with
    /// the rate (none: the destination is not billed).
    pub(crate) fn can_pay(
        &self,
        tenant_id: i64,
        callee: &str,
    ) -> Result<Option<Rate>, HangupReason> {
        let Some(rate) = self.rates.get(&tenant_id).and_then(|r| rate_for(r, callee)) else {
            return Ok(None);
        };
        let balance = self.balances.get(&tenant_id).copied().unwrap_or(0);
        if balance < rate.block(rate.first_secs) {
            return Err(HangupReason::Arrears);
        }
        Ok(Some(rate.clone()))
    }

    /// Takes the first block of a call (checked by [`Self::can_pay`]).
    pub(crate) fn hold_first(&mut self, tenant_id: i64, rate: Option<Rate>) -> Option<Billing> {
        let rate = rate?;
        let first = rate.block(rate.first_secs);
        *self.balances.entry(tenant_id).or_default() -= first;
        Some(Billing {
            secs: rate.first_secs,
            rate,
            taken: first,
            connected: false,
            next_at: None,
            settled: false,
        })
    }

    /// A billed call was saved: its clock starts when it connects; once
    /// it ended, an unanswered call gives its block back and the balance
    /// is stored.
    pub(crate) fn bill_on_save(&mut self, call: CallRef, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let (connected, ended, tenant_id) = (c.ctl.is_connected(), c.ctl.is_ended(), c.tenant_id);
        let Some(mut b) = c.billing.take() else {
            return;
        };
        if connected {
            b.start(now);
        }
        if ended {
            self.settle(tenant_id, &mut b);
        }
        if let Some(c) = self.calls.get_mut(&call) {
            c.billing = Some(b);
        }
    }

    /// The call ended: an unanswered call gives its block back, and the
    /// balance is stored (once).
    pub(crate) fn settle(&mut self, tenant_id: i64, b: &mut Billing) {
        if b.settled {
            return;
        }
        b.settled = true;
        b.next_at = None;
        if !b.connected {
            let back = b.taken;
            b.taken = 0;
            *self.balances.entry(tenant_id).or_default() += back;
        }
        self.save_balance(tenant_id);
    }

    /// Takes the call's next block; false when the balance cannot pay it
    /// (the call must end, 810).
    pub(crate) fn take_next_block(
        &mut self,
        tenant_id: i64,
        b: &mut Billing,
        now: Instant,
    ) -> bool {
        let cost = b.rate.block(b.rate.next_secs);
        let balance = self.balances.entry(tenant_id).or_default();
        if *balance < cost {
            b.next_at = None;
            return false;
        }
        *balance -= cost;
        b.taken += cost;
        b.secs += b.rate.next_secs;
        b.next_at = Some(now + Duration::from_secs(u64::from(b.rate.next_secs.max(1))));
        self.save_balance(tenant_id);
        true
    }

    /// Calls whose next block is due: each takes it, or is cut (810).
    pub(crate) fn bill_due(&mut self, now: Instant) {
        let due = crate::due_calls(&self.calls, now, |c: &Call| {
            c.billing.as_ref().and_then(Billing::next_at)
        });
        for call in due {
            let Some(c) = self.calls.get_mut(&call) else {
                continue;
            };
            let tenant_id = c.tenant_id;
            let Some(mut b) = c.billing.take() else {
                continue;
            };
            let paid = self.take_next_block(tenant_id, &mut b, now);
            if let Some(c) = self.calls.get_mut(&call) {
                c.billing = Some(b);
            }
            if !paid {
                // The balance is spent: the call ends (810 to the tabs, a BYE).
                self.end_call(call, Some(HangupReason::Arrears as u16), now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(prefix: &str, mc: i64, first: u32, next: u32) -> Rate {
        Rate {
            prefix: prefix.into(),
            millicents_per_minute: mc,
            first_secs: first,
            next_secs: next,
        }
    }

    #[test]
    fn blocks_are_priced_by_their_length_rounded_up() {
        assert_eq!(rate("1", 1_000, 60, 60).block(60), 1_000);
        assert_eq!(rate("1", 1_000, 6, 6).block(6), 100);
        assert_eq!(rate("1", 7, 6, 6).block(6), 1, "0.7 rounds up to 1");
        assert_eq!(rate("1", -5, 6, 6).block(6), 0);
    }

    #[test]
    fn the_longest_prefix_names_the_rate() {
        let rates = [
            rate("1", 1, 60, 60),
            rate("1876", 2, 60, 60),
            rate("44", 3, 6, 6),
        ];
        assert_eq!(
            rate_for(&rates, "18765550100")
                .unwrap()
                .millicents_per_minute,
            2
        );
        assert_eq!(
            rate_for(&rates, "12025550100")
                .unwrap()
                .millicents_per_minute,
            1
        );
        assert_eq!(
            rate_for(&rates, "442079460000")
                .unwrap()
                .millicents_per_minute,
            3
        );
        assert!(rate_for(&rates, "8613800138000").is_none());
    }
}
