//! Forwarded calls: a DID routed to a number. The carrier's call (leg A,
//! ours as UAS) is placed again toward a trunk (leg B, ours as UAC), both
//! legs' RTP relayed by the media plane, recorded as an inbound call of the
//! tenant with the number it was forwarded to, and billed like an agent's
//! call to that number (leg B is the tenant's call).
//!
//! No transcoding: B is offered exactly A's G.711 codecs, and A is answered
//! with the codec B chose. Each leg keeps its own telephone-event payload
//! type; the relay maps one to the other. Failover to the next trunk works
//! as for agents' calls.
//!
//! Early media passes across: B's 183 with SDP is answered to A as a 183
//! with ours, and the relay starts then, so the caller hears the number's
//! own ringback or announcement (billing and the RTP timeout start at B's
//! 200). A re-offer on either leg of a connected call (hold, resume) is
//! passed on as our re-offer to the other leg with the same direction, and
//! answered once that leg has answered (or with its refusal); a second
//! re-offer meanwhile gets 491. A call on hold is not ended for silence.
//!
//! Each leg has its own media security: A is answered with SDES when the
//! carrier offered it (and refused 488 when plain RTP comes over an SDES
//! trunk), B is offered SDES when its trunk asks for it; the relay
//! unprotects and protects on the way with each leg's keys.

use super::*;

/// One forwarded call.
pub(crate) struct Forward {
    tenant_id: i64,
    /// Leg A: the carrier's call to our DID.
    inbound: CallRef,
    /// Leg B: our call to the number.
    outbound: CallRef,
    a_offer: AudioSdp,
    /// Our SDES key line toward A, when A is SRTP.
    a_crypto: Option<Crypto>,
    /// Our SDP on each leg: the answer to A (once B answered, or from the
    /// start for a waiting call that overflowed), the offer to B.
    a_ours: Option<AudioSdp>,
    b_ours: AudioSdp,
    a_rtp: RtpPort,
    b_rtp: RtpPort,
    /// The id of the trunk leg B is placed on.
    trunk: u32,
    record: CallRecord,
    /// The relay's id for the media plane (leg A's reference).
    relay: u64,
    /// Once answered: when the call ends for lack of relayed RTP.
    rtp_deadline: Option<Instant>,
    /// Leg B is the tenant's call to the number: billed at its rate, like
    /// an agent's call (none: the number is not rated).
    billing: Option<billing::Billing>,
    /// A waiting call that overflowed to the number: A's media is still
    /// bridged at this waiting key (its music) until B answers; the relay
    /// starts then.
    waiting: Option<SeatId>,
    /// The group the caller waited in, when it overflowed from a queue.
    group: Option<String>,
    /// Our SDP in the 183 that carried B's early media to A (A not yet
    /// answered): the 200 repeats it.
    a_early: Option<AudioSdp>,
    /// A re-offer passed on and not yet answered: its leg and its SDP.
    reoffer: Option<(CallRef, Vec<u8>)>,
    /// The version of our SDP on either leg, raised on every new one.
    sdp_version: u64,
    /// One side holds the other (a direction other than sendrecv): no RTP
    /// may flow, and the call is not ended for silence.
    held: bool,
    /// What the relay was told of each leg (A, B), once B's SDP came: a
    /// leg whose later SDP moves its media is followed there.
    legs: [Option<LegMedia>; 2],
}

/// Where a relayed leg's media goes, and how it is sent.
#[derive(Clone)]
struct LegMedia {
    remote: SocketAddr,
    pt: u8,
    dtmf_pt: Option<u8>,
    srtp: Option<SrtpKeys>,
}

impl Forward {
    /// Is `call` the leg we placed toward the trunk (leg B)?
    pub(crate) fn is_outbound_leg(&self, call: CallRef) -> bool {
        self.outbound == call
    }

    /// The trunk leg B is on now.
    pub(crate) fn trunk_name(&self) -> Option<&str> {
        self.record.trunk.as_deref()
    }

    pub(crate) fn call_id(&self) -> &str {
        &self.record.call_id
    }

    pub(crate) fn tenant_id(&self) -> i64 {
        self.tenant_id
    }

