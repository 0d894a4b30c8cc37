use proptest::prelude::*;

use super::*;
use CheckState::{Crit, Ok as Good, Warn};

const S: Millis = 1000;

/// Drives a problem like the store does: links new tickets, returns steps.
struct Sim {
    p: Problem,
    rule: Rule,
    next_id: i64,
    open_tickets: std::collections::BTreeSet<i64>,
    opened: u32,
}

impl Sim {
    fn new(rule: Rule) -> Self {
        Self {
            p: Problem::default(),
            rule,
            next_id: 1,
            open_tickets: Default::default(),
            opened: 0,
        }
    }

    fn apply(&mut self, steps: Vec<Step>) -> Vec<Step> {
        for s in &steps {
            match *s {
                Step::Open { severity, .. } => {
                    let id = self.next_id;
                    self.next_id += 1;
                    link_new_ticket(&mut self.p, id, severity);
                    assert!(
                        self.open_tickets.is_empty(),
                        "second open ticket: {steps:?}"
                    );
                    self.open_tickets.insert(id);
                    self.opened += 1;
                }
                Step::Reopen { id, .. } => {
                    assert!(self.open_tickets.is_empty(), "reopen while open: {steps:?}");
                    self.open_tickets.insert(id);
                }
                Step::Resolve { id } => {
                    assert!(self.open_tickets.remove(&id), "resolving a closed ticket");
                }
                Step::Update { id, .. } | Step::Flapping { id, .. } => {
                    assert!(self.open_tickets.contains(&id), "{s:?} on a closed ticket");
                }
            }
        }
        steps
    }

    fn see(&mut self, state: CheckState, t: Millis) -> Vec<Step> {
        let steps = observe(&mut self.p, state, t, t, &self.rule, Hold::default());
        self.apply(steps)
    }

    fn tick(&mut self, t: Millis) -> Vec<Step> {
        let steps = tick(&mut self.p, t, &self.rule, Hold::default());
        self.apply(steps)
    }
}

#[test]
fn immediate_rule_opens_and_resolves_at_once() {
    let mut sim = Sim::new(Rule::default());
    assert_eq!(sim.see(Good, 0), []);
    assert_eq!(
        sim.see(Crit, S),
        [Step::Open {
            severity: Crit,
            flapping: false
        }]
    );
    assert!(matches!(
        sim.see(Crit, 2 * S)[..],
        [Step::Update {
            severity_changed: false,
            ..
        }]
    ));
    assert!(matches!(
        sim.see(Warn, 3 * S)[..],
        [Step::Update {
            severity_changed: true,
            ..
        }]
    ));
    assert_eq!(sim.see(Good, 4 * S), [Step::Resolve { id: 1 }]);
}

#[test]
fn an_agent_clock_ahead_of_the_collector_does_not_delay_an_immediate_rule() {
    // The agent stamps its results 1 s after the collector's `now`.
    let rule = Rule::default();
    let mut p = Problem::default();
    assert_eq!(
        observe(&mut p, Crit, 2 * S, S, &rule, Hold::default()),
        [Step::Open {
            severity: Crit,
            flapping: false
        }]
    );
    link_new_ticket(&mut p, 1, Crit);
    assert_eq!(
        observe(&mut p, Good, 4 * S, 3 * S, &rule, Hold::default()),
        [Step::Resolve { id: 1 }]
    );
}

#[test]
fn confirmation_by_count_and_duration() {
    let rule = Rule {
        confirm_count: 3,
        confirm_secs: 60,
        ..Rule::default()
    };
    let mut sim = Sim::new(rule);
    assert_eq!(sim.see(Crit, 0), []);
    assert_eq!(sim.see(Crit, 15 * S), []);
    assert_eq!(sim.see(Crit, 30 * S), [], "3 results but only 30 s");
    assert_eq!(sim.tick(59 * S), []);
    assert_eq!(
        sim.tick(60 * S),
        [Step::Open {
            severity: Crit,
            flapping: false
        }]
    );
    // A blip that clears before confirmation never opens anything.
    let mut sim = Sim::new(rule);
    sim.see(Crit, 0);
    sim.see(Good, 10 * S);
    assert_eq!(sim.tick(120 * S), []);
    assert_eq!(sim.opened, 0);
}

#[test]
fn recovery_time_and_relapse_within_grace_reopens_the_same_ticket() {
    let rule = Rule {
        recovery_secs: 30,
        reopen_grace_secs: 300,
        ..Rule::default()
    };
    let mut sim = Sim::new(rule);
    sim.see(Crit, 0);
    assert_eq!(sim.see(Good, 10 * S), []);
    assert_eq!(sim.tick(39 * S), []);
    assert_eq!(sim.tick(40 * S), [Step::Resolve { id: 1 }]);
    // Relapse 100 s later: same ticket.
    assert_eq!(
        sim.see(Crit, 140 * S),
        [Step::Reopen {
            id: 1,
            severity: Crit
        }]
    );
    sim.see(Good, 150 * S);
    sim.tick(180 * S);
    // Relapse long after: a new episode.
    assert_eq!(
        sim.see(Warn, 1000 * S),
        [Step::Open {
            severity: Warn,
            flapping: false
        }]
    );
    assert_eq!(sim.opened, 2);
}

