//! An RFC 5545 RRULE subset over local calendar dates: which days a
//! recurring window starts on. Time of day, duration and time zone are the
//! window's ([`super::recurrence`]); this file knows only dates.
//!
//! Supported: `FREQ=DAILY|WEEKLY|MONTHLY`, `INTERVAL`, `BYDAY` (with an
//! ordinal in the month for MONTHLY: `2TU`, `-1FR`), `BYMONTHDAY` (`1..31`,
//! `-1..-31` counted from the month's end), `WKST`, and one of `COUNT` or
//! `UNTIL` (a date, `YYYYMMDD`). Everything else (`BYSETPOS`, `BYMONTH`,
//! `FREQ=YEARLY`, times in `UNTIL`, …) is refused with an error naming the
//! part, rather than half-understood.
//!
//! Semantics follow RFC 5545 §3.3.10: the period (day, week starting on
//! `WKST`, month) containing the anchor date (`DTSTART`) is period 0, and
//! every `INTERVAL`-th period has occurrences. In a month, `BYMONTHDAY` and
//! `BYDAY` each pick days and, when both are given, only days picked by both
//! count (`BYDAY=FR;BYMONTHDAY=13`: Friday the 13th). Days that a month
//! lacks (`BYMONTHDAY=31` in April) are skipped, not moved. With neither,
//! MONTHLY repeats the anchor's day of the month and WEEKLY its weekday.
//! Unlike RFC 5545, an anchor date that does not match the rule is not an
//! occurrence: occurrences are the matching dates on or after it (as
//! python-dateutil does), and `COUNT` counts those.

use std::fmt;

use jiff::civil::{Date, Weekday};

/// Largest `INTERVAL`.
pub const MAX_INTERVAL: u32 = 1000;
/// Largest `COUNT`: the last occurrence is worked out whenever a window is
/// loaded, so the work stays small.
pub const MAX_COUNT: u32 = 1000;
/// How far past a date occurrences are looked for (a rule with none in
/// that time, e.g. `BYMONTHDAY=31;INTERVAL=12` anchored in February, has none).
pub const HORIZON_YEARS: i16 = 100;

const SUPPORTED: &str = "FREQ, INTERVAL, BYDAY, BYMONTHDAY, WKST, COUNT, UNTIL";
const DAYS: [(&str, Weekday); 7] = [
    ("MO", Weekday::Monday),
    ("TU", Weekday::Tuesday),
    ("WE", Weekday::Wednesday),
    ("TH", Weekday::Thursday),
    ("FR", Weekday::Friday),
    ("SA", Weekday::Saturday),
    ("SU", Weekday::Sunday),
];

/// How often the rule's periods come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freq {
    Daily,
    Weekly,
    Monthly,
}

/// One `BYDAY` entry: a weekday, with its ordinal in the month for MONTHLY
/// (`2TU` = second Tuesday, `-1FR` = last Friday).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByDay {
    pub nth: Option<i8>,
    pub weekday: Weekday,
}

/// Monday first, then by ordinal: the normalized order.
impl Ord for ByDay {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |b: &ByDay| (b.weekday.to_monday_zero_offset(), b.nth);
        key(self).cmp(&key(other))
    }
}

impl PartialOrd for ByDay {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// When the series stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Never,
    /// After this many occurrences.
    Count(u32),
    /// No occurrence starts on a later local date.
    Until(Date),
}

/// A parsed rule, normalized (lists sorted and deduplicated) so that equal
/// rules print the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub freq: Freq,
    pub interval: u32,
    pub by_day: Vec<ByDay>,
    pub by_month_day: Vec<i8>,
    pub wkst: Weekday,
    pub end: End,
}