    /// The call as the wallboard shows it at `ms`: the caller's, inbound,
    /// with the number it went to instead of an agent.
    pub(crate) fn wall_call(&self, ms: i64) -> wallboard::WallCall {
        let r = &self.record;
        let (state, since) = match r.connected_ms {
            Some(at) => ("connected", at),
            None => ("forwarding", r.start_ms),
        };
        wallboard::WallCall {
            call_id: r.call_id.clone(),
            seat_id: None,
            agent_id: None,
            number: r.caller.clone(),
            direction: "inbound",
            state,
            secs: wallboard::secs(ms - since),
            group: self.group.clone(),
            mos: None,
            forwarded_to: r.forwarded_to.clone(),
        }
    }
}

/// The SDP that answers a re-offer on a leg: ours, with the direction
/// mirrored.
fn mirrored(ours: &AudioSdp, theirs: &[u8]) -> AudioSdp {
    let mut s = ours.clone();
    s.direction = offered_direction(theirs).answer();
    s
}

/// The direction a (re-)offer asks for. The old hold, a connection address
/// of 0.0.0.0 (RFC 2543), asks not to be sent to: sendonly. An offer we
/// cannot read asks for nothing new: sendrecv.
fn offered_direction(sdp: &[u8]) -> SdpDirection {
    match AudioSdp::parse(&String::from_utf8_lossy(sdp)) {
        Ok(t) if t.addr.is_unspecified() && t.direction == SdpDirection::SendRecv => {
            SdpDirection::SendOnly
        }
        Ok(t) => t.direction,
        Err(_) => SdpDirection::SendRecv,
    }
}

impl Switchboard {
    /// Leg A arrived for a DID forwarded to `number`: place leg B.
    pub(crate) fn forward(
        &mut self,
        call: CallRef,
        r: Routing,
        tenant_id: i64,
        number: String,
        (a_rtp, b_rtp): (RtpPort, RtpPort),
        now: Instant,
    ) {
        let refuse = |sb: &mut Switchboard, code: u16| {
            sb.out.push_back(Output::ReleaseRtp { rtp: a_rtp });
            sb.out.push_back(Output::ReleaseRtp { rtp: b_rtp });
            sb.ua.respond(call, code, None, now);
        };
        let Ok(a_offer) = AudioSdp::parse(&String::from_utf8_lossy(&r.sdp)) else {
            return refuse(self, 488);
        };
        let codecs: Vec<Codec> = a_offer
            .codecs
            .iter()
            .copied()
            .filter(|c| matches!(c, Codec::Pcmu | Codec::Pcma))
            .collect();
        if codecs.is_empty() {
            return refuse(self, 488);
        }
        let Some(trunk) = self.next_trunk_up(tenant_id, None) else {
            return refuse(self, 503);
        };
        // The tenant pays for leg B: with no credit for its first block the
        // caller is refused (403) and the number never rings.
        let Ok(rate) = self.can_pay(tenant_id, &number) else {
            return refuse(self, 403);
        };
        // A's security is settled now (its answer waits for B's): an
        // offer we could not answer is refused before B is placed.
        let a_peer = self.ua.peer_of(call);
        let probe = AudioSdp::plain(
            self.ua.local_addr().ip(),
            a_rtp,
            codecs.clone(),
            None,
            SdpDirection::SendRecv,
        );
        let Some(a_secure) = self.secure_answer(&a_offer, probe, a_peer) else {
            return refuse(self, 488);
        };
        let plain = AudioSdp::plain(
            self.ua.local_addr().ip(),
            b_rtp,
            codecs,
            a_offer.dtmf_pt,
            SdpDirection::SendRecv,
        );
        let b_ours = self.offer_for(trunk, plain);
        let id = self.new_call_id();
        let mut record = CallRecord::new(
            id,
            Direction::Inbound,
            r.from_user.clone(),
            r.did,
            self.ms(now),
        );
        record.other = r.other;
        record.forwarded_to = Some(number.clone());
        record.trunk = Some(self.settings.trunks[trunk].name.clone());
        let billing = self.hold_first(tenant_id, rate);
        let outbound = self.invite_on(trunk, &r.from_user, &number, &b_ours, now);
        self.out.push_back(Output::Media(MediaOut::Relay {
            id: call,
            a: a_rtp,
            b: b_rtp,
        }));
        let f = Forward {
            tenant_id,
            inbound: call,
            outbound,
            a_offer,
            a_crypto: a_secure.crypto.into_iter().next(),
            a_ours: None,
            b_ours,
            a_rtp,
            b_rtp,
            trunk: self.trunks[trunk].id,
            record,
            relay: call,
            rtp_deadline: None,
            billing,
            waiting: None,
            group: None,
            a_early: None,
            reoffer: None,
            legs: [None, None],
            sdp_version: 1,
            held: false,
        };
        self.counters.started(CallDirection::Forwarded);
        self.wall.changed(tenant_id);
        self.save_forward(&f);
        self.forward_legs.insert(call, call);
        self.forward_legs.insert(outbound, call);
        self.forwards.insert(call, f);
    }

