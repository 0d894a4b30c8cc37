//! RRULE windows in real time zones: Patch Tuesday, the last day of the
//! month, windows across midnight and across both DST changes in
//! Europe/Berlin and America/New_York, checked against the tz database
//! through instants written out in UTC.

use jiff::Timestamp;
use jiff::civil::{Date, date};
use jiff::tz::TimeZone;
use proptest::prelude::*;

use super::*;

const H: i64 = 3_600_000;

fn tz(name: &str) -> TimeZone {
    TimeZone::get(name).expect("system tz database")
}

fn utc(s: &str) -> Millis {
    s.parse::<Timestamp>().expect("timestamp").as_millisecond()
}

fn rec(rule: &str, dtstart: Date, at: &str, hours: u32) -> Recurrence {
    let rule = Rule::parse(rule).expect("rule");
    let at = super::super::schedule::parse_clock(at).expect("clock");
    Recurrence::new(rule, dtstart, at, hours * 3600).expect("valid")
}

#[test]
fn patch_tuesday_in_berlin_summer_and_winter() {
    let berlin = tz("Europe/Berlin");
    let w = rec("FREQ=MONTHLY;BYDAY=2TU", date(2026, 1, 1), "22:00", 4);
    // 12 May 2026 22:00 CEST = 20:00 UTC; 10 November 22:00 CET = 21:00 UTC.
    assert_eq!(
        w.next_start(utc("2026-05-01T00:00:00Z"), &berlin),
        Some(utc("2026-05-12T20:00:00Z"))
    );
    assert_eq!(
        w.next_start(utc("2026-11-01T00:00:00Z"), &berlin),
        Some(utc("2026-11-10T21:00:00Z"))
    );
    // And years on: 14 December 2027, 12 December 2028.
    assert_eq!(
        w.next_start(utc("2027-12-01T00:00:00Z"), &berlin),
        Some(utc("2027-12-14T21:00:00Z"))
    );
    assert_eq!(
        w.next_start(utc("2028-12-12T21:00:00Z"), &berlin),
        Some(utc("2029-01-09T21:00:00Z")),
        "strictly after"
    );
    // 22:00–02:00 crosses midnight: active at 01:00 Wednesday local.
    let wed_0100 = utc("2026-05-12T23:00:00Z");
    assert_eq!(
        w.active_until(wed_0100, &berlin),
        Some(utc("2026-05-13T00:00:00Z"))
    );
    assert_eq!(w.active_until(utc("2026-05-12T19:59:59Z"), &berlin), None);
    assert_eq!(
        w.active_until(utc("2026-05-13T00:00:00Z"), &berlin),
        None,
        "02:00 is the exclusive end"
    );
    // The Tuesday before and the Wednesday a week later: nothing.
    assert_eq!(w.active_until(utc("2026-05-05T21:00:00Z"), &berlin), None);
    assert_eq!(w.active_until(utc("2026-05-19T23:00:00Z"), &berlin), None);
    assert!(!w.over(utc("2030-01-01T00:00:00Z"), &berlin));
}

#[test]
fn the_last_day_of_the_month_across_midnight_into_the_first() {
    let ny = tz("America/New_York");
    let w = rec("FREQ=MONTHLY;BYMONTHDAY=-1", date(2024, 1, 1), "23:00", 2);
    // 29 February 2024 23:00 EST = 1 March 04:00 UTC; active at 00:30 on 1 March.
    assert_eq!(
        w.next_start(utc("2024-02-15T00:00:00Z"), &ny),
        Some(utc("2024-03-01T04:00:00Z"))
    );
    assert_eq!(
        w.active_until(utc("2024-03-01T05:30:00Z"), &ny),
        Some(utc("2024-03-01T06:00:00Z"))
    );
    // 2025 is not a leap year: the 28th.
    assert_eq!(
        w.next_start(utc("2025-02-15T00:00:00Z"), &ny),
        Some(utc("2025-03-01T04:00:00Z"))
    );
    assert_eq!(w.occurrence_on(date(2025, 2, 27), &ny), None);
}

