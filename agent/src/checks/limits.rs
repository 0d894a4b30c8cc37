//! What the collector accepts in a result — bounded lengths, no control
//! characters, finite numbers — applied to probes that report text from
//! outside (plugin output, HTTP headers, certificate subjects). The
//! collector refuses a whole report over one bad field, so the agent cleans
//! up first. Also: validation of the `name` every multi-instance probe
//! reports under.

use super::Metric;

/// Longest message sent (the collector takes up to 4096 bytes).
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Most metrics in one result (the collector takes up to 64).
pub const MAX_METRICS: usize = 64;
/// Longest metric name (the collector takes up to 128 bytes).
pub const MAX_METRIC_NAME_BYTES: usize = 128;
/// Longest metric unit (the collector takes up to 32 bytes).
pub const MAX_UNIT_BYTES: usize = 32;
/// Longest item name (the collector takes up to 512 bytes).
pub const MAX_NAME_BYTES: usize = 255;

/// `text` with control characters (tab aside) turned into spaces and cut
/// to `max_bytes` on a character boundary, marked with `…` when cut.
pub fn clean_text(text: &str, max_bytes: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
        .collect();
    if out.len() > max_bytes {
        let mut cut = max_bytes.saturating_sub('…'.len_utf8());
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// Whether the collector accepts `metric` as it is.
pub fn metric_ok(metric: &Metric) -> bool {
    let clean = |s: &str| !s.chars().any(char::is_control);
    metric.value.is_finite()
        && !metric.name.is_empty()
        && metric.name.len() <= MAX_METRIC_NAME_BYTES
        && clean(&metric.name)
        && metric.unit.len() <= MAX_UNIT_BYTES
        && clean(&metric.unit)
}

/// Checks a probe's `name` (its item): present, printable, not too long,
/// and unique among the instances of its kind (`seen` collects them).
pub fn validate_name(prefix: &str, name: &str, seen: &mut Vec<String>, p: &mut Vec<String>) {
    if name.trim().is_empty() {
        p.push(format!("{prefix}.name must not be empty"));
        return;
    }
    if name.len() > MAX_NAME_BYTES {
        p.push(format!(
            "{prefix}.name must be at most {MAX_NAME_BYTES} bytes"
        ));
    }
    if name.chars().any(char::is_control) {
        p.push(format!(
            "{prefix}.name ({name:?}) must not contain control characters"
        ));
    }
    if seen.iter().any(|s| s == name) {
        p.push(format!("{prefix}.name ({name:?}) is used twice"));
    }
    seen.push(name.to_owned());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cleaned_and_cut_on_a_char_boundary() {
        assert_eq!(clean_text("a\u{1b}[31mb\tc\r", 100), "a [31mb\tc ");
        assert_eq!(clean_text("ééééé", 7), "éé…");
        assert_eq!(clean_text("abc", 3), "abc");
        assert_eq!(clean_text("abcd", 3), "…");
        assert!(clean_text(&"x".repeat(5000), MAX_MESSAGE_BYTES).len() <= MAX_MESSAGE_BYTES);
    }

    #[test]
    fn metrics_the_collector_would_refuse() {
        assert!(metric_ok(&Metric::new("/", 1.0, "MB")));
        assert!(!metric_ok(&Metric::new("", 1.0, "")));
        assert!(!metric_ok(&Metric::new("a\u{7}", 1.0, "")));
        assert!(!metric_ok(&Metric::new("a", f64::NAN, "")));
        assert!(!metric_ok(&Metric::new("x".repeat(129), 1.0, "")));
        assert!(!metric_ok(&Metric::new("a", 1.0, "u".repeat(33))));
    }

    #[test]
    fn names_are_checked_and_unique() {
        let (mut seen, mut p) = (Vec::new(), Vec::new());
        validate_name("checks.tcp[0]", "db", &mut seen, &mut p);
        validate_name("checks.tcp[1]", "db", &mut seen, &mut p);
        validate_name("checks.tcp[2]", " ", &mut seen, &mut p);
        validate_name("checks.tcp[3]", "a\nb", &mut seen, &mut p);
        assert_eq!(
            p,
            [
                "checks.tcp[1].name (\"db\") is used twice",
                "checks.tcp[2].name must not be empty",
                "checks.tcp[3].name (\"a\\nb\") must not contain control characters",
            ]
        );
    }
}
