//! The `reboot_required` check (`[checks.reboot_required]`): WARN when the
//! host needs a reboot to finish installing updates, with pending updates
//! as metrics where the system already keeps a count. Low priority by
//! design: never worse than WARN (UNKNOWN when a tool fails).
//!
//! Linux only, from what the package tools leave behind — nothing here asks
//! a package manager for upgradable packages, which would be slow:
//! - Debian/Ubuntu: `/var/run/reboot-required` (+ `.pkgs`, the packages
//!   that asked for it), and `/var/lib/update-notifier/updates-available`
//!   (counts written by update-notifier on Ubuntu) when present;
//! - Fedora/RHEL: `needs-restarting -r` (exit 1 = reboot needed), run only
//!   when the binary exists, with a timeout.
//!
//! Windows: from the registry keys Windows itself sets while a reboot is
//! pending ([`WindowsSignals`]): Component Based Servicing `RebootPending`,
//! Windows Update `Auto Update\RebootRequired`, and Session Manager
//! `PendingFileRenameOperations` (files replaced at the next boot).
//!
//! On other platforms it is off by default, and UNKNOWN ("not supported")
//! when enabled explicitly.

// The Linux readers are compiled everywhere so their tests run on every
// OS; a Windows build does not call them.
#![cfg_attr(windows, allow(dead_code))]

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

#[cfg(not(windows))]
use super::command;
use super::{BoxFuture, CheckState, Evaluation, Metric, Probe};
use crate::config::RebootRequiredConfig;

/// How long `needs-restarting -r` may take (it reads the rpm database).
const NEEDS_RESTARTING_TIMEOUT: Duration = Duration::from_secs(60);
/// Packages named in the message; the rest are counted.
const LISTED_PACKAGES: usize = 5;

/// The probe, when enabled.
pub fn probes(c: &RebootRequiredConfig) -> Vec<Box<dyn Probe>> {
    if !c.enabled {
        return Vec::new();
    }
    vec![Box::new(RebootProbe {
        interval: Duration::from_secs(c.interval_secs),
        paths: RebootPaths::default(),
    })]
}

/// Where the signals live (injectable for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebootPaths {
    pub reboot_required: PathBuf,
    pub reboot_required_pkgs: PathBuf,
    pub updates_available: PathBuf,
    pub needs_restarting: PathBuf,
}

impl Default for RebootPaths {
    fn default() -> Self {
        Self {
            reboot_required: "/var/run/reboot-required".into(),
            reboot_required_pkgs: "/var/run/reboot-required.pkgs".into(),
            updates_available: "/var/lib/update-notifier/updates-available".into(),
            needs_restarting: "/usr/bin/needs-restarting".into(),
        }
    }
}

/// A pending reboot: who asked for it and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reboot {
    pub packages: Vec<String>,
    pub since: Option<SystemTime>,
}

/// Update counts from update-notifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingUpdates {
    pub total: u64,
    pub security: Option<u64>,
}

/// What the files say, before any tool runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    pub reboot: Option<Reboot>,
    pub updates: Option<PendingUpdates>,
    pub has_needs_restarting: bool,
}

/// Blocking: reads the Debian/Ubuntu files and looks for `needs-restarting`.
pub fn read_files(paths: &RebootPaths) -> Files {
    let reboot = std::fs::metadata(&paths.reboot_required)
        .ok()
        .map(|meta| Reboot {
            packages: std::fs::read_to_string(&paths.reboot_required_pkgs)
                .map(|t| parse_packages(&t))
                .unwrap_or_default(),
            since: meta.modified().ok(),
        });
    let updates = std::fs::read_to_string(&paths.updates_available)
        .ok()
        .and_then(|t| parse_updates_available(&t));
    Files {
        reboot,
        updates,
        has_needs_restarting: paths.needs_restarting.is_file(),
    }
}

/// `reboot-required.pkgs`: one package per line, repeats dropped.
pub fn parse_packages(text: &str) -> Vec<String> {
    let mut packages: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !packages.iter().any(|p| p == line) {
            packages.push(line.to_owned());
        }
    }
    packages
}

