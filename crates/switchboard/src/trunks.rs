//! The trunks at run time: an admin adds, changes and removes a tenant's
//! trunks while calls go on. The list is replaced whole; a trunk that stays
//! the same keeps its id and health, so a call placed on it still fails
//! over to the trunk after it, and the user agent is told only what
//! changed (credentials, transport, registration, whom to trust).

use crate::{Switchboard, Trunk, TrunkHealth};
use seatline_sip::{Credentials, Transport, TrustedSource};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

/// A trunk with what the user agent must know of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkSetup {
    pub trunk: Trunk,
    pub transport: Transport,
    /// The sources whose requests are taken for this trunk.
    pub trusted: Vec<TrustedSource>,
    /// Digest credentials answering its challenges.
    pub credentials: Option<Credentials>,
    /// Registration (when `trunk.register`): user, domain, seconds asked for.
    pub registration: Option<(String, String, u32)>,
}

/// Does a trunk that changed from `a` to `b` keep its health? (Its
/// address, its keepalive and whether it registers are what health is
/// about.)
fn same_health(a: &Trunk, b: &Trunk) -> bool {
    a.tenant_id == b.tenant_id
        && a.name == b.name
        && a.peer == b.peer
        && a.keepalive == b.keepalive
        && a.register == b.register
}

impl Switchboard {
    /// From now on, calls use these trunks (each tenant its own, in this
    /// order, or the shared ones when it has none). One trunk per address:
    /// of two setups for one address, the user agent keeps the last one's
    /// credentials and registration.
    pub fn set_trunks(&mut self, setups: Vec<TrunkSetup>, now: Instant) {
        let before_setups = std::mem::take(&mut self.trunk_setups);
        let mut before: Vec<Option<(Trunk, TrunkHealth)>> =
            std::mem::take(&mut self.settings.trunks)
                .into_iter()
                .zip(std::mem::take(&mut self.trunks))
                .map(Some)
                .collect();
        for s in &setups {
            let t = &s.trunk;
            let kept = before
                .iter_mut()
                .find(|o| o.as_ref().is_some_and(|(o, _)| same_health(o, t)))
                .and_then(Option::take);
            let mut health = match kept {
                Some((_, h)) => h,
                None => {
                    let id = self.next_trunk_id;
                    self.next_trunk_id = self.next_trunk_id.wrapping_add(1);
                    TrunkHealth {
                        id,
                        up: true,
                        registered: false,
                        next_ping: t.keepalive.map(|_| now),
                        ping_deadline: None,
                    }
                }
            };
            let registration_changed = before_setups
                .get(&t.peer)
                .map(|b| &b.registration)
                .unwrap_or(&None)
                != &s.registration;
            if registration_changed {
                health.registered = false;
            }
            self.settings.trunks.push(t.clone());
            self.trunks.push(health);
        }
        let after: HashMap<SocketAddr, TrunkSetup> =
            setups.into_iter().map(|s| (s.trunk.peer, s)).collect();
        for (peer, b) in &before_setups {
            let a = after.get(peer);
            let reg_after = a.and_then(|a| a.registration.as_ref());
            if b.registration.is_some() && b.registration.as_ref() != reg_after {
                self.ua.unregister(*peer, now);
            }
            if a.is_none() {
                self.ua.remove_credentials(*peer);
                self.ua.set_transport(*peer, Transport::Udp);
            }
        }
        for (peer, s) in &after {
            self.ua.set_transport(*peer, s.transport);
            match &s.credentials {
                Some(c) => self.ua.set_credentials(*peer, c.clone()),
                None => self.ua.remove_credentials(*peer),
            }
            let reg_before = before_setups
                .get(peer)
                .and_then(|b| b.registration.as_ref());
            if let Some((user, domain, expires)) = &s.registration {
                if reg_before != Some(&(user.clone(), domain.clone(), *expires)) {
                    self.ua.register(*peer, user, domain, *expires, now);
                }
            }
        }
        self.ua
            .set_trusted(after.values().flat_map(|s| s.trusted.clone()).collect());
        self.trunk_setups = after;
        self.pump(now);
    }

    /// May a call that came from `source` reach `tenant_id`'s numbers?
    /// Not when every trunk trusting `source` is another tenant's: a
    /// tenant's trunk must not place calls to other tenants' numbers.
    pub(crate) fn may_carry_for(&self, source: Option<SocketAddr>, tenant_id: i64) -> bool {
        let Some(source) = source else {
            return true;
        };
        let mut owners = self
            .trunk_setups
            .values()
            .filter(|s| s.trusted.iter().any(|t| t.matches(source)))
            .map(|s| s.trunk.tenant_id)
            .peekable();
        owners.peek().is_none() || owners.any(|o| o.is_none() || o == Some(tenant_id))
    }

    /// Each trunk's name, whose it is and its address, in order.
    pub fn trunk_peers(&self) -> Vec<(String, Option<i64>, SocketAddr)> {
        self.settings
            .trunks
            .iter()
            .map(|t| (t.name.clone(), t.tenant_id, t.peer))
            .collect()
    }
}
