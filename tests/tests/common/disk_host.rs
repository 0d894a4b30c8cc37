//! A real agent watching a small tmpfs of its own, for the tests that need
//! a disk ticket to open and resolve on demand (the sink tests): enrolled,
//! running and seen online before [`DiskHost::start`] returns;
//! [`DiskHost::fill`] crosses the 90 % CRIT threshold, [`DiskHost::drain`]
//! clears it.

use std::time::Duration;

use super::{AgentHome, Collector, Proc, Tmpfs, enroll_ok, eventually};

/// The agent's config: only the disk check, on `mount`, WARN 70 % / CRIT 90 %.
pub fn disk_only_config(mount: &std::path::Path) -> String {
    format!(
        "[checks.disk]\nmounts = [{mount:?}]\nwarn_used_percent = 70.0\ncrit_used_percent = 90.0\n\
         [checks.cpu]\nenabled = false\n[checks.memory]\nenabled = false\n"
    )
}

/// An enrolled, running agent of `tenant` on its own 8 MiB tmpfs.
pub struct DiskHost {
    pub mnt: Tmpfs,
    /// The disk check's item: the mount point.
    pub item: String,
    pub agent_id: String,
    _home: AgentHome,
    _proc: Proc,
}

impl DiskHost {
    pub async fn start(collector: &Collector, tenant: &str) -> Self {
        let mnt = Tmpfs::mount("8m");
        let item = mnt.path().to_str().expect("utf-8 path").to_string();
        let home = AgentHome::new(&disk_only_config(mnt.path()));
        let agent_id = enroll_ok(collector, &home, tenant);
        let proc = home.run();
        eventually(Duration::from_secs(30), "agent online", || async {
            let v = collector.get(&format!("/api/v1/agents/{agent_id}")).await;
            v["checks"]
                .as_array()
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["item"] == item.as_str() && c["state"] == "ok")
                })
                .then_some(())
        })
        .await;
        DiskHost {
            mnt,
            item,
            agent_id,
            _home: home,
            _proc: proc,
        }
    }

    /// Fills the disk past CRIT (7.5 of 8 MiB).
    pub fn fill(&self) {
        std::fs::write(
            self.mnt.path().join("fill.bin"),
            vec![0xA5u8; 7 * 1024 * 1024 + 512 * 1024],
        )
        .expect("fill");
    }

    /// Frees what [`DiskHost::fill`] wrote.
    pub fn drain(&self) {
        std::fs::remove_file(self.mnt.path().join("fill.bin")).expect("drain");
    }
}
