//! RFC 3339 (de)serialization of [`Millis`].

use jiff::Timestamp;
use serde::Serializer;

use super::Millis;

/// UTC with a `Z`, and fractional seconds only when there are any, without
/// trailing zeros: `2023-11-14T22:13:20.12Z`. A value outside what jiff
/// represents (about ±9999 years) prints as the epoch.
pub fn format(ms: Millis) -> String {
    Timestamp::from_millisecond(ms)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_string()
}

/// An RFC 3339 timestamp with any offset, truncated to whole milliseconds
/// (toward the epoch). jiff is a little wider than RFC 3339 (Temporal's
/// ISO 8601: `+0200`, no seconds, a trailing `[zone]`), never ambiguous.
pub fn parse(text: &str) -> Result<Millis, jiff::Error> {
    text.parse::<Timestamp>().map(Timestamp::as_millisecond)
}

pub fn serialize<S: Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*ms))
}

pub mod option {
    use serde::Serializer;

    use super::super::Millis;

    pub fn serialize<S: Serializer>(ms: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
        match ms {
            Some(ms) => s.serialize_str(&super::format(*ms)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{format, parse};

    /// The strings the API has always returned (they were made by the
    /// `time` crate before): sub-second digits only when non-zero, with
    /// trailing zeros cut.
    #[test]
    fn format_is_pinned() {
        for (ms, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (1, "1970-01-01T00:00:00.001Z"),
            (10, "1970-01-01T00:00:00.01Z"),
            (100, "1970-01-01T00:00:00.1Z"),
            (999, "1970-01-01T00:00:00.999Z"),
            (1_500, "1970-01-01T00:00:01.5Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (1_700_000_000_000, "2023-11-14T22:13:20Z"),
            (1_700_000_000_120, "2023-11-14T22:13:20.12Z"),
            (1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
            (i64::MAX, "1970-01-01T00:00:00Z"),
        ] {
            assert_eq!(format(ms), text, "{ms}");
        }
    }

    #[test]
    fn parse_reads_what_format_writes() {
        for ms in [0, 1, 999, 1_500, -1, -1_500, 1_700_000_000_123] {
            assert_eq!(parse(&format(ms)).ok(), Some(ms), "{ms}");
        }
    }

    #[test]
    fn parse_takes_offsets_and_truncates_to_millis() {
        for (text, ms) in [
            ("2020-01-01T00:00:00Z", 1_577_836_800_000),
            ("2020-01-01t00:00:00z", 1_577_836_800_000),
            ("2020-01-01 00:00:00Z", 1_577_836_800_000),
            ("2020-01-01T02:00:00+02:00", 1_577_836_800_000),
            ("2019-12-31T19:00:00-05:00", 1_577_836_800_000),
            ("2020-01-01T00:00:00.9999Z", 1_577_836_800_999),
            ("1969-12-31T23:59:59.9995Z", 0),
        ] {
            assert_eq!(parse(text).ok(), Some(ms), "{text}");
        }
        for text in ["", "garbage", "2020-01-01", "2020-01-01T00:00:00"] {
            assert!(parse(text).is_err(), "{text}");
        }
    }
}