    /// The shell bound `rtp` (none: it could not) for `call`, a waiting
    /// call that overflows to a number ([`Output::BindRtp`]): the number is
    /// placed on a trunk as leg B of a forwarded call whose leg A is the
    /// waiting call, answered already, which keeps its record (the same
    /// call id, now with the number it was forwarded to). The caller hears
    /// the music until B answers. With no port, no trunk up or no credit
    /// for the number, the call ends as a wait that ran out does.
    pub fn rtp_bound(&mut self, call: CallRef, rtp: Option<RtpPort>, now: Instant) {
        let ms = self.ms(now);
        let pending = self
            .calls
            .get(&call)
            .filter(|c| !c.ctl.is_ended() && c.waiting_media)
            .and_then(|c| c.overflow_number.clone().map(|n| (c.tenant_id, n)));
        let Some((tenant_id, number)) = pending else {
            // The caller hung up meanwhile (or the answer is forged).
            if let Some(rtp) = rtp {
                self.out.push_back(Output::ReleaseRtp { rtp });
            }
            return;
        };
        let placed = match (rtp, self.next_trunk_up(tenant_id, None)) {
            (Some(b_rtp), Some(trunk)) => match self.can_pay(tenant_id, &number) {
                Ok(rate) => Ok((b_rtp, trunk, rate)),
                Err(reason) => Err((Some(reason as u16), Some(b_rtp))),
            },
            (b_rtp, _) => Err((None, b_rtp)),
        };
        let (b_rtp, trunk, rate) = match placed {
            Ok(p) => p,
            Err((reason, b_rtp)) => {
                if let Some(rtp) = b_rtp {
                    self.out.push_back(Output::ReleaseRtp { rtp });
                }
                if let Some(c) = self.calls.get_mut(&call) {
                    c.overflow_number = None;
                    c.ctl.end_locally(reason, ms);
                }
                return self.apply(call, now);
            }
        };
        let Some(c) = self.calls.remove(&call) else {
            return;
        };
        let Some(a_offer) = c.carrier.clone() else {
            // Every inbound call has the carrier's offer: not reached.
            self.out.push_back(Output::ReleaseRtp { rtp: b_rtp });
            self.out.push_back(Output::ReleaseRtp { rtp: c.rtp });
            return;
        };
        self.queues.dequeue(call);
        self.wall_overflowed(tenant_id, ms);
        // B is offered the codec A already speaks, and A's DTMF type.
        let plain = AudioSdp::plain(
            self.ua.local_addr().ip(),
            b_rtp,
            vec![c.offer.codecs[0]],
            c.offer.dtmf_pt,
            SdpDirection::SendRecv,
        );
        let b_ours = self.offer_for(trunk, plain);
        let mut record = c.ctl.record().clone();
        record.forwarded_to = Some(number.clone());
        record.trunk = Some(self.settings.trunks[trunk].name.clone());
        let billing = self.hold_first(tenant_id, rate);
        let outbound = self.invite_on(trunk, &record.caller, &number, &b_ours, now);
        let f = Forward {
            tenant_id,
            inbound: call,
            outbound,
            a_crypto: c.offer.crypto.first().cloned(),
            a_ours: Some(c.offer.clone()),
            a_offer,
            b_ours,
            a_rtp: c.rtp,
            b_rtp,
            trunk: self.trunks[trunk].id,
            record,
            relay: call,
            rtp_deadline: None,
            billing,
            waiting: Some(waiting_key(c.rtp)),
            group: c.group_no.clone(),
            a_early: None,
            reoffer: None,
            legs: [None, None],
            sdp_version: 1,
            held: false,
        };
        self.counters.started(CallDirection::Forwarded);
        self.save_forward(&f);
        self.forward_legs.insert(call, call);
        self.forward_legs.insert(outbound, call);
        self.forwards.insert(call, f);
    }