impl Rule {
    /// Parses `FREQ=MONTHLY;BYDAY=2TU` (an `RRULE:` prefix is allowed);
    /// the error names the offending part.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let body = strip_prefix_ci(text, "RRULE:").unwrap_or(text);
        if body.is_empty() {
            return Err("rrule is empty (e.g. FREQ=MONTHLY;BYDAY=2TU)".into());
        }
        if body.len() > 256 {
            return Err("rrule is longer than 256 characters".into());
        }
        let mut seen: Vec<String> = Vec::new();
        let (mut freq, mut interval, mut wkst, mut end) = (None, 1, Weekday::Monday, End::Never);
        let (mut by_day, mut by_month_day) = (Vec::new(), Vec::new());
        for part in body.split(';').filter(|p| !p.trim().is_empty()) {
            let bad = |why: String| format!("rrule part {:?}: {why}", part.trim());
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| bad("expected KEY=VALUE".into()))?;
            let key = key.trim().to_ascii_uppercase();
            let value = value.trim().to_ascii_uppercase();
            if seen.contains(&key) {
                return Err(bad(format!("{key} is given twice")));
            }
            seen.push(key.clone());
            match key.as_str() {
                "FREQ" => freq = Some(parse_freq(&value).map_err(bad)?),
                "INTERVAL" => interval = number(&value, 1, MAX_INTERVAL).map_err(bad)?,
                "WKST" => wkst = weekday(&value).map_err(bad)?,
                "COUNT" | "UNTIL" if end != End::Never => {
                    return Err(bad("COUNT and UNTIL exclude each other".into()));
                }
                "COUNT" => end = End::Count(number(&value, 1, MAX_COUNT).map_err(bad)?),
                "UNTIL" => end = End::Until(until(&value).map_err(bad)?),
                "BYDAY" => by_day = list(&value, by_day_entry).map_err(bad)?,
                "BYMONTHDAY" => by_month_day = list(&value, month_day).map_err(bad)?,
                "BYSETPOS" | "BYMONTH" | "BYYEARDAY" | "BYWEEKNO" | "BYHOUR" | "BYMINUTE"
                | "BYSECOND" => {
                    return Err(bad(format!("{key} is not supported ({SUPPORTED} are)")));
                }
                _ => return Err(bad(format!("unknown part {key} ({SUPPORTED} are known)"))),
            }
        }
        let freq = freq.ok_or("rrule needs FREQ (DAILY, WEEKLY or MONTHLY)")?;
        if freq != Freq::Monthly && by_day.iter().any(|d| d.nth.is_some()) {
            return Err("rrule BYDAY: an ordinal such as 2TU or -1FR needs FREQ=MONTHLY".into());
        }
        if freq == Freq::Weekly && !by_month_day.is_empty() {
            return Err("rrule BYMONTHDAY does not go with FREQ=WEEKLY (RFC 5545)".into());
        }
        Ok(Self {
            freq,
            interval,
            by_day,
            by_month_day,
            wkst,
            end,
        })
    }

    /// Whether `date` is an occurrence of the series anchored at `dtstart`
    /// (`COUNT` aside: see [`Rule::last`]).
    pub fn on(&self, date: Date, dtstart: Date) -> bool {
        if date < dtstart || matches!(self.end, End::Until(u) if date > u) {
            return false;
        }
        self.period(date, dtstart) % i64::from(self.interval) == 0 && self.picks(date, dtstart)
    }

    /// The series' dates from `from` on, in order, for up to
    /// [`HORIZON_YEARS`] after it (`COUNT` aside).
    pub fn dates_from(&self, dtstart: Date, from: Date) -> impl Iterator<Item = Date> + '_ {
        let from = from.max(dtstart);
        let horizon = from
            .checked_add(jiff::Span::new().years(HORIZON_YEARS))
            .unwrap_or(Date::MAX);
        let interval = i64::from(self.interval);
        // The first period with occurrences that can hold `from`.
        let first = self.period(from, dtstart).div_euclid(interval) * interval;
        (0..)
            .map(move |k| self.period_start(first + k * interval, dtstart))
            .take_while(move |start| start.is_some_and(|s| s <= horizon))
            .flatten()
            .flat_map(move |start| self.period_days(start))
            .filter(move |&d| d >= from && d <= horizon && self.on(d, dtstart))
    }

    /// The last date of the series, if it ends (`COUNT` or `UNTIL`).
    pub fn last(&self, dtstart: Date) -> Option<Date> {
        match self.end {
            End::Never => None,
            End::Until(u) => Some(u),
            End::Count(n) => self
                .dates_from(dtstart, dtstart)
                .take(usize::try_from(n).unwrap_or(usize::MAX))
                .last()
                // A series with no occurrence ends before it starts.
                .or_else(|| dtstart.yesterday().ok()),
        }
    }

    /// Periods (days, weeks, months) from `dtstart`'s to `date`'s.
    fn period(&self, date: Date, dtstart: Date) -> i64 {
        match self.freq {
            Freq::Daily => days_between(dtstart, date),
            Freq::Weekly => {
                days_between(week_start(dtstart, self.wkst), week_start(date, self.wkst)) / 7
            }
            Freq::Monthly => month_number(date) - month_number(dtstart),
        }
    }

    /// The first date of period `k` (0 = `dtstart`'s).
    fn period_start(&self, k: i64, dtstart: Date) -> Option<Date> {
        let span = jiff::Span::new();
        match self.freq {
            Freq::Daily => dtstart.checked_add(span.try_days(k).ok()?).ok(),
            Freq::Weekly => week_start(dtstart, self.wkst)
                .checked_add(span.try_weeks(k).ok()?)
                .ok(),
            Freq::Monthly => dtstart
                .first_of_month()
                .checked_add(span.try_months(k).ok()?)
                .ok(),
        }
    }

    /// Every date of the period starting at `start`.
    fn period_days(&self, start: Date) -> impl Iterator<Item = Date> {
        let len = match self.freq {
            Freq::Daily => 1,
            Freq::Weekly => 7,
            Freq::Monthly => start.days_in_month(),
        };
        (0..len).filter_map(move |d| start.checked_add(jiff::Span::new().days(d)).ok())
    }

    /// Whether the BY* parts pick `date` within its period.
    fn picks(&self, date: Date, dtstart: Date) -> bool {
        let weekday_in = |days: &[ByDay]| days.iter().any(|b| b.weekday == date.weekday());
        match self.freq {
            Freq::Daily => {
                (self.by_day.is_empty() || weekday_in(&self.by_day))
                    && (self.by_month_day.is_empty() || self.month_day_picks(date))
            }
            Freq::Weekly if self.by_day.is_empty() => date.weekday() == dtstart.weekday(),
            Freq::Weekly => weekday_in(&self.by_day),
            Freq::Monthly if self.by_day.is_empty() && self.by_month_day.is_empty() => {
                date.day() == dtstart.day()
            }
            Freq::Monthly => {
                (self.by_month_day.is_empty() || self.month_day_picks(date))
                    && (self.by_day.is_empty() || self.nth_weekday_picks(date))
            }
        }
    }

    fn month_day_picks(&self, date: Date) -> bool {
        let (day, len) = (date.day(), date.days_in_month());
        self.by_month_day
            .iter()
            .any(|&m| m == day || (m < 0 && len + 1 + m == day))
    }

    fn nth_weekday_picks(&self, date: Date) -> bool {
        let (day, len) = (date.day(), date.days_in_month());
        let (from_start, from_end) = ((day - 1) / 7 + 1, -((len - day) / 7 + 1));
        self.by_day.iter().any(|b| {
            b.weekday == date.weekday() && b.nth.is_none_or(|n| n == from_start || n == from_end)
        })
    }
}

