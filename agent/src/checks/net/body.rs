//! The http check's body match (`body_contains`, `body_regex`): reading a
//! response body with a cap, and judging what was read. The body is only
//! read when a match is configured; at most [`BODY_CAP`] bytes of it are
//! kept and searched, the rest is not read (the connection is closed).

use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::config::HttpConfig;

/// Most bytes of a body searched: a health page or a JSON status fits; a
/// large page is searched in its beginning only, and the message says so.
pub(crate) const BODY_CAP: usize = 64 * 1024;

/// The first bytes of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Body {
    pub bytes: Vec<u8>,
    /// More followed than [`BODY_CAP`]: it was not read.
    pub cut: bool,
}

/// Reads `body` up to `cap` bytes.
pub(super) async fn read_capped(mut body: Incoming, cap: usize) -> Result<Body, hyper::Error> {
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers
        };
        let room = cap.saturating_sub(bytes.len());
        if data.len() > room {
            bytes.extend_from_slice(&data[..room]);
            return Ok(Body { bytes, cut: true });
        }
        bytes.extend_from_slice(&data);
    }
    Ok(Body { bytes, cut: false })
}

/// What the body must contain and match (both, when both are set).
#[derive(Debug, Clone)]
pub(super) struct BodyMatch {
    contains: Option<String>,
    regex: Option<regex::Regex>,
}

impl BodyMatch {
    /// The match a check asks for; `Ok(None)` when it asks for none, an
    /// error naming the key when its regex does not compile (the config's
    /// validation reports that first; this keeps the probe from panicking).
    pub(super) fn from_config(c: &HttpConfig) -> Result<Option<Self>, String> {
        let regex = c
            .body_regex()
            .transpose()
            .map_err(|e| format!("body_regex is not a valid regex: {e}").replace('\n', " "))?;
        let contains = c.body_contains.clone().filter(|s| !s.is_empty());
        if contains.is_none() && regex.is_none() {
            return Ok(None);
        }
        Ok(Some(Self { contains, regex }))
    }

    /// `None` when the body passes; else why not, for the message:
    /// `body does not contain "ok"`.
    pub(super) fn miss(&self, body: &Body) -> Option<String> {
        let text = String::from_utf8_lossy(&body.bytes);
        let mut misses = Vec::new();
        if let Some(needle) = &self.contains
            && !text.contains(needle.as_str())
        {
            misses.push(format!("does not contain {needle:?}"));
        }
        if let Some(regex) = &self.regex
            && !regex.is_match(&text)
        {
            misses.push(format!("does not match /{}/", regex.as_str()));
        }
        if misses.is_empty() {
            return None;
        }
        let mut why = format!("body {}", misses.join(" and "));
        if body.cut {
            why.push_str(&format!(" (first {} KiB searched)", BODY_CAP / 1024));
        }
        Some(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(contains: Option<&str>, regex: Option<&str>) -> Result<Option<BodyMatch>, String> {
        BodyMatch::from_config(&HttpConfig {
            name: "web".into(),
            url: "http://127.0.0.1/".into(),
            expect_status: Vec::new(),
            timeout_ms: 1000,
            warn_latency_ms: None,
            interval_secs: 60,
            body_contains: contains.map(Into::into),
            body_regex: regex.map(Into::into),
        })
    }

    fn body(text: &str, cut: bool) -> Body {
        Body {
            bytes: text.as_bytes().to_vec(),
            cut,
        }
    }

    #[test]
    fn substring_and_regex_must_both_match() {
        let m = matcher(Some("\"status\":\"ok\""), Some(r#""uptime":\d+"#))
            .expect("valid")
            .expect("a match");
        assert_eq!(m.miss(&body(r#"{"status":"ok","uptime":42}"#, false)), None);
        assert_eq!(
            m.miss(&body(r#"{"status":"degraded","uptime":42}"#, false)),
            Some(r#"body does not contain "\"status\":\"ok\"""#.to_owned())
        );
        assert_eq!(
            m.miss(&body("<html>maintenance</html>", true)),
            Some(
                r#"body does not contain "\"status\":\"ok\"" and does not match /"uptime":\d+/ (first 64 KiB searched)"#
                    .to_owned()
            )
        );
    }

    #[test]
    fn either_key_alone_works_and_none_means_no_read() {
        let contains = matcher(Some("ok"), None).expect("valid").expect("a match");
        assert_eq!(contains.miss(&body("all ok", false)), None);
        let regex = matcher(None, Some("(?i)^HEALTHY$"))
            .expect("valid")
            .expect("a match");
        assert_eq!(regex.miss(&body("healthy", false)), None);
        assert!(regex.miss(&body("healthy\n", false)).is_some());
        assert!(matcher(None, None).expect("valid").is_none());
    }

    #[test]
    fn non_utf8_bodies_are_searched_lossily() {
        let m = matcher(Some("ok"), None).expect("valid").expect("a match");
        let b = Body {
            bytes: b"\xff\xfe ok".to_vec(),
            cut: false,
        };
        assert_eq!(m.miss(&b), None);
    }

    #[test]
    fn a_bad_regex_is_an_error_naming_the_key() {
        let e = matcher(None, Some("(unclosed")).expect_err("bad regex");
        assert!(e.starts_with("body_regex is not a valid regex: "), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }
}
