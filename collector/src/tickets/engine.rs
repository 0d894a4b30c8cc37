//! The problem state machine: one per fingerprint.
//!
//! Pure: given a problem's state, a new result (or just the passing of
//! time) and its rule, it says what to do with the problem's ticket. The
//! store persists the problem and carries out the [`Step`]s in the same
//! transaction.
//!
//! - **Confirmation**: a ticket opens once the problem has been non-OK for
//!   `confirm_count` consecutive results *and* `confirm_secs`.
//! - **Recovery**: it resolves once the check has been OK for `recovery_secs`.
//! - **Relapse**: a failure within `reopen_grace_secs` of the resolution
//!   reopens the same ticket (same episode); later, a new ticket.
//! - **Flapping** (Icinga-style): each result is a sample, a state change
//!   counts 1; the share of changes among the last 21 samples, weighted
//!   from 0.8 (oldest) to 1.2 (newest), above `flap_start_percent` puts the
//!   problem in a flapping state (one ticket, marked flapping, no open/close
//!   churn) until it falls below `flap_stop_percent`.
//! - **Holds**: while `hold.open` (maintenance, host overdue) no ticket
//!   opens; while `hold.resolve` (host overdue: stale data) none resolves.

use serde::{Deserialize, Serialize};

use crate::domain::{CheckState, Millis};

/// How one kind of problem becomes a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rule {
    /// Consecutive non-OK results before a ticket opens (1 = at once).
    pub confirm_count: u32,
    /// Seconds non-OK before a ticket opens (0 = at once).
    pub confirm_secs: u64,
    /// Seconds OK before the ticket resolves (0 = at once).
    pub recovery_secs: u64,
    /// A relapse within this many seconds of a resolution reopens the same ticket.
    pub reopen_grace_secs: u64,
    /// Flapping starts above this weighted share of state changes (percent).
    pub flap_start_percent: f64,
    /// Flapping ends below this share.
    pub flap_stop_percent: f64,
}

impl Default for Rule {
    fn default() -> Self {
        Self {
            confirm_count: 1,
            confirm_secs: 0,
            recovery_secs: 0,
            reopen_grace_secs: 300,
            flap_start_percent: 30.0,
            flap_stop_percent: 25.0,
        }
    }
}

/// Samples in the flapping history.
pub const FLAP_SAMPLES: u32 = 21;

/// The ticket a problem is linked to: open, or the last resolved one (kept
/// for the relapse grace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketLink {
    pub id: i64,
    pub open: bool,
    pub resolved_at: Option<Millis>,
    pub severity: CheckState,
}

/// One problem's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub state: CheckState,
    /// First non-OK result of the current bad streak (agent time).
    pub bad_since: Option<Millis>,
    pub bad_count: u32,
    /// First OK result of the current good streak.
    pub ok_since: Option<Millis>,
    /// Bit i set: the result i samples ago changed the state (bit 0 newest).
    pub history: u32,
    pub samples: u32,
    pub flapping: bool,
    pub ticket: Option<TicketLink>,
}

impl Default for Problem {
    fn default() -> Self {
        Self {
            state: CheckState::Ok,
            bad_since: None,
            bad_count: 0,
            ok_since: None,
            history: 0,
            samples: 0,
            flapping: false,
            ticket: None,
        }
    }
}

/// What blocks ticket changes right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hold {
    /// No ticket may open (maintenance window, silence, host overdue).
    pub open: bool,
    /// No ticket may resolve (host overdue: the data is stale).
    pub resolve: bool,
}

/// What the store must do with the problem's ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A new ticket (a new episode).
    Open {
        severity: CheckState,
        flapping: bool,
    },
    /// A relapse within the grace: the resolved ticket opens again.
    Reopen { id: i64, severity: CheckState },
    /// The open ticket's severity or text changed.
    Update {
        id: i64,
        severity: CheckState,
        severity_changed: bool,
    },
    /// The problem cleared.
    Resolve { id: i64 },
    /// The open ticket starts or stops flapping.
    Flapping { id: i64, flapping: bool },
}

impl Problem {
    /// Is the problem currently linked to an open ticket?
    pub fn open_ticket(&self) -> Option<i64> {
        self.ticket.filter(|t| t.open).map(|t| t.id)
    }

    /// Weighted share (percent) of state changes among the recent samples.
    pub fn flap_percent(&self) -> f64 {
        // Always over the full window: samples not seen yet count as steady,
        // so a young problem with one change is not "flapping".
        let (mut changed, mut total) = (0.0, 0.0);
        for i in 0..FLAP_SAMPLES {
            // i = 0 newest (weight 1.2) … oldest (weight 0.8).
            let w = 1.2 - 0.4 * f64::from(i) / f64::from(FLAP_SAMPLES - 1);
            total += w;
            if self.history & (1 << i) != 0 {
                changed += w;
            }
        }
        changed / total * 100.0
    }

    /// Whether the problem needs [`tick`] calls: something time-based is pending.
    pub fn waiting(&self) -> bool {
        let failing_without_ticket = self.state != CheckState::Ok && self.open_ticket().is_none();
        let recovering = self.state == CheckState::Ok && self.open_ticket().is_some();
        failing_without_ticket || recovering
    }
}