/// The normalized text, e.g. `FREQ=MONTHLY;BYDAY=2TU` (defaults left out).
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let freq = match self.freq {
            Freq::Daily => "DAILY",
            Freq::Weekly => "WEEKLY",
            Freq::Monthly => "MONTHLY",
        };
        write!(f, "FREQ={freq}")?;
        if self.interval != 1 {
            write!(f, ";INTERVAL={}", self.interval)?;
        }
        if !self.by_day.is_empty() {
            let days: Vec<String> = self
                .by_day
                .iter()
                .map(|b| {
                    format!(
                        "{}{}",
                        b.nth.map(|n| n.to_string()).unwrap_or_default(),
                        day_code(b.weekday)
                    )
                })
                .collect();
            write!(f, ";BYDAY={}", days.join(","))?;
        }
        if !self.by_month_day.is_empty() {
            let days: Vec<String> = self.by_month_day.iter().map(i8::to_string).collect();
            write!(f, ";BYMONTHDAY={}", days.join(","))?;
        }
        if self.wkst != Weekday::Monday {
            write!(f, ";WKST={}", day_code(self.wkst))?;
        }
        match self.end {
            End::Never => Ok(()),
            End::Count(n) => write!(f, ";COUNT={n}"),
            End::Until(d) => write!(f, ";UNTIL={}", d.strftime("%Y%m%d")),
        }
    }
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn parse_freq(value: &str) -> Result<Freq, String> {
    match value {
        "DAILY" => Ok(Freq::Daily),
        "WEEKLY" => Ok(Freq::Weekly),
        "MONTHLY" => Ok(Freq::Monthly),
        "YEARLY" | "HOURLY" | "MINUTELY" | "SECONDLY" => Err(format!(
            "FREQ={value} is not supported (DAILY, WEEKLY, MONTHLY are)"
        )),
        _ => Err(format!("unknown FREQ {value:?} (DAILY, WEEKLY, MONTHLY)")),
    }
}

