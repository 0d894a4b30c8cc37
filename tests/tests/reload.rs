//! Agent config reload without a restart: a valid change is applied at once
//! (as a diff), an invalid one is rejected and the running config stays.

mod common;

use std::time::Duration;

use common::{AgentHome, Collector, Tmpfs, enroll_ok, eventually};

fn config(mount: &str, crit: f64) -> String {
    format!(
        "[checks.disk]\nmounts = [{mount:?}]\nwarn_used_percent = {}\ncrit_used_percent = {crit}\n\
         [checks.cpu]\nenabled = false\n[checks.memory]\nenabled = false\n",
        crit - 5.0
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_and_file_changes_reload_and_a_bad_config_is_rejected() {
    let collector = Collector::start();
    let mnt = Tmpfs::mount("8m");
    let item = mnt.path().to_str().expect("utf-8").to_string();
    let home = AgentHome::new(&config(&item, 90.0));
    let agent_id = enroll_ok(&collector, &home, "default");
    // Half full: OK under a 90 % threshold.
    std::fs::write(mnt.path().join("half.bin"), vec![1u8; 4 * 1024 * 1024]).expect("fill");
    let mut agent = home.run();
    let disk_state = |state: &'static str| {
        let collector = &collector;
        let agent_id = agent_id.clone();
        let item = item.clone();
        async move {
            let v = collector.get(&format!("/api/v1/agents/{agent_id}")).await;
            v["checks"]
                .as_array()
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["item"] == item.as_str() && c["state"] == state)
                })
                .then_some(())
        }
    };
    eventually(Duration::from_secs(30), "disk OK at 50 %", || {
        disk_state("ok")
    })
    .await;

    // Rewrite the file with a 40 % threshold: the watch reloads it.
    let original = std::fs::read_to_string(&home.config).expect("read config");
    let stricter = original.replace(&config(&item, 90.0), &config(&item, 40.0));
    assert_ne!(original, stricter);
    std::fs::write(&home.config, &stricter).expect("rewrite config");
    eventually(
        Duration::from_secs(15),
        "a ticket under the reloaded threshold",
        || async {
            let open = collector.get("/api/v1/tickets?state=open").await;
            open.as_array()?
                .iter()
                .any(|t| t["agent_id"] == agent_id.as_str() && t["item"] == item.as_str())
                .then_some(())
        },
    )
    .await;

    // A broken config is rejected; the agent keeps running on the old one.
    std::fs::write(
        &home.config,
        format!("{stricter}\n[checks.disk]\nbogus = 1\n"),
    )
    .expect("break");
    eventually(
        Duration::from_secs(15),
        "the rejection in the agent log",
        || async {
            agent
                .log_text()
                .contains("config reload rejected")
                .then_some(())
        },
    )
    .await;
    assert!(
        agent.child.try_wait().expect("wait").is_none(),
        "agent must keep running"
    );

    // Back to 90 % via SIGHUP after restoring the file (the watch may also
    // fire; either way the threshold is applied and the ticket resolves).
    std::fs::write(&home.config, &original).expect("restore");
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &agent.child.id().to_string()])
        .status();
    eventually(
        Duration::from_secs(15),
        "disk OK again after reload",
        || disk_state("ok"),
    )
    .await;
    eventually(Duration::from_secs(15), "the ticket resolved", || async {
        let open = collector.get("/api/v1/tickets?state=open").await;
        (!open
            .as_array()?
            .iter()
            .any(|t| t["agent_id"] == agent_id.as_str()))
        .then_some(())
    })
    .await;
    assert!(agent.log_text().contains("config reload accepted"));
}
