//! Plugin output and performance data, per the Monitoring Plugins
//! development guidelines:
//!
//! ```text
//! TEXT OUTPUT | OPTIONAL PERFDATA
//! LONG TEXT LINE 1
//! LONG TEXT LINE 2 | PERFDATA LINE 2
//! PERFDATA LINE 3
//! ```
//!
//! Performance data is a space-separated list of
//! `'label'=value[UOM];[warn];[crit];[min];[max]`: labels with spaces are
//! quoted with `'` (a literal quote doubled: `''`), `value` is a number or
//! `U` (undetermined), UOM is `s`, `ms`, `us`, `%`, `B`, `KB`, `MB`, `GB`,
//! `TB`, `c` (other word-like units are accepted, as Nagios does), warn and
//! crit are [`Range`]s. This parser decodes outside input: it never panics,
//! keeps every datum it can read, and lists what it could not.

use std::fmt;

use super::range::{Range, number};
use crate::checks::Metric;

/// One performance datum.
#[derive(Debug, Clone, PartialEq)]
pub struct PerfDatum {
    pub label: String,
    /// `None` for `U`: the plugin could not determine the value.
    pub value: Option<f64>,
    /// Unit of measurement as written (`MB`, `%`, ``).
    pub uom: String,
    pub warn: Option<Range>,
    pub crit: Option<Range>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// What a datum says beyond its value: the plugin's warn and crit ranges
/// and the value's min and max. Shipped with the metric so the collector
/// can show which range the value breaches.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Thresholds {
    pub warn: Option<Range>,
    pub crit: Option<Range>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Thresholds {
    /// Which range `value` breaches, crit first (`None`: neither).
    pub fn breached(&self, value: f64) -> Option<&'static str> {
        if self.crit.is_some_and(|r| r.alert(value)) {
            Some("crit")
        } else if self.warn.is_some_and(|r| r.alert(value)) {
            Some("warn")
        } else {
            None
        }
    }
}

impl PerfDatum {
    /// The datum as a metric, thresholds attached when it has any; `None`
    /// for an undetermined (`U`) value.
    pub fn metric(&self) -> Option<Metric> {
        let mut metric = Metric::new(self.label.clone(), self.value?, self.uom.clone());
        let thresholds = Thresholds {
            warn: self.warn,
            crit: self.crit,
            min: self.min,
            max: self.max,
        };
        if thresholds != Thresholds::default() {
            metric.thresholds = Some(Box::new(thresholds));
        }
        Some(metric)
    }
}

/// A piece of performance data that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{token:?}: {reason}")]
pub struct PerfError {
    /// The offending text (cut to 64 characters).
    pub token: String,
    pub reason: String,
}

impl PerfError {
    fn new(token: &str, reason: impl Into<String>) -> Self {
        Self {
            token: token.chars().take(64).collect(),
            reason: reason.into(),
        }
    }
}

/// Everything read from performance data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Perfdata {
    pub data: Vec<PerfDatum>,
    pub errors: Vec<PerfError>,
}

/// A plugin's output, split.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginOutput<'a> {
    /// The first line, before any `|`, trimmed.
    pub message: &'a str,
    /// Lines after the first that are not performance data.
    pub long_text: Vec<&'a str>,
    pub perfdata: Perfdata,
}

/// Splits a plugin's standard output into message, long text and
/// performance data (after `|` on the first line, and after the first `|`
/// on a later line plus every line below it).
pub fn parse_output(text: &str) -> PluginOutput<'_> {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let mut perfdata = Perfdata::default();
    let message = match first.split_once('|') {
        Some((message, perf)) => {
            parse_into(perf, &mut perfdata);
            message
        }
        None => first,
    };
    let mut long_text = Vec::new();
    let mut in_perfdata = false;
    for line in lines {
        if in_perfdata {
            parse_into(line, &mut perfdata);
        } else if let Some((text, perf)) = line.split_once('|') {
            long_text.push(text);
            parse_into(perf, &mut perfdata);
            in_perfdata = true;
        } else {
            long_text.push(line);
        }
    }
    PluginOutput {
        message: message.trim(),
        long_text,
        perfdata,
    }
}

/// Parses one run of space-separated performance data.
pub fn parse_perfdata(text: &str) -> Perfdata {
    let mut perfdata = Perfdata::default();
    parse_into(text, &mut perfdata);
    perfdata
}

