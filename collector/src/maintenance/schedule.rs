//! Recurrence math for weekly windows, in the tenant's time zone.
//!
//! A weekly window starts on each of its days at a local wall-clock time
//! and lasts an exact (elapsed) duration, like AWS maintenance windows: a
//! 6 h window from 22:00 that crosses the spring-forward night ends at
//! 05:00 local, still 6 h later. Local times are resolved the RFC 5545 /
//! Temporal "compatible" way, by `jiff` from the system tz database:
//!
//! - a start time that falls into a DST gap (02:30 on the night clocks jump
//!   from 02:00 to 03:00) is read with the offset before the gap, i.e. it
//!   starts at 03:30 — the same elapsed time after midnight;
//! - a start time that occurs twice (a fold, clocks going back) starts at
//!   the first of the two;
//! - a day that does not exist at all locally (Samoa skipped 2011-12-30)
//!   has no window: resolving it lands on another date, and that occurrence
//!   is dropped rather than moved.

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;

use crate::domain::Millis;

/// Longest weekly window: one week (it would overlap itself past that).
pub const MAX_DURATION_SECS: u32 = 7 * 24 * 3600;

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_MS: i64 = 24 * 3600 * 1000;

/// A weekly schedule: days, local start time and duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weekly {
    /// Bit 0 = Monday … bit 6 = Sunday.
    pub days: u8,
    /// Minutes after local midnight (0..1440).
    pub start_minute: u16,
    /// Elapsed seconds (1..=[`MAX_DURATION_SECS`]).
    pub duration_secs: u32,
}

impl Weekly {
    /// Validated constructor.
    pub fn new(days: u8, start_minute: u16, duration_secs: u32) -> Result<Self, String> {
        if days == 0 || days > 0x7f {
            return Err("at least one day of the week is required".into());
        }
        Slot::new(start_minute, duration_secs)?;
        Ok(Self {
            days,
            start_minute,
            duration_secs,
        })
    }

    /// Whether the schedule has an occurrence on `weekday`.
    pub fn on(&self, weekday: Weekday) -> bool {
        self.days & day_bit(weekday) != 0
    }

    /// The occurrence that starts on local `date`, as `[start, end)` in
    /// Unix milliseconds; `None` when the date is not one of the days or
    /// does not exist locally.
    pub fn occurrence_on(&self, date: Date, tz: &TimeZone) -> Option<(Millis, Millis)> {
        self.on(date.weekday())
            .then(|| self.slot().on(date, tz))
            .flatten()
    }

    /// If an occurrence covers `now`: when the latest covering one ends.
    pub fn active_until(&self, now: Millis, tz: &TimeZone) -> Option<Millis> {
        self.slot()
            .active_until(now, tz, |date| self.on(date.weekday()))
    }

    /// The first occurrence starting after `after`.
    pub fn next_start(&self, after: Millis, tz: &TimeZone) -> Option<Millis> {
        let today = local_date(after, tz)?;
        (-1..=8)
            .filter_map(|d| today.checked_add(jiff::Span::new().days(d)).ok())
            .filter_map(|date| self.occurrence_on(date, tz))
            .map(|(start, _)| start)
            .find(|&start| start > after)
    }

    fn slot(&self) -> Slot {
        Slot {
            start_minute: self.start_minute,
            duration_secs: self.duration_secs,
        }
    }
}

/// When on its day an occurrence starts (local wall-clock time) and how
/// long it lasts (elapsed): the part weekly and rrule windows share, so
/// both resolve local times and DST the same way (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Minutes after local midnight (0..1440).
    pub start_minute: u16,
    /// Elapsed seconds (1..=[`MAX_DURATION_SECS`]).
    pub duration_secs: u32,
}

impl Slot {
    /// Validated constructor.
    pub fn new(start_minute: u16, duration_secs: u32) -> Result<Self, String> {
        if start_minute >= 24 * 60 {
            return Err("start time must be before 24:00".into());
        }
        if !(60..=MAX_DURATION_SECS).contains(&duration_secs) {
            return Err("duration must be between 1 minute and 7 days".into());
        }
        Ok(Self {
            start_minute,
            duration_secs,
        })
    }