#[test]
fn berlin_dst_both_ways() {
    let berlin = tz("Europe/Berlin");
    // Last Sunday of the month at 02:30: in March that time does not exist
    // (02:00 → 03:00 on 29 March 2026), in October it occurs twice (25th).
    let w = rec("FREQ=MONTHLY;BYDAY=-1SU", date(2026, 1, 1), "02:30", 1);
    // Gap: read with the offset before it (CET): 01:30 UTC = 03:30 CEST.
    let (s, e) = w.occurrence_on(date(2026, 3, 29), &berlin).expect("march");
    assert_eq!((s, e - s), (utc("2026-03-29T01:30:00Z"), H));
    // Fold: the first 02:30 (CEST) = 00:30 UTC, not the second (01:30 UTC).
    let (s, _) = w
        .occurrence_on(date(2026, 10, 25), &berlin)
        .expect("october");
    assert_eq!(s, utc("2026-10-25T00:30:00Z"));
    assert!(
        w.active_until(utc("2026-10-25T01:00:00Z"), &berlin)
            .is_some()
    );
    assert_eq!(w.active_until(utc("2026-10-25T01:30:00Z"), &berlin), None);
    // A window across the spring-forward night lasts its duration: Saturday
    // 22:00 for 6 h ends 05:00 CEST (03:00 UTC), 6 h later.
    let sat = rec("FREQ=WEEKLY;BYDAY=SA", date(2026, 3, 1), "22:00", 6);
    assert_eq!(
        sat.active_until(utc("2026-03-29T00:30:00Z"), &berlin),
        Some(utc("2026-03-29T03:00:00Z"))
    );
    // And across the fall-back night: 22:00 CEST (20:00 UTC) + 6 h = 03:00 CET.
    assert_eq!(
        sat.active_until(utc("2026-10-25T01:30:00Z"), &berlin),
        Some(utc("2026-10-25T02:00:00Z"))
    );
}

#[test]
fn new_york_dst_both_ways() {
    let ny = tz("America/New_York");
    // US DST starts on the second Sunday of March and ends on the first
    // Sunday of November: a window at 02:30 on exactly those nights.
    let spring = rec("FREQ=MONTHLY;BYDAY=2SU", date(2026, 1, 1), "02:30", 2);
    // 02:30 does not exist on 8 March 2026: 02:30 EST = 07:30 UTC (03:30 EDT).
    let (s, e) = spring.occurrence_on(date(2026, 3, 8), &ny).expect("gap");
    assert_eq!(
        (s, e),
        (utc("2026-03-08T07:30:00Z"), utc("2026-03-08T09:30:00Z"))
    );
    // 14 March 2027 likewise.
    assert_eq!(
        spring.next_start(utc("2027-03-01T00:00:00Z"), &ny),
        Some(utc("2027-03-14T07:30:00Z"))
    );
    let fall = rec("FREQ=MONTHLY;BYDAY=1SU", date(2026, 1, 1), "01:30", 1);
    // 01:30 happens twice on 1 November 2026: the first, EDT (05:30 UTC).
    let (s, _) = fall.occurrence_on(date(2026, 11, 1), &ny).expect("fold");
    assert_eq!(s, utc("2026-11-01T05:30:00Z"));
    assert!(
        fall.active_until(utc("2026-11-01T06:00:00Z"), &ny)
            .is_some()
    );
    assert_eq!(fall.active_until(utc("2026-11-01T06:30:00Z"), &ny), None);
    // The next one is EST again: 6 December 01:30 EST = 06:30 UTC.
    assert_eq!(
        fall.next_start(utc("2026-11-02T00:00:00Z"), &ny),
        Some(utc("2026-12-06T06:30:00Z"))
    );
}