/// update-notifier's summary, in its old and new wording:
/// `12 packages can be updated.` / `12 updates can be applied immediately.`
/// and `5 updates are security updates.` / `5 of these updates are
/// standard security updates.` ESM lines ("additional … with ESM Apps")
/// are not installable without a subscription and are left out.
pub fn parse_updates_available(text: &str) -> Option<PendingUpdates> {
    let mut total = None;
    let mut security = None;
    for line in text.lines() {
        let line = line.trim().to_lowercase();
        let Some(n) = line
            .split_whitespace()
            .next()
            .and_then(|w| w.parse::<u64>().ok())
        else {
            continue;
        };
        if line.contains("additional") || line.contains("esm") {
            continue;
        }
        if line.contains("security") {
            security = Some(n);
        } else if line.contains("can be updated")
            || line.contains("can be applied")
            || line.contains("can be installed")
        {
            total = Some(n);
        }
    }
    total.map(|total| PendingUpdates { total, security })
}

/// `needs-restarting -r` output: the `  * package` lines.
pub fn parse_needs_restarting(text: &str) -> Vec<String> {
    let lines = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("* "))
        .collect::<Vec<_>>()
        .join("\n");
    parse_packages(&lines)
}

/// What the Windows registry says about a pending reboot.
#[cfg_attr(not(windows), allow(dead_code))]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowsSignals {
    /// `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based
    /// Servicing\RebootPending` exists (servicing stack, features, updates).
    pub cbs_reboot_pending: bool,
    /// `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto
    /// Update\RebootRequired` exists.
    pub windows_update_reboot_required: bool,
    /// The `PendingFileRenameOperations` value of
    /// `HKLM\SYSTEM\CurrentControlSet\Control\Session Manager` (pairs of
    /// source and target; an empty target means delete).
    pub pending_file_renames: Vec<String>,
}

#[cfg_attr(not(windows), allow(dead_code))]
impl WindowsSignals {
    /// Who asks for the reboot, in the words the message uses; empty when
    /// nothing does. A rename list of only empty strings asks for nothing.
    pub fn reasons(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.cbs_reboot_pending {
            reasons.push("Component Based Servicing".to_owned());
        }
        if self.windows_update_reboot_required {
            reasons.push("Windows Update".to_owned());
        }
        let renames = self
            .pending_file_renames
            .chunks(2)
            .filter(|pair| pair.first().is_some_and(|source| !source.trim().is_empty()))
            .count();
        if renames > 0 {
            reasons.push(format!("{renames} pending file rename(s)"));
        }
        reasons
    }

    /// The pending reboot, if any, for [`evaluate`].
    pub fn reboot(&self) -> Option<Reboot> {
        let packages = self.reasons();
        (!packages.is_empty()).then_some(Reboot {
            packages,
            since: None,
        })
    }
}

/// WARN when a reboot is pending, else OK; pending updates go to the
/// message and metrics either way.
pub fn evaluate(reboot: Option<&Reboot>, updates: Option<PendingUpdates>) -> Evaluation {
    let (state, mut message) = match reboot {
        None => (CheckState::Ok, "no reboot required".to_owned()),
        Some(r) => {
            let mut m = "reboot required".to_owned();
            if let Some(since) = r.since.and_then(format_time) {
                m.push_str(&format!(" since {since}"));
            }
            if !r.packages.is_empty() {
                let listed = r.packages.iter().take(LISTED_PACKAGES);
                m.push_str(&format!(
                    " by {}",
                    listed.map(String::as_str).collect::<Vec<_>>().join(", ")
                ));
                if r.packages.len() > LISTED_PACKAGES {
                    m.push_str(&format!(" and {} more", r.packages.len() - LISTED_PACKAGES));
                }
            }
            (CheckState::Warn, m)
        }
    };
    let mut metrics = vec![Metric::new(
        "reboot_required",
        if reboot.is_some() { 1.0 } else { 0.0 },
        "",
    )];
    if let Some(u) = updates {
        message.push_str(&format!("; {} updates pending", u.total));
        #[allow(clippy::cast_precision_loss)]
        metrics.push(Metric::new("pending_updates", u.total as f64, ""));
        if let Some(security) = u.security {
            message.push_str(&format!(" ({security} security)"));
            #[allow(clippy::cast_precision_loss)]
            metrics.push(Metric::new("security_updates", security as f64, ""));
        }
    }
    Evaluation {
        item: String::new(),
        state,
        message,
        metrics,
    }
}

/// `2025-11-23 14:30 UTC`: a fixed text, so a ticket's summary does not
/// change every hour while the reboot stays pending.
fn format_time(t: SystemTime) -> Option<String> {
    let t = time::OffsetDateTime::from(t);
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.format(&format).ok()
}

fn unknown(message: String) -> Evaluation {
    Evaluation {
        item: String::new(),
        state: CheckState::Unknown,
        message,
        metrics: Vec::new(),
    }
}

// === impl RebootProbe ===

/// The single `[checks.reboot_required]` probe.
pub struct RebootProbe {
    interval: Duration,
    paths: RebootPaths,
}

