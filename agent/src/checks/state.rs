//! The agent's memory of every (check, item): its current result, since
//! when it has been in that state, and which evaluations changed a state
//! (those are pushed to the collector at once).

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::{CheckResult, Evaluation};

/// Current results keyed by (check, item).
#[derive(Debug, Default)]
pub struct StateTracker {
    results: BTreeMap<(&'static str, String), CheckResult>,
}

impl StateTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a full evaluation of `check` at `now` and returns the results
    /// whose state changed (an item seen for the first time counts as
    /// changed). `since` stays put while the state does. Items of `check`
    /// missing from `evaluations` (an unmounted filesystem) are forgotten.
    pub fn apply(
        &mut self,
        check: &'static str,
        evaluations: Vec<Evaluation>,
        now: SystemTime,
    ) -> Vec<CheckResult> {
        let seen: Vec<String> = evaluations.iter().map(|e| e.item.clone()).collect();
        let changed = self.apply_items(check, evaluations, now);
        self.retain_items(check, &seen);
        changed
    }

    /// Records a probe's evaluations: like [`StateTracker::apply`], but items
    /// of the same kind that are not in `evaluations` are kept, since several
    /// probe instances of one kind (two services, three backups) report
    /// separately.
    pub fn apply_items(
        &mut self,
        check: &'static str,
        evaluations: Vec<Evaluation>,
        now: SystemTime,
    ) -> Vec<CheckResult> {
        let mut changed = Vec::new();
        for e in evaluations {
            let key = (check, e.item.clone());
            let unchanged = self.results.get(&key).filter(|p| p.state == e.state);
            let since = unchanged.map_or(now, |p| p.since);
            let result = CheckResult {
                check,
                item: e.item,
                state: e.state,
                message: e.message,
                metrics: e.metrics,
                since,
            };
            if unchanged.is_none() {
                changed.push(result.clone());
            }
            self.results.insert(key, result);
        }
        changed
    }

    /// Forgets every result of `check` whose item is not in `keep` (a probe
    /// removed by a config reload).
    pub fn retain_items(&mut self, check: &'static str, keep: &[String]) {
        self.results
            .retain(|(c, item), _| *c != check || keep.contains(item));
    }

    /// Every current result, ordered by check and item.
    pub fn current(&self) -> Vec<CheckResult> {
        self.results.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::checks::CheckState;

    fn eval(item: &str, state: CheckState) -> Evaluation {
        Evaluation {
            item: item.into(),
            state,
            message: format!("{item} {state}"),
            metrics: Vec::new(),
        }
    }

    #[test]
    fn since_is_stable_while_the_state_is() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let t1 = t0 + Duration::from_secs(1);
        let t2 = t0 + Duration::from_secs(2);
        let mut tracker = StateTracker::new();

        let changed = tracker.apply("disk", vec![eval("/", CheckState::Ok)], t0);
        assert_eq!(changed.len(), 1, "first sight is a change");

        assert!(
            tracker
                .apply("disk", vec![eval("/", CheckState::Ok)], t1)
                .is_empty()
        );
        assert_eq!(tracker.current()[0].since, t0);

        let changed = tracker.apply("disk", vec![eval("/", CheckState::Crit)], t2);
        assert_eq!(changed.len(), 1);
        assert_eq!((changed[0].state, changed[0].since), (CheckState::Crit, t2));
    }

    #[test]
    fn probe_items_of_one_kind_are_kept_apart() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut tracker = StateTracker::new();
        tracker.apply_items("service", vec![eval("nginx", CheckState::Ok)], t0);
        let changed = tracker.apply_items("service", vec![eval("sshd", CheckState::Crit)], t0);
        assert_eq!(changed.len(), 1);
        assert_eq!(tracker.current().len(), 2);
        tracker.retain_items("service", &["sshd".to_owned()]);
        assert_eq!(tracker.current().len(), 1);
    }

    #[test]
    fn vanished_items_are_forgotten_per_check() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut tracker = StateTracker::new();
        tracker.apply(
            "disk",
            vec![eval("/", CheckState::Ok), eval("/mnt", CheckState::Ok)],
            t0,
        );
        tracker.apply("cpu", vec![eval("", CheckState::Ok)], t0);
        tracker.apply("disk", vec![eval("/", CheckState::Ok)], t0);
        let keys: Vec<_> = tracker
            .current()
            .into_iter()
            .map(|r| (r.check, r.item))
            .collect();
        assert_eq!(keys, [("cpu", String::new()), ("disk", "/".to_owned())]);
    }
}
