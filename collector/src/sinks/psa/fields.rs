//! Pieces the Autotask and HaloPSA connectors share: the reference tag that
//! finds a ticket whose create answer got lost, length limits, the
//! per-tenant and per-priority maps of their configs.
//!
//! **The reference tag.** Neither Autotask nor HaloPSA has a standard
//! ticket field for a caller's reference (Autotask's UDFs and Halo's custom
//! fields differ per instance and must be created by hand first). So the
//! title ends with `[fw-<12 hex>]`, the first 48 bits of the delivery's
//! idempotency key (a random UUID): visible to technicians, stable across
//! retries of one delivery, and searchable through each API's standard
//! title/summary filter, which `find` uses (within the tenant's company).

use std::collections::BTreeMap;

use crate::sinks::http::HttpFailure;
use crate::sinks::{Notification, Outcome};

/// The Forewarn priorities every PSA priority map covers.
pub const PRIORITIES: [&str; 4] = ["P1", "P2", "P3", "P4"];

/// A failure that parks the delivery with `msg`.
pub fn park(msg: String) -> HttpFailure {
    HttpFailure(Outcome::Park(msg))
}

/// A link's external id as the vendor's integer ticket id.
pub fn ticket_id(vendor: &str, id: &str) -> Result<i64, HttpFailure> {
    id.parse()
        .map_err(|_| park(format!("{id:?} is not a {vendor} ticket id")))
}

/// `[fw-<first 12 hex digits of key>]`.
pub fn key_tag(key: &str) -> String {
    let hex: String = key
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(12)
        .collect::<String>()
        .to_ascii_lowercase();
    format!("[fw-{hex}]")
}

/// `title` clipped so that `title [fw-…]` fits in `max_chars`.
pub fn tagged_title(title: &str, key: &str, max_chars: usize) -> String {
    let tag = key_tag(key);
    let room = max_chars.saturating_sub(tag.chars().count() + 1);
    format!("{} {tag}", clip(title.trim(), room))
}

/// At most `max_chars` characters of `s` (an ellipsis marks a cut).
pub fn clip(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The tenant's entry of a `companies`/`clients` map: by tenant name, then
/// by tenant id.
pub fn tenant_entry<'a, T>(map: &'a BTreeMap<String, T>, n: &Notification) -> Option<&'a T> {
    map.get(&n.tenant_name).or_else(|| map.get(&n.tenant_id))
}

/// The parked failure of a ticket whose tenant has no company mapped.
pub fn unmapped_tenant(n: &Notification, key: &str) -> HttpFailure {
    HttpFailure(Outcome::Park(format!(
        "tenant {:?} has no {key} entry: add `{key}.{} = <id>` to the sink (see `forewarn-collector sink map`)",
        n.tenant_name, n.tenant_name
    )))
}

/// A `P1`..`P4` map with `defaults` for missing keys; every unknown key is
/// a problem naming `key`.
pub fn priority_map<T: Clone>(
    key: &str,
    given: BTreeMap<String, T>,
    defaults: [T; 4],
    problems: &mut Vec<String>,
) -> BTreeMap<String, T> {
    for k in given.keys() {
        if !PRIORITIES.contains(&k.as_str()) {
            problems.push(format!(
                "{key}.{k}: not a Forewarn priority (P1, P2, P3 or P4)"
            ));
        }
    }
    PRIORITIES
        .iter()
        .zip(defaults)
        .map(|(p, d)| ((*p).to_string(), given.get(*p).cloned().unwrap_or(d)))
        .collect()
}

/// Checks the keys every PSA kind has: `timeout_ms` and `poll_secs`.
pub fn timing_problems(timeout_ms: u64, poll_secs: f64, problems: &mut Vec<String>) {
    if !(100..=120_000).contains(&timeout_ms) {
        problems.push(format!(
            "timeout_ms ({timeout_ms}) must be between 100 and 120000"
        ));
    }
    if !(poll_secs.is_finite() && (0.5..=86_400.0).contains(&poll_secs)) {
        problems.push(format!(
            "poll_secs ({poll_secs}) must be between 0.5 and 86400"
        ));
    }
}

/// `text` as an http(s) URL without a trailing slash, or a problem naming
/// `key`.
pub fn base_url(key: &str, text: &str, problems: &mut Vec<String>) -> Option<String> {
    match reqwest::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {
            Some(text.trim_end_matches('/').to_string())
        }
        Ok(_) => {
            problems.push(format!("{key} {text:?} must be an http or https URL"));
            None
        }
        Err(e) => {
            problems.push(format!("{key} {text:?}: {e}"));
            None
        }
    }
}

/// A `toml` table into `T`, the error as one problem.
pub fn table<T: serde::de::DeserializeOwned>(t: toml::Table) -> Result<T, Vec<String>> {
    t.try_into()
        .map_err(|e: toml::de::Error| vec![e.message().to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_short_stable_and_fits() {
        let key = "3F2A9C1E-4B7D-4a11-9e2b-0c5d6e7f8091";
        assert_eq!(key_tag(key), "[fw-3f2a9c1e4b7d]");
        let t = tagged_title(&"x".repeat(300), key, 255);
        assert_eq!(t.chars().count(), 255);
        assert!(t.ends_with("… [fw-3f2a9c1e4b7d]"), "{t}");
        assert_eq!(tagged_title(" short ", key, 255), "short [fw-3f2a9c1e4b7d]");
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "ab…");
    }

    #[test]
    fn priority_maps_default_and_name_bad_keys() {
        let mut p = Vec::new();
        let m = priority_map(
            "priorities",
            BTreeMap::from([("P2".to_string(), 7), ("P9".to_string(), 1)]),
            [1, 2, 3, 4],
            &mut p,
        );
        assert_eq!(m["P1"], 1);
        assert_eq!(m["P2"], 7);
        assert_eq!(m.len(), 4);
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("priorities.P9"), "{p:?}");
    }

    #[test]
    fn tenants_map_by_name_then_id() {
        let n = crate::sinks::notification::tests::sample();
        let by_name = BTreeMap::from([("acme".to_string(), 1), ("t-1".to_string(), 2)]);
        assert_eq!(tenant_entry(&by_name, &n), Some(&1));
        let by_id = BTreeMap::from([("t-1".to_string(), 2)]);
        assert_eq!(tenant_entry(&by_id, &n), Some(&2));
        assert!(tenant_entry(&BTreeMap::<String, i64>::new(), &n).is_none());
        let parked = unmapped_tenant(&n, "companies").message();
        assert!(parked.contains("companies.acme"), "{parked}");
    }
}