#[test]
fn every_other_week_and_the_end_of_a_series() {
    let utc_tz = TimeZone::UTC;
    let w = rec(
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;COUNT=3",
        date(2026, 5, 5),
        "22:00",
        4,
    );
    let starts: Vec<Millis> =
        std::iter::successors(w.next_start(utc("2026-05-01T00:00:00Z"), &utc_tz), |&s| {
            w.next_start(s, &utc_tz)
        })
        .collect();
    assert_eq!(
        starts,
        [
            utc("2026-05-05T22:00:00Z"),
            utc("2026-05-19T22:00:00Z"),
            utc("2026-06-02T22:00:00Z")
        ]
    );
    assert_eq!(w.active_until(utc("2026-05-12T23:00:00Z"), &utc_tz), None);
    assert!(
        w.active_until(utc("2026-06-03T01:00:00Z"), &utc_tz)
            .is_some()
    );
    assert!(!w.over(utc("2026-06-03T01:59:59Z"), &utc_tz));
    assert!(w.over(utc("2026-06-03T02:00:00Z"), &utc_tz));
    assert_eq!(w.occurrence_on(date(2026, 6, 16), &utc_tz), None);
}

#[test]
fn durations_and_times_are_validated() {
    let r = Rule::parse("FREQ=DAILY").expect("rule");
    let d = date(2026, 1, 1);
    assert!(Recurrence::new(r.clone(), d, 24 * 60, 3600).is_err());
    assert!(Recurrence::new(r.clone(), d, 0, 30).is_err());
    assert!(Recurrence::new(r.clone(), d, 0, 8 * 24 * 3600).is_err());
    assert!(Recurrence::new(r, d, 0, 7 * 24 * 3600).is_ok());
}

// === property tests ===

fn arb_rule() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "FREQ=DAILY",
        "FREQ=DAILY;INTERVAL=3",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR",
        "FREQ=MONTHLY;BYDAY=2TU",
        "FREQ=MONTHLY;BYDAY=-1FR",
        "FREQ=MONTHLY;BYMONTHDAY=-1",
        "FREQ=MONTHLY;BYMONTHDAY=1,15;COUNT=9",
        "FREQ=MONTHLY;BYDAY=-1SU",
    ])
}

fn arb_zone() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "Pacific/Apia",
    ])
}

proptest! {
    /// `active_until` and `next_start` agree with every occurrence listed
    /// one by one around `now`.
    #[test]
    fn active_and_next_agree_with_the_listed_occurrences(
        rule in arb_rule(), zone in arb_zone(),
        minute in 0u16..1440, secs in 60u32..=3 * 24 * 3600,
        dtstart_days in 0i64..800, now_secs in 0i64..(3 * 365 * 86_400),
    ) {
        let tz = tz(zone);
        let dtstart = date(2024, 1, 1).checked_add(jiff::Span::new().days(dtstart_days)).expect("date");
        let w = Recurrence::new(Rule::parse(rule).expect("rule"), dtstart, minute, secs).expect("valid");
        let now = utc("2024-01-01T00:00:00Z") + now_secs * 1000;
        let today = local_date(now, &tz).expect("date");
        let around: Vec<(Millis, Millis)> = (-6..=60)
            .filter_map(|d| today.checked_add(jiff::Span::new().days(d)).ok())
            .filter_map(|d| w.occurrence_on(d, &tz))
            .collect();
        let covering = around.iter().filter(|(s, e)| *s <= now && now < *e).map(|&(_, e)| e).max();
        prop_assert_eq!(w.active_until(now, &tz), covering);
        let next = around.iter().map(|&(s, _)| s).filter(|&s| s > now).min();
        if let Some(next) = next {
            prop_assert_eq!(w.next_start(now, &tz), Some(next));
        }
        for (s, e) in around {
            prop_assert_eq!(e - s, i64::from(secs) * 1000, "exact elapsed duration");
        }
    }
}
