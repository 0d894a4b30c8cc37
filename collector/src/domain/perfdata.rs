//! A plugin metric's thresholds, as its performance data gave them
//! (`'label'=value[UOM];warn;crit;min;max`): the warn and crit ranges,
//! which one a value breaches, and how they read. Kept with the latest
//! check state (`check_states.metrics`), not with each history sample.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A threshold range per the Monitoring Plugins guidelines (`[@]start:end`):
/// a value alerts when it lies outside `[start, end]`, or inside it when
/// `inside` (`@`). Bounds are finite; an absent one is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Threshold {
    /// Lower bound; absent: none (`~`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<f64>,
    /// Upper bound; absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<f64>,
    /// Alert inside the range (`@`) instead of outside it.
    #[serde(default)]
    pub inside: bool,
}

impl Threshold {
    /// Whether `value` raises this threshold.
    pub fn alert(&self, value: f64) -> bool {
        let within = self.start.is_none_or(|s| s <= value) && self.end.is_none_or(|e| value <= e);
        within == self.inside
    }

    /// When it alerts, for people: `< 0 or > 10`, `≥ 10 and ≤ 20`, `> 5`.
    pub fn describe(&self) -> String {
        match (self.inside, self.start, self.end) {
            (false, Some(s), Some(e)) => format!("< {s} or > {e}"),
            (false, Some(s), None) => format!("< {s}"),
            (false, None, Some(e)) => format!("> {e}"),
            (false, None, None) => "never".to_owned(),
            (true, None, None) => "always".to_owned(),
            (true, Some(s), Some(e)) => format!("≥ {s} and ≤ {e}"),
            (true, Some(s), None) => format!("≥ {s}"),
            (true, None, Some(e)) => format!("≤ {e}"),
        }
    }
}

/// The guidelines' short form: `10`, `10:`, `~:10`, `@10:20`.
impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inside {
            f.write_str("@")?;
        }
        match (self.start, self.end) {
            (Some(0.0), Some(e)) => write!(f, "{e}"),
            (start, end) => {
                match start {
                    Some(s) => write!(f, "{s}:")?,
                    None => f.write_str("~:")?,
                }
                match end {
                    Some(e) => write!(f, "{e}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Which of a metric's thresholds `value` breaches, crit first.
pub fn breached(
    value: f64,
    warn: Option<&Threshold>,
    crit: Option<&Threshold>,
) -> Option<super::CheckState> {
    if crit.is_some_and(|t| t.alert(value)) {
        Some(super::CheckState::Crit)
    } else if warn.is_some_and(|t| t.alert(value)) {
        Some(super::CheckState::Warn)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CheckState;

    fn t(start: Option<f64>, end: Option<f64>, inside: bool) -> Threshold {
        Threshold { start, end, inside }
    }

    /// The guidelines' table.
    #[test]
    fn alerts_as_the_guidelines_say() {
        let cases = [
            (
                t(Some(0.0), Some(10.0), false),
                "10",
                vec![-0.5, 10.5],
                vec![0.0, 10.0],
            ),
            (
                t(Some(10.0), None, false),
                "10:",
                vec![9.9],
                vec![10.0, 1e9],
            ),
            (
                t(None, Some(10.0), false),
                "~:10",
                vec![10.1],
                vec![-1e9, 10.0],
            ),
            (
                t(Some(10.0), Some(20.0), false),
                "10:20",
                vec![9.0, 21.0],
                vec![15.0],
            ),
            (
                t(Some(10.0), Some(20.0), true),
                "@10:20",
                vec![10.0, 20.0],
                vec![9.0, 21.0],
            ),
        ];
        for (threshold, text, alert, quiet) in cases {
            assert_eq!(threshold.to_string(), text);
            for v in alert {
                assert!(threshold.alert(v), "{text} must alert on {v}");
            }
            for v in quiet {
                assert!(!threshold.alert(v), "{text} must not alert on {v}");
            }
        }
        assert_eq!(t(None, None, false).to_string(), "~:");
        assert!(!t(None, None, false).alert(1e300));
    }

    #[test]
    fn descriptions_read_as_conditions() {
        assert_eq!(t(Some(0.0), Some(1.0), false).describe(), "< 0 or > 1");
        assert_eq!(t(None, Some(5.0), false).describe(), "> 5");
        assert_eq!(t(Some(10.0), Some(20.0), true).describe(), "≥ 10 and ≤ 20");
        assert_eq!(t(None, None, true).describe(), "always");
    }

    #[test]
    fn crit_outranks_warn() {
        let warn = t(Some(0.0), Some(1.0), false);
        let crit = t(Some(0.0), Some(100.0), false);
        assert_eq!(
            breached(97.0, Some(&warn), Some(&crit)),
            Some(CheckState::Warn)
        );
        assert_eq!(
            breached(101.0, Some(&warn), Some(&crit)),
            Some(CheckState::Crit)
        );
        assert_eq!(breached(0.5, Some(&warn), Some(&crit)), None);
        assert_eq!(breached(5.0, None, None), None);
    }

    #[test]
    fn json_leaves_open_bounds_out() {
        let json = serde_json::to_value(t(None, Some(10.0), false)).expect("json");
        assert_eq!(json, serde_json::json!({"end": 10.0, "inside": false}));
        let back: Threshold = serde_json::from_value(json).expect("back");
        assert_eq!(back, t(None, Some(10.0), false));
    }
}
