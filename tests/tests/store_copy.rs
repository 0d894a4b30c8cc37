//! `forewarn-collector store copy` end to end: a real agent enrolled on a
//! SQLite collector has an open ticket; the collector stops, its store is
//! copied into a fresh PostgreSQL database with the CLI, the config points
//! `[store] url` at it, and the collector starts again on the same data
//! dir (so the same CA). The same agent reconnects with the certificate it
//! has (no enrollment), keeps reporting, its ticket resolves on the new
//! store when the failure clears, and no ticket is duplicated.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::sim::{ms, now_ms};
use common::{AgentHome, Collector, Store, bin, enroll_ok, eventually, fresh_postgres_database};
use serde_json::Value;

/// Only a plugin whose state a file sets: crit or ok.
fn agent_config(plugin: &Path) -> String {
    format!(
        "[checks.disk]\nenabled = false\n[checks.cpu]\nenabled = false\n\
         [checks.memory]\nenabled = false\n\
         [[checks.plugin]]\nname = \"data\"\ncommand = [{plugin:?}]\ninterval_secs = 1\n"
    )
}

fn write_plugin(path: &Path, control: &Path) {
    std::fs::write(
        path,
        format!(
            "#!/bin/sh\nif [ \"$(cat {control})\" = crit ]; then\n\
             echo 'DATA CRITICAL'\nexit 2\nfi\necho 'DATA OK'\nexit 0\n",
            control = control.display()
        ),
    )
    .expect("write plugin");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Points the config's `[store]` at `url`: an existing `[store]` table is
/// dropped (up to the next table) and a new one appended, with the
/// `[pki] kek_file` a PostgreSQL store needs.
fn use_store(config: &Path, url: &str) {
    let text = std::fs::read_to_string(config).expect("read config");
    let mut out = String::new();
    let mut in_store = false;
    for line in text.lines() {
        if line.trim_start().starts_with('[') {
            in_store = line.trim() == "[store]";
        }
        if !in_store {
            out.push_str(line);
            out.push('\n');
        }
    }
    let dir = config.parent().expect("config dir");
    let out = Store::Postgres(url.to_string()).select_in(&out, dir);
    std::fs::write(config, out).expect("write config");
}

/// Every ticket of `agent_id`, open or resolved.
async fn tickets_of(collector: &Collector, agent_id: &str) -> Vec<Value> {
    collector
        .get("/api/v1/tickets?state=all")
        .await
        .as_array()
        .expect("ticket list")
        .iter()
        .filter(|t| t["agent_id"] == agent_id)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_copied_to_postgres_keeps_its_agents_and_their_tickets() {
    let pg_url = fresh_postgres_database();
    let collector = Collector::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let control = dir.path().join("state");
    std::fs::write(&control, "crit").expect("control file");
    let plugin = dir.path().join("check_data");
    write_plugin(&plugin, &control);
    let home = AgentHome::new(&agent_config(&plugin));
    let agent_id = enroll_ok(&collector, &home, "default");
    let identity = home.identity();
    let _agent = home.run();

    // On SQLite: the failure opens a ticket.
    let ticket = eventually(Duration::from_secs(30), "a ticket on SQLite", || async {
        tickets_of(&collector, &agent_id)
            .await
            .into_iter()
            .find(|t| t["check"] == "plugin" && t["item"] == "data" && t["state"] == "open")
    })
    .await;
    let id = ticket["id"].as_i64().expect("id");

    // Stop, copy with the CLI, point the config at PostgreSQL.
    let mut stopped = collector.stop();
    let Store::Sqlite(db) = stopped.store.clone() else {
        panic!("started on SQLite")
    };
    let started = Instant::now();
    let out = Command::new(bin("forewarn-collector"))
        .arg("--config")
        .arg(&stopped.config)
        .args(["store", "copy", "--from"])
        .arg(format!("sqlite://{}", db.display()))
        .args(["--to", &pg_url])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run store copy");
    let took = started.elapsed();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "store copy failed:\n{stderr}{stdout}");
    eprintln!("store copy took {took:?}:\n{stderr}{stdout}");
    for table in [
        "tenants",
        "agents",
        "tickets",
        "ticket_events",
        "delivered_reports",
    ] {
        assert!(
            stderr.lines().any(|l| l.trim_start().starts_with(table)),
            "no progress line for {table}:\n{stderr}"
        );
    }
    assert!(stdout.starts_with("copied "), "{stdout}");
    use_store(&stopped.config, &pg_url);
    stopped.store = Store::Postgres(pg_url.clone());
    let restarted = now_ms();
    let collector = stopped.start();

    // The same agent comes back on PostgreSQL without enrolling again.
    eventually(
        Duration::from_secs(60),
        "the agent reporting to the collector on PostgreSQL",
        || async {
            let a = collector.agent(&agent_id).await?;
            let seen = a["last_seen_at"].as_str().map(|_| ms(&a["last_seen_at"]));
            (a["status"] == "online" && seen > Some(restarted)).then_some(())
        },
    )
    .await;
    assert_eq!(home.identity(), identity, "the agent enrolled again");
    let pg = sqlx::PgPool::connect(&pg_url).await.expect("connect");
    // The CA of the files went into the database (that is why the agent
    // could come back), for every replica.
    let origin: String = sqlx::query_scalar("SELECT origin FROM ca")
        .fetch_one(&pg)
        .await
        .expect("the CA row");
    assert_eq!(origin, "imported");
    let agents: Vec<String> = sqlx::query_scalar("SELECT id FROM agents")
        .fetch_all(&pg)
        .await
        .expect("agents");
    assert_eq!(
        agents,
        std::slice::from_ref(&agent_id),
        "one agent, the copied one"
    );

    // Its copied ticket is still the open one.
    let t = collector.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(t["state"], "open", "{t}");

    // The failure clears: that ticket resolves on the new store.
    std::fs::write(&control, "ok").expect("control file");
    eventually(
        Duration::from_secs(30),
        "the copied ticket to resolve",
        || async {
            let t = collector.get(&format!("/api/v1/tickets/{id}")).await;
            (t["state"] == "resolved").then_some(())
        },
    )
    .await;
    let state: String = sqlx::query_scalar("SELECT state FROM tickets WHERE id = $1")
        .bind(id)
        .fetch_one(&pg)
        .await
        .expect("ticket in postgres");
    assert_eq!(state, "resolved", "resolved in PostgreSQL");

    // No ticket was duplicated, and the old store was left as it was.
    let all = tickets_of(&collector, &agent_id).await;
    let ids: Vec<i64> = all.iter().filter_map(|t| t["id"].as_i64()).collect();
    assert_eq!(ids, [id], "{all:#?}");
    let old = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open old store");
    let old_state: String = sqlx::query_scalar("SELECT state FROM tickets WHERE id = $1")
        .bind(id)
        .fetch_one(&old)
        .await
        .expect("ticket in sqlite");
    assert_eq!(old_state, "open", "the old store is not written any more");
}
