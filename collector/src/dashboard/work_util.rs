//! What the work pages (queue, ticket, maintenance, policies, reports,
//! audit, admin) share: reading posted forms, the flash line a POST
//! redirects back with, and how times and errors are shown.

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::Error;
use crate::domain::Millis;

/// A posted `application/x-www-form-urlencoded` body, keys in order
/// (repeated keys kept: a bulk form posts one `id` per ticket).
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &Bytes) -> Self {
        Self(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// A page's query string (`RawQuery`).
    pub fn query(raw: Option<String>) -> Self {
        Self::parse(&Bytes::from(raw.unwrap_or_default()))
    }

    /// The `error` lines a redirect brought back ([`see_other`]).
    pub fn errors(&self) -> Vec<String> {
        self.all("error").into_iter().map(str::to_string).collect()
    }

    /// The first value of `key`, trimmed; `None` when absent or empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every non-empty value of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// `key` as an owned string (empty when absent).
    pub fn text(&self, key: &str) -> String {
        self.get(key).unwrap_or_default().to_string()
    }
}

/// The name of tenant `id` among `tenants` (the id itself if not there).
pub fn tenant_name(tenants: &[crate::domain::Tenant], id: &str) -> String {
    tenants
        .iter()
        .find(|t| t.id == id)
        .map_or_else(|| id.to_string(), |t| t.name.clone())
}

/// Only a path on this collector may be a form's way back (no open redirect).
pub fn local(path: Option<&str>, default: &str) -> String {
    match path {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_string(),
        _ => default.to_string(),
    }
}

/// 303 See Other to `back` with `flash` (and `error` lines) in its query
/// string, so a reload does not post again and the page says what happened.
pub fn see_other(back: &str, flash: &str, errors: &[String]) -> Response {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if !flash.is_empty() {
        q.append_pair("flash", &clip(flash, 500));
    }
    for e in errors.iter().take(20) {
        q.append_pair("error", &clip(e, 300));
    }
    let q = q.finish();
    let (path, old) = back.split_once('?').unwrap_or((back, ""));
    // Keep the page's own filters, drop an older flash.
    let kept: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            form_urlencoded::parse(old.as_bytes()).filter(|(k, _)| k != "flash" && k != "error"),
        )
        .finish();
    let joined = [kept, q]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("&");
    let location = if joined.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{joined}")
    };
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// What an operator is told about a failed change: the reason for their
/// own mistakes, a pointer to the log for ours (logged here).
pub fn said(e: &Error) -> String {
    match e {
        Error::NotFound(_)
        | Error::Conflict(_)
        | Error::InvalidArgument(_)
        | Error::PermissionDenied(_)
        | Error::RateLimited(_) => e.to_string(),
        other => {
            tracing::error!(error = %other, "dashboard change failed");
            "failed on the collector's side; see its log".to_string()
        }
    }
}

/// `2026-05-12 22:00 CEST` in `tz`.
pub fn local_time(ms: Millis, tz: &TimeZone) -> String {
    Timestamp::from_millisecond(ms).map_or_else(
        |_| ms.to_string(),
        |t| {
            t.to_zoned_datetime(tz.clone())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        },
    )
}

/// `2026-05-12 20:00 UTC`.
pub fn utc(ms: Millis) -> String {
    local_time(ms, &TimeZone::UTC)
}

/// A duration in its two largest units: `45s`, `12m`, `3h 5m`, `2d 4h`.
pub fn span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// How far `at` is from `now`: `in 12m` or `3h 5m ago`.
pub fn relative(at: Millis, now: Millis) -> String {
    if at >= now {
        format!("in {}", span(at - now))
    } else {
        format!("{} ago", span(now - at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_in_two_units() {
        assert_eq!(span(45_000), "45s");
        assert_eq!(span(12 * 60_000), "12m");
        assert_eq!(span((3 * 60 + 5) * 60_000), "3h 5m");
        assert_eq!(span((2 * 24 + 4) * 3_600_000 + 99), "2d 4h");
        assert_eq!(relative(1_000, 61_000), "1m ago");
        assert_eq!(relative(61_000, 1_000), "in 1m");
    }

    #[test]
    fn a_redirect_keeps_filters_and_replaces_the_flash() {
        let r = see_other(
            "/tickets?tenant=a&flash=old&page=2",
            "2 done",
            &["ticket 9: not found".into()],
        );
        let loc = r.headers()[header::LOCATION].to_str().unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            loc,
            "/tickets?tenant=a&page=2&flash=2+done&error=ticket+9%3A+not+found"
        );
        assert_eq!(local(Some("//evil.example/x"), "/tickets"), "/tickets");
        assert_eq!(local(Some("/tickets/4"), "/tickets"), "/tickets/4");
    }

    #[test]
    fn repeated_fields_are_all_kept() {
        let f = Fields::parse(&Bytes::from_static(b"id=1&id=2&id=&action=resolve&x=+"));
        assert_eq!(f.all("id"), ["1", "2"]);
        assert_eq!(f.get("action"), Some("resolve"));
        assert_eq!(f.get("x"), None);
    }
}
