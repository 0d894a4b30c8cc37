//! How `forewarn-agent check --once` prints results: an aligned table for
//! people or a JSON array for scripts, and the exit code (worst state).

use serde::Serialize;

use super::{CheckResult, CheckState};

#[derive(Serialize)]
struct JsonResult<'a> {
    check: &'a str,
    item: &'a str,
    state: &'a str,
    message: &'a str,
    metrics: Vec<JsonMetric<'a>>,
}

#[derive(Serialize)]
struct JsonMetric<'a> {
    name: &'a str,
    value: f64,
    unit: &'a str,
}

/// `[{check, item, state, message, metrics: [{name, value, unit}]}]`, pretty.
pub fn json(results: &[CheckResult]) -> String {
    let view: Vec<JsonResult<'_>> = results
        .iter()
        .map(|r| JsonResult {
            check: r.check,
            item: &r.item,
            state: r.state.as_str(),
            message: &r.message,
            metrics: r
                .metrics
                .iter()
                .map(|m| JsonMetric {
                    name: &m.name,
                    value: m.value,
                    unit: &m.unit,
                })
                .collect(),
        })
        .collect();
    // Serializing plain structs of strings and numbers cannot fail; NaN
    // would become null.
    serde_json::to_string_pretty(&view).unwrap_or_else(|_| "[]".to_owned())
}

/// A table with columns CHECK, ITEM, STATE, MESSAGE; an empty item shows as `-`.
pub fn table(results: &[CheckResult]) -> String {
    let rows: Vec<[&str; 4]> = results
        .iter()
        .map(|r| {
            let item = if r.item.is_empty() { "-" } else { &r.item };
            [r.check, item, r.state.as_str(), r.message.as_str()]
        })
        .collect();
    let header = ["CHECK", "ITEM", "STATE", "MESSAGE"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line = format!(
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The worst state among `results` (CRIT > WARN > UNKNOWN > OK); OK when empty.
pub fn worst(results: &[CheckResult]) -> CheckState {
    results
        .iter()
        .fold(CheckState::Ok, |acc, r| acc.worst(r.state))
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::checks::Metric;

    fn result(check: &'static str, item: &str, state: CheckState) -> CheckResult {
        CheckResult {
            check,
            item: item.into(),
            state,
            message: format!("{check} is {state}"),
            metrics: vec![Metric::new("used_percent", 12.5, "percent")],
            since: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn table_and_json_shapes() {
        let results = [
            result("disk", "/var", CheckState::Crit),
            result("cpu", "", CheckState::Ok),
        ];
        let table = table(&results);
        assert_eq!(
            table,
            "CHECK  ITEM  STATE  MESSAGE\n\
             disk   /var  CRIT   disk is CRIT\n\
             cpu    -     OK     cpu is OK\n"
        );
        let json: serde_json::Value = serde_json::from_str(&json(&results)).expect("json");
        assert_eq!(json[0]["state"], "CRIT");
        assert_eq!(json[1]["item"], "");
        assert_eq!(json[0]["metrics"][0]["unit"], "percent");
        assert_eq!(worst(&results), CheckState::Crit);
    }
}