    fn save_forward(&mut self, f: &Forward) {
        self.out.push_back(Output::SaveCall {
            tenant_id: f.tenant_id,
            seat: None,
            record: Box::new(f.record.clone()),
            dialog: None,
        });
    }

    /// A user agent event on a leg of a forwarded call; false when `ev`
    /// is not about one.
    pub(crate) fn on_forward_event(&mut self, ev: &UaEvent, now: Instant) -> bool {
        let Some(call) = ev.call() else {
            return false;
        };
        let Some(&id) = self.forward_legs.get(&call) else {
            return false;
        };
        let ms = self.ms(now);
        let Some(f) = self.forwards.get_mut(&id) else {
            return true;
        };
        let on_a = call == f.inbound;
        match ev {
            UaEvent::Progress { sdp: Some(sdp), .. }
                if !on_a && f.a_early.is_none() && !sdp.is_empty() =>
            {
                // Early media: the caller hears what the number's network
                // plays before the answer.
                let (a_answered, inbound) = (f.a_ours.is_some(), f.inbound);
                let Some(a_ours) = self.b_media(id, sdp, now) else {
                    return true;
                };
                if !a_answered {
                    let text = a_ours.to_string(1, 1);
                    self.ua.respond(inbound, 183, Some(text.as_bytes()), now);
                }
                if let Some(f) = self.forwards.get_mut(&id) {
                    f.a_early = Some(a_ours);
                }
            }
            UaEvent::Progress { .. } if !on_a && f.a_early.is_none() && f.a_ours.is_none() => {
                // No early media: A hears its own network's ringback.
                self.ua.respond(f.inbound, 180, None, now);
            }
            UaEvent::Answered { sdp, .. } if !on_a => {
                let a_answered = f.a_ours.is_some();
                let Some(a_ours) = self.b_media(id, sdp, now) else {
                    return true;
                };
                let records = self
                    .forwards
                    .get(&id)
                    .is_some_and(|f| self.records_forwards(f.tenant_id));
                let Some(f) = self.forwards.get_mut(&id) else {
                    return true;
                };
                if !a_answered {
                    self.ua
                        .respond(f.inbound, 200, Some(a_ours.to_string(1, 1).as_bytes()), now);
                }
                f.a_ours = Some(a_ours);
                f.a_early = None;
                f.rtp_deadline = Some(now + self.settings.rtp_timeout);
                if records {
                    f.record.recorded = true;
                    self.out.push_back(Output::Media(MediaOut::RecordRelay {
                        id: f.relay,
                        tenant_id: f.tenant_id,
                        call_id: f.record.call_id.clone(),
                    }));
                }
                if let Some(b) = f.billing.as_mut() {
                    b.start(now);
                }
                f.record.connected_ms = Some(ms);
                f.record.sip_code = Some(200);
                self.wall.changed(f.tenant_id);
                let snapshot = f.record.clone();
                let tenant_id = f.tenant_id;
                // Both legs' dialogs, so that a crash leaves nobody up: the
                // next start sends each its BYE.
                let dialogs: Vec<_> = [f.inbound, f.outbound]
                    .into_iter()
                    .filter_map(|leg| self.ua.dialog_snapshot(leg))
                    .collect();
                self.out.push_back(Output::SaveCall {
                    tenant_id,
                    seat: None,
                    record: Box::new(snapshot),
                    dialog: serde_json::to_string(&dialogs).ok(),
                });
            }
            UaEvent::Failed { code, .. } if !on_a => {
                let code = *code;
                // A carrier failure moves the number's leg to the next trunk
                // that is up, if there is one.
                let (tenant_id, trunk) = (f.tenant_id, f.trunk);
                let next_trunk = is_carrier_failure(code)
                    .then(|| self.next_trunk_up(tenant_id, Some(trunk)))
                    .flatten();
                let Some(f) = self.forwards.get_mut(&id) else {
                    return true;
                };
                if let Some(next) = next_trunk {
                    let caller = f.record.caller.clone();
                    let number = f.record.forwarded_to.clone().unwrap_or_default();
                    let base = f.b_ours.clone();
                    let offer = self.offer_for(next, base);
                    let again = self.invite_on(next, &caller, &number, &offer, now);
                    let name = self.settings.trunks[next].name.clone();
                    let Some(f) = self.forwards.get_mut(&id) else {
                        return true;
                    };
                    f.trunk = self.trunks[next].id;
                    f.b_ours = offer;
                    f.record.trunk = Some(name);
                    f.outbound = again;
                    self.forward_legs.remove(&call);
                    self.forward_legs.insert(again, id);
                    return true;
                }
                // The caller hears the number's own answer (busy, declined,
                // not found ...); a timeout reaches them as 408. One who
                // was answered to wait in a queue gets a BYE.
                if f.a_ours.is_some() {
                    self.ua.hang_up(f.inbound, now);
                } else {
                    self.ua.respond(f.inbound, code, None, now);
                }
                f.record.sip_code = Some(code);
                f.record.ended_by(if is_carrier_failure(code) {
                    HungUpBy::Carrier
                } else {
                    HungUpBy::Customer
                });
                self.finish_forward(id, now);
            }
            UaEvent::Ended { .. } => {
                // One side hung up (or cancelled): the other is ended too.
                let other = if on_a { f.outbound } else { f.inbound };
                self.ua.hang_up(other, now);
                self.finish_forward(id, now);
            }
            UaEvent::Reoffer { sdp, .. } => {
                let connected = f.a_ours.is_some() && f.rtp_deadline.is_some();
                if connected && f.reoffer.is_none() {
                    // Passed on: the other leg is offered the same
                    // direction, from our side of it.
                    let (other, ours) = if on_a {
                        (f.outbound, Some(f.b_ours.clone()))
                    } else {
                        (f.inbound, f.a_ours.clone())
                    };
                    if let Some(mut offer) = ours {
                        offer.direction = offered_direction(sdp);
                        f.sdp_version += 1;
                        let text = offer.to_string(1, f.sdp_version);
                        f.reoffer = Some((call, sdp.clone()));
                        self.ua.reoffer(other, text.as_bytes(), now);
                    }
                    return true;
                }
                if connected {
                    // One exchange at a time across the call.
                    self.ua.respond_reoffer(call, 491, None, now);
                    return true;
                }
                let ours = if on_a {
                    f.a_ours.as_ref()
                } else {
                    Some(&f.b_ours)
                };
                match ours {
                    Some(ours) => {
                        let answer = mirrored(ours, sdp);
                        f.sdp_version += 1;
                        self.ua.respond_reoffer(
                            call,
                            200,
                            Some(answer.to_string(1, f.sdp_version).as_bytes()),
                            now,
                        );
                        self.follow_media(id, on_a, sdp);
                    }
                    None => self.ua.respond_reoffer(call, 491, None, now),
                }
            }
            UaEvent::ReofferAnswered { .. } | UaEvent::ReofferFailed { .. } => {
                let Some((from, offer)) = f.reoffer.take().filter(|(from, _)| *from != call) else {
                    return true;
                };
                let ours = if from == f.inbound {
                    f.a_ours.clone()
                } else {
                    Some(f.b_ours.clone())
                };
                let (Some(ours), UaEvent::ReofferAnswered { .. }) = (ours, ev) else {
                    // The other leg refused: so is the offer it carried. A
                    // leg that no longer knows its dialog ends the call.
                    let code = match ev {
                        UaEvent::ReofferFailed { code, .. } => *code,
                        _ => 500,
                    };
                    self.ua.respond_reoffer(from, code.max(400), None, now);
                    if matches!(code, 408 | 481) {
                        self.end_forward(id, None, now);
                    }
                    return true;
                };
                let answer = mirrored(&ours, &offer);
                f.sdp_version += 1;
                self.ua.respond_reoffer(
                    from,
                    200,
                    Some(answer.to_string(1, f.sdp_version).as_bytes()),
                    now,
                );
                let held = answer.direction != SdpDirection::SendRecv;
                if f.held && !held {
                    // Resumed: silence counts again from now.
                    f.rtp_deadline = Some(now + self.settings.rtp_timeout);
                }
                f.held = held;
                // Either leg may have moved its media: the offerer in its
                // offer, the other leg in its answer.
                let from_a = from == f.inbound;
                self.follow_media(id, from_a, &offer);
                if let UaEvent::ReofferAnswered { sdp, .. } = ev {
                    self.follow_media(id, !from_a, sdp);
                }
            }
            _ => {}
        }
        true
    }

