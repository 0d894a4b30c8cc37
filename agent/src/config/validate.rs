//! The pure checks behind [`Config::validate`]: ranges, orderings and
//! shapes of every value, each problem naming its key.

use super::{Config, DiskConfig, DiskThresholds, WindowSettings};
use crate::endpoint::CollectorUrl;
use crate::platform::mounts;

/// Every out-of-range value of `config`, each naming its key. Empty = valid.
pub fn validate(config: &Config) -> Vec<String> {
    let mut p = Vec::new();
    if config.interval_secs == 0 {
        p.push("interval_secs must be greater than 0".to_owned());
    }
    if !(0.1..=0.95).contains(&config.renew_at_fraction) {
        p.push(format!(
            "renew_at_fraction ({}) must be between 0.1 and 0.95",
            config.renew_at_fraction
        ));
    }
    if config.state_dir.as_os_str().is_empty() {
        p.push("state_dir must not be empty".to_owned());
    }
    if let Some(problem) = log_level_problem(&config.log_level) {
        p.push(problem);
    }
    validate_collector(&config.collector, &mut p);
    if config.collector.server_name.as_deref() == Some("") {
        p.push("collector.server_name must not be empty".to_owned());
    }
    validate_spool(&config.spool, &mut p);
    super::update::validate_update(&config.update, &mut p);
    validate_disk(&config.checks.disk, &mut p);
    validate_load(&config.checks.load, &mut p);
    validate_window("checks.cpu", &config.checks.cpu.window(), &mut p);
    validate_window("checks.memory", &config.checks.memory.window(), &mut p);
    for (key, v) in [
        ("swap_warn_percent", config.checks.memory.swap_warn_percent),
        ("swap_crit_percent", config.checks.memory.swap_crit_percent),
    ] {
        if let Some(v) = v.filter(|v| !(0.0..=100.0).contains(v)) {
            p.push(format!("checks.memory.{key} ({v}) must be within 0..=100"));
        }
    }
    if let (Some(w), Some(c)) = (
        config.checks.memory.swap_warn_percent,
        config.checks.memory.swap_crit_percent,
    ) && w >= c
    {
        p.push(format!(
            "checks.memory.swap_warn_percent ({w}) must be below checks.memory.swap_crit_percent ({c})"
        ));
    }
    super::backup::validate_backup(&config.checks.backup, &mut p);
    super::log::validate_log(&config.checks.log, &mut p);
    super::process::validate_process(&config.checks.process, &mut p);
    super::service::validate_service(&config.checks.service, &mut p);
    super::reboot::validate_reboot_required(&config.checks.reboot_required, &mut p);
    super::plugin::validate_plugin(&config.checks.plugin, &mut p);
    super::net::validate_tcp(&config.checks.tcp, &mut p);
    super::net::validate_http(&config.checks.http, &mut p);
    super::certificate::validate_certificate(&config.checks.certificate, &mut p);
    p
}

/// `[collector]`: `url` or `urls` (not both), each a valid, distinct URL.
fn validate_collector(c: &super::CollectorConfig, p: &mut Vec<String>) {
    if let Some(url) = &c.url
        && let Err(e) = CollectorUrl::parse(url)
    {
        p.push(format!("collector.url: {e}"));
    }
    let Some(urls) = &c.urls else { return };
    if c.url.is_some() {
        p.push("collector.url and collector.urls are both set: use one of them".to_owned());
    }
    if urls.is_empty() {
        p.push("collector.urls must list at least one https://HOST:PORT".to_owned());
    }
    let mut seen: Vec<(usize, CollectorUrl)> = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        match CollectorUrl::parse(url) {
            Err(e) => p.push(format!("collector.urls[{i}]: {e}")),
            Ok(parsed) => match seen.iter().find(|(_, u)| *u == parsed) {
                Some((j, _)) => p.push(format!(
                    "collector.urls[{i}] ({url:?}) repeats collector.urls[{j}]"
                )),
                None => seen.push((i, parsed)),
            },
        }
    }
}

/// A bare word must be a level (a typo like "inf" would otherwise parse as
/// a target name and silence everything); directives go to env-filter.
fn log_level_problem(level: &str) -> Option<String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let bare = !level.contains(['=', ',', '[']);
    if bare && !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level.trim())) {
        return Some(format!(
            "log_level ({level:?}) must be one of {} or an env-filter directive",
            LEVELS.join(", ")
        ));
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(level)
        .err()
        .map(|e| format!("log_level ({level:?}) is not a valid filter: {e}"))
}

fn validate_spool(s: &super::SpoolConfig, p: &mut Vec<String>) {
    const MIN_SEGMENT: u64 = 4096;
    if s.segment_bytes < MIN_SEGMENT {
        p.push(format!(
            "spool.segment_bytes ({}) must be at least {MIN_SEGMENT}",
            s.segment_bytes
        ));
    }
    if s.max_bytes < s.segment_bytes.saturating_mul(2) {
        p.push(format!(
            "spool.max_bytes ({}) must be at least twice spool.segment_bytes ({})",
            s.max_bytes, s.segment_bytes
        ));
    }
    if s.disk_retry_secs == 0 {
        p.push("spool.disk_retry_secs must be greater than 0".to_owned());
    }
}