impl RebootProbe {
    #[cfg(windows)]
    async fn check(&self) -> Evaluation {
        match tokio::task::spawn_blocking(crate::platform::windows::registry::reboot_signals).await
        {
            Ok(Ok(signals)) => evaluate(signals.reboot().as_ref(), None),
            Ok(Err(error)) => unknown(format!("cannot read the pending reboot keys: {error}")),
            Err(error) => unknown(format!("cannot read reboot state: {error}")),
        }
    }

    #[cfg(not(windows))]
    async fn check(&self) -> Evaluation {
        if !cfg!(target_os = "linux") {
            return unknown(
                "reboot_required is not supported on this platform (Linux and Windows only)".into(),
            );
        }
        let paths = self.paths.clone();
        let files = match tokio::task::spawn_blocking(move || read_files(&paths)).await {
            Ok(files) => files,
            Err(error) => return unknown(format!("cannot read reboot state: {error}")),
        };
        if files.reboot.is_some() || !files.has_needs_restarting {
            return evaluate(files.reboot.as_ref(), files.updates);
        }
        let program = self.paths.needs_restarting.to_string_lossy();
        match command::run(&program, &["-r"], NEEDS_RESTARTING_TIMEOUT).await {
            Ok(out) if out.code == Some(0) => evaluate(None, files.updates),
            Ok(out) if out.code == Some(1) => {
                let reboot = Reboot {
                    packages: parse_needs_restarting(&out.stdout),
                    since: None,
                };
                evaluate(Some(&reboot), files.updates)
            }
            Ok(out) => unknown(format!(
                "needs-restarting -r failed: {}",
                command::first_line(&format!("{}{}", out.stderr, out.stdout))
            )),
            Err(error) => unknown(format!("needs-restarting -r: {error}")),
        }
    }
}