#[test]
fn a_relapse_during_recovery_keeps_the_ticket() {
    let rule = Rule {
        recovery_secs: 60,
        ..Rule::default()
    };
    let mut sim = Sim::new(rule);
    sim.see(Crit, 0);
    sim.see(Good, 10 * S);
    assert!(matches!(sim.see(Crit, 20 * S)[..], [Step::Update { .. }]));
    assert_eq!(sim.tick(200 * S), []);
    assert_eq!(sim.opened, 1);
}

#[test]
fn flapping_holds_one_ticket_without_churn() {
    let rule = Rule::default();
    let mut sim = Sim::new(rule);
    let mut t = 0;
    let mut churn_after_detection = 0;
    let mut detected_at = None;
    for i in 0..40 {
        t += 15 * S;
        let state = if i % 2 == 0 { Crit } else { Good };
        let already = detected_at.is_some();
        for s in sim.see(state, t) {
            if already
                && matches!(
                    s,
                    Step::Resolve { .. } | Step::Open { .. } | Step::Reopen { .. }
                )
            {
                churn_after_detection += 1;
            }
        }
        if sim.p.flapping && detected_at.is_none() {
            detected_at = Some(i);
        }
    }
    assert!(
        sim.p.flapping,
        "alternating states are flapping ({:.0}%)",
        sim.p.flap_percent()
    );
    let detected_at = detected_at.expect("detected");
    assert!(
        detected_at <= 8,
        "detected only after {detected_at} results"
    );
    assert_eq!(churn_after_detection, 0);
    // Before detection, relapses within the grace reuse the same ticket.
    assert_eq!(sim.opened, 1);
    assert_eq!(sim.open_tickets.len(), 1, "flapping keeps one ticket open");
    // Settles OK: flapping ends, then the ticket resolves.
    let mut stopped = false;
    for _ in 0..40 {
        t += 15 * S;
        for s in sim.see(Good, t) {
            stopped |= matches!(
                s,
                Step::Flapping {
                    flapping: false,
                    ..
                }
            );
        }
    }
    assert!(stopped && !sim.p.flapping);
    assert!(sim.open_tickets.is_empty());
}

#[test]
fn holds_block_opening_and_resolving() {
    let rule = Rule::default();
    let mut p = Problem::default();
    let hold = Hold {
        open: true,
        resolve: true,
    };
    assert_eq!(observe(&mut p, Crit, 0, 0, &rule, hold), []);
    // The hold ends (window over) and the problem is still there: it opens.
    assert_eq!(
        tick(&mut p, S, &rule, Hold::default()),
        [Step::Open {
            severity: Crit,
            flapping: false
        }]
    );
    link_new_ticket(&mut p, 9, Crit);
    assert_eq!(observe(&mut p, Good, 2 * S, 2 * S, &rule, hold), []);
    assert_eq!(
        tick(&mut p, 3 * S, &rule, Hold::default()),
        [Step::Resolve { id: 9 }]
    );
}

fn state() -> impl Strategy<Value = CheckState> {
    prop_oneof![
        Just(Good),
        Just(Warn),
        Just(Crit),
        Just(CheckState::Unknown)
    ]
}

fn rule() -> impl Strategy<Value = Rule> {
    (1u32..4, 0u64..120, 0u64..120, 0u64..600).prop_map(|(n, c, r, g)| Rule {
        confirm_count: n,
        confirm_secs: c,
        recovery_secs: r,
        reopen_grace_secs: g,
        ..Rule::default()
    })
}

proptest! {
    /// Random result sequences never produce two open tickets for one
    /// fingerprint (asserted inside `Sim::apply`), and once the sequence
    /// ends OK long enough, no ticket stays open.
    #[test]
    fn never_two_open_tickets_and_ok_resolves(
        rule in rule(),
        seq in prop::collection::vec((state(), 1u64..60, any::<bool>()), 0..80),
    ) {
        let mut sim = Sim::new(rule);
        let mut t: Millis = 0;
        for (state, gap, tick_between) in seq {
            t += i64::try_from(gap).unwrap() * S;
            if tick_between {
                sim.tick(t - S / 2);
            }
            sim.see(state, t);
        }
        // The check settles OK: results keep coming, time passes.
        for _ in 0..60 {
            t += 15 * S;
            sim.see(Good, t);
            sim.tick(t);
        }
        prop_assert!(sim.open_tickets.is_empty(), "still open: {:?} problem {:?}", sim.open_tickets, sim.p);
    }
}