fn parse_into(text: &str, out: &mut Perfdata) {
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let (result, after) = datum(rest);
        match result {
            Ok((datum, mut errors)) => {
                out.data.push(datum);
                out.errors.append(&mut errors);
            }
            Err(e) => out.errors.push(e),
        }
        rest = after.trim_start();
    }
}

/// Splits `s` at its first whitespace.
fn word(s: &str) -> (&str, &str) {
    s.split_at(s.find(char::is_whitespace).unwrap_or(s.len()))
}

type DatumResult = Result<(PerfDatum, Vec<PerfError>), PerfError>;

/// Reads one datum from the start of `s` (which starts with no
/// whitespace); returns it and the text after it.
fn datum(s: &str) -> (DatumResult, &str) {
    let (label, after_label) = match label(s) {
        Ok(split) => split,
        Err((e, rest)) => return (Err(e), rest),
    };
    let Some(after_eq) = after_label.strip_prefix('=') else {
        let rest = word(after_label).1;
        let e = PerfError::new(consumed(s, rest), "no '=' after the label");
        return (Err(e), rest);
    };
    let (field, rest) = word(after_eq);
    (fields(label, field, consumed(s, rest)), rest)
}

/// The part of `s` before its suffix `rest`.
fn consumed<'a>(s: &'a str, rest: &str) -> &'a str {
    s.get(..s.len().saturating_sub(rest.len())).unwrap_or(s)
}

/// The label at the start of `s`, unquoted, and the text after it.
fn label(s: &str) -> Result<(String, &str), (PerfError, &str)> {
    if let Some(quoted) = s.strip_prefix('\'') {
        let mut label = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '\'' {
                label.push(c);
                continue;
            }
            if quoted[i + 1..].starts_with('\'') {
                label.push('\'');
                chars.next();
                continue;
            }
            if label.is_empty() {
                let rest = word(&quoted[i + 1..]).1;
                return Err((PerfError::new(s, "empty label"), rest));
            }
            return Ok((label, &quoted[i + 1..]));
        }
        return Err((PerfError::new(s, "unterminated quoted label"), ""));
    }
    let end = s
        .find(|c: char| c == '=' || c.is_whitespace())
        .unwrap_or(s.len());
    if end == 0 {
        let rest = word(s).1;
        return Err((PerfError::new(word(s).0, "empty label"), rest));
    }
    Ok((s[..end].to_owned(), &s[end..]))
}

/// Splits `value[UOM];warn;crit;min;max` into a datum; bad thresholds or
/// limits are dropped (and listed) while the value is kept.
fn fields(label: String, field: &str, token: &str) -> DatumResult {
    let mut parts = field.split(';');
    let value_uom = parts.next().unwrap_or_default();
    let (value, uom) = if value_uom == "U" {
        (None, "")
    } else {
        let (num, uom) = value_uom.split_at(number_len(value_uom));
        let value = number(num).ok_or_else(|| PerfError::new(token, "value is not a number"))?;
        // A unit never has digits or dots; `1E2...` is garbage, not 100 `...`.
        if uom
            .chars()
            .any(|c| c.is_ascii_digit() || c == '.' || c.is_control())
        {
            return Err(PerfError::new(token, "bad unit of measurement"));
        }
        (Some(value), uom)
    };
    let mut errors = Vec::new();
    let mut threshold = |text: Option<&str>, which: &str| -> Option<Range> {
        let text = text.filter(|t| !t.is_empty())?;
        text.parse()
            .map_err(|e| errors.push(PerfError::new(token, format!("{which}: {e}"))))
            .ok()
    };
    let warn = threshold(parts.next(), "warn");
    let crit = threshold(parts.next(), "crit");
    let mut limit = |text: Option<&str>, which: &str| -> Option<f64> {
        let text = text.filter(|t| !t.is_empty())?;
        // Some plugins repeat the unit on min/max (`0MB`): allow exactly that.
        let (num, suffix) = text.split_at(number_len(text));
        match number(num) {
            Some(v) if suffix.is_empty() || suffix == uom => Some(v),
            _ => {
                errors.push(PerfError::new(token, format!("{which} is not a number")));
                None
            }
        }
    };
    let min = limit(parts.next(), "min");
    let max = limit(parts.next(), "max");
    let datum = PerfDatum {
        label,
        value,
        uom: uom.to_owned(),
        warn,
        crit,
        min,
        max,
    };
    Ok((datum, errors))
}