fn validate_disk(d: &DiskConfig, p: &mut Vec<String>) {
    if d.poll_interval_ms == 0 {
        p.push("checks.disk.poll_interval_ms must be greater than 0".to_owned());
    }
    validate_trend(d, p);
    validate_disk_thresholds("checks.disk", &d.base_thresholds(), p);
    for mount in d.overrides.keys() {
        let prefix = format!("checks.disk.overrides.{mount:?}");
        validate_disk_thresholds(&prefix, &d.thresholds_for(mount), p);
    }
    validate_disk_mounts(d, cfg!(windows), p);
}

/// Mount points in `mounts`, `exclude_mounts` and `overrides`: absolute
/// paths on Unix; drives (`C:\`, `C:`), mounted folders or volume paths on
/// Windows ([`mounts::normalize`]).
fn validate_disk_mounts(d: &DiskConfig, windows: bool, p: &mut Vec<String>) {
    let requirement = mounts::requirement(windows);
    for mount in d.overrides.keys() {
        if mounts::normalize(mount, windows).is_none() {
            p.push(format!("checks.disk.overrides.{mount:?} {requirement}"));
        }
    }
    for (key, list) in [("mounts", &d.mounts), ("exclude_mounts", &d.exclude_mounts)] {
        for mount in list
            .iter()
            .filter(|m| mounts::normalize(m, windows).is_none())
        {
            p.push(format!("checks.disk.{key} entry {mount:?} {requirement}"));
        }
    }
}

fn validate_disk_thresholds(prefix: &str, t: &DiskThresholds, p: &mut Vec<String>) {
    percent(
        p,
        &format!("{prefix}.warn_used_percent"),
        t.warn_used_percent,
    );
    percent(
        p,
        &format!("{prefix}.crit_used_percent"),
        t.crit_used_percent,
    );
    if t.warn_used_percent >= t.crit_used_percent {
        p.push(format!(
            "{prefix}.warn_used_percent ({}) must be below {prefix}.crit_used_percent ({})",
            t.warn_used_percent, t.crit_used_percent
        ));
    }
    if let (Some(warn), Some(crit)) = (t.warn_free_bytes, t.crit_free_bytes)
        && warn <= crit
    {
        p.push(format!(
            "{prefix}.warn_free_bytes ({warn}) must be above {prefix}.crit_free_bytes ({crit})"
        ));
    }
}

fn validate_window(prefix: &str, w: &WindowSettings, p: &mut Vec<String>) {
    let (sample, window) = (w.sample_interval.as_secs(), w.window.as_secs());
    if sample == 0 {
        p.push(format!(
            "{prefix}.sample_interval_secs must be greater than 0"
        ));
    }
    if window < sample {
        p.push(format!(
            "{prefix}.window_secs ({window}) must be at least {prefix}.sample_interval_secs ({sample})"
        ));
    }
    percent(p, &format!("{prefix}.warn_percent"), w.warn_percent);
    percent(p, &format!("{prefix}.crit_percent"), w.crit_percent);
    if w.warn_percent >= w.crit_percent {
        p.push(format!(
            "{prefix}.warn_percent ({}) must be below {prefix}.crit_percent ({})",
            w.warn_percent, w.crit_percent
        ));
    }
}

fn percent(p: &mut Vec<String>, key: &str, value: f64) {
    if !(0.0..=100.0).contains(&value) {
        p.push(format!("{key} ({value}) must be within 0..=100"));
    }
}

fn validate_trend(d: &DiskConfig, p: &mut Vec<String>) {
    let hours = [
        ("trend_window_hours", d.trend_window_hours),
        ("warn_within_hours", d.warn_within_hours),
        ("crit_within_hours", d.crit_within_hours),
    ];
    for (key, h) in hours {
        if !(h.is_finite() && h > 0.0 && h <= 24.0 * 366.0) {
            p.push(format!(
                "checks.disk.{key} ({h}) must be between 0 and 8784 hours"
            ));
        }
    }
    if d.crit_within_hours > d.warn_within_hours {
        p.push(format!(
            "checks.disk.crit_within_hours ({}) must not exceed checks.disk.warn_within_hours ({})",
            d.crit_within_hours, d.warn_within_hours
        ));
    }
    if d.trend_sample_secs == 0 {
        p.push("checks.disk.trend_sample_secs must be greater than 0".to_owned());
    }
    if !(0.0..=100.0).contains(&d.trend_min_used_percent) {
        p.push(format!(
            "checks.disk.trend_min_used_percent ({}) must be within 0..=100",
            d.trend_min_used_percent
        ));
    }
    #[allow(clippy::cast_precision_loss)]
    if d.trend_min_span_secs as f64 > d.trend_window_hours * 3600.0 {
        p.push(format!(
            "checks.disk.trend_min_span_secs ({}) must fit in checks.disk.trend_window_hours ({})",
            d.trend_min_span_secs, d.trend_window_hours
        ));
    }
}