    /// A leg's new SDP (a re-offer it made, or its answer to ours) names
    /// another address for its media: the relay sends there from now on
    /// (and latches again). A hold with `c=0.0.0.0`, an SDP that does not
    /// parse, or a leg whose media the relay does not know yet moves
    /// nothing. Codec and keys stay those of the call's start.
    fn follow_media(&mut self, id: u64, on_a: bool, sdp: &[u8]) {
        let Some(f) = self.forwards.get_mut(&id) else {
            return;
        };
        let Ok(new) = AudioSdp::parse(&String::from_utf8_lossy(sdp)) else {
            return;
        };
        if new.addr.is_unspecified() || new.port == 0 {
            return;
        }
        let to = SocketAddr::new(new.addr, new.port);
        let leg = u8::from(!on_a);
        let Some(m) = f.legs[usize::from(leg)].as_mut().filter(|m| m.remote != to) else {
            return;
        };
        m.remote = to;
        self.out.push_back(Output::Media(MediaOut::RelayRemote {
            id: f.relay,
            leg,
            remote: to,
            pt: m.pt,
            dtmf_pt: m.dtmf_pt,
            srtp: m.srtp.clone(),
        }));
    }

    /// B's SDP (in its 183 or its 200) joins the call's media: A's answer
    /// is made (kept when A was answered already, or got our 183) and the
    /// relay learns both remotes. None when it cannot be relayed: the call
    /// was ended (488).
    fn b_media(&mut self, id: u64, sdp: &[u8], now: Instant) -> Option<AudioSdp> {
        let local = self.ua.local_addr().ip();
        let f = self.forwards.get_mut(&id)?;
        let b_answer = AudioSdp::parse(&String::from_utf8_lossy(sdp)).ok();
        // A's codec, when A was answered already (it overflowed from a
        // queue) or heard early media, else any A offered.
        let fixed = f.a_ours.as_ref().or(f.a_early.as_ref());
        let codec = b_answer.as_ref().and_then(|b| {
            b.codecs.first().copied().filter(|c| match fixed {
                Some(a) => a.codecs.first() == Some(c),
                None => f.a_offer.codecs.contains(c),
            })
        });
        // B answered without the key we asked for (or with keys unasked):
        // its media cannot be relayed.
        let b_srtp = answer_keys(&f.b_ours, sdp).ok();
        let (Some(b_answer), Some(codec), Some(b_srtp)) = (b_answer, codec, b_srtp) else {
            self.end_forward(id, Some(488), now);
            return None;
        };
        let a_ours = match fixed.cloned() {
            Some(a_ours) => a_ours,
            None => {
                let mut a_ours = AudioSdp::plain(
                    local,
                    f.a_rtp,
                    vec![codec],
                    f.a_offer.dtmf_pt.filter(|_| b_answer.dtmf_pt.is_some()),
                    b_answer.direction,
                );
                if let Some(c) = f.a_crypto.clone() {
                    a_ours = a_ours.secure(c);
                }
                a_ours
            }
        };
        let a_srtp = keys_of(&a_ours, f.a_offer.usable_crypto());
        // An overflowed caller's music stops; its socket joins the relay.
        if let Some(seat) = f.waiting.take() {
            self.out
                .push_back(Output::Media(MediaOut::Unbridge { seat }));
            self.out.push_back(Output::Media(MediaOut::Relay {
                id: f.relay,
                a: f.a_rtp,
                b: f.b_rtp,
            }));
        }
        for (leg, remote, dtmf_pt, srtp) in [
            (
                0,
                SocketAddr::new(f.a_offer.addr, f.a_offer.port),
                a_ours.dtmf_pt,
                a_srtp,
            ),
            (
                1,
                SocketAddr::new(b_answer.addr, b_answer.port),
                b_answer.dtmf_pt,
                b_srtp,
            ),
        ] {
            f.legs[usize::from(leg)] = Some(LegMedia {
                remote,
                pt: codec as u8,
                dtmf_pt,
                srtp: srtp.clone(),
            });
            self.out.push_back(Output::Media(MediaOut::RelayRemote {
                id: f.relay,
                leg,
                remote,
                pt: codec as u8,
                dtmf_pt,
                srtp,
            }));
        }
        Some(a_ours)
    }