    /// The occurrence starting on local `date`, as `[start, end)` in Unix
    /// milliseconds; `None` when the date does not exist locally.
    pub fn on(self, date: Date, tz: &TimeZone) -> Option<(Millis, Millis)> {
        let (h, m) = (self.start_minute / 60, self.start_minute % 60);
        let local = date.at(i8::try_from(h).ok()?, i8::try_from(m).ok()?, 0, 0);
        let start = tz.to_ambiguous_timestamp(local).compatible().ok()?;
        if tz.to_datetime(start).date() != date {
            // The whole local day was skipped (a date-line change).
            return None;
        }
        let start = start.as_millisecond();
        Some((start, start + i64::from(self.duration_secs) * 1000))
    }

    /// If an occurrence on one of the dates `is_day` picks covers `now`:
    /// when the latest covering one ends.
    pub fn active_until(
        self,
        now: Millis,
        tz: &TimeZone,
        is_day: impl Fn(Date) -> bool,
    ) -> Option<Millis> {
        let today = local_date(now, tz)?;
        // Occurrences that started up to `duration` (+1 day of slack for
        // offsets and DST) before today can still be running.
        let back = i64::from(self.duration_secs) * 1000 / DAY_MS + 1;
        (0..=back)
            .filter_map(|d| today.checked_sub(jiff::Span::new().days(d)).ok())
            .filter(|&date| is_day(date))
            .filter_map(|date| self.on(date, tz))
            .filter(|&(start, end)| start <= now && now < end)
            .map(|(_, end)| end)
            .max()
    }
}

/// The local calendar date of an instant.
pub fn local_date(at: Millis, tz: &TimeZone) -> Option<Date> {
    let ts = Timestamp::from_millisecond(at).ok()?;
    Some(tz.to_datetime(ts).date())
}

fn day_bit(weekday: Weekday) -> u8 {
    1 << weekday.to_monday_zero_offset()
}

/// Parses `mon,tue`, `mon-fri`, `sat,sun`, `daily` (full names too).
pub fn parse_days(text: &str) -> Result<u8, String> {
    let day = |s: &str| -> Result<u8, String> {
        let s = s.trim().to_ascii_lowercase();
        DAY_NAMES
            .iter()
            .position(|d| s.len() >= 3 && (s == *d || full_name(d).starts_with(&s)))
            .and_then(|i| u8::try_from(i).ok())
            .ok_or_else(|| format!("unknown day {s:?} (mon, tue, wed, thu, fri, sat, sun)"))
    };
    let text = text.trim();
    if text.eq_ignore_ascii_case("daily") || text == "*" {
        return Ok(0x7f);
    }
    let mut days = 0u8;
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                // A range may wrap the week end: fri-mon.
                let mut d = a;
                loop {
                    days |= 1 << d;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days |= 1 << day(part)?,
        }
    }
    if days == 0 {
        return Err("at least one day of the week is required".into());
    }
    Ok(days)
}

fn full_name(short: &str) -> &'static str {
    match short {
        "mon" => "monday",
        "tue" => "tuesday",
        "wed" => "wednesday",
        "thu" => "thursday",
        "fri" => "friday",
        "sat" => "saturday",
        _ => "sunday",
    }
}

/// `mon,wed,fri` for a day mask.
pub fn format_days(days: u8) -> Vec<&'static str> {
    DAY_NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| days & (1 << i) != 0)
        .map(|(_, d)| *d)
        .collect()
}

