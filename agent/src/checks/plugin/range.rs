//! Threshold ranges as the Monitoring Plugins development guidelines define
//! them: `[@]start:end`, where `start` defaults to 0, `~` means negative
//! infinity, an empty `end` means positive infinity, and `10` alone is
//! `0:10`. A value alerts when it lies *outside* the range, or *inside* it
//! when the range starts with `@`.
//!
//! | range    | alerts when          |
//! |----------|----------------------|
//! | `10`     | `< 0` or `> 10`      |
//! | `10:`    | `< 10`               |
//! | `~:10`   | `> 10`               |
//! | `10:20`  | `< 10` or `> 20`     |
//! | `@10:20` | `≥ 10` and `≤ 20`    |

use std::fmt;
use std::str::FromStr;

/// A parsed threshold range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Lower bound; `f64::NEG_INFINITY` for `~`.
    pub start: f64,
    /// Upper bound; `f64::INFINITY` when open-ended.
    pub end: f64,
    /// `@`: alert when the value lies inside `start..=end`.
    pub inside: bool,
}

/// Why a range expression does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("empty range")]
    Empty,
    #[error("{0:?} is not a number")]
    NotANumber(String),
    #[error("range start {start} is above its end {end}")]
    Inverted { start: String, end: String },
}

impl Range {
    /// Whether `value` should raise an alert for this range.
    pub fn alert(&self, value: f64) -> bool {
        let within = self.start <= value && value <= self.end;
        if self.inside { within } else { !within }
    }
}

/// A finite number as the guidelines write it (`[-0-9.]`, plus an
/// exponent, which real plugins emit).
pub(super) fn number(text: &str) -> Option<f64> {
    let first = text.chars().next()?;
    // Rust also reads `inf`, `NaN` and `+`-less spellings we must refuse.
    if !(first.is_ascii_digit() || matches!(first, '-' | '+' | '.')) {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

impl FromStr for Range {
    type Err = RangeError;

    fn from_str(text: &str) -> Result<Self, RangeError> {
        let (inside, body) = match text.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if body.is_empty() {
            return Err(RangeError::Empty);
        }
        let bound = |s: &str| number(s).ok_or_else(|| RangeError::NotANumber(s.to_owned()));
        let (start, end) = match body.split_once(':') {
            None => (0.0, bound(body)?),
            Some((start, end)) => {
                let start = match start {
                    "~" => f64::NEG_INFINITY,
                    "" => 0.0,
                    s => bound(s)?,
                };
                let end = if end.is_empty() {
                    f64::INFINITY
                } else {
                    bound(end)?
                };
                (start, end)
            }
        };
        if start > end {
            let (start, end) = body.split_once(':').unwrap_or(("0", body));
            return Err(RangeError::Inverted {
                start: start.to_owned(),
                end: end.to_owned(),
            });
        }
        Ok(Self { start, end, inside })
    }
}

/// The shortest spelling that parses back to the same range.
impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inside {
            f.write_str("@")?;
        }
        if self.start == 0.0 && self.end.is_finite() {
            return write!(f, "{}", self.end);
        }
        if self.start == f64::NEG_INFINITY {
            f.write_str("~:")?;
        } else {
            write!(f, "{}:", self.start)?;
        }
        if self.end.is_finite() {
            write!(f, "{}", self.end)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn range(text: &str) -> Range {
        text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    /// The guidelines' table, value by value.
    #[test]
    fn guidelines_table() {
        let cases: [(&str, &[f64], &[f64]); 5] = [
            ("10", &[-0.5, 10.5, 100.0], &[0.0, 5.0, 10.0]),
            ("10:", &[-1.0, 9.99], &[10.0, 1e9]),
            ("~:10", &[10.01, 11.0], &[-1e9, 0.0, 10.0]),
            ("10:20", &[9.0, 21.0, -5.0], &[10.0, 15.0, 20.0]),
            ("@10:20", &[10.0, 15.0, 20.0], &[9.0, 21.0, -5.0]),
        ];
        for (text, alert, quiet) in cases {
            let r = range(text);
            for v in alert {
                assert!(r.alert(*v), "{text} must alert on {v}");
            }
            for v in quiet {
                assert!(!r.alert(*v), "{text} must not alert on {v}");
            }
        }
    }

    #[test]
    fn parsed_bounds() {
        let r = range("10");
        assert_eq!((r.start, r.end, r.inside), (0.0, 10.0, false));
        assert_eq!(range("10:").end, f64::INFINITY);
        assert_eq!(range("~:10").start, f64::NEG_INFINITY);
        assert_eq!(range(":5").start, 0.0);
        assert_eq!(range("-1.5:2e1").end, 20.0);
        assert!(range("@~:").inside);
    }

    #[test]
    fn bad_ranges_are_refused() {
        assert_eq!("".parse::<Range>(), Err(RangeError::Empty));
        assert_eq!("@".parse::<Range>(), Err(RangeError::Empty));
        for bad in ["abc", "1:x", "inf", "NaN", "~", "10:~", "1e999", "5MB"] {
            assert!(
                matches!(bad.parse::<Range>(), Err(RangeError::NotANumber(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            "20:10".parse::<Range>(),
            Err(RangeError::Inverted { .. })
        ));
        assert!(matches!(
            "-3".parse::<Range>(),
            Err(RangeError::Inverted { .. })
        ));
    }

    #[test]
    fn display_is_the_short_form() {
        for text in [
            "10", "10:", "~:10", "10:20", "@10:20", "~:", "-5:-1", "@0.5",
        ] {
            assert_eq!(range(text).to_string(), text);
        }
    }

    fn bound() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(0.0),
            -1e6..1e6f64,
            any::<i32>().prop_map(f64::from),
            any::<f64>().prop_filter("finite", |v| v.is_finite()),
        ]
    }

    fn any_range() -> impl Strategy<Value = Range> {
        (
            prop_oneof![Just(f64::NEG_INFINITY), bound()],
            prop_oneof![Just(f64::INFINITY), bound()],
            any::<bool>(),
        )
            .prop_filter_map("start <= end", |(a, b, inside)| {
                let (start, end) = if a <= b { (a, b) } else { (b, a) };
                (start <= end && !(start.is_infinite() && start > 0.0)).then_some(Range {
                    start,
                    end,
                    inside,
                })
            })
    }

    proptest! {
        #[test]
        fn any_text_parses_or_errs_without_panicking(text in "\\PC{0,24}") {
            let _ = text.parse::<Range>();
        }

        #[test]
        fn display_round_trips(r in any_range()) {
            prop_assert_eq!(r.to_string().parse::<Range>(), Ok(r));
        }

        #[test]
        fn at_inverts_the_alert(r in any_range(), v in bound()) {
            let flipped = Range { inside: !r.inside, ..r };
            prop_assert_ne!(r.alert(v), flipped.alert(v));
        }

        #[test]
        fn outside_alert_matches_the_definition(r in any_range(), v in bound()) {
            let outside = Range { inside: false, ..r };
            prop_assert_eq!(outside.alert(v), v < r.start || v > r.end);
        }
    }
}