    /// Ends both legs from our side with `code` toward A (before it was
    /// answered) or a BYE (after).
    fn end_forward(&mut self, id: u64, code: Option<u16>, now: Instant) {
        if let Some(f) = self.forwards.get_mut(&id) {
            f.record.ended_by(HungUpBy::System);
            let (a, b, answered) = (f.inbound, f.outbound, f.a_ours.is_some());
            self.ua.hang_up(b, now);
            if answered {
                self.ua.hang_up(a, now);
            } else {
                self.ua.respond(a, code.unwrap_or(500), None, now);
            }
            self.finish_forward(id, now);
        }
    }

    /// Closes the record, stops the relay and forgets the call.
    fn finish_forward(&mut self, id: u64, now: Instant) {
        let Some(mut f) = self.forwards.remove(&id) else {
            return;
        };
        self.forward_legs.remove(&f.inbound);
        self.forward_legs.remove(&f.outbound);
        f.record.hangup_ms = Some(self.ms(now));
        self.wall.changed(f.tenant_id);
        // Otherwise one of the two parties hung up.
        f.record.ended_by(HungUpBy::Customer);
        if let Some(mut b) = f.billing.take() {
            self.settle(f.tenant_id, &mut b);
            b.fill(&mut f.record);
        }
        match f.waiting {
            Some(seat) => self
                .out
                .push_back(Output::Media(MediaOut::Unbridge { seat })),
            None => self
                .out
                .push_back(Output::Media(MediaOut::Unrelay { id: f.relay })),
        }
        self.out.push_back(Output::ReleaseRtp { rtp: f.a_rtp });
        self.out.push_back(Output::ReleaseRtp { rtp: f.b_rtp });
        self.save_forward(&f);
    }