fn number(value: &str, min: u32, max: u32) -> Result<u32, String> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("{value:?} must be a whole number from {min} to {max}"))
}

fn weekday(code: &str) -> Result<Weekday, String> {
    DAYS.iter()
        .find(|(c, _)| *c == code)
        .map(|(_, d)| *d)
        .ok_or_else(|| format!("unknown weekday {code:?} (MO, TU, WE, TH, FR, SA, SU)"))
}

fn day_code(weekday: Weekday) -> &'static str {
    DAYS.iter()
        .find(|(_, d)| *d == weekday)
        .map_or("MO", |(c, _)| c)
}

/// `TU`, `2TU`, `+2TU`, `-1FR`.
fn by_day_entry(item: &str) -> Result<ByDay, String> {
    let split = item.len().saturating_sub(2);
    let (nth, code) = (
        item.get(..split).unwrap_or(""),
        item.get(split..).unwrap_or(""),
    );
    let weekday = weekday(code)?;
    let nth = match nth {
        "" => None,
        n => Some(
            n.parse::<i8>()
                .ok()
                .filter(|n| (1..=5).contains(&n.abs()))
                .ok_or_else(|| {
                    format!("ordinal {n:?} in {item:?} must be 1..5 or -1..-5 (weeks of a month)")
                })?,
        ),
    };
    Ok(ByDay { nth, weekday })
}

/// `1..31` or `-1..-31`.
fn month_day(item: &str) -> Result<i8, String> {
    item.parse::<i8>()
        .ok()
        .filter(|d| (1..=31).contains(&d.abs()))
        .ok_or_else(|| format!("day {item:?} must be 1..31 or -1..-31 (-1 = the last day)"))
}

/// A comma-separated list, sorted and deduplicated.
fn list<T: Ord>(value: &str, item: fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    let mut out = value
        .split(',')
        .map(|s| item(s.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// `UNTIL=YYYYMMDD` (a local date; times of day are not supported).
fn until(value: &str) -> Result<Date, String> {
    let bad =
        || format!("UNTIL {value:?} must be a date, YYYYMMDD (a time of day is not supported)");
    if value.len() != 8 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let part = |r: std::ops::Range<usize>| value.get(r).and_then(|s| s.parse::<i16>().ok());
    let (y, m, d) = (part(0..4), part(4..6), part(6..8));
    match (y, m, d) {
        (Some(y), Some(m), Some(d)) => Date::new(
            y,
            i8::try_from(m).map_err(|_| bad())?,
            i8::try_from(d).map_err(|_| bad())?,
        )
        .map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// Days from `a` to `b`.
fn days_between(a: Date, b: Date) -> i64 {
    b.duration_since(a).as_secs().div_euclid(86_400)
}

/// The first day of `date`'s week, weeks starting on `wkst`.
fn week_start(date: Date, wkst: Weekday) -> Date {
    let back =
        (date.weekday().to_monday_zero_offset() - wkst.to_monday_zero_offset()).rem_euclid(7);
    date.checked_sub(jiff::Span::new().days(back))
        .unwrap_or(date)
}

fn month_number(date: Date) -> i64 {
    i64::from(date.year()) * 12 + i64::from(date.month())
}

#[cfg(test)]
#[path = "rrule_tests.rs"]
mod tests;
