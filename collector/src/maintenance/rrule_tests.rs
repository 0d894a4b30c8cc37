//! The RRULE subset: parsing (and refusing), normalized text, and the date
//! math against reference dates (computed independently with Python's
//! `calendar`) and against a brute-force scan.

use jiff::civil::{Date, Weekday, date};
use proptest::prelude::*;

use super::*;

fn rule(text: &str) -> Rule {
    Rule::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// The first `n` dates of `text` anchored at `dtstart` (up to its last),
/// as `YYYY-MM-DD`.
fn dates(text: &str, dtstart: Date, n: usize) -> Vec<String> {
    let r = rule(text);
    let last = r.last(dtstart);
    r.dates_from(dtstart, dtstart)
        .take_while(|&d| last.is_none_or(|l| d <= l))
        .take(n)
        .map(|d| d.to_string())
        .collect()
}

fn err(text: &str) -> String {
    Rule::parse(text).expect_err(text)
}

#[test]
fn parses_the_subset_and_prints_it_normalized() {
    let r = rule("FREQ=MONTHLY;BYDAY=2TU");
    assert_eq!(r.freq, Freq::Monthly);
    assert_eq!(
        r.by_day,
        [ByDay {
            nth: Some(2),
            weekday: Weekday::Tuesday
        }]
    );
    assert_eq!(r.to_string(), "FREQ=MONTHLY;BYDAY=2TU");
    // Case, spaces, an RRULE: prefix, "+2", duplicates and order are normalized.
    let r = rule(" rrule:freq=monthly; byday = FR,+2tu,FR ; interval=1;wkst=MO");
    assert_eq!(r.to_string(), "FREQ=MONTHLY;BYDAY=2TU,FR");
    let r = rule("FREQ=WEEKLY;INTERVAL=2;BYDAY=SU,MO;WKST=SU;UNTIL=20271231");
    assert_eq!(
        r.to_string(),
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SU;WKST=SU;UNTIL=20271231"
    );
    assert_eq!(r.end, End::Until(date(2027, 12, 31)));
    let r = rule("FREQ=MONTHLY;BYMONTHDAY=-1,1,15;COUNT=12");
    assert_eq!(r.to_string(), "FREQ=MONTHLY;BYMONTHDAY=-1,1,15;COUNT=12");
    assert_eq!(rule("FREQ=DAILY").to_string(), "FREQ=DAILY");
}

#[test]
fn refuses_what_it_does_not_support_naming_the_part() {
    for (text, needle) in [
        ("", "empty"),
        ("BYDAY=TU", "needs FREQ"),
        ("FREQ=YEARLY", "FREQ=YEARLY is not supported"),
        ("FREQ=FORTNIGHTLY", "unknown FREQ"),
        (
            "FREQ=MONTHLY;BYSETPOS=-1;BYDAY=MO",
            "BYSETPOS is not supported",
        ),
        ("FREQ=MONTHLY;BYMONTH=1", "BYMONTH is not supported"),
        ("FREQ=DAILY;COLOR=red", "unknown part COLOR"),
        ("FREQ=DAILY;INTERVAL", "expected KEY=VALUE"),
        ("FREQ=DAILY;INTERVAL=0", "\"INTERVAL=0\""),
        ("FREQ=DAILY;INTERVAL=two", "whole number"),
        ("FREQ=DAILY;FREQ=WEEKLY", "FREQ is given twice"),
        ("FREQ=MONTHLY;BYDAY=2XX", "unknown weekday \"XX\""),
        ("FREQ=MONTHLY;BYDAY=6TU", "ordinal \"6\""),
        ("FREQ=MONTHLY;BYDAY=0TU", "ordinal \"0\""),
        ("FREQ=WEEKLY;BYDAY=2TU", "needs FREQ=MONTHLY"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY=0"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", "1..31 or -1..-31"),
        ("FREQ=MONTHLY;BYMONTHDAY=-32", "-1..-31"),
        ("FREQ=WEEKLY;BYMONTHDAY=1", "FREQ=WEEKLY"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20270101", "exclude each other"),
        ("FREQ=DAILY;COUNT=1001", "1 to 1000"),
        ("FREQ=DAILY;UNTIL=20270101T000000Z", "time of day"),
        ("FREQ=DAILY;UNTIL=20270230", "YYYYMMDD"),
        ("FREQ=DAILY;WKST=XX", "unknown weekday"),
    ] {
        let e = err(text);
        assert!(e.contains(needle), "{text:?}: {e:?} lacks {needle:?}");
    }
}

#[test]
fn patch_tuesday_is_the_second_tuesday_for_years() {
    let all = dates("FREQ=MONTHLY;BYDAY=2TU", date(2024, 1, 1), 60);
    assert_eq!(all.len(), 60, "one a month for five years");
    // Reference dates (Python's calendar).
    for d in [
        "2024-01-09",
        "2024-02-13",
        "2024-11-12",
        "2024-12-10",
        "2025-01-14",
        "2025-12-09",
        "2026-02-10",
        "2026-11-10",
        "2027-02-09",
        "2027-12-14",
        "2028-11-14",
        "2028-12-12",
    ] {
        assert!(all.contains(&d.to_string()), "{d} missing from {all:?}");
    }
    for d in &all {
        let d: Date = d.parse().expect("date");
        assert_eq!(d.weekday(), Weekday::Tuesday);
        assert!((8..=14).contains(&d.day()), "{d}");
    }
}

#[test]
fn the_last_day_of_the_month_includes_february_in_leap_years() {
    let last = dates("FREQ=MONTHLY;BYMONTHDAY=-1", date(2023, 1, 15), 26);
    assert_eq!(
        &last[..3],
        ["2023-01-31", "2023-02-28", "2023-03-31"],
        "{last:?}"
    );
    assert!(last.contains(&"2024-02-29".to_string()), "leap year");
    assert!(last.contains(&"2024-04-30".to_string()));
    let feb = |y: i16| {
        dates("FREQ=MONTHLY;BYMONTHDAY=-1", date(y, 2, 1), 1)
            .pop()
            .expect("one")
    };
    assert_eq!(feb(2000), "2000-02-29", "divisible by 400");
    assert_eq!(feb(2100), "2100-02-28", "a century is not a leap year");
    // The day before the last (-2) and the 31st, which most months lack.
    assert_eq!(
        dates("FREQ=MONTHLY;BYMONTHDAY=-2", date(2024, 2, 1), 2),
        ["2024-02-28", "2024-03-30"]
    );
    assert_eq!(
        dates("FREQ=MONTHLY;BYMONTHDAY=31", date(2026, 1, 1), 4),
        ["2026-01-31", "2026-03-31", "2026-05-31", "2026-07-31"],
        "skipped, not moved"
    );
}

#[test]
fn ordinals_from_the_end_and_plain_weekdays_in_a_month() {
    assert_eq!(
        dates("FREQ=MONTHLY;BYDAY=-1FR", date(2026, 1, 1), 12),
        [
            "2026-01-30",
            "2026-02-27",
            "2026-03-27",
            "2026-04-24",
            "2026-05-29",
            "2026-06-26",
            "2026-07-31",
            "2026-08-28",
            "2026-09-25",
            "2026-10-30",
            "2026-11-27",
            "2026-12-25"
        ]
    );
    // Friday the 13th: BYDAY and BYMONTHDAY both pick.
    assert_eq!(
        dates("FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13", date(2026, 1, 1), 4),
        ["2026-02-13", "2026-03-13", "2026-11-13", "2027-08-13"]
    );
    // Every Monday of a month, every other month.
    let mondays = dates("FREQ=MONTHLY;INTERVAL=2;BYDAY=MO", date(2026, 5, 20), 6);
    assert_eq!(
        mondays,
        [
            "2026-05-25",
            "2026-07-06",
            "2026-07-13",
            "2026-07-20",
            "2026-07-27",
            "2026-09-07"
        ]
    );
    // No BY* part: the anchor's day of the month.
    assert_eq!(
        dates("FREQ=MONTHLY", date(2026, 1, 30), 3),
        ["2026-01-30", "2026-03-30", "2026-04-30"]
    );
}

#[test]
fn weekly_intervals_count_weeks_from_the_anchor_and_wkst() {
    // RFC 5545 §3.8.5.3: the same rule, two week starts, two answers.
    let rfc = |wkst: &str| {
        dates(
            &format!("FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST={wkst}"),
            date(1997, 8, 5),
            10,
        )
    };
    assert_eq!(
        rfc("MO"),
        ["1997-08-05", "1997-08-10", "1997-08-19", "1997-08-24"]
    );
    assert_eq!(
        rfc("SU"),
        ["1997-08-05", "1997-08-17", "1997-08-19", "1997-08-31"]
    );
    // Every other week from a Wednesday anchor: Monday of that week is
    // before the anchor and does not count.
    assert_eq!(
        dates("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR", date(2026, 5, 6), 4),
        ["2026-05-08", "2026-05-18", "2026-05-22", "2026-06-01"]
    );
    // No BYDAY: the anchor's weekday.
    assert_eq!(
        dates("FREQ=WEEKLY;INTERVAL=3", date(2026, 5, 6), 2),
        ["2026-05-06", "2026-05-27"]
    );
    assert_eq!(
        dates(
            "FREQ=DAILY;INTERVAL=3;BYDAY=MO,TU,WE,TH,FR",
            date(2026, 5, 1),
            3
        ),
        ["2026-05-01", "2026-05-04", "2026-05-07"]
    );
}

#[test]
fn count_and_until_end_the_series() {
    let r = rule("FREQ=MONTHLY;BYDAY=2TU;COUNT=3");
    assert_eq!(r.last(date(2026, 1, 1)), Some(date(2026, 3, 10)));
    let r = rule("FREQ=MONTHLY;BYDAY=2TU;UNTIL=20260310");
    assert!(r.on(date(2026, 3, 10), date(2026, 1, 1)));
    assert!(!r.on(date(2026, 4, 14), date(2026, 1, 1)));
    // A rule that can never match ends before it starts.
    let never = rule("FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=30;COUNT=2");
    assert_eq!(never.last(date(2026, 2, 1)), Some(date(2026, 1, 31)));
    assert_eq!(
        rule("FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=30")
            .dates_from(date(2026, 2, 1), date(2026, 2, 1))
            .next(),
        None,
        "searching stops at the horizon"
    );
}

// === property tests ===

fn weekday_of(i: u8) -> Weekday {
    DAYS[usize::from(i % 7)].1
}

fn arb_rule() -> impl Strategy<Value = Rule> {
    let freq = prop_oneof![Just(Freq::Daily), Just(Freq::Weekly), Just(Freq::Monthly)];
    (
        freq,
        1u32..=4,
        proptest::collection::vec((0u8..7, -5i8..=5), 0..4),
        proptest::collection::vec(prop_oneof![1i8..=31, -31i8..=-1], 0..3),
        0u8..7,
        prop_oneof![
            Just(End::Never),
            (1u32..40).prop_map(End::Count),
            (0i64..3000).prop_map(|d| End::Until(
                date(2026, 1, 1)
                    .checked_add(jiff::Span::new().days(d))
                    .expect("date")
            )),
        ],
    )
        .prop_map(|(freq, interval, days, month_days, wkst, end)| {
            let mut by_day: Vec<ByDay> = days
                .into_iter()
                .map(|(d, n)| ByDay {
                    nth: (freq == Freq::Monthly && n != 0).then_some(n),
                    weekday: weekday_of(d),
                })
                .collect();
            by_day.sort_unstable();
            by_day.dedup();
            let mut by_month_day = if freq == Freq::Weekly {
                Vec::new()
            } else {
                month_days
            };
            by_month_day.sort_unstable();
            by_month_day.dedup();
            Rule {
                freq,
                interval,
                by_day,
                by_month_day,
                wkst: weekday_of(wkst),
                end,
            }
        })
}

fn arb_date() -> impl Strategy<Value = Date> {
    (0i64..4000).prop_map(|d| {
        date(2020, 1, 1)
            .checked_add(jiff::Span::new().days(d))
            .expect("date")
    })
}

proptest! {
    #[test]
    fn printed_rules_parse_back_to_themselves(r in arb_rule()) {
        prop_assert_eq!(Rule::parse(&r.to_string()), Ok(r));
    }

    #[test]
    fn any_text_parses_or_is_refused_without_panicking(s in "\\PC{0,80}") {
        let _ = Rule::parse(&s);
    }

    #[test]
    fn rule_like_text_parses_or_is_refused_without_panicking(
        s in "(FREQ|BYDAY|BYMONTHDAY|COUNT|UNTIL|INTERVAL|WKST)=[-+0-9A-Z,]{0,12}(;[A-Z]{2,10}=[-+0-9A-Z,]{0,8}){0,4}"
    ) {
        let _ = Rule::parse(&s);
    }

    /// The period-by-period enumeration finds exactly the dates a day-by-day
    /// scan with `on` finds.
    #[test]
    fn enumeration_agrees_with_a_brute_force_scan(
        r in arb_rule(), dtstart in arb_date(), offset in -40i64..400,
    ) {
        let from = dtstart.checked_add(jiff::Span::new().days(offset)).expect("date");
        let to = from.checked_add(jiff::Span::new().days(200)).expect("date");
        let fast: Vec<Date> = r.dates_from(dtstart, from).take_while(|&d| d <= to).collect();
        let slow: Vec<Date> = (0..=200)
            .map(|d| from.checked_add(jiff::Span::new().days(d)).expect("date"))
            .filter(|&d| r.on(d, dtstart))
            .collect();
        prop_assert_eq!(fast, slow);
    }

    #[test]
    fn ordinals_pick_the_right_week_of_the_month(
        n in prop_oneof![1i8..=5, -5i8..=-1], wd in 0u8..7, dtstart in arb_date(),
    ) {
        let r = Rule {
            freq: Freq::Monthly,
            interval: 1,
            by_day: vec![ByDay { nth: Some(n), weekday: weekday_of(wd) }],
            by_month_day: Vec::new(),
            wkst: Weekday::Monday,
            end: End::Never,
        };
        for d in r.dates_from(dtstart, dtstart).take(24) {
            prop_assert_eq!(d.weekday(), weekday_of(wd));
            let week = |k: i64| d.checked_add(jiff::Span::new().weeks(k)).expect("date").month();
            // n-th from the start: n-1 earlier same weekdays in the month.
            let same = |k: i64| week(k) == d.month();
            if n > 0 {
                prop_assert!((1..i64::from(n)).all(|k| same(-k)) && !same(-i64::from(n)));
            } else {
                let m = -i64::from(n);
                prop_assert!((1..m).all(same) && !same(m));
            }
        }
    }
}