fn validate_load(l: &crate::config::LoadConfig, p: &mut Vec<String>) {
    if l.interval_secs == 0 {
        p.push("checks.load.interval_secs must be greater than 0".to_owned());
    }
    if ![1, 5, 15].contains(&l.average_minutes) {
        p.push(format!(
            "checks.load.average_minutes ({}) must be 1, 5 or 15",
            l.average_minutes
        ));
    }
    if !(l.warn_per_cpu.is_finite() && l.warn_per_cpu > 0.0) {
        p.push(format!(
            "checks.load.warn_per_cpu ({}) must be above 0",
            l.warn_per_cpu
        ));
    }
    if !(l.crit_per_cpu.is_finite() && l.crit_per_cpu >= l.warn_per_cpu) {
        p.push(format!(
            "checks.load.crit_per_cpu ({}) must be at least checks.load.warn_per_cpu ({})",
            l.crit_per_cpu, l.warn_per_cpu
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> crate::Result<Config> {
        Config::parse(text, std::path::Path::new("agent.toml"))
    }

    #[test]
    fn collector_urls_list_several_addresses() {
        let config = parse(
            "[collector]\nurls = [\"https://a:7443\", \"https://b:7443\"]\nserver_name = \"forewarn\"\n",
        )
        .expect("parses");
        assert_eq!(config.validate(), Vec::<String>::new());
        assert_eq!(
            config.collector.addresses(),
            Some(vec![
                "https://a:7443".to_owned(),
                "https://b:7443".to_owned()
            ])
        );
        let one = parse("[collector]\nurl = \"https://a:7443\"\n").expect("parses");
        assert_eq!(
            one.collector.addresses(),
            Some(vec!["https://a:7443".to_owned()])
        );
        assert_eq!(Config::default().collector.addresses(), None);
    }

    #[test]
    fn bad_collector_urls_are_named() {
        let problems = |text: &str| parse(text).expect("parses").validate().join("\n");
        let both = problems("[collector]\nurl = \"https://a:7443\"\nurls = [\"https://b:7443\"]\n");
        assert!(
            both.contains("collector.url and collector.urls are both set"),
            "{both}"
        );
        let empty = problems("[collector]\nurls = []\n");
        assert!(
            empty.contains("collector.urls must list at least one"),
            "{empty}"
        );
        let bad = problems("[collector]\nurls = [\"https://a:7443\", \"http://b:7443\"]\n");
        assert!(bad.contains("collector.urls[1]"), "{bad}");
        assert!(!bad.contains("collector.urls[0]"), "{bad}");
        let twice = problems("[collector]\nurls = [\"https://a:7443\", \"https://a:7443/\"]\n");
        assert!(
            twice.contains("collector.urls[1] (\"https://a:7443/\") repeats collector.urls[0]"),
            "{twice}"
        );
        let err = parse("[collector]\nurls = \"https://a:7443\"\n")
            .expect_err("a string, not a list")
            .to_string();
        assert!(err.contains("collector.urls"), "{err}");
    }

    #[test]
    fn log_level_must_be_a_level_or_a_directive() {
        assert_eq!(log_level_problem("info"), None);
        assert_eq!(log_level_problem("WARN"), None);
        assert_eq!(log_level_problem("info,forewarn_agent=debug"), None);
        assert!(log_level_problem("inf").is_some_and(|p| p.contains("log_level")));
    }

    #[test]
    fn windows_mount_points_are_accepted_and_bad_ones_named() {
        let config = parse(
            "[checks.disk]\nmounts = [\"C:\\\\\", \"d:\", \"E:/data\"]\nexclude_mounts = [\"C:data\"]\n\
             [checks.disk.overrides.\"C:\\\\\"]\nwarn_used_percent = 70.0\n",
        )
        .expect("parses");
        let mut p = Vec::new();
        validate_disk_mounts(&config.checks.disk, true, &mut p);
        assert_eq!(
            p,
            [
                r#"checks.disk.exclude_mounts entry "C:data" must be a drive (C:\) or a folder a volume is mounted on (D:\mnt\data)"#
            ]
        );
        // The same config on Unix: every Windows path is named.
        let mut p = Vec::new();
        validate_disk_mounts(&config.checks.disk, false, &mut p);
        assert_eq!(p.len(), 5, "{p:?}");
        assert!(
            p.iter()
                .all(|m| m.ends_with("must be an absolute mount point")),
            "{p:?}"
        );
        assert!(p[0].starts_with(r#"checks.disk.overrides."C:\\""#), "{p:?}");
    }

    #[test]
    fn spool_sizes_are_checked() {
        let mut config = Config::default();
        config.spool.segment_bytes = 100;
        config.spool.max_bytes = 150;
        config.spool.disk_retry_secs = 0;
        let all = validate(&config).join("\n");
        for key in [
            "spool.segment_bytes (100) must be at least 4096",
            "spool.max_bytes (150) must be at least twice spool.segment_bytes (100)",
            "spool.disk_retry_secs must be greater than 0",
        ] {
            assert!(all.contains(key), "missing {key:?} in:\n{all}");
        }
    }
}