/// Parses a local time of day `HH:MM` into minutes after midnight.
pub fn parse_clock(text: &str) -> Result<u16, String> {
    let bad = || format!("time of day {text:?} must be HH:MM (00:00..23:59)");
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 || text.trim().len() > 5 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// `HH:MM` for minutes after midnight.
pub fn format_clock(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).expect("system tz database")
    }

    /// Unix ms of a local civil time in `tz` (compatible resolution).
    fn local(tz: &TimeZone, y: i16, mo: i8, d: i8, h: i8, mi: i8) -> Millis {
        tz.to_timestamp(date(y, mo, d).at(h, mi, 0, 0))
            .expect("valid")
            .as_millisecond()
    }

    /// Unix ms of a UTC instant.
    fn utc(s: &str) -> Millis {
        s.parse::<Timestamp>().expect("timestamp").as_millisecond()
    }

    const H: i64 = 3_600_000;

    #[test]
    fn starts_at_the_same_local_time_across_dst_in_berlin() {
        let berlin = tz("Europe/Berlin");
        // Daily at 22:00 for 2 h. 2026: DST starts Sun 29 March, ends Sun 25 October.
        let w = Weekly::new(parse_days("daily").expect("days"), 22 * 60, 7200).expect("valid");
        // Winter: 22:00 CET = 21:00 UTC; summer: 22:00 CEST = 20:00 UTC.
        let (s, e) = w
            .occurrence_on(date(2026, 3, 28), &berlin)
            .expect("saturday");
        assert_eq!(
            (s, e),
            (utc("2026-03-28T21:00:00Z"), utc("2026-03-28T23:00:00Z"))
        );
        let (s, _) = w.occurrence_on(date(2026, 3, 29), &berlin).expect("sunday");
        assert_eq!(s, utc("2026-03-29T20:00:00Z"));
        assert_eq!(
            w.active_until(utc("2026-03-29T20:30:00Z"), &berlin),
            Some(utc("2026-03-29T22:00:00Z"))
        );
        // 21:30 UTC was in the window the evening before, not this one.
        assert_eq!(w.active_until(utc("2026-03-29T22:30:00Z"), &berlin), None);
        assert!(
            w.active_until(utc("2026-03-28T22:30:00Z"), &berlin)
                .is_some()
        );
        // And back in October.
        let (s, _) = w
            .occurrence_on(date(2026, 10, 25), &berlin)
            .expect("sunday");
        assert_eq!(s, utc("2026-10-25T21:00:00Z"));
    }

    #[test]
    fn a_window_across_the_spring_forward_night_lasts_its_duration() {
        let berlin = tz("Europe/Berlin");
        // Saturday 22:00 for 6 h: 21:00 UTC → 03:00 UTC, which is 05:00 CEST.
        let w = Weekly::new(parse_days("sat").expect("days"), 22 * 60, 6 * 3600).expect("valid");
        let end = w
            .active_until(local(&berlin, 2026, 3, 29, 1, 30), &berlin)
            .expect("active after midnight");
        assert_eq!(end, local(&berlin, 2026, 3, 29, 5, 0));
        assert_eq!(end - local(&berlin, 2026, 3, 28, 22, 0), 6 * H);
        assert!(
            w.active_until(local(&berlin, 2026, 3, 29, 4, 59), &berlin)
                .is_some()
        );
        assert_eq!(
            w.active_until(local(&berlin, 2026, 3, 29, 5, 0), &berlin),
            None
        );
    }

    #[test]
    fn new_york_dst_in_both_directions() {
        let ny = tz("America/New_York");
        // Sundays 01:30 for 1 h. 2026: DST starts 8 March 02:00, ends 1 November 02:00.
        let w = Weekly::new(parse_days("sun").expect("days"), 90, 3600).expect("valid");
        // Before: EST (-5).
        let (s, _) = w.occurrence_on(date(2026, 3, 1), &ny).expect("sunday");
        assert_eq!(s, utc("2026-03-01T06:30:00Z"));
        // Spring forward: 01:30 still exists (EST), the window runs into
        // the jump and ends at 03:30 EDT, one hour later.
        let (s, e) = w.occurrence_on(date(2026, 3, 8), &ny).expect("sunday");
        assert_eq!(
            (s, e),
            (utc("2026-03-08T06:30:00Z"), utc("2026-03-08T07:30:00Z"))
        );
        // Fall back: 01:30 happens twice; the window starts at the first.
        let (s, _) = w.occurrence_on(date(2026, 11, 1), &ny).expect("sunday");
        assert_eq!(s, utc("2026-11-01T05:30:00Z"), "01:30 EDT, not EST");
        assert!(w.active_until(utc("2026-11-01T06:00:00Z"), &ny).is_some());
        assert_eq!(w.active_until(utc("2026-11-01T06:30:00Z"), &ny), None);
        // After: EDT over, EST again.
        let (s, _) = w.occurrence_on(date(2026, 11, 8), &ny).expect("sunday");
        assert_eq!(s, utc("2026-11-08T06:30:00Z"));
    }

    #[test]
    fn a_start_time_inside_the_dst_gap_is_read_with_the_offset_before_it() {
        let berlin = tz("Europe/Berlin");
        // 02:30 does not exist on 29 March 2026 in Berlin (02:00 → 03:00).
        let w = Weekly::new(parse_days("sun").expect("days"), 150, 3600).expect("valid");
        let (s, e) = w.occurrence_on(date(2026, 3, 29), &berlin).expect("sunday");
        // 02:30 CET = 01:30 UTC = 03:30 CEST.
        assert_eq!(s, utc("2026-03-29T01:30:00Z"));
        assert_eq!(e - s, H);
        // Other Sundays: 02:30 local as usual.
        let (s, _) = w.occurrence_on(date(2026, 3, 22), &berlin).expect("sunday");
        assert_eq!(s, utc("2026-03-22T01:30:00Z"));
        let (s, _) = w.occurrence_on(date(2026, 4, 5), &berlin).expect("sunday");
        assert_eq!(s, utc("2026-04-05T00:30:00Z"));
    }

    #[test]
    fn a_day_that_does_not_exist_locally_has_no_window() {
        // Samoa moved across the date line: Thursday 29 December 2011 was
        // followed by Saturday 31 December; Friday the 30th never happened.
        let apia = tz("Pacific/Apia");
        let fridays = Weekly::new(parse_days("fri").expect("days"), 22 * 60, 3600).expect("ok");
        assert_eq!(fridays.occurrence_on(date(2011, 12, 30), &apia), None);
        assert!(fridays.occurrence_on(date(2011, 12, 23), &apia).is_some());
        assert!(fridays.occurrence_on(date(2012, 1, 6), &apia).is_some());
        // Nothing is active on the Saturday evening instead.
        let sat_evening = local(&apia, 2011, 12, 31, 22, 30);
        assert_eq!(fridays.active_until(sat_evening, &apia), None);
        // Saturday's own window is untouched.
        let saturdays = Weekly::new(parse_days("sat").expect("days"), 22 * 60, 3600).expect("ok");
        assert!(saturdays.active_until(sat_evening, &apia).is_some());
    }

    #[test]
    fn a_window_spanning_midnight_covers_the_next_morning() {
        let utc_tz = TimeZone::UTC;
        // Friday 22:00 for 4 h (Friday 2026-05-01).
        let w = Weekly::new(parse_days("fri").expect("days"), 22 * 60, 4 * 3600).expect("ok");
        let fri_2130 = utc("2026-05-01T21:30:00Z");
        let sat_0100 = utc("2026-05-02T01:00:00Z");
        let sat_0200 = utc("2026-05-02T02:00:00Z");
        assert_eq!(w.active_until(fri_2130, &utc_tz), None);
        assert_eq!(w.active_until(sat_0100, &utc_tz), Some(sat_0200));
        assert_eq!(w.active_until(sat_0200, &utc_tz), None, "end is exclusive");
        assert_eq!(
            w.active_until(sat_0200 - 1, &utc_tz),
            Some(sat_0200),
            "last millisecond"
        );
        assert_eq!(
            w.next_start(sat_0200, &utc_tz),
            Some(utc("2026-05-08T22:00:00Z"))
        );
        // A week-long window every day: always active, ends a week after
        // the latest start.
        let all = Weekly::new(0x7f, 0, MAX_DURATION_SECS).expect("ok");
        assert_eq!(
            all.active_until(sat_0100, &utc_tz),
            Some(utc("2026-05-09T00:00:00Z"))
        );
    }

    #[test]
    fn days_and_clock_parse() {
        assert_eq!(parse_days("mon,tue"), Ok(0b11));
        assert_eq!(parse_days("mon-fri"), Ok(0b1_1111));
        assert_eq!(parse_days("Sat, Sunday"), Ok(0b110_0000));
        assert_eq!(parse_days("fri-mon"), Ok(0b111_0001));
        assert_eq!(parse_days("daily"), Ok(0x7f));
        assert!(parse_days("funday").is_err());
        assert!(parse_days("").is_err());
        assert_eq!(format_days(0b111_0001), ["mon", "fri", "sat", "sun"]);
        assert_eq!(parse_clock("22:00"), Ok(1320));
        assert_eq!(parse_clock("0:05"), Ok(5));
        assert!(parse_clock("24:00").is_err());
        assert!(parse_clock("12:60").is_err());
        assert!(parse_clock("noon").is_err());
        assert_eq!(format_clock(1320), "22:00");
        assert!(Weekly::new(1, 0, 30).is_err());
        assert!(Weekly::new(1, 0, MAX_DURATION_SECS + 1).is_err());
        assert!(Weekly::new(0, 0, 3600).is_err());
    }
}
