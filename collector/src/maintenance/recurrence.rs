//! Windows that recur by an RRULE ([`super::rrule`]): "the second Tuesday of
//! the month, 22:00 for 4 h" (Patch Tuesday), "the last day of the month".
//!
//! The rule picks local dates from the anchor date (`DTSTART`) on; each
//! picked date has one occurrence at the local start time lasting the exact
//! duration, resolved like weekly windows ([`super::schedule`]: DST gaps are
//! read with the offset before them, folds take the first time, dates that
//! do not exist locally have no occurrence). A window that starts at 22:00
//! for 4 h covers 01:00 the next day.
//!
//! Hand-written on `jiff` rather than the `rrule` crate: jiff is already the
//! collector's time-zone engine (reading the system tz database), while
//! `rrule` brings chrono and chrono-tz with a second, bundled tz database
//! that could disagree with the first about the same zone; the date math
//! for this subset is small and tested here against a brute-force scan.

use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::rrule::Rule;
use super::schedule::{Slot, local_date};
use crate::domain::Millis;

/// A recurring window: rule, anchor date, local start time and duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recurrence {
    rule: Rule,
    dtstart: Date,
    slot: Slot,
    /// The series' last date (`COUNT` or `UNTIL`), worked out once.
    last: Option<Date>,
}

impl Recurrence {
    /// Validated constructor: `start_minute` after local midnight,
    /// `duration_secs` between 1 minute and 7 days.
    pub fn new(
        rule: Rule,
        dtstart: Date,
        start_minute: u16,
        duration_secs: u32,
    ) -> Result<Self, String> {
        let slot = Slot::new(start_minute, duration_secs)?;
        let last = rule.last(dtstart);
        Ok(Self {
            rule,
            dtstart,
            slot,
            last,
        })
    }

    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// The anchor date (`DTSTART`): the series' first period.
    pub fn dtstart(&self) -> Date {
        self.dtstart
    }

    pub fn start_minute(&self) -> u16 {
        self.slot.start_minute
    }

    pub fn duration_secs(&self) -> u32 {
        self.slot.duration_secs
    }

    /// Whether an occurrence starts on local `date`.
    pub fn on(&self, date: Date) -> bool {
        self.last.is_none_or(|l| date <= l) && self.rule.on(date, self.dtstart)
    }

    /// The occurrence starting on local `date`, as `[start, end)` in Unix
    /// milliseconds.
    pub fn occurrence_on(&self, date: Date, tz: &TimeZone) -> Option<(Millis, Millis)> {
        self.on(date).then(|| self.slot.on(date, tz)).flatten()
    }

    /// If an occurrence covers `now`: when the latest covering one ends.
    pub fn active_until(&self, now: Millis, tz: &TimeZone) -> Option<Millis> {
        self.slot.active_until(now, tz, |date| self.on(date))
    }

    /// The first occurrence starting after `after` (none once the series
    /// is over, or past [`super::rrule::HORIZON_YEARS`]).
    pub fn next_start(&self, after: Millis, tz: &TimeZone) -> Option<Millis> {
        let from = local_date(after, tz)?.yesterday().ok()?;
        self.rule
            .dates_from(self.dtstart, from)
            .take_while(|&d| self.last.is_none_or(|l| d <= l))
            .filter_map(|d| self.slot.on(d, tz))
            .map(|(start, _)| start)
            .find(|&start| start > after)
    }

    /// Whether the series has no occurrence that ends after `now`.
    pub fn over(&self, now: Millis, tz: &TimeZone) -> bool {
        self.active_until(now, tz).is_none() && self.next_start(now, tz).is_none()
    }
}

#[cfg(test)]
#[path = "recurrence_tests.rs"]
mod tests;