/// Folds a new result into the problem and decides.
pub fn observe(
    p: &mut Problem,
    state: CheckState,
    at: Millis,
    now: Millis,
    rule: &Rule,
    hold: Hold,
) -> Vec<Step> {
    let changed = p.samples > 0 && state != p.state;
    let first = p.samples == 0;
    p.history = ((p.history << 1) | u32::from(changed)) & ((1 << FLAP_SAMPLES) - 1);
    p.samples = (p.samples + 1).min(FLAP_SAMPLES);
    let previous = p.state;
    p.state = state;
    if state == CheckState::Ok {
        p.bad_count = 0;
        p.bad_since = None;
        if p.ok_since.is_none() || changed || first {
            p.ok_since = Some(at);
        }
    } else {
        p.ok_since = None;
        if previous == CheckState::Ok || first {
            p.bad_count = 1;
            p.bad_since = Some(at);
        } else {
            p.bad_count = p.bad_count.saturating_add(1);
        }
    }

    let mut steps = Vec::new();
    let percent = p.flap_percent();
    if !p.flapping && percent > rule.flap_start_percent {
        p.flapping = true;
        match p.open_ticket() {
            Some(id) => steps.push(Step::Flapping { id, flapping: true }),
            None if !hold.open => {
                if let Some(step) = open_or_reopen(p, worst_of(state), now, rule, true) {
                    steps.push(step);
                    if let Step::Reopen { id, .. } = step {
                        steps.push(Step::Flapping { id, flapping: true });
                    }
                }
            }
            None => {}
        }
        return steps;
    }
    if p.flapping && percent < rule.flap_stop_percent {
        p.flapping = false;
        if let Some(id) = p.open_ticket() {
            steps.push(Step::Flapping {
                id,
                flapping: false,
            });
        }
    }
    if p.flapping {
        // One ticket, no churn: only a severity change is worth recording.
        if let Some(t) = p.ticket
            && state != CheckState::Ok
            && t.open
            && t.severity != state
        {
            steps.push(update(p, state));
        }
        return steps;
    }
    if let Some(t) = p.ticket
        && state != CheckState::Ok
        && t.open
    {
        // Severity or text may have changed; the store keeps text current.
        steps.push(update(p, state));
        return steps;
    }
    steps.extend(tick(p, now, rule, hold));
    steps
}

fn worst_of(state: CheckState) -> CheckState {
    if state == CheckState::Ok {
        CheckState::Warn
    } else {
        state
    }
}

fn update(p: &mut Problem, severity: CheckState) -> Step {
    let t = p.ticket.as_mut().map(|t| {
        let changed = t.severity != severity;
        t.severity = severity;
        (t.id, changed)
    });
    let (id, severity_changed) = t.unwrap_or((0, false));
    Step::Update {
        id,
        severity,
        severity_changed,
    }
}

fn open_or_reopen(
    p: &mut Problem,
    severity: CheckState,
    now: Millis,
    rule: &Rule,
    flapping: bool,
) -> Option<Step> {
    let grace_ms = i64::try_from(rule.reopen_grace_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let within_grace = p
        .ticket
        .and_then(|t| t.resolved_at.map(|r| (t.id, r)))
        .filter(|&(_, resolved_at)| now.saturating_sub(resolved_at) <= grace_ms);
    match within_grace {
        Some((id, _)) => {
            p.ticket = Some(TicketLink {
                id,
                open: true,
                resolved_at: None,
                severity,
            });
            Some(Step::Reopen { id, severity })
        }
        None => {
            // The store links the new ticket id after inserting it.
            p.ticket = None;
            Some(Step::Open { severity, flapping })
        }
    }
}

/// Time-based decisions: confirmation by duration, recovery by duration.
pub fn tick(p: &mut Problem, now: Millis, rule: &Rule, hold: Hold) -> Vec<Step> {
    if p.flapping {
        return Vec::new();
    }
    let secs = |s: u64| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
    match (p.state, p.open_ticket()) {
        (CheckState::Ok, Some(id)) => {
            // Agent clocks may run ahead of the collector's: a duration
            // below zero is zero, so an immediate rule stays immediate.
            let ok_for = now.saturating_sub(p.ok_since.unwrap_or(now)).max(0);
            if !hold.resolve && ok_for >= secs(rule.recovery_secs) {
                if let Some(t) = p.ticket.as_mut() {
                    t.open = false;
                    t.resolved_at = Some(now);
                }
                return vec![Step::Resolve { id }];
            }
            Vec::new()
        }
        (CheckState::Ok, None) => Vec::new(),
        (state, None) => {
            let bad_for = now.saturating_sub(p.bad_since.unwrap_or(now)).max(0);
            let confirmed =
                p.bad_count >= rule.confirm_count.max(1) && bad_for >= secs(rule.confirm_secs);
            if confirmed && !hold.open {
                open_or_reopen(p, state, now, rule, false)
                    .into_iter()
                    .collect()
            } else {
                Vec::new()
            }
        }
        (_, Some(_)) => Vec::new(),
    }
}

/// Links a freshly inserted ticket to the problem (after [`Step::Open`]).
pub fn link_new_ticket(p: &mut Problem, id: i64, severity: CheckState) {
    p.ticket = Some(TicketLink {
        id,
        open: true,
        resolved_at: None,
        severity,
    });
}

#[cfg(test)]
mod tests;
