//! When a call is recorded: per tenant, with a group's own setting over the
//! tenant's. `All` records every connected call from its answer, and the
//! agent cannot stop it; `OnDemand` records from the agent's (or the
//! host's) `startRecording` until `stopRecording` or the end; `Off` never.
//! The media plane does the recording; this decides when, tells every tab,
//! and marks the record.

use crate::{CallRef, MediaOut, Output, SeatId, Switchboard};
use seatline_protocol::ServerEvent;
use std::collections::HashMap;

/// How a tenant's (or a group's) calls are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordingMode {
    #[default]
    Off,
    All,
    OnDemand,
}

impl RecordingMode {
    /// The name the admin API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::All => "all",
            Self::OnDemand => "onDemand",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "all" => Some(Self::All),
            "onDemand" => Some(Self::OnDemand),
            _ => None,
        }
    }
}

/// A tenant's recording setting: its mode, and groups that differ.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordingPolicy {
    pub mode: RecordingMode,
    pub groups: HashMap<String, RecordingMode>,
}

impl RecordingPolicy {
    pub fn mode_of(&self, group_no: &str) -> RecordingMode {
        self.groups.get(group_no).copied().unwrap_or(self.mode)
    }
}

/// Why `startRecording`/`stopRecording` changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("there is no connected call to record")]
    NotConnected,
    #[error("recording is off for this agent's group")]
    Off,
    #[error("every call of this agent's group is recorded; it cannot be stopped")]
    Required,
}

impl RecordError {
    /// The `code` of the error event the tab gets.
    pub fn code(self) -> &'static str {
        match self {
            Self::NotConnected => "notConnected",
            Self::Off => "recordingOff",
            Self::Required => "recordingRequired",
        }
    }
}

impl Switchboard {
    /// A tenant's recording setting (from the store at start, and each
    /// time an admin changes it). Calls in progress keep their recording.
    pub fn set_recording(&mut self, tenant_id: i64, policy: RecordingPolicy) {
        self.recording.insert(tenant_id, policy);
    }

    fn recording_mode(&self, seat: SeatId) -> RecordingMode {
        let Some(slot) = self.agents.get(&seat) else {
            return RecordingMode::Off;
        };
        self.recording
            .get(&slot.tenant_id)
            .map(|p| p.mode_of(&slot.group_no))
            .unwrap_or_default()
    }

    /// `startRecording` (`on`) or `stopRecording` from a tab of `seat`.
    pub fn record(&mut self, seat: SeatId, on: bool) -> Result<(), RecordError> {
        let call = self
            .call_of_seat(seat)
            .filter(|c| self.calls.get(c).is_some_and(|c| c.ctl.is_connected()))
            .ok_or(RecordError::NotConnected)?;
        match (self.recording_mode(seat), on) {
            (RecordingMode::Off, _) => Err(RecordError::Off),
            (RecordingMode::All, false) => Err(RecordError::Required),
            _ => {
                self.set_recording_of(call, seat, on);
                Ok(())
            }
        }
    }

    /// A forwarded call (no agent, no group) is recorded when its tenant
    /// records every call.
    pub(crate) fn records_forwards(&self, tenant_id: i64) -> bool {
        self.recording
            .get(&tenant_id)
            .is_some_and(|p| p.mode == RecordingMode::All)
    }

    /// A call of `seat` was answered: record it when its group records all.
    pub(crate) fn on_connected(&mut self, call: CallRef, seat: SeatId) {
        if self.recording_mode(seat) == RecordingMode::All {
            self.set_recording_of(call, seat, true);
        }
    }

    fn set_recording_of(&mut self, call: CallRef, seat: SeatId, on: bool) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.recording == on {
            return;
        }
        c.recording = on;
        c.recorded |= on;
        let call_id = c.ctl.record().call_id.clone();
        self.out.push_back(Output::Media(MediaOut::Record {
            seat,
            tenant_id: c.tenant_id,
            call_id: call_id.clone(),
            on,
        }));
        self.out.push_back(Output::ToAgent {
            seat,
            event: ServerEvent::Recording { call_id, on },
        });
    }

    /// Whether the seat's call is being recorded now.
    pub fn is_recording(&self, seat: SeatId) -> bool {
        self.call_of_seat(seat)
            .and_then(|c| self.calls.get(&c))
            .is_some_and(|c| c.recording)
    }
}