    /// Relays that passed RTP lately: their calls are alive.
    pub fn relay_alive(&mut self, ids: &[u64], now: Instant) {
        let timeout = self.settings.rtp_timeout;
        for id in ids {
            if let Some(f) = self
                .forwards
                .get_mut(id)
                .filter(|f| f.rtp_deadline.is_some())
            {
                f.rtp_deadline = Some(now + timeout);
            }
        }
    }

    /// The next forwarded call to end for silence, or to pay its next block.
    pub(crate) fn forward_timeout(&self) -> Option<Instant> {
        self.forwards
            .values()
            .flat_map(|f| {
                [
                    f.rtp_deadline.filter(|_| !f.held),
                    f.billing.as_ref().and_then(|b| b.next_at()),
                ]
            })
            .flatten()
            .min()
    }

    /// Ends forwarded calls whose relay carried no RTP for the RTP timeout
    /// (both ends are gone, or cannot hear each other), and bills those
    /// whose next block is due.
    pub(crate) fn forward_silences(&mut self, now: Instant) {
        let silent: Vec<u64> = self
            .forwards
            .iter()
            .filter(|(_, f)| !f.held && f.rtp_deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in silent {
            self.end_forward(id, None, now);
        }
        // Those whose next block is due pay it, or are cut (810).
        let due: Vec<u64> = self
            .forwards
            .iter()
            .filter(|(_, f)| {
                f.billing
                    .as_ref()
                    .and_then(|b| b.next_at())
                    .is_some_and(|t| t <= now)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(f) = self.forwards.get_mut(&id) else {
                continue;
            };
            let tenant_id = f.tenant_id;
            let Some(mut b) = f.billing.take() else {
                continue;
            };
            let paid = self.take_next_block(tenant_id, &mut b, now);
            if let Some(f) = self.forwards.get_mut(&id) {
                f.billing = Some(b);
                if !paid {
                    f.record.hangup_code = Some(HangupReason::Arrears as u16);
                }
            }
            if !paid {
                self.end_forward(id, None, now);
            }
        }
    }

    /// Forwarded calls in progress.
    pub fn forward_count(&self) -> usize {
        self.forwards.len()
    }

    /// Ends every forwarded call (the server stops).
    pub(crate) fn end_all_forwards(&mut self, now: Instant) {
        let ids: Vec<u64> = self.forwards.keys().copied().collect();
        for id in ids {
            self.end_forward(id, Some(503), now);
        }
    }
}