impl Probe for RebootProbe {
    fn kind(&self) -> &'static str {
        "reboot_required"
    }

    fn item(&self) -> String {
        String::new()
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    fn timeout(&self) -> Duration {
        NEEDS_RESTARTING_TIMEOUT + Duration::from_secs(10)
    }

    fn run(&mut self) -> BoxFuture<'_, Vec<Evaluation>> {
        Box::pin(async move { vec![self.check().await] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths_in(dir: &std::path::Path) -> RebootPaths {
        RebootPaths {
            reboot_required: dir.join("reboot-required"),
            reboot_required_pkgs: dir.join("reboot-required.pkgs"),
            updates_available: dir.join("updates-available"),
            needs_restarting: dir.join("needs-restarting"),
        }
    }

    #[test]
    fn debian_marker_warns_and_lists_packages() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = paths_in(dir.path());
        let files = read_files(&paths);
        assert_eq!(files.reboot, None);
        let e = evaluate(files.reboot.as_ref(), files.updates);
        assert_eq!(
            (e.state, e.message.as_str()),
            (CheckState::Ok, "no reboot required")
        );
        assert_eq!(e.metrics, [Metric::new("reboot_required", 0.0, "")]);

        std::fs::write(&paths.reboot_required, "*** System restart required ***\n").expect("write");
        std::fs::write(
            &paths.reboot_required_pkgs,
            "linux-image-6.1.0-13-amd64\nlibc6\nlinux-image-6.1.0-13-amd64\n\n",
        )
        .expect("write");
        let files = read_files(&paths);
        let reboot = files.reboot.clone().expect("reboot pending");
        assert_eq!(reboot.packages, ["linux-image-6.1.0-13-amd64", "libc6"]);
        assert!(reboot.since.is_some());
        let e = evaluate(
            Some(&Reboot {
                since: None,
                ..reboot
            }),
            None,
        );
        assert_eq!(e.state, CheckState::Warn);
        assert_eq!(
            e.message,
            "reboot required by linux-image-6.1.0-13-amd64, libc6"
        );
        assert_eq!(e.metrics, [Metric::new("reboot_required", 1.0, "")]);
    }

    #[test]
    fn message_is_stable_and_long_lists_are_cut() {
        let reboot = Reboot {
            packages: (1..=8).map(|i| format!("p{i}")).collect(),
            since: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_763_908_200)),
        };
        let e = evaluate(
            Some(&reboot),
            Some(PendingUpdates {
                total: 12,
                security: Some(5),
            }),
        );
        assert_eq!(
            e.message,
            "reboot required since 2025-11-23 14:30 UTC by p1, p2, p3, p4, p5 and 3 more; \
             12 updates pending (5 security)"
        );
        let names: Vec<_> = e.metrics.iter().map(|m| m.name.as_ref()).collect();
        assert_eq!(
            names,
            ["reboot_required", "pending_updates", "security_updates"]
        );
    }

    #[test]
    fn update_notifier_wordings() {
        let new = "\n7 updates can be applied immediately.\n3 of these updates are standard security updates.\nTo see these additional updates run: apt list --upgradable\n\n4 additional security updates can be applied with ESM Apps.\nLearn more about enabling ESM Apps service at https://ubuntu.com/esm\n";
        assert_eq!(
            parse_updates_available(new),
            Some(PendingUpdates {
                total: 7,
                security: Some(3)
            })
        );
        let old = "\n12 packages can be updated.\n0 updates are security updates.\n\n";
        assert_eq!(
            parse_updates_available(old),
            Some(PendingUpdates {
                total: 12,
                security: Some(0)
            })
        );
        let one = "1 update can be applied immediately.\n";
        assert_eq!(
            parse_updates_available(one),
            Some(PendingUpdates {
                total: 1,
                security: None
            })
        );
        assert_eq!(parse_updates_available(""), None);

        let dir = tempfile::tempdir().expect("tempdir");
        let paths = paths_in(dir.path());
        std::fs::write(&paths.updates_available, new).expect("write");
        assert_eq!(read_files(&paths).updates.map(|u| u.total), Some(7));
    }

    #[test]
    fn needs_restarting_lists_packages() {
        let out = "Core libraries or services have been updated since boot-up:\n  * kernel\n  * systemd\n\nReboot is required to fully utilize these updates.\nMore information: https://access.redhat.com/solutions/27943\n";
        assert_eq!(parse_needs_restarting(out), ["kernel", "systemd"]);
    }

    #[test]
    fn windows_registry_signals() {
        assert_eq!(WindowsSignals::default().reboot(), None);
        let e = evaluate(WindowsSignals::default().reboot().as_ref(), None);
        assert_eq!(
            (e.state, e.message.as_str()),
            (CheckState::Ok, "no reboot required")
        );
        let only_empty = WindowsSignals {
            pending_file_renames: vec![String::new(), String::new()],
            ..WindowsSignals::default()
        };
        assert_eq!(only_empty.reboot(), None, "no real rename");
        let all = WindowsSignals {
            cbs_reboot_pending: true,
            windows_update_reboot_required: true,
            pending_file_renames: vec![
                r"\??\C:\Windows\Temp\a.tmp".to_owned(),
                String::new(),
                r"\??\C:\x.new".to_owned(),
                r"!\??\C:\x.dll".to_owned(),
            ],
        };
        let e = evaluate(all.reboot().as_ref(), None);
        assert_eq!(e.state, CheckState::Warn);
        assert_eq!(
            e.message,
            "reboot required by Component Based Servicing, Windows Update, 2 pending file rename(s)"
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "current_thread")]
    async fn needs_restarting_runs_only_when_present() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = paths_in(dir.path());
        let probe = RebootProbe {
            interval: Duration::from_secs(1),
            paths: paths.clone(),
        };
        assert_eq!(probe.check().await.state, CheckState::Ok);

        // Written beside and renamed, so no open write handle makes exec fail.
        let install = |script: &str| {
            let tmp = dir.path().join("script.tmp");
            std::fs::write(&tmp, script).expect("write");
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            std::fs::rename(&tmp, &paths.needs_restarting).expect("rename");
        };
        let script = "#!/bin/sh\n[ \"$1\" = -r ] || exit 2\necho 'Core libraries or services have been updated since boot-up:'\necho '  * kernel'\nexit 1\n";
        install(script);
        let e = probe.check().await;
        assert_eq!(
            (e.state, e.message.as_str()),
            (CheckState::Warn, "reboot required by kernel")
        );

        install("#!/bin/sh\necho broken >&2\nexit 3\n");
        let e = probe.check().await;
        assert_eq!(e.state, CheckState::Unknown);
        assert_eq!(e.message, "needs-restarting -r failed: broken");
    }

    #[test]
    fn built_only_when_enabled() {
        let on = RebootRequiredConfig {
            enabled: true,
            interval_secs: 60,
        };
        let probes_on = probes(&on);
        assert_eq!(probes_on.len(), 1);
        assert_eq!(probes_on[0].kind(), "reboot_required");
        assert_eq!(probes_on[0].interval(), Duration::from_secs(60));
        assert!(
            probes(&RebootRequiredConfig {
                enabled: false,
                ..on
            })
            .is_empty()
        );
    }
}