/// Length of the number at the start of `s`: sign, digits and dots, and an
/// exponent when one follows.
fn number_len(s: &str) -> usize {
    let b = s.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    while digit(i) || b.get(i) == Some(&b'.') {
        i += 1;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'-' | b'+')) {
            j += 1;
        }
        if digit(j) {
            while digit(j) {
                j += 1;
            }
            i = j;
        }
    }
    i
}

/// Writes the datum back in the guidelines' syntax (trailing empty fields
/// left out), quoting the label when it has to be.
impl fmt::Display for PerfDatum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let needs_quotes = self.label.starts_with('\'')
            || self.label.contains(|c: char| c == '=' || c.is_whitespace());
        if needs_quotes {
            write!(f, "'{}'=", self.label.replace('\'', "''"))?;
        } else {
            write!(f, "{}=", self.label)?;
        }
        match self.value {
            Some(v) => write!(f, "{v}{}", self.uom)?,
            None => f.write_str("U")?,
        }
        let show = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        let mut rest = [
            self.warn.map(|r| r.to_string()).unwrap_or_default(),
            self.crit.map(|r| r.to_string()).unwrap_or_default(),
            show(self.min),
            show(self.max),
        ]
        .to_vec();
        while rest.last().is_some_and(String::is_empty) {
            rest.pop();
        }
        for field in rest {
            write!(f, ";{field}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn only(text: &str) -> PerfDatum {
        let p = parse_perfdata(text);
        assert_eq!(p.errors, Vec::new(), "{text}");
        assert_eq!(p.data.len(), 1, "{text}");
        p.data.into_iter().next().expect("one datum")
    }

    /// The example from the guidelines.
    #[test]
    fn guidelines_example() {
        let p = parse_perfdata("/=382MB;15264;15269;; /var=218MB;9443;9448");
        assert_eq!(p.errors, Vec::new());
        let labels: Vec<_> = p.data.iter().map(|d| d.label.as_str()).collect();
        assert_eq!(labels, ["/", "/var"]);
        let root = &p.data[0];
        assert_eq!(root.value, Some(382.0));
        assert_eq!(root.uom, "MB");
        assert_eq!(root.warn, Some("15264".parse().expect("range")));
        assert_eq!(root.crit, Some("15269".parse().expect("range")));
        assert_eq!((root.min, root.max), (None, None));
        assert_eq!(p.data[1].value, Some(218.0));
        assert!(p.data[1].crit.is_some_and(|c| c.alert(9449.0)));
    }

    #[test]
    fn output_message_and_multiline_perfdata() {
        let out = parse_output(
            "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n\
             / 15272 MB (77%);\n\
             /boot 68 MB (69%); | /boot=68MB;88;93;0;98\n\
             /home=69357MB;253404;253409;0;253414\n\
             'my var'=1.5s\n",
        );
        assert_eq!(out.message, "DISK OK - free space: / 3326 MB (56%);");
        assert_eq!(out.long_text, ["/ 15272 MB (77%);", "/boot 68 MB (69%); "]);
        let labels: Vec<_> = out.perfdata.data.iter().map(|d| d.label.as_str()).collect();
        assert_eq!(labels, ["/", "/boot", "/home", "my var"]);
        assert_eq!(out.perfdata.data[0].max, Some(5968.0));
        assert_eq!(out.perfdata.errors, Vec::new());
    }

    #[test]
    fn output_without_perfdata() {
        let out = parse_output("PING OK - rta 0.1 ms\r\n");
        assert_eq!(out.message, "PING OK - rta 0.1 ms");
        assert!(out.perfdata.data.is_empty());
        assert_eq!(parse_output("").message, "");
    }

    #[test]
    fn units_quotes_and_undetermined_values() {
        for uom in ["s", "ms", "us", "%", "B", "KB", "MB", "GB", "TB", "c", ""] {
            assert_eq!(only(&format!("x=1.5{uom}")).uom, uom);
        }
        let d = only("'it''s here'=-3.5e2ms;@1:2;~:;0;");
        assert_eq!(d.label, "it's here");
        assert_eq!(d.value, Some(-350.0));
        assert_eq!(d.uom, "ms");
        assert!(d.warn.is_some_and(|w| w.inside));
        assert_eq!(d.min, Some(0.0));
        assert_eq!(only("load=U").value, None);
        assert_eq!(only("rx=10B;;;0B;100B").max, Some(100.0));
    }

    #[test]
    fn bad_data_is_listed_and_the_rest_kept() {
        let p = parse_perfdata("a=1 b= =3 c=x d 'e=1 f=2");
        let labels: Vec<_> = p.data.iter().map(|d| d.label.as_str()).collect();
        assert_eq!(labels, ["a"]);
        assert_eq!(p.errors.len(), 5, "{:?}", p.errors);
        let p = parse_perfdata("g=1;abc;5;x g2=1MB3 g3=9E44...");
        assert_eq!(p.data.len(), 1);
        assert_eq!(p.data[0].warn, None);
        assert_eq!(p.data[0].crit, Some("5".parse().expect("range")));
        assert_eq!(p.errors.len(), 4, "{:?}", p.errors);
    }

    #[test]
    fn a_datum_becomes_a_metric_with_its_thresholds() {
        let m = only("procs=97;1;100000;0;").metric().expect("a value");
        assert_eq!(
            (m.name.as_ref(), m.value, m.unit.as_ref()),
            ("procs", 97.0, "")
        );
        let t = m.thresholds.expect("thresholds kept");
        assert_eq!(
            t.warn,
            Some(Range {
                start: 0.0,
                end: 1.0,
                inside: false
            })
        );
        assert_eq!(t.crit.map(|r| r.end), Some(100_000.0));
        assert_eq!((t.min, t.max), (Some(0.0), None));
        assert_eq!(t.breached(97.0), Some("warn"));
        assert_eq!(t.breached(1.0), None);
        assert_eq!(t.breached(200_000.0), Some("crit"));
        // No thresholds: nothing attached; `U`: no metric at all.
        assert_eq!(only("x=1.5s").metric().expect("a value").thresholds, None);
        assert_eq!(only("x=U;1;2").metric(), None);
    }

    #[test]
    fn display_writes_the_guidelines_syntax() {
        let d = only("'a b'=1MB;;2");
        assert_eq!(d.to_string(), "'a b'=1MB;;2");
        assert_eq!(only("x=U").to_string(), "x=U");
    }

    fn finite() -> impl Strategy<Value = f64> {
        prop_oneof![
            -1e9..1e9f64,
            any::<i64>().prop_map(|v| v as f64),
            any::<f64>().prop_filter("finite", |v| v.is_finite()),
        ]
    }

    fn range() -> impl Strategy<Value = Range> {
        (
            prop_oneof![Just(f64::NEG_INFINITY), finite()],
            prop_oneof![Just(f64::INFINITY), finite()],
            any::<bool>(),
        )
            .prop_map(|(a, b, inside)| {
                let (start, end) = if a <= b { (a, b) } else { (b, a) };
                Range { start, end, inside }
            })
    }

    fn datum(label: impl Strategy<Value = String>) -> impl Strategy<Value = PerfDatum> {
        let uom = prop_oneof![
            Just(""),
            Just("s"),
            Just("ms"),
            Just("us"),
            Just("%"),
            Just("B"),
            Just("KB"),
            Just("MB"),
            Just("GB"),
            Just("TB"),
            Just("c"),
        ];
        (
            label,
            proptest::option::weighted(0.9, finite()),
            uom,
            proptest::option::of(range()),
            proptest::option::of(range()),
            proptest::option::of(finite()),
            proptest::option::of(finite()),
        )
            .prop_map(|(label, value, uom, warn, crit, min, max)| PerfDatum {
                label,
                uom: if value.is_some() { uom } else { "" }.to_owned(),
                value,
                warn,
                crit,
                min,
                max,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn never_panics_on_any_text(text in "\\PC*|.*") {
            let _ = parse_output(&text);
            let _ = parse_perfdata(&text);
        }

        #[test]
        fn never_panics_on_perfdata_like_text(text in "['a-z=;:@~ .0-9U%B|-]{0,64}") {
            let _ = parse_output(&text);
        }

        #[test]
        fn format_then_parse_round_trips(data in prop::collection::vec(datum("\\PC{1,12}"), 1..6)) {
            let text = data.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ");
            let parsed = parse_perfdata(&text);
            prop_assert_eq!(parsed.errors, Vec::new(), "{}", text);
            prop_assert_eq!(parsed.data, data, "{}", text);
        }

        #[test]
        fn output_round_trips(
            message in "[^|\r\n]{0,40}",
            data in prop::collection::vec(datum("[^|\r\n\u{85}\u{2028}\u{2029}]{1,12}"), 0..4),
        ) {
            let perf = data.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ");
            let text = format!("{message} | {perf}\nlong text\n");
            let out = parse_output(&text);
            prop_assert_eq!(out.message, message.trim());
            prop_assert_eq!(out.perfdata.data, data);
            prop_assert_eq!(out.long_text, vec!["long text"]);
        }
    }
}
